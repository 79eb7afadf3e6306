"""Each DVC stage lists every `pipeline` module its command runs, so a code change reruns it.

The modules a stage runs are found from the source, not from a list kept by hand: the imports
inside the stage's command in `pipeline/cli/` and at the top of its module and of
`pipeline/cli/group.py`, then everything those modules import (at module level or inside
functions), transitively. `pipeline/cli/` itself is the thin adapter every stage shares and is
left out, as is the package's `__init__.py` (its version) and every empty `__init__.py` of a
sub-package (no code to depend on).
"""

import ast
from pathlib import Path

import pytest
import yaml

from conftest import REPO

PACKAGE = REPO / "pipeline"
CLI = PACKAGE / "cli"
NOT_DEPENDENCIES = {
    "pipeline/__init__.py",
    "pipeline/__main__.py",
    *(str(p.relative_to(REPO)) for p in CLI.glob("*.py")),
}


def imported_modules(tree: ast.AST) -> set[str]:
    """`pipeline.x` for each `import pipeline.x`, `from pipeline import x`, `from pipeline.x
    import y` anywhere in `tree`."""
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names if alias.name.startswith("pipeline.")}
        elif isinstance(node, ast.ImportFrom) and node.module:
            if node.module == "pipeline" or module_path(node.module).name == "__init__.py":
                found |= {f"{node.module}.{alias.name}" for alias in node.names}
            if node.module.startswith("pipeline."):
                found.add(node.module)
    return {name for name in found if module_path(name).exists()}


def module_path(name: str) -> Path:
    """The file of module `name`: `a/b.py`, or `a/b/__init__.py` for a package."""
    path = REPO / name.replace(".", "/")
    return path / "__init__.py" if path.is_dir() else path.with_suffix(".py")


def closure(roots: set[str]) -> set[str]:
    seen, todo = set(), list(roots)
    while todo:
        name = todo.pop()
        if name in seen or name == "pipeline.cli" or name.startswith("pipeline.cli."):
            continue  # the adapter: each command's own imports are its roots
        seen.add(name)
        todo += imported_modules(ast.parse(module_path(name).read_text()))
        todo.append(name.rsplit(".", 1)[0])  # importing a.b.c runs a/b/__init__.py first
    return seen


def command_functions() -> dict[str, tuple[ast.FunctionDef, ast.Module]]:
    """The click command name (`@main.command("x")` or the function's name) -> its function and
    the module that holds it."""
    commands = {}
    for path in sorted(CLI.glob("*.py")):
        tree = ast.parse(path.read_text())
        for node in tree.body:
            if not isinstance(node, ast.FunctionDef):
                continue
            for decorator in node.decorator_list:
                if (
                    isinstance(decorator, ast.Call)
                    and isinstance(decorator.func, ast.Attribute)
                    and decorator.func.attr == "command"
                ):
                    name = decorator.args[0].value if decorator.args else node.name
                    commands[name] = (node, tree)
    return commands


def top_level_imports(*trees: ast.Module) -> set[str]:
    body = [
        node
        for tree in trees
        for node in tree.body
        if isinstance(node, ast.Import | ast.ImportFrom)
    ]
    return imported_modules(ast.Module(body=body, type_ignores=[]))


def stage_code(command: str) -> set[str]:
    function, module = command_functions()[command]
    group = ast.parse((CLI / "group.py").read_text())
    roots = imported_modules(function) | top_level_imports(module, group)
    files = {module_path(name) for name in closure(roots)}
    paths = {str(path.relative_to(REPO)) for path in files if path.read_text().strip()}
    return paths - NOT_DEPENDENCIES


STAGES = yaml.safe_load((REPO / "dvc.yaml").read_text())["stages"]


def declared_code(stage: str) -> set[str]:
    """The modules a stage lists: files, and folders standing for every module in them."""
    declared = set()
    for dep in STAGES[stage]["deps"]:
        path = REPO / dep
        if dep.startswith("pipeline/") and path.is_dir():
            files = (p for p in path.rglob("*.py") if p.read_text().strip())
            declared |= {str(p.relative_to(REPO)) for p in files}
        elif dep.startswith("pipeline/"):
            declared.add(dep)
    return declared


@pytest.mark.parametrize("stage", sorted(STAGES))
def test_every_module_a_stage_runs_is_a_dependency(stage):
    command = STAGES[stage]["cmd"].split()[3]
    declared = declared_code(stage)
    missing = stage_code(command) - declared
    assert not missing, f"dvc.yaml: stage {stage} runs {sorted(missing)} but does not list it"
    unused = declared - stage_code(command)
    assert not unused, f"dvc.yaml: stage {stage} lists {sorted(unused)}, which it never runs"


def test_the_scan_sees_imports_inside_functions_and_from_the_package():
    tree = ast.parse(
        "import os\n"
        "from pipeline.evaluation import quality\n"
        "def f():\n"
        "    from pipeline.runtime.sampler import Sampler\n"
        "    import pipeline.storage.images\n"
        "    from pipeline.nothing_here import x\n"
    )
    assert imported_modules(tree) == {
        "pipeline.evaluation",
        "pipeline.evaluation.quality",
        "pipeline.runtime.sampler",
        "pipeline.storage.images",
    }


def test_a_removed_dependency_is_caught():
    """What the test above reports when a stage's list loses a module it runs."""
    declared = declared_code("evaluate")
    assert "pipeline/evaluation/quality.py" in stage_code("evaluate")
    assert "pipeline/evaluation/quality.py" in declared
    assert stage_code("evaluate") - (declared - {"pipeline/evaluation/quality.py"}) == {
        "pipeline/evaluation/quality.py"
    }


def test_the_train_stage_depends_on_every_key_that_shapes_the_weights_and_no_other():
    """Cosmetic keys (how often frames and checkpoints are made) must not retrain anything;
    everything else must."""
    import dataclasses

    from pipeline.config import TrainConfig
    from pipeline.training.checkpoints import COSMETIC

    declared = {p.split(".", 1)[1] for p in STAGES["train"]["params"] if p.startswith("train.")}
    assert declared == {f.name for f in dataclasses.fields(TrainConfig)} - set(COSMETIC)
