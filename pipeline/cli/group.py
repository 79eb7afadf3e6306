"""The `dcgan` group and what its commands share: options, one-line errors, quiet TensorFlow.

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
from pipeline.errors import PipelineError

# Up to this many images, `sample` opens the model without weight prepacking (see Sampler).
QUICK_START_IMAGES = 2048
TRAIN_EXTRA_HINT = "in a clone of the repository, pip install -e '.[train]'"
# The modules the `train` extra installs (pyproject.toml), by the name Python imports them as.
TRAIN_EXTRA_MODULES = ("tensorflow", "keras", "tf2onnx", "onnx", "dvc", "dvclive", "yaml", "tqdm")


class PipelineGroup(click.Group):
    """Translates the project's errors (and a missing optional dependency) into click errors."""

    def invoke(self, ctx: click.Context):
        try:
            return super().invoke(ctx)
        except PipelineError as error:
            raise click.ClickException(str(error)) from error
        except ModuleNotFoundError as error:
            raise click.ClickException(missing_module_advice(error.name or "")) from error
        except MemoryError as error:
            raise click.ClickException(
                "out of memory: ask for less at once (fewer images) or free some memory"
            ) from error


def missing_module_advice(name: str) -> str:
    """What to install for a module that is missing: the `train` extra only for the modules
    it provides; a module of this package missing means a broken install."""
    top = name.split(".")[0]
    if top in TRAIN_EXTRA_MODULES:
        return (
            f"this command needs the module '{name}', which comes with the 'train' extra: "
            f"{TRAIN_EXTRA_HINT}"
        )
    if top == "pipeline":
        return f"the module '{name}' of this package is missing: reinstall it (pip install .)"
    return f"this command needs the module '{name}', which is not installed here"


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
        from pipeline.storage.files import write_json_atomically

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
