"""The tree shows the architecture: the light runtime imports nothing heavy, and every layer
imports only the layers below it."""

import ast
import subprocess
import sys

import pytest

from conftest import REPO

PACKAGE = REPO / "pipeline"
HEAVY = ("tensorflow", "keras", "tf2onnx", "onnx", "dvc", "yaml", "tqdm")
# Bottom to top: a module may import from its own layer and the ones before it.
LAYERS = (
    "errors",
    "storage",
    "runtime",
    "serving",
    "config",
    "data",
    "evaluation",
    "gan",
    "families",
    "presets",
    "training",
    "export",
    "benchmarks",
    "reporting",
    "cli",
)


def layer_of(module: str) -> str:
    """`pipeline.runtime.sampler` -> `runtime`; `pipeline.errors` -> `errors`."""
    return module.split(".")[1]


def imports(path) -> set[str]:
    """The `pipeline.*` modules (or packages) `path` imports, anywhere in it."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("pipeline."):
            found.add(node.module)
        elif isinstance(node, ast.Import):
            found |= {a.name for a in node.names if a.name.startswith("pipeline.")}
    return found


def test_the_light_runtime_imports_nothing_heavy():
    """Every module of the light install (storage, runtime, serving) imported in a fresh
    interpreter, with the heavy packages made unimportable: an app that installs only numpy,
    onnxruntime, Pillow and click can run it."""
    modules = sorted(
        f"pipeline.{layer}.{p.stem}"
        for layer in ("storage", "runtime", "serving")
        for p in (PACKAGE / layer).glob("*.py")
        if p.stem != "__init__"
    )
    blocked = "".join(f"sys.modules[{name!r}] = None\n" for name in HEAVY)
    program = f"import sys\n{blocked}" + "".join(f"import {m}\n" for m in modules)
    program += f"print(sorted(m for m in {HEAVY!r} if sys.modules.get(m)))\n"
    done = subprocess.run(
        [sys.executable, "-c", program], capture_output=True, text=True, cwd=REPO, timeout=120
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"


# Every module but the package's own `__init__.py` (its version) and `__main__.py`.
MODULES = sorted(p for p in PACKAGE.rglob("*.py") if p.parent != PACKAGE or p.stem in LAYERS)


@pytest.mark.parametrize("path", MODULES, ids=lambda p: str(p.relative_to(PACKAGE)))
def test_each_module_imports_only_its_own_layer_and_those_below(path):
    relative = path.relative_to(PACKAGE)
    own = LAYERS.index(relative.parts[0].removesuffix(".py"))
    above = sorted(m for m in imports(path) if LAYERS.index(layer_of(m)) > own)
    assert not above, f"{relative} imports from layers above it: {above}"
