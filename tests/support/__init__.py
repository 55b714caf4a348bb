"""Helpers of the tests, the benchmarks and the history recorder: never imported by docpipe."""
