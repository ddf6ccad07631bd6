"""The authors' GZIP TFRecord files: stage-2 (stacked series) and stage-3 (windows), read and write.

Stage-2 ("stacked"): one record per time step, bytes features holding ``tf.io.serialize_tensor``
output: ``Timestamp`` float64 scalar (UNIX s), ``S1_ascending`` float32 [H,W,2],
``S1_descending`` float32 [H,W,2], ``S2`` float32 [H,W,13].
Stage-3 ("windowed"): one record per window: ``Feature`` float32 [n_obs <= 92, H, W, 17] and
``Label`` float32 [H, W] (in the transfer datasets an old synthetic label nobody uses).

Why the care: these files are 100+ GB downloads and hand-made exports. A truncated download or a
file with 18 channels must stop the run with the file and the record number, not train on
garbage. The numpy readers check every record as they go; the tf.data reader checks in the
graph and, if TensorFlow reports a problem, :func:`explain_read_error` re-reads the file with the
numpy reader to name the record (a slow path taken only on failure).

Writers go through :func:`ercnn_napari.core.atomic.atomic_path`, so a crash never leaves a
half-written file under the final name.
"""

from __future__ import annotations

import contextlib
import os
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import tensorflow as tf
from tensorflow.core.framework.tensor_pb2 import TensorProto

from ercnn_napari.core.atomic import atomic_path
from ercnn_napari.core.constants import MAX_OBSERVATIONS, N_CHANNELS
from ercnn_napari.core.errors import InputDataError
from ercnn_napari.core.windowing import check_timestamps

COMPRESSION = "GZIP"
STAGE3_KEYS = ("Feature", "Label")
STACKED_KEYS = ("Timestamp", "S1_ascending", "S1_descending", "S2")
#: channels of each stage-2 stream, in the order they are concatenated into 17 channels
STACKED_STREAMS = (("S1_ascending", 2), ("S1_descending", 2), ("S2", 13))


@dataclass
class StackedSeries:
    """A decoded stage-2 file: the stacked time axis of one tile."""

    timestamps: np.ndarray    # float64 [N], UNIX s, strictly increasing
    observations: np.ndarray  # float32 [N, H, W, 17]

    def __len__(self) -> int:
        return len(self.timestamps)


# ----------------------------------------------------------------------------- raw records

def iter_raw_records(path: str | os.PathLike) -> Iterator[tuple[int, bytes]]:
    """Yield (record number, serialized record); a read failure names the record it hit."""
    path = Path(path)
    if not path.is_file():
        raise InputDataError("file not found" if not path.exists() else "is not a file", path)
    dataset = tf.data.TFRecordDataset([str(path)], compression_type=COMPRESSION)
    iterator = iter(dataset)
    index = 0
    while True:
        try:
            raw = next(iterator)
        except StopIteration:
            return
        except tf.errors.OpError as exc:
            raise InputDataError(
                f"record {index}: cannot be read, the file is truncated or corrupt or not a GZIP "
                f"TFRecord file ({_first_line(exc)})", path) from None
        yield index, raw.numpy()
        index += 1


def _first_line(exc: BaseException) -> str:
    """TensorFlow's message without its graph-node prefix and op suffix: what a person can use."""
    text = (getattr(exc, "message", None) or str(exc)).strip()
    text = re.sub(r"\{\{function_node [^}]*\}\}\s*", "", text)
    text = re.sub(r"\s*\[Op:[^\]]*\].*$", "", text.splitlines()[0] if text else "")
    return text.strip() or type(exc).__name__


def _parse_example(raw: bytes, path: Path, index: int) -> dict[str, bytes]:
    try:
        example = tf.train.Example.FromString(raw)
    except Exception as exc:  # protobuf raises its own DecodeError
        raise InputDataError(f"record {index}: is not a tf.train.Example ({exc})", path) from None
    found: dict[str, bytes] = {}
    for key, feature in example.features.feature.items():
        values = feature.bytes_list.value
        if len(values) == 1:
            found[key] = values[0]
    return found


def _decode_tensor(blob: bytes, key: str, expected: np.dtype, path: Path, index: int) -> np.ndarray:
    try:
        array = tf.make_ndarray(TensorProto.FromString(blob))
    except Exception as exc:
        raise InputDataError(f"record {index}: {key} is not a serialized tensor ({exc})", path) from None
    if array.dtype != expected:
        raise InputDataError(f"record {index}: {key} has dtype {array.dtype}, expected {np.dtype(expected)}", path)
    return array


def _require_keys(found: dict[str, bytes], keys: tuple[str, ...], path: Path, index: int, what: str) -> None:
    missing = [k for k in keys if k not in found]
    if missing:
        raise InputDataError(
            f"record {index}: lacks {', '.join(missing)} (has {', '.join(sorted(found)) or 'no bytes features'}); "
            f"not a {what} file", path)


