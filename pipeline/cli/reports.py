"""The benchmarks run outside `dvc repro` and `make report`."""

from __future__ import annotations

from pathlib import Path

import click

from pipeline.cli.group import (
    count_option,
    file_option,
    main,
    metrics_option,
    params_option,
    quiet_tensorflow,
    report_metrics,
    require_file,
)


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
