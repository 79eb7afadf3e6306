import struct

import numpy as np
import pytest

from conftest import encode_idx
from pipeline.data.datasets import load_split
from pipeline.errors import DataFormatError
from pipeline.storage.idx import parse_idx, read_idx


def test_round_trip_keeps_shape_and_values():
    images = np.arange(2 * 28 * 28, dtype=np.uint8).reshape(2, 28, 28)
    parsed = parse_idx(encode_idx(images))
    assert parsed.dtype == np.uint8
    assert parsed.shape == (2, 28, 28)
    np.testing.assert_array_equal(parsed, images)


def test_mnist_magic_numbers():
    assert encode_idx(np.zeros((1, 28, 28), np.uint8))[:4] == struct.pack(">I", 2051)
    assert encode_idx(np.zeros(3, np.uint8))[:4] == struct.pack(">I", 2049)


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"\x00\x00", r"not an IDX file \(2 bytes"),
        (
            b"\x12\x34\x08\x01" + struct.pack(">I", 1) + b"x",
            r"not an IDX file \(magic number 12340801\)",
        ),
        (
            b"\x00\x00\x0d\x01" + struct.pack(">I", 1) + b"xxxx",
            r"element type 0x0d is not unsigned byte",
        ),
        (b"\x00\x00\x08\x00", r"declares zero dimensions"),
        (b"\x00\x00\x08\x03" + struct.pack(">I", 2), r"truncated IDX header \(8 bytes\)"),
    ],
)
def test_malformed_headers_are_rejected(data, message):
    with pytest.raises(DataFormatError, match=message):
        parse_idx(data, "bad-file")


def test_truncated_body_names_the_file_and_sizes():
    data = encode_idx(np.zeros((3, 28, 28), np.uint8))[:-5]
    with pytest.raises(
        DataFormatError,
        match=r"^f\.idx: truncated: header says 3x28x28 \(2368 bytes\) but the file has 2363",
    ):
        parse_idx(data, "f.idx")


def test_trailing_bytes_are_rejected():
    data = encode_idx(np.zeros(4, np.uint8)) + b"\x00"
    with pytest.raises(DataFormatError) as caught:
        parse_idx(data)
    assert str(caught.value) == (
        "<bytes>: has trailing bytes: header says 4 (12 bytes) but the file has 13 bytes"
    )


def test_an_empty_array_is_a_header_alone():
    assert parse_idx(encode_idx(np.zeros((0,), np.uint8))).shape == (0,)


def test_a_high_type_code_is_named_as_written():
    with pytest.raises(DataFormatError, match="element type 0x88 is not unsigned byte"):
        parse_idx(b"\x00\x00\x88\x01" + struct.pack(">I", 1) + b"x")


def test_read_idx_of_a_missing_file_names_it(tmp_path):
    with pytest.raises(DataFormatError) as caught:
        read_idx(tmp_path / "nothing-here")
    assert (
        str(caught.value) == f"{tmp_path / 'nothing-here'}: cannot read (No such file or directory)"
    )


def test_read_idx_names_the_file_in_format_errors(tmp_path):
    path = tmp_path / "short.idx"
    path.write_bytes(b"\x00\x00")
    with pytest.raises(DataFormatError, match=f"^{path}: not an IDX file"):
        read_idx(path)


def test_encoding_takes_any_integer_array_as_bytes():
    values = np.array([[0, 7], [255, 128]], np.int64)
    assert encode_idx(values) == encode_idx(values.astype(np.uint8))


def test_load_split_returns_images_and_labels(tmp_path, tiny_dataset):
    tiny_dataset.write_folder(tmp_path)
    images, labels = load_split(tmp_path, "test")
    assert images.shape == (16, 28, 28)
    assert labels.shape == (16,)
    assert labels.dtype == np.uint8


def test_load_split_rejects_a_count_mismatch(tmp_path, tiny_dataset):
    tiny_dataset.write_folder(tmp_path)
    (tmp_path / "t10k-labels-idx1-ubyte").write_bytes(encode_idx(np.zeros(5, np.uint8)))
    with pytest.raises(DataFormatError, match="16 images but 5 labels in the test split"):
        load_split(tmp_path, "test")
