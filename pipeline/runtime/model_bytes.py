"""An ONNX file's bytes read as protobuf, before any runtime builds it: its metadata and the
digest of its graph, which the export writes into the metadata so that every runtime can tell
damaged weights from real ones (`onnx.checker` and onnxruntime run a model whose weight bytes
were flipped, and draw noise).

The digest is SHA-256 of the bytes of the ModelProto's `graph` field (field 7: the operators
and every weight) as they stand in the file; the metadata (field 14) lies outside it, so the
digest can be written into the file it describes. Only top-level fields are walked, as
`web/generator.js` does for the page and Node. Standard library only: the light sampler
imports it.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Iterator
from pathlib import Path

from pipeline.errors import ContractError
from pipeline.runtime.contract import WEIGHTS_DIGEST

log = logging.getLogger(__name__)

GRAPH_FIELD = 7
METADATA_FIELD = 14  # each entry a StringStringEntryProto: key = 1, value = 2
LENGTH_DELIMITED = 2


def _varint(data: bytes, at: int) -> tuple[int, int]:
    value = 0
    for shift in range(0, 70, 7):
        if at >= len(data):
            raise ContractError("the file ends inside a number")
        byte = data[at]
        at += 1
        value |= (byte & 0x7F) << shift
        if byte < 0x80:
            return value, at
    raise ContractError("a number is longer than 10 bytes")


def fields(data: bytes) -> Iterator[tuple[int, bytes | None]]:
    """(field number, its bytes) of each top-level field of a protobuf message; None for a
    field that is not length-delimited."""
    at = 0
    while at < len(data):
        key, at = _varint(data, at)
        field, wire_type = key >> 3, key & 7
        if field == 0:
            raise ContractError("field number 0")
        if wire_type == 0:
            _, at = _varint(data, at)
            yield field, None
        elif wire_type in (1, 5):
            at += 8 if wire_type == 1 else 4
            yield field, None
        elif wire_type == LENGTH_DELIMITED:
            length, at = _varint(data, at)
            if at + length > len(data):
                raise ContractError("a field runs past the end")
            yield field, data[at : at + length]
            at += length
        else:
            raise ContractError(f"wire type {wire_type}")
    if at != len(data):
        raise ContractError("the last field runs past the end")


def _graph_and_metadata(model: bytes) -> tuple[list[bytes], dict[str, str]]:
    """The model's graph field(s) as stored and its `metadata_props`, in one walk."""
    graph, found = [], {}
    for field, value in fields(model):
        if value is None:
            continue
        if field == GRAPH_FIELD:
            graph.append(value)
        elif field == METADATA_FIELD:
            parts = dict(fields(value))
            key, text = parts.get(1) or b"", parts.get(2) or b""
            found[key.decode("utf-8", "replace")] = text.decode("utf-8", "replace")
    return graph, found


def _digest(graph: list[bytes]) -> str:
    digest = hashlib.sha256()
    for part in graph:
        digest.update(part)
    return digest.hexdigest()


def weights_digest(model: bytes) -> str:
    """The hex SHA-256 of the model's graph field as stored."""
    return _digest(_graph_and_metadata(model)[0])


def metadata(model: bytes) -> dict[str, str]:
    """The model's `metadata_props` as a dict of strings."""
    return _graph_and_metadata(model)[1]


def check_weights(model: bytes, source: object) -> None:
    """Raise a one-line `ContractError` when the model's graph does not match the digest its
    metadata carries; a model without one (made before the digest, or elsewhere) loads with a
    warning. Bytes that are no protobuf, or hold no graph, are left to onnxruntime, whose
    refusal says why."""
    try:
        graph, found = _graph_and_metadata(model)
    except ContractError:
        return
    if not graph:
        return  # no model at all
    stated = found.get(WEIGHTS_DIGEST)
    if stated is None:
        log.warning(
            "%s: no %s in its metadata: its weights are not checked", source, WEIGHTS_DIGEST
        )
    elif stated != _digest(graph):
        raise ContractError(
            f"{source}: its weights do not match the digest in its metadata (the file is "
            "damaged or was edited); export or download it again"
        )


def read_checked(source: str | Path | bytes, name: object, error: type[Exception]) -> bytes:
    """The bytes of the model file `source` (or `source` itself), its weights checked as
    `check_weights` does; what fails is a one-line `error` naming `name` (a `ContractError`
    stays one where `error` is a kind of it)."""
    try:
        model = source if isinstance(source, bytes) else Path(source).read_bytes()
    except OSError as problem:
        raise error(f"{name}: cannot read ({problem.strerror or problem})") from problem
    try:
        check_weights(model, name)
    except ContractError as problem:
        if isinstance(problem, error):
            raise
        raise error(str(problem)) from problem
    return model
