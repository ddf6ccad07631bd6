"""A TensorFlow-free writer of stage-2 (stacked) GZIP TFRecord files, byte-compatible with TF's.

Why not ``ml.tfrecords.write_stacked``: ingest workers (Dask processes, possibly on a cluster)
would each have to import TensorFlow (seconds and hundreds of MB per worker) only to frame bytes.
The format is small and stable, so it is written here directly:

* TFRecord framing: ``uint64 length | uint32 masked_crc32c(length) | data | uint32 masked_crc32c(data)``
  (little-endian), the whole stream GZIP-compressed;
* ``data`` is a ``tf.train.Example`` whose bytes features hold ``tf.io.serialize_tensor`` output,
  i.e. a ``TensorProto`` with ``dtype``, ``tensor_shape`` and raw little-endian ``tensor_content``.

The tests read these files back with the TensorFlow reader and compare the serialised tensors
byte for byte with ``tf.io.serialize_tensor``.
"""

from __future__ import annotations

import gzip
import os
import struct
from collections.abc import Iterable
from pathlib import Path

import numpy as np

from ercnn_napari.core.atomic import atomic_path
from ercnn_napari.core.errors import InputDataError
from ercnn_napari.core.tfrecord_lite import masked_crc

#: TensorFlow DataType enum values of the dtypes stage-2 files use.
_TF_DTYPES = {np.dtype(np.float32): 1, np.dtype(np.float64): 2}
#: zlib level: 1 compresses Sentinel float32 nearly as well as TF's default 6 at several times the
#: speed (compression was half of the stacking time at level 6); any level reads the same.
GZIP_LEVEL = 1
#: Feature names and channels of a stage-2 record, in the authors' schema.
STACKED_STREAMS = (("S1_ascending", 2), ("S1_descending", 2), ("S2", 13))


def _varint(value: int) -> bytes:
    out = bytearray()
    while True:
        byte = value & 0x7F
        value >>= 7
        if value:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def _field(number: int, payload: bytes) -> bytes:
    """A length-delimited protobuf field (wire type 2)."""
    return _varint((number << 3) | 2) + _varint(len(payload)) + payload


def serialize_tensor(array: np.ndarray) -> bytes:
    """What ``tf.io.serialize_tensor`` returns for a float32/float64 numpy array."""
    array = np.asarray(array)
    dtype = _TF_DTYPES.get(array.dtype)
    if dtype is None:
        raise TypeError(f"cannot serialise dtype {array.dtype}")
    shape = b"".join(_field(2, _varint(1 << 3) + _varint(int(n))) for n in array.shape)  # Dim{size=1}
    content = np.ascontiguousarray(array, dtype=array.dtype.newbyteorder("<")).tobytes()
    return _varint(1 << 3) + _varint(dtype) + _field(2, shape) + _field(4, content)


def example_bytes(features: dict[str, bytes]) -> bytes:
    """A ``tf.train.Example`` with one bytes value per feature (map entries in the given order)."""
    entries = b""
    for key, value in features.items():
        feature = _field(1, _field(1, value))                   # Feature{bytes_list=BytesList{value}}
        entries += _field(1, _field(1, key.encode("utf-8")) + _field(2, feature))
    return _field(1, entries)                                    # Example{features=Features{feature}}



def frame_record(data: bytes) -> bytes:
    """One TFRecord frame around ``data``."""
    length = struct.pack("<Q", len(data))
    return length + struct.pack("<I", masked_crc(length)) + data + struct.pack("<I", masked_crc(data))


def write_stacked_records(path: str | os.PathLike,
                          records: Iterable[tuple[float, np.ndarray, np.ndarray, np.ndarray]]) -> int:
    """Write (timestamp, S1 asc, S1 desc, S2) records as a GZIP stage-2 file, atomically.

    Records are consumed one at a time (memory does not grow with the series). Timestamps must
    increase strictly and values be finite, as every reader of the project checks; a violation
    raises :class:`InputDataError` and leaves no file. Returns the number of records.
    """
    path = Path(path)
    count = 0
    previous = -np.inf
    with atomic_path(path) as tmp:
        # no name and no time in the gzip header: the same series always gives the same bytes
        with open(tmp, "wb") as raw, gzip.GzipFile(filename="", mode="wb", compresslevel=GZIP_LEVEL, fileobj=raw,
                                                   mtime=0) as out:
            for stamp, *frames in records:
                if not stamp > previous:
                    raise InputDataError(f"record {count}: timestamp {stamp} does not follow {previous}", path)
                previous = stamp
                features = {"Timestamp": serialize_tensor(np.float64(stamp))}
                for (key, channels), frame in zip(STACKED_STREAMS, frames, strict=True):
                    frame = np.asarray(frame, np.float32)
                    if frame.ndim != 3 or frame.shape[-1] != channels:
                        raise InputDataError(f"record {count}: {key} has shape {frame.shape}, expected [H, W, {channels}]",
                                             path)
                    if not np.isfinite(frame).all():
                        raise InputDataError(f"record {count}: {key} holds non-finite values", path)
                    features[key] = serialize_tensor(frame)
                out.write(frame_record(example_bytes(features)))
                count += 1
    return count
