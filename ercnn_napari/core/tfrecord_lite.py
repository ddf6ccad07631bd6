"""A TensorFlow-free reader of GZIP TFRecord files of ``tf.train.Example`` with serialized tensors.

Why: the viewer must never import TensorFlow (software OpenGL crashes), yet the pixel inspector
has to read the stacked series the model reads. The formats are small and stable, so they are
decoded here with the standard library and numpy: the TFRecord framing (length, masked CRC-32C,
data, masked CRC-32C), the protobuf wire format of ``Example``/``Features``/``Feature`` and of
``TensorProto`` (what ``tf.io.serialize_tensor`` writes). Both CRCs are checked
(``google_crc32c``, a core dependency; the ingest writer frames records with the same function).
Problems are :class:`~ercnn_napari.core.errors.InputDataError` naming the file and record.
"""

from __future__ import annotations

import gzip
import os
import struct
import zlib
from collections.abc import Iterator
from pathlib import Path

import google_crc32c as _crc32c
import numpy as np

from ercnn_napari.core.errors import InputDataError

#: TensorFlow ``DataType`` enum -> numpy dtype (the ones a serialized observation can hold).
DTYPES = {1: np.float32, 2: np.float64, 3: np.int32, 4: np.uint8, 5: np.int16, 6: np.int8, 9: np.int64,
          10: np.bool_, 17: np.uint16, 19: np.float16, 22: np.uint32, 23: np.uint64}
#: TensorProto value fields (field number -> (dtype, packed wire format)) for tensors without tensor_content.
_VALUE_FIELDS = {5: np.float32, 6: np.float64, 7: np.int32, 10: np.int64, 11: np.bool_, 13: np.int32}


def masked_crc(data: bytes) -> int:
    """TFRecord's masked CRC-32C of ``data`` (shared by this reader and the ingest writer)."""
    crc = _crc32c.value(data)
    return (((crc >> 15) | (crc << 17)) + 0xA282EAD8) & 0xFFFFFFFF


def iter_records(path: str | os.PathLike, compressed: bool = True) -> Iterator[tuple[int, bytes]]:
    """Yield (record number, payload) of a (GZIP) TFRecord file, checking its framing."""
    path = Path(path)
    if not path.is_file():
        raise InputDataError("file not found" if not path.exists() else "is not a file", path)
    opener = gzip.open if compressed else open
    index = 0
    try:
        with opener(path, "rb") as stream:
            while True:
                header = stream.read(12)
                if not header:
                    return
                if len(header) < 12:
                    raise InputDataError(f"record {index}: the file ends inside a record header (truncated)", path)
                length, length_crc = struct.unpack("<QI", header)
                if masked_crc(header[:8]) != length_crc:
                    raise InputDataError(f"record {index}: corrupt record length (CRC mismatch); "
                                         "not a GZIP TFRecord file, or damaged", path)
                data = stream.read(length)
                footer = stream.read(4)
                if len(data) < length or len(footer) < 4:
                    raise InputDataError(f"record {index}: the file ends inside the record (truncated)", path)
                if masked_crc(data) != struct.unpack("<I", footer)[0]:
                    raise InputDataError(f"record {index}: corrupt record data (CRC mismatch)", path)
                yield index, data
                index += 1
    except (OSError, EOFError, zlib.error) as exc:
        raise InputDataError(f"record {index}: cannot be read, the file is truncated or not GZIP ({exc})", path) \
            from None


# ----------------------------------------------------------------------------- protobuf wire format

def _varint(buf: bytes, pos: int) -> tuple[int, int]:
    result = shift = 0
    while True:
        if pos >= len(buf):
            raise ValueError("truncated varint")
        byte = buf[pos]
        pos += 1
        result |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return result, pos
        shift += 7
        if shift > 70:
            raise ValueError("varint too long")


