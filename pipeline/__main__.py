"""`python -m pipeline` runs the same `dcgan` command group as the console script."""

from pipeline.cli import main

main(prog_name="dcgan")
