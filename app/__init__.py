"""The ``docpipe`` command-line application: the top floor of the house.

It stands on everything below it: the intake (``consumers``), the worker processes
(``workers``), the pipeline and the ground (``infra``). Nothing below imports it.
"""
