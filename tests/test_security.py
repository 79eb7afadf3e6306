"""Nothing a user downloads or is given is loaded by a mechanism that can run code."""

import re
from pathlib import Path

import pytest

SOURCES = sorted((Path(__file__).resolve().parents[1] / "pipeline").rglob("*.py"))
FORBIDDEN = {
    r"\bimport pickle\b|\bpickle\.": "pickle runs code from the bytes it loads",
    r"allow_pickle\s*=\s*True": "a pickled .npy runs code when loaded",
    r"yaml\.(load|unsafe_load|full_load)\(": "only yaml.safe_load: other loaders build objects",
    r"\.extractall\(": "archives are read member by member, never extracted to their paths",
    r"safe_mode\s*=\s*False": "Keras' safe mode refuses lambdas in a model file",
    r"(?<![\w.])(eval|exec)\(": "no code from strings",
    r"shell\s*=\s*True": "subprocesses get argument lists, never a shell",
}


@pytest.mark.parametrize("source", SOURCES, ids=lambda path: path.name)
def test_no_unsafe_loading(source):
    text = source.read_text()
    for pattern, why in FORBIDDEN.items():
        match = re.search(pattern, text)
        assert match is None, f"{source.name}: {match.group(0)!r}: {why}"


def test_every_numpy_load_refuses_pickles():
    for source in SOURCES:
        for call in re.findall(r"np\.load\([^)]*\)", source.read_text()):
            assert "allow_pickle=False" in call, f"{source.name}: {call}"


def test_the_scan_sees_the_package():
    assert {"download.py", "train.py", "sampler.py", "config.py"} <= {p.name for p in SOURCES}
