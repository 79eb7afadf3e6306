"""`python -m pipeline` runs the same `dcgan` command as the console script."""

from pipeline.cli import run

run()
