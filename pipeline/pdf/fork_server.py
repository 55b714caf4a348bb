"""What the parser processes' fork server loads before it forks them (Linux).

A worker process starts one fork server, a fresh interpreter with a single thread, on its
first page check; every parser process is then forked from it. The server has imported the
parsing code once, so a parser process starts in about 25 ms, where a spawned one spends
about 170 ms of CPU importing pypdf again. The worker itself never forks: it runs
Temporal's threads.

The server dies with the worker (the kernel kills it then), and the parser processes
die with the server (``pipeline.pdf.bounds.bind_to_parent``), so a killed worker leaves
no process behind. Importing this module binds the importing process to its parent:
it is imported only as the fork server's preload (``pipeline.check.parser_slot``).
"""

from __future__ import annotations

from pipeline.pdf import parser_process  # noqa: F401  (loaded once, for every fork)
from pipeline.pdf.bounds import die_with_parent

die_with_parent()
