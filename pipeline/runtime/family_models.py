"""The models a family's run produces besides the generator, and the listing that names them.

The train stage saves them as Keras files into one folder (`models/family-keras`), the export
stage converts them into another (`models/family`: what apps load). Each folder holds
`models.json`, which says what each model is, so the export stage and apps find them without
knowing the family; a family with no models of its own leaves its folders empty.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass
from pathlib import Path

from pipeline.errors import ContractError
from pipeline.storage.files import write_json_atomically

MODELS_FILE = "models.json"


@dataclass(frozen=True)
class FamilyModel:
    """One model: `<name>.keras` as trained, `<name>.onnx` as exported by the exporter of its
    `kind` (`pipeline.export.family_models`), described in its metadata by `role`."""

    name: str
    kind: str
    role: str


def write_listing(folder: Path, models: list[FamilyModel], files: list[str]) -> None:
    """`folder`'s `MODELS_FILE`: its models and its other files (such as the labels)."""
    listing = {"models": [dataclasses.asdict(m) for m in models], "files": sorted(files)}
    write_json_atomically(Path(folder) / MODELS_FILE, listing)


def read_listing(folder: Path) -> tuple[list[FamilyModel], list[str]]:
    """The models and files `folder`'s listing names; none when it has no listing."""
    path = Path(folder) / MODELS_FILE
    if not path.exists():
        return [], []
    try:
        listing = json.loads(path.read_text())
        models = [FamilyModel(**entry) for entry in listing["models"]]
        files = [str(name) for name in listing["files"]]
    except (OSError, ValueError, KeyError, TypeError) as error:
        raise ContractError(f"{path}: not a readable list of models ({error!r})") from error
    return models, files
