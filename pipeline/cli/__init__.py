"""The `dcgan` command (`python -m pipeline` too): a thin adapter from the command line to the
stage modules, one module per kind of command."""

import signal

from pipeline.cli import apps, experiments, reports, stages  # noqa: F401 (each module registers its commands)
from pipeline.cli.group import main

__all__ = ["main", "run"]


def run() -> None:
    """The console script. SIGTERM ends a command as Ctrl-C does (an exception, not a sudden
    stop), so an atomic write under way removes its temporary file and the exit code is 143."""
    signal.signal(signal.SIGTERM, _terminated)
    main(prog_name="dcgan")


def _terminated(signum: int, _frame) -> None:
    raise SystemExit(128 + signum)
