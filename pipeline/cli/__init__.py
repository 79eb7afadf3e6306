"""The `dcgan` command (`python -m pipeline` too): a thin adapter from the command line to the
stage modules, one module per kind of command."""

from pipeline.cli import apps, reports, stages  # noqa: F401 (each module registers its commands)
from pipeline.cli.group import main

__all__ = ["main"]