def _check_finite(array: np.ndarray, key: str, path: Path, index: int) -> None:
    if not np.isfinite(array).all():
        bad = np.argwhere(~np.isfinite(array))[0]
        raise InputDataError(
            f"record {index}: {key} holds {array[tuple(bad)]} at {tuple(int(i) for i in bad)}; "
            "observations must be finite (mark missing data with -1)", path)


def detect_kind(path: str | os.PathLike) -> str:
    """``"stage3"`` or ``"stacked"`` from the first record's features; raises for anything else."""
    path = Path(path)
    for index, raw in iter_raw_records(path):
        found = _parse_example(raw, path, index)
        if all(k in found for k in STAGE3_KEYS):
            return "stage3"
        if all(k in found for k in STACKED_KEYS):
            return "stacked"
        raise InputDataError(
            f"record {index}: has features {', '.join(sorted(found)) or '(none)'}; expected "
            f"{', '.join(STAGE3_KEYS)} (stage-3 windows) or {', '.join(STACKED_KEYS)} (stage-2 stacked series)",
            path)
    raise InputDataError("holds no records", path)


# ----------------------------------------------------------------------------- stage 3

def _check_stage3_feature(feature: np.ndarray, path: Path, index: int, key: str = "Feature") -> None:
    if feature.ndim != 4:
        raise InputDataError(f"record {index}: {key} has rank {feature.ndim} (shape {feature.shape}), "
                             f"expected [n_obs, H, W, {N_CHANNELS}]", path)
    if feature.shape[-1] != N_CHANNELS:
        raise InputDataError(f"record {index}: {key} has {feature.shape[-1]} channels, expected {N_CHANNELS}", path)
    if not 1 <= feature.shape[0] <= MAX_OBSERVATIONS:
        raise InputDataError(f"record {index}: {key} has {feature.shape[0]} observations, "
                             f"expected 1 to {MAX_OBSERVATIONS}", path)
    _check_finite(feature, key, path, index)


def decode_stage3_record(raw: bytes, path: Path, index: int) -> tuple[np.ndarray, np.ndarray]:
    """Decode and check one stage-3 record -> (feature [n,H,W,17], label [H,W]), both float32."""
    found = _parse_example(raw, path, index)
    _require_keys(found, STAGE3_KEYS, path, index, "stage-3 (windowed)")
    feature = _decode_tensor(found["Feature"], "Feature", np.float32, path, index)
    _check_stage3_feature(feature, path, index)
    label = _decode_tensor(found["Label"], "Label", np.float32, path, index)
    if label.shape != feature.shape[1:3]:
        raise InputDataError(f"record {index}: Label has shape {label.shape}, Feature tiles are "
                             f"{feature.shape[1]}x{feature.shape[2]}", path)
    _check_finite(label, "Label", path, index)
    return feature, label


def read_stage3(path: str | os.PathLike) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """Yield (feature float32 [n_obs,H,W,17], label float32 [H,W]) for every window, checked."""
    path = Path(path)
    shape: tuple[int, int] | None = None
    for index, raw in iter_raw_records(path):
        feature, label = decode_stage3_record(raw, path, index)
        if shape is None:
            shape = feature.shape[1:3]
        elif feature.shape[1:3] != shape:
            raise InputDataError(f"record {index}: window is {feature.shape[1]}x{feature.shape[2]} pixels, "
                                 f"earlier records are {shape[0]}x{shape[1]}", path)
        yield feature, label


def stage3_counts(path: str | os.PathLike) -> np.ndarray:
    """Observations per window of a stage-3 file, from the tensor headers (no pixel decoding).

    Lets a window table be built for a file that comes without a window CSV, at the cost of
    one decompression pass but without converting or checking ~6 MB of pixels per record.
    """
    path = Path(path)
    counts = []
    for index, raw in iter_raw_records(path):
        found = _parse_example(raw, path, index)
        _require_keys(found, STAGE3_KEYS, path, index, "stage-3 (windowed)")
        try:
            dims = [d.size for d in TensorProto.FromString(found["Feature"]).tensor_shape.dim]
        except Exception as exc:
            raise InputDataError(f"record {index}: Feature is not a serialized tensor ({exc})", path) from None
        if len(dims) != 4 or dims[-1] != N_CHANNELS or not 1 <= dims[0] <= MAX_OBSERVATIONS:
            raise InputDataError(f"record {index}: Feature has shape {dims}, expected [n_obs <= {MAX_OBSERVATIONS}, "
                                 f"H, W, {N_CHANNELS}]", path)
        counts.append(dims[0])
    if not counts:
        raise InputDataError("holds no records", path)
    return np.asarray(counts, dtype=np.int64)


