"""`dcgan exp`: a preset of `presets/` run as a DVC experiment."""

from __future__ import annotations

import shlex
import shutil
import subprocess
from pathlib import Path

import click

from pipeline.cli.group import main, params_option, quiet_tensorflow


@main.command("exp")
@click.argument("preset")
@click.option(
    "--seed",
    type=click.IntRange(min=0),
    default=0,
    show_default=True,
    help="The training seed (train.seed); the experiment is named PRESET-seed-SEED.",
)
@click.option(
    "-S",
    "--set-param",
    "extra",
    multiple=True,
    metavar="KEY=VALUE",
    help="One more params.yaml value, as `dvc exp run -S` takes it (repeatable).",
)
@click.option("--name", default=None, help="The experiment's name instead of PRESET-seed-SEED.")
@click.option("--queue", is_flag=True, help="Queue it (`dvc queue start` runs the queue).")
@click.option("--dry-run", is_flag=True, help="Print the dvc command without running it.")
@params_option("train")
def experiment(
    preset: str,
    seed: int,
    extra: tuple[str, ...],
    name: str | None,
    queue: bool,
    dry_run: bool,
    params_path: Path,
) -> None:
    """Run PRESET (presets/PRESET.yaml; docs/EXPERIMENTS.md, Presets) as a DVC experiment:
    `dvc exp run` with its values as `-S` flags, so `dvc exp show` and `make report` list it."""
    quiet_tensorflow()  # the check of a preset's train section reads the families
    from pipeline.presets import check_overrides, read_preset
    from pipeline.storage.files import write_atomically

    chosen = read_preset(params_path.parent, preset, params_path)
    values = [f"train.seed={seed}", *extra]
    check_overrides(params_path, chosen, values)
    command = ["dvc", "exp", "run", "-n", name or chosen.experiment(seed)]
    if queue:
        command.append("--queue")
    for value in [*chosen.overrides(), *values]:
        command += ["-S", value]
    click.echo(f"$ {shlex.join(command)}")
    if dry_run:
        return
    if shutil.which("dvc") is None:
        raise click.ClickException("dvc is not installed here: pip install -e '.[train]'")
    before = params_path.read_bytes()
    code = subprocess.run(command, check=False).returncode
    if code:
        if params_path.read_bytes() != before:  # DVC wrote the -S values into it
            write_atomically(params_path, lambda handle: handle.write(before))
            click.echo(f"{params_path} restored as it was before the experiment.", err=True)
        raise click.exceptions.Exit(code)
