"""The `dcgan` command line: help, exit codes and the exact one-line error texts."""

import hashlib
import json
import subprocess
import sys

import pytest
from click.testing import CliRunner

from pipeline.cli import main

COMMANDS = sorted(main.commands)


def run(*args: str):
    return CliRunner().invoke(main, list(args))


def test_help_of_every_command_leaves_tensorflow_unimported():
    script = f"""
import json, sys
from click.testing import CliRunner
from pipeline.cli import main
commands = [[], *[[name] for name in {COMMANDS!r}]]
codes = [CliRunner().invoke(main, [*command, "--help"]).exit_code for command in commands]
print(json.dumps({{"codes": codes, "tf": "tensorflow" in sys.modules}}))
"""
    result = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=True
    )
    report = json.loads(result.stdout)
    assert report == {"codes": [0] * (len(COMMANDS) + 1), "tf": False}


def test_python_dash_m_runs_the_same_group():
    result = subprocess.run(
        [sys.executable, "-m", "pipeline", "--help"], capture_output=True, text=True, check=True
    )
    assert result.stdout.startswith("Usage: dcgan [OPTIONS] COMMAND [ARGS]...")
    assert "download" in result.stdout


def test_version():
    result = run("--version")
    assert result.exit_code == 0
    assert result.output.startswith("dcgan, version ")


def test_missing_source_is_one_error_line(tmp_path):
    result = run("download", "--source", str(tmp_path / "nowhere"), "--out", str(tmp_path / "out"))
    assert result.exit_code == 1
    assert result.output == (
        f"Error: --source {tmp_path / 'nowhere'}: no such folder or archive, "
        "and not an http(s) URL\n"
    )
    assert not (tmp_path / "out").exists()


def test_a_folder_with_a_corrupted_file_names_it_and_changes_nothing(tmp_path):
    source = tmp_path / "copy"
    source.mkdir()
    for name in (
        "train-images-idx3-ubyte",
        "train-labels-idx1-ubyte",
        "t10k-images-idx3-ubyte",
        "t10k-labels-idx1-ubyte",
    ):
        (source / name).write_bytes(b"not mnist")
    out = tmp_path / "data"
    out.mkdir()
    (out / "notes.txt").write_text("mine")
    result = run("download", "--source", str(source), "--out", str(out))
    assert result.exit_code == 1
    lines = result.output.splitlines()
    assert len(lines) == 1
    assert lines[0] == (
        f"Error: could not get a verified train-images-idx3-ubyte: tried {source} (checksum "
        "mismatch for train-images-idx3-ubyte: expected sha256 "
        "ba891046e6505d7aadcbbe25680a0738ad16aec93bde7f9b65e87a2fc25776db, got "
        f"{hashlib.sha256(b'not mnist').hexdigest()}). Fetch the four "
        "files by other means and run: dcgan download --source <folder, .tar.gz/.zip archive, "
        "or URL>"
    )
    assert sorted(p.name for p in out.iterdir()) == ["notes.txt"]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--timeout", "0"], "Invalid value for '--timeout': 0.0 is not in the range x>0."),
        (["--dataset", "cifar"], "Invalid value for '--dataset': 'cifar' is not one of"),
    ],
)
def test_bad_options_exit_2(args, message):
    result = run("download", *args)
    assert result.exit_code == 2
    assert message in result.output


def test_a_missing_train_extra_is_one_error_line(tmp_path):
    """As in a base install (`pip install .`), where the stages' own modules are absent."""
    script = f"""
import sys
sys.modules["tqdm"] = None  # what an environment without the train extra looks like to imports
from click.testing import CliRunner
from pipeline.cli import main
result = CliRunner().invoke(main, ["download", "--out", {str(tmp_path / "data")!r}])
print(result.exit_code)
print(result.output, end="")
"""
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=True
    )
    assert done.stdout == (
        "1\nError: this command needs the module 'tqdm', which comes with the 'train' extra: "
        "in a clone of the repository, pip install -e '.[train]'\n"
    )


@pytest.mark.parametrize(
    "name, advice",
    [
        ("tensorflow.keras", "comes with the 'train' extra"),
        ("yaml", "comes with the 'train' extra"),
        ("pipeline.runtime.encode", "of this package is missing: reinstall it"),
        ("some_plugin", "which is not installed here"),
    ],
)
def test_the_missing_module_advice_names_what_provides_it(name, advice):
    from pipeline.cli.group import missing_module_advice

    assert advice in missing_module_advice(name)


def test_the_light_path_runs_without_posix_only_modules(exported_model, tmp_path):
    """With `fcntl` (and the heavy packages) unimportable, as on Windows' light install,
    `dcgan sample` imports, writes its grid and never imports `fcntl`."""
    out = tmp_path / "grid.png"
    model = exported_model / "models/generator.onnx"
    script = f"""
import sys
for name in ("fcntl", "tensorflow", "keras", "tf2onnx", "onnx", "dvc", "yaml", "tqdm"):
    sys.modules[name] = None
from click.testing import CliRunner
from pipeline.cli import main
result = CliRunner().invoke(main, ["sample", "--model", {str(model)!r}, "-n", "4",
    "--out", {str(out)!r}])
print(result.exit_code, "fcntl" in sys.modules and sys.modules["fcntl"] is not None)
"""
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
    assert done.stdout.split() == ["0", "False"], done.stderr[-2000:]
    assert out.is_file()