def write_stage3(path: str | os.PathLike, features: Iterable[np.ndarray],
                 labels: Iterable[np.ndarray] | None = None) -> int:
    """Write windows as a GZIP stage-3 file (atomically); returns the number of records.

    ``labels=None`` writes all-zero labels, as the authors' transfer datasets carry dummy labels.
    Every feature is checked like on reading, so we never produce a file we would refuse.
    """
    path = Path(path)
    label_iter = iter(labels) if labels is not None else None
    count = 0
    with atomic_path(path) as tmp:
        with tf.io.TFRecordWriter(str(tmp), options=tf.io.TFRecordOptions(compression_type=COMPRESSION)) as out:
            for index, feature in enumerate(features):
                feature = np.asarray(feature, dtype=np.float32)
                _check_stage3_feature(feature, path, index)
                if label_iter is None:
                    label = np.zeros(feature.shape[1:3], np.float32)
                else:
                    try:
                        label = np.asarray(next(label_iter), dtype=np.float32)
                    except StopIteration:
                        raise InputDataError(f"record {index}: fewer labels than windows", path) from None
                    if label.shape != feature.shape[1:3]:
                        raise InputDataError(f"record {index}: label shape {label.shape} does not match "
                                             f"window {feature.shape[1:3]}", path)
                out.write(_example({"Feature": feature, "Label": label}))
                count += 1
    return count


def _example(tensors: dict[str, np.ndarray]) -> bytes:
    feature = {
        key: tf.train.Feature(bytes_list=tf.train.BytesList(value=[tf.io.serialize_tensor(value).numpy()]))
        for key, value in tensors.items()
    }
    return tf.train.Example(features=tf.train.Features(feature=feature)).SerializeToString()


