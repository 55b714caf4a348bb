"""The program's entry point: ``python -m app`` and the ``docpipe`` script.

It imports the application only when it runs. Parser processes are started by
multiprocessing (forked from a fork server, or spawned), which imports the parent's main
module again in every child (a package's ``__main__`` excepted; a script is run again as
``__mp_main__``). With ``app.cli`` as the main module, each parser process of a worker
loaded the whole application (the Temporal, S3 and Kafka clients) that it never uses:
about 0.35 s of CPU per process started, and memory counted against its limit. With this
module as the main one, a parser process loads only what it parses with.
"""

from __future__ import annotations

import sys


def main() -> None:
    """Run the ``docpipe`` command line with this process's arguments; never returns."""
    # Imported here, not above: see the module docstring.
    from app.cli import main as run_cli

    run_cli(sys.argv[1:])


if __name__ == "__main__":
    main()