def fields(buf: bytes) -> Iterator[tuple[int, int, int | bytes]]:
    """Yield (field number, wire type, value) of a protobuf message (value: int or bytes)."""
    pos, end = 0, len(buf)
    while pos < end:
        key, pos = _varint(buf, pos)
        number, wire = key >> 3, key & 7
        if wire == 0:
            value, pos = _varint(buf, pos)
        elif wire == 1:
            value, pos = buf[pos:pos + 8], pos + 8
        elif wire == 2:
            size, pos = _varint(buf, pos)
            value, pos = buf[pos:pos + size], pos + size
        elif wire == 5:
            value, pos = buf[pos:pos + 4], pos + 4
        else:
            raise ValueError(f"unsupported wire type {wire}")
        if pos > end:
            raise ValueError("message is truncated")
        yield number, wire, value


def parse_example(raw: bytes) -> dict[str, bytes]:
    """``tf.train.Example`` -> {feature name: bytes} for features holding exactly one bytes value."""
    found: dict[str, bytes] = {}
    for number, _wire, features in fields(raw):
        if number != 1:
            continue
        for entry_number, _w, entry in fields(features):  # map<string, Feature> entries
            if entry_number != 1:
                continue
            key, feature = "", b""
            for part, _w2, value in fields(entry):
                if part == 1:
                    key = bytes(value).decode("utf-8")
                elif part == 2:
                    feature = bytes(value)
            values = [bytes(v) for kind, _w3, bytes_list in fields(feature) if kind == 1
                      for n, _w4, v in fields(bytes_list) if n == 1]
            if len(values) == 1:
                found[key] = values[0]
    return found


def parse_tensor(blob: bytes) -> np.ndarray:
    """A serialized ``TensorProto`` (``tf.io.serialize_tensor``) -> numpy array."""
    dtype_code, shape, content = 0, [], None
    values: list[np.ndarray] = []
    for number, wire, value in fields(blob):
        if number == 1:
            dtype_code = int(value)
        elif number == 2:
            for dim_field, _w, dim in fields(value):
                if dim_field == 2:
                    size = 0
                    for f, _w2, v in fields(dim):
                        if f == 1:
                            size = int(v) if int(v) < 2**63 else int(v) - 2**64
                    shape.append(size)
        elif number == 4:
            content = bytes(value)
        elif number in _VALUE_FIELDS:
            values.append(_decode_values(number, wire, value))
    if dtype_code not in DTYPES:
        raise ValueError(f"unsupported tensor dtype code {dtype_code}")
    dtype = np.dtype(DTYPES[dtype_code])
    count = int(np.prod(shape)) if shape else 1
    if content is not None:
        array = np.frombuffer(content, dtype=dtype.newbyteorder("<"))
    elif values:
        array = np.concatenate(values).astype(dtype)
        if array.size == 1 and count > 1:  # TensorFlow's broadcast of a single repeated value
            array = np.full(count, array[0], dtype)
    else:
        array = np.zeros(count, dtype)
    if array.size != count:
        raise ValueError(f"tensor holds {array.size} values, its shape {shape} needs {count}")
    return array.astype(dtype, copy=False).reshape(shape)


def _decode_values(number: int, wire: int, value: int | bytes) -> np.ndarray:
    dtype = np.dtype(_VALUE_FIELDS[number])
    if number in (5, 6):  # float/double: fixed width, packed or not
        raw = value if isinstance(value, bytes) else b""
        return np.frombuffer(raw, dtype=dtype.newbyteorder("<"))
    if wire == 0:
        return np.array([value], dtype=np.int64)
    ints, pos = [], 0
    while pos < len(value):
        v, pos = _varint(value, pos)
        ints.append(v - 2**64 if v >= 2**63 else v)
    return np.array(ints, dtype=np.int64)


def read_tensors(path: str | os.PathLike, keys: tuple[str, ...] | None = None) -> Iterator[dict[str, np.ndarray]]:
    """Yield the serialized tensors of every record ({name: array}), restricted to ``keys`` if given."""
    path = Path(path)
    for index, raw in iter_records(path):
        try:
            found = parse_example(raw)
            yield {k: parse_tensor(v) for k, v in found.items() if keys is None or k in keys}
        except (ValueError, UnicodeDecodeError) as exc:
            raise InputDataError(f"record {index}: not a tf.train.Example of serialized tensors ({exc})", path) \
                from None