def _stage3_graph_decode(raw: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
    spec = {key: tf.io.FixedLenFeature([], tf.string) for key in STAGE3_KEYS}
    parsed = tf.io.parse_single_example(raw, spec)
    feature = tf.io.parse_tensor(parsed["Feature"], tf.float32)
    feature = tf.ensure_shape(feature, [None, None, None, N_CHANNELS])
    label = tf.ensure_shape(tf.io.parse_tensor(parsed["Label"], tf.float32), [None, None])
    checks = [
        tf.debugging.assert_less_equal(tf.shape(feature)[0], MAX_OBSERVATIONS, message="too many observations"),
        tf.debugging.assert_all_finite(feature, message="non-finite observation"),
        tf.debugging.assert_all_finite(label, message="non-finite label"),
        tf.debugging.assert_equal(tf.shape(label), tf.shape(feature)[1:3], message="label shape differs"),
    ]
    with tf.control_dependencies(checks):
        return tf.identity(feature), tf.identity(label)


def stage3_dataset(path: str | os.PathLike, positions: np.ndarray | list[int] | None = None,
                   with_index: bool = False, stride: int = 1) -> tf.data.Dataset:
    """tf.data of (feature [n_obs,H,W,17], label [H,W]) float32, unpadded, in file order.

    ``positions`` keeps only those records (0-based, any order; they come in file order) and
    skips decoding the others; reading stops after the last one. ``stride`` K keeps records
    0, K, 2K, ... (applied before ``positions``' filter). ``with_index`` prepends the
    record number to each element. Checks run inside the graph; wrap the loop that consumes the
    dataset in :func:`explain_read_error` to turn a TensorFlow failure into an InputDataError
    that names the record.
    """
    path = Path(path)
    if not path.is_file():
        raise InputDataError("file not found" if not path.exists() else "is not a file", path)
    raw = tf.data.TFRecordDataset([str(path)], compression_type=COMPRESSION).enumerate()
    if stride > 1:
        raw = raw.filter(lambda i, _: tf.equal(i % stride, 0))
    if positions is not None:
        wanted = tf.constant(np.unique(np.asarray(positions, dtype=np.int64)), dtype=tf.int64)
        raw = raw.filter(lambda i, _: tf.reduce_any(tf.equal(i, wanted))).take(int(wanted.shape[0]))

    def decode(index: tf.Tensor, record: tf.Tensor) -> tuple[tf.Tensor, ...]:
        feature, label = _stage3_graph_decode(record)
        return (index, feature, label) if with_index else (feature, label)

    return raw.map(decode, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)


@contextlib.contextmanager
def explain_read_error(path: str | os.PathLike, kind: str = "stage3") -> Iterator[None]:
    """Turn a TensorFlow error while consuming a dataset of ``path`` into a named InputDataError.

    TensorFlow's own message does not say which record failed; on failure we re-read the file
    with the checking numpy reader, which raises the precise error. If that finds nothing (the
    error came from elsewhere), TensorFlow's message is passed on with the file name.
    """
    try:
        yield
    except (tf.errors.OpError, UnicodeDecodeError) as exc:  # TF fails to decode some messages of its own
        reader = read_stage3 if kind == "stage3" else _iter_stacked
        for _ in reader(path):
            pass
        raise InputDataError(f"cannot be read ({_first_line(exc)})", path) from None


# ----------------------------------------------------------------------------- stage 2

def _stacked_record(raw: bytes, path: Path, index: int) -> tuple[dict, float]:
    """Parse one stage-2 record: its features (checked to be all there) and its scalar timestamp."""
    found = _parse_example(raw, path, index)
    _require_keys(found, STACKED_KEYS, path, index, "stage-2 (stacked)")
    stamp = _decode_tensor(found["Timestamp"], "Timestamp", np.float64, path, index)
    if stamp.shape != ():
        raise InputDataError(f"record {index}: Timestamp has shape {stamp.shape}, expected a scalar", path)
    return found, float(stamp)


def _iter_stacked(path: str | os.PathLike) -> Iterator[tuple[float, np.ndarray]]:
    path = Path(path)
    shape: tuple[int, int] | None = None
    for index, raw in iter_raw_records(path):
        found, stamp = _stacked_record(raw, path, index)
        parts = []
        for key, channels in STACKED_STREAMS:
            part = _decode_tensor(found[key], key, np.float32, path, index)
            if part.ndim != 3:
                raise InputDataError(f"record {index}: {key} has rank {part.ndim} (shape {part.shape}), "
                                     f"expected [H, W, {channels}]", path)
            if part.shape[-1] != channels:
                raise InputDataError(f"record {index}: {key} has {part.shape[-1]} channels, expected {channels}",
                                     path)
            _check_finite(part, key, path, index)
            parts.append(part)
        if len({p.shape[:2] for p in parts}) != 1:
            raise InputDataError(f"record {index}: streams differ in size "
                                 f"({', '.join(f'{k} {p.shape[:2]}' for (k, _), p in zip(STACKED_STREAMS, parts, strict=True))})",
                                 path)
        if shape is None:
            shape = parts[0].shape[:2]
        elif parts[0].shape[:2] != shape:
            raise InputDataError(f"record {index}: time step is {parts[0].shape[0]}x{parts[0].shape[1]} pixels, "
                                 f"earlier steps are {shape[0]}x{shape[1]}", path)
        yield float(stamp), np.concatenate(parts, axis=-1)


def read_stacked(path: str | os.PathLike) -> StackedSeries:
    """Read and check a whole stage-2 file: timestamps [N] and observations [N,H,W,17]."""
    stamps: list[float] = []
    steps: list[np.ndarray] = []
    for stamp, observation in _iter_stacked(path):
        stamps.append(stamp)
        steps.append(observation)
    if not steps:
        raise InputDataError("holds no records", path)
    timestamps = check_timestamps(np.asarray(stamps, dtype=np.float64), source=path)
    return StackedSeries(timestamps, np.stack(steps))


def read_stacked_timestamps(path: str | os.PathLike) -> np.ndarray:
    """Only the time axis of a stage-2 file (float64 [N]): enough to compute its window table.

    Skips converting the observations, so tables for many tiles can be made up front without
    holding their series in memory.
    """
    path = Path(path)
    stamps = []
    for index, raw in iter_raw_records(path):
        found, stamp = _stacked_record(raw, path, index)
        stamps.append(stamp)
    if not stamps:
        raise InputDataError("holds no records", path)
    return check_timestamps(np.asarray(stamps, dtype=np.float64), source=path)


def write_stacked(path: str | os.PathLike, timestamps: np.ndarray, s1_asc: np.ndarray,
                  s1_desc: np.ndarray, s2: np.ndarray) -> int:
    """Write a stacked series as a GZIP stage-2 file (atomically); returns the number of records."""
    path = Path(path)
    stamps = check_timestamps(np.asarray(timestamps, dtype=np.float64), source=path)
    streams = {"S1_ascending": np.asarray(s1_asc, np.float32), "S1_descending": np.asarray(s1_desc, np.float32),
               "S2": np.asarray(s2, np.float32)}
    for key, channels in STACKED_STREAMS:
        array = streams[key]
        if array.ndim != 4 or array.shape[0] != len(stamps) or array.shape[-1] != channels:
            raise InputDataError(f"{key} has shape {array.shape}, expected [{len(stamps)}, H, W, {channels}]", path)
    with atomic_path(path) as tmp:
        with tf.io.TFRecordWriter(str(tmp), options=tf.io.TFRecordOptions(compression_type=COMPRESSION)) as out:
            for index, stamp in enumerate(stamps):
                tensors = {key: streams[key][index] for key, _ in STACKED_STREAMS}
                for key, value in tensors.items():
                    _check_finite(value, key, path, index)
                tensors = {"Timestamp": np.float64(stamp), **tensors}
                out.write(_example(tensors))
    return len(stamps)
