"""Read a stage-2 (stacked) GZIP TFRecord file without TensorFlow.

Why a second reader: the index baseline is plain numpy and must run where TensorFlow may not be
loaded (the napari process never imports it; a baseline should not pay 2 s and 1 GB for an
import). The format is small: TFRecord framing (length, CRC, payload, CRC) around
``tf.train.Example`` protobufs whose bytes features hold ``tf.io.serialize_tensor`` output
(``TensorProto``). Only the fields those writers use are decoded; anything else is refused with
the file and record named. ``ml.tfrecords.read_stacked`` remains the checked reader of training.
"""

from __future__ import annotations

import gzip
import struct
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from ercnn_napari.core.errors import InputDataError

#: TensorFlow DataType enum values used by the stage-2 files.
_DTYPES = {1: np.float32, 2: np.float64}
STREAMS = (("S1_ascending", 2), ("S1_descending", 2), ("S2", 13))


def _varint(buf: bytes, pos: int) -> tuple[int, int]:
    result = shift = 0
    while True:
        byte = buf[pos]
        pos += 1
        result |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return result, pos
        shift += 7


def _fields(buf: bytes) -> Iterator[tuple[int, int, object]]:
    """(field number, wire type, value) of a protobuf message; length-delimited values as bytes."""
    pos = 0
    while pos < len(buf):
        key, pos = _varint(buf, pos)
        number, wire = key >> 3, key & 7
        if wire == 0:
            value, pos = _varint(buf, pos)
        elif wire == 1:
            value, pos = buf[pos:pos + 8], pos + 8
        elif wire == 2:
            length, pos = _varint(buf, pos)
            value, pos = buf[pos:pos + length], pos + length
        elif wire == 5:
            value, pos = buf[pos:pos + 4], pos + 4
        else:
            raise ValueError(f"unsupported protobuf wire type {wire}")
        yield number, wire, value


def _example_bytes(raw: bytes) -> dict[str, bytes]:
    """Example -> Features(1) -> map<string, Feature>(1) -> Feature.bytes_list(1) -> value(1)."""
    found: dict[str, bytes] = {}
    for number, _, features in _fields(raw):
        if number != 1:
            continue
        for fnum, _, entry in _fields(features):
            if fnum != 1:
                continue
            key, values = "", []
            for enum, _, item in _fields(entry):
                if enum == 1:
                    key = bytes(item).decode("utf-8")
                elif enum == 2:
                    for knd, _, blist in _fields(item):
                        if knd == 1:
                            values += [bytes(v) for n, _, v in _fields(blist) if n == 1]
            if len(values) == 1:
                found[key] = values[0]
    return found


def _tensor(blob: bytes) -> np.ndarray:
    """TensorProto: dtype(1), tensor_shape(2) with dim(2).size(1), tensor_content(4), float/double_val."""
    dtype, dims, content, vals = None, [], None, b""
    for number, wire, value in _fields(blob):
        if number == 1:
            dtype = value
        elif number == 2:
            for dnum, _, dim in _fields(value):
                if dnum == 2:
                    dims.append(next((v for n, _, v in _fields(dim) if n == 1), 0))
        elif number == 4:
            content = bytes(value)
        elif number in (5, 6):                      # float_val / double_val (packed or not)
            vals += bytes(value) if wire in (1, 2, 5) else b""
    if dtype not in _DTYPES:
        raise ValueError(f"tensor dtype {dtype} is not float32/float64")
    np_dtype = np.dtype(_DTYPES[dtype]).newbyteorder("<")
    data = content if content is not None else vals
    array = np.frombuffer(data, dtype=np_dtype)
    size = int(np.prod(dims)) if dims else 1
    if array.size == 1 and size > 1:                 # a splat value
        array = np.full(size, array[0], np_dtype)
    if array.size != size:
        raise ValueError(f"tensor holds {array.size} values for shape {dims}")
    return array.reshape(dims).astype(_DTYPES[dtype])


def _records(path: Path) -> Iterator[bytes]:
    with gzip.open(path, "rb") as handle:
        while True:
            head = handle.read(12)
            if not head:
                return
            if len(head) < 12:
                raise ValueError("truncated record header")
            (length,) = struct.unpack("<Q", head[:8])
            payload = handle.read(length)
            if len(payload) < length or len(handle.read(4)) < 4:
                raise ValueError("truncated record")
            yield payload


def read_stacked_numpy(path: str | Path) -> tuple[np.ndarray, np.ndarray]:
    """``(timestamps float64 [N], observations float32 [N, H, W, 17])`` of a stage-2 file."""
    path = Path(path)
    stamps, steps = [], []
    index = -1
    try:
        for index, raw in enumerate(_records(path)):  # noqa: B007 (named in the error below)
            found = _example_bytes(raw)
            missing = [k for k in ("Timestamp", *(s for s, _ in STREAMS)) if k not in found]
            if missing:
                raise ValueError(f"missing features {missing}")
            stamps.append(float(_tensor(found["Timestamp"])))
            parts = []
            for key, channels in STREAMS:
                part = _tensor(found[key])
                if part.ndim != 3 or part.shape[-1] != channels:
                    raise ValueError(f"{key} has shape {part.shape}, expected [H, W, {channels}]")
                parts.append(part.astype(np.float32))
            steps.append(np.concatenate(parts, axis=-1))
    except (OSError, EOFError, ValueError, IndexError, struct.error) as exc:
        where = f"record {index}: " if index >= 0 else ""
        raise InputDataError(f"{where}not a readable stage-2 file ({exc})", path) from None
    if not steps:
        raise InputDataError("holds no records", path)
    return np.asarray(stamps, np.float64), np.stack(steps)
