"""Keras model files whose bytes depend on the model alone.

Keras stamps a `.keras` file with the moment and the process it was saved in: the save date in
`metadata.json`, the zip members' times, the HDF5 groups' creation times in the weights, and
objects shared between layers (the dtype policy) numbered by their memory address in
`config.json`. An unchanged model would then be a new file to DVC on every run, and every later
stage would run again. `save_keras` writes the same model without the times, the shared objects
numbered in the order they appear.
"""

from __future__ import annotations

import io
import json
import zipfile
from pathlib import Path

from pipeline.storage.files import write_path_atomically

# Every member of the zip carries this time (the earliest a zip can hold).
ZIP_EPOCH = (1980, 1, 1, 0, 0, 0)
WEIGHTS = "model.weights.h5"


def save_keras(model, path: Path) -> None:
    """`model.save(path)`, atomically and without times."""

    def write(temporary: Path) -> None:
        model.save(temporary)
        _make_reproducible(temporary)

    write_path_atomically(path, write)


def _make_reproducible(path: Path) -> None:
    with zipfile.ZipFile(path) as archive:
        members = [(info, archive.read(info)) for info in archive.infolist()]
    with zipfile.ZipFile(path, "w") as archive:
        for info, data in members:
            if info.filename == "metadata.json":
                metadata = json.loads(data)
                metadata.pop("date_saved", None)
                data = json.dumps(metadata).encode()
            elif info.filename == "config.json":
                data = json.dumps(_numbered_shared_objects(json.loads(data), {})).encode()
            elif info.filename == WEIGHTS:
                data = _timeless_hdf5(data)
            timeless = zipfile.ZipInfo(info.filename, ZIP_EPOCH)
            timeless.compress_type = info.compress_type
            timeless.external_attr = info.external_attr
            archive.writestr(timeless, data)


def _numbered_shared_objects(config, numbers: dict[int, int]):
    """`config` with each `shared_object_id` (an address) replaced by 1, 2, ... in order of
    first appearance: the same objects still share a number."""
    if isinstance(config, dict):
        return {
            key: numbers.setdefault(value, len(numbers) + 1)
            if key == "shared_object_id"
            else _numbered_shared_objects(value, numbers)
            for key, value in config.items()
        }
    if isinstance(config, list):
        return [_numbered_shared_objects(value, numbers) for value in config]
    return config


def _timeless_hdf5(data: bytes) -> bytes:
    """The same groups, datasets and attributes, in groups made without creation times
    (h5py already makes its datasets without)."""
    import h5py  # with Keras, in the train extra

    copy = io.BytesIO()
    with h5py.File(io.BytesIO(data), "r") as source, h5py.File(copy, "w") as target:
        _copy_group(source, target)
    return copy.getvalue()


def _copy_group(source, target) -> None:
    import h5py

    target.attrs.update(source.attrs)
    for name, item in source.items():
        if isinstance(item, h5py.Group):
            properties = h5py.h5p.create(h5py.h5p.GROUP_CREATE)
            properties.set_obj_track_times(False)
            group = h5py.Group(h5py.h5g.create(target.id, name.encode(), gcpl=properties))
            _copy_group(item, group)
        else:
            dataset = target.create_dataset(name, data=item[()], dtype=item.dtype)
            dataset.attrs.update(item.attrs)
