"""The TensorFlow-free TFRecord/Example/TensorProto reader against files and tensors TensorFlow wrote,
and one pixel's series (cloud-masked steps found from the carried-forward values)."""

from __future__ import annotations

import gzip
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from ercnn_napari.core.errors import InputDataError
from ercnn_napari.core.pixel_series import read_pixel_series
from ercnn_napari.core.tfrecord_lite import iter_records, parse_example, parse_tensor, read_tensors


def test_tensors_of_every_dtype_match_tensorflow() -> None:
    import tensorflow as tf

    rng = np.random.default_rng(1)
    cases = [rng.normal(size=(3, 4, 2)).astype(np.float32), np.float64(1.6e9 + 0.25),
             rng.integers(-9, 9, size=(5,)).astype(np.int64), rng.integers(0, 255, (2, 3)).astype(np.uint8),
             np.array([True, False, True]), rng.normal(size=(2, 2)).astype(np.float16),
             rng.integers(0, 60000, (4,)).astype(np.uint16), np.zeros((0, 3), np.float32)]
    for value in cases:
        blob = tf.io.serialize_tensor(value).numpy()
        ours = parse_tensor(blob)
        np.testing.assert_array_equal(ours, tf.make_ndarray(tf.make_tensor_proto(value)))
        assert ours.dtype == np.asarray(value).dtype and ours.shape == np.shape(value)
    # a proto with repeated values instead of tensor_content (and TensorFlow's single-value broadcast)
    proto = tf.make_tensor_proto(np.float32(2.5), shape=[2, 3]).SerializeToString()
    np.testing.assert_array_equal(parse_tensor(proto), np.full((2, 3), 2.5, np.float32))
    proto = tf.make_tensor_proto([1.5, -2.0, 3.0], dtype=tf.float64).SerializeToString()
    np.testing.assert_array_equal(parse_tensor(proto), [1.5, -2.0, 3.0])


def _series(n: int = 6) -> tuple[np.ndarray, ...]:
    rng = np.random.default_rng(0)
    stamps = 1.5e9 + np.arange(n) * 2 * 86400.0
    s1a = rng.uniform(0.01, 0.3, (n, 4, 5, 2)).astype(np.float32)
    s1d = rng.uniform(0.01, 0.3, (n, 4, 5, 2)).astype(np.float32)
    s2 = rng.uniform(0.0, 0.6, (n, 4, 5, 13)).astype(np.float32)
    s2[2, 1, 3] = s2[1, 1, 3]       # step 2: pixel (1, 3) cloud-masked, carried forward
    s2[4] = s2[3]                   # step 4: no S2 acquisition at all
    return stamps, s1a, s1d, s2


def test_stacked_file_written_by_tensorflow_reads_the_same(tmp_path: Path) -> None:
    from ercnn_napari.ml.data.tfrecords import read_stacked, write_stacked

    stamps, s1a, s1d, s2 = _series()
    path = tmp_path / "3_5.tfrecords"
    write_stacked(path, stamps, s1a, s1d, s2)
    reference = read_stacked(path)
    records = list(read_tensors(path))
    assert len(records) == len(stamps)
    np.testing.assert_array_equal([r["Timestamp"] for r in records], reference.timestamps)
    ours = np.concatenate([np.stack([r[k] for r in records]) for k in ("S1_ascending", "S1_descending", "S2")], -1)
    np.testing.assert_array_equal(ours, reference.observations)

    series = read_pixel_series(path, 1, 3)
    np.testing.assert_array_equal(series.timestamps, stamps)
    np.testing.assert_array_equal(series.streams["S2"].values, s2[:, 1, 3])
    assert series.streams["S2"].masked.tolist() == [False, False, True, False, False, False]
    assert series.streams["S2"].acquired.tolist() == [True, True, True, True, False, True]
    np.testing.assert_allclose(series.s1_db("S1_ascending"), 10 * np.log10(s1a[:, 1, 3]), rtol=1e-6)
    red, nir = s2[:, 1, 3, 3].astype(float), s2[:, 1, 3, 7].astype(float)
    np.testing.assert_allclose(series.ndvi(), (nir - red) / (nir + red), rtol=1e-6)


def test_damaged_files_name_the_record(tmp_path: Path) -> None:
    from ercnn_napari.ml.data.tfrecords import write_stacked

    path = tmp_path / "0_0.tfrecords"
    write_stacked(path, *_series())
    raw = gzip.decompress(path.read_bytes())
    cut = tmp_path / "cut.tfrecords"
    cut.write_bytes(gzip.compress(raw[: len(raw) * 2 // 3 - 7]))
    with pytest.raises(InputDataError, match=r"record \d+: the file ends inside"):
        list(iter_records(cut))
    flipped = bytearray(raw)
    flipped[40] ^= 0xFF
    bad = tmp_path / "bad.tfrecords"
    bad.write_bytes(gzip.compress(bytes(flipped)))
    with pytest.raises(InputDataError, match="record 0: corrupt record data"):
        list(iter_records(bad))
    plain = tmp_path / "plain.tfrecords"
    plain.write_bytes(raw)
    with pytest.raises(InputDataError, match="not GZIP"):
        list(iter_records(plain))
    assert parse_example(b"") == {}


def test_reader_module_does_not_import_tensorflow() -> None:
    code = ("import sys, ercnn_napari.core.pixel_series, ercnn_napari.core.tfrecord_lite\n"
            "print([m for m in ('tensorflow', 'keras') if m in sys.modules])")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0 and result.stdout.strip() == "[]", result.stderr[-1000:]
