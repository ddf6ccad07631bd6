"""Stage-2 and stage-3 TFRecords: round trips, and one clear message per kind of bad file."""

from __future__ import annotations

import numpy as np
import pytest
import tensorflow as tf

from ercnn_napari.core.errors import InputDataError
from ercnn_napari.ml.data.tfrecords import (
    detect_kind,
    explain_read_error,
    read_stacked,
    read_stacked_timestamps,
    read_stage3,
    stage3_counts,
    stage3_dataset,
    write_stacked,
    write_stage3,
)

H = W = 4
DAY = 86400.0
T0 = 1.4832e9


def windows(rng, counts=(35, 50, 92, 1)):
    return [rng.normal(size=(n, H, W, 17)).astype(np.float32) for n in counts]


def raw_writer(path):
    return tf.io.TFRecordWriter(str(path), options=tf.io.TFRecordOptions(compression_type="GZIP"))


def example(**arrays) -> bytes:
    feats = {k: tf.train.Feature(bytes_list=tf.train.BytesList(value=[tf.io.serialize_tensor(v).numpy()]))
             for k, v in arrays.items()}
    return tf.train.Example(features=tf.train.Features(feature=feats)).SerializeToString()


def good_stage3_record(rng, n=3):
    return example(Feature=rng.normal(size=(n, H, W, 17)).astype(np.float32), Label=np.zeros((H, W), np.float32))


def test_stage3_round_trip(tmp_path):
    rng = np.random.default_rng(0)
    feats = windows(rng)
    labels = [rng.integers(0, 2, (H, W)).astype(np.float32) for _ in feats]
    path = tmp_path / "Liege_3_5.tfrecords"
    assert write_stage3(path, feats, labels) == 4
    back = list(read_stage3(path))
    assert len(back) == 4
    for (f, lab), f0, l0 in zip(back, feats, labels, strict=True):
        assert f.dtype == np.float32 and np.array_equal(f, f0) and np.array_equal(lab, l0)
    assert detect_kind(path) == "stage3"
    via_tf = [(f.numpy(), lab.numpy()) for f, lab in stage3_dataset(path)]
    assert all(np.array_equal(a[0], b[0]) for a, b in zip(via_tf, back, strict=True))
    assert [p.name for p in tmp_path.iterdir()] == [path.name]


def test_stage3_default_labels_and_selection(tmp_path):
    rng = np.random.default_rng(1)
    feats = windows(rng, counts=(3, 4, 5, 6, 7, 8))
    path = tmp_path / "a.tfrecords"
    write_stage3(path, feats)
    assert all(not lab.any() for _, lab in read_stage3(path))
    picked = [(int(i), f.shape[0]) for i, f, _ in stage3_dataset(path, positions=[4, 1], with_index=True)]
    assert picked == [(1, 4), (4, 7)]
    strided = [int(i) for i, _, _ in stage3_dataset(path, with_index=True, stride=4)]
    assert strided == [0, 4]


def test_stacked_round_trip(tmp_path):
    rng = np.random.default_rng(2)
    n = 12
    stamps = T0 + np.arange(n) * 2.5 * DAY
    asc, desc, s2 = (rng.normal(size=(n, H, W, c)).astype(np.float32) for c in (2, 2, 13))
    path = tmp_path / "3_5.tfrecords"
    assert write_stacked(path, stamps, asc, desc, s2) == n
    series = read_stacked(path)
    assert series.timestamps.dtype == np.float64 and np.array_equal(series.timestamps, stamps)
    assert series.observations.shape == (n, H, W, 17)
    assert np.array_equal(series.observations, np.concatenate([asc, desc, s2], axis=-1))
    assert detect_kind(path) == "stacked"


def assert_names(info, path, record):
    text = str(info.value)
    assert str(path) in text, text
    assert f"record {record}" in text, text


def test_truncated_file(tmp_path):
    rng = np.random.default_rng(3)
    path = tmp_path / "full.tfrecords"
    write_stage3(path, windows(rng, counts=(40, 40, 40, 40)))
    data = path.read_bytes()
    cut = tmp_path / "cut.tfrecords"
    cut.write_bytes(data[: int(len(data) * 0.6)])
    with pytest.raises(InputDataError, match="truncated or corrupt") as info:
        list(read_stage3(cut))
    assert_names(info, cut, 2)
    with pytest.raises(InputDataError) as info:  # the tf.data path names the record too
        with explain_read_error(cut):
            for _ in stage3_dataset(cut):
                pass
    assert_names(info, cut, 2)


def test_corrupt_bytes_inside_the_stream(tmp_path):
    rng = np.random.default_rng(4)
    path = tmp_path / "bad.tfrecords"
    write_stage3(path, windows(rng, counts=(30, 30, 30)))
    data = bytearray(path.read_bytes())
    middle = len(data) // 2
    data[middle:middle + 64] = bytes(64)
    path.write_bytes(bytes(data))
    with pytest.raises(InputDataError, match="record [0-9]+") as info:
        list(read_stage3(path))
    assert str(path) in str(info.value)


def test_not_a_tfrecord_file(tmp_path):
    path = tmp_path / "notes.tfrecords"
    path.write_text("this is not a TFRecord file\n" * 20)
    with pytest.raises(InputDataError) as info:
        detect_kind(path)
    assert_names(info, path, 0)


@pytest.mark.parametrize("bad, message", [
    (lambda rng: example(Feature=rng.normal(size=(3, H, W, 18)).astype(np.float32),
                         Label=np.zeros((H, W), np.float32)), "18 channels, expected 17"),
    (lambda rng: example(Feature=rng.normal(size=(H, W, 17)).astype(np.float32),
                         Label=np.zeros((H, W), np.float32)), "rank 3"),
    (lambda rng: example(Feature=np.zeros((93, H, W, 17), np.float32),
                         Label=np.zeros((H, W), np.float32)), "93 observations"),
    (lambda rng: example(Feature=np.where(np.arange(17) == 5, np.nan, 0.0).astype(np.float32)
                         * np.ones((2, H, W, 17), np.float32),
                         Label=np.zeros((H, W), np.float32)), "nan"),
    (lambda rng: example(Feature=np.zeros((2, H, W, 17), np.float64),
                         Label=np.zeros((H, W), np.float32)), "dtype float64"),
    (lambda rng: example(Feature=np.zeros((2, H, W, 17), np.float32)), "lacks Label"),
    (lambda rng: example(Feature=np.zeros((2, H, W, 17), np.float32),
                         Label=np.zeros((H + 1, W), np.float32)), "Label has shape"),
    (lambda rng: b"\xff\xfe not a protobuf", "record 1"),
])
def test_bad_stage3_record_names_file_and_record(tmp_path, bad, message):
    rng = np.random.default_rng(5)
    path = tmp_path / "Liege_1_2.tfrecords"
    with raw_writer(path) as out:
        out.write(good_stage3_record(rng))
        out.write(bad(rng))
        out.write(good_stage3_record(rng))
    with pytest.raises(InputDataError, match=message) as info:
        list(read_stage3(path))
    assert_names(info, path, 1)
    with pytest.raises(InputDataError, match=message) as info:
        with explain_read_error(path):
            for _ in stage3_dataset(path):
                pass
    assert_names(info, path, 1)


@pytest.mark.parametrize("record, message", [
    (lambda: example(Timestamp=np.float64(T0 + 9 * DAY), S1_ascending=np.zeros((H, W, 2), np.float32),
                     S1_descending=np.zeros((H, W, 2), np.float32), S2=np.zeros((H, W, 12), np.float32)),
     "S2 has 12 channels, expected 13"),
    (lambda: example(Timestamp=np.float64(T0 + 9 * DAY), S1_ascending=np.full((H, W, 2), np.inf, np.float32),
                     S1_descending=np.zeros((H, W, 2), np.float32), S2=np.zeros((H, W, 13), np.float32)),
     "S1_ascending holds inf"),
    (lambda: example(Timestamp=np.float32(T0 + 9 * DAY), S1_ascending=np.zeros((H, W, 2), np.float32),
                     S1_descending=np.zeros((H, W, 2), np.float32), S2=np.zeros((H, W, 13), np.float32)),
     "Timestamp has dtype float32"),
    (lambda: example(Timestamp=np.float64(T0 - DAY), S1_ascending=np.zeros((H, W, 2), np.float32),
                     S1_descending=np.zeros((H, W, 2), np.float32), S2=np.zeros((H, W, 13), np.float32)),
     "not after the previous"),
    (lambda: example(Feature=np.zeros((2, H, W, 17), np.float32), Label=np.zeros((H, W), np.float32)),
     "lacks Timestamp"),
])
def test_bad_stacked_record_names_file_and_record(tmp_path, record, message):
    path = tmp_path / "3_5.tfrecords"
    ok = dict(S1_ascending=np.zeros((H, W, 2), np.float32), S1_descending=np.zeros((H, W, 2), np.float32),
              S2=np.zeros((H, W, 13), np.float32))
    with raw_writer(path) as out:
        out.write(example(Timestamp=np.float64(T0), **ok))
        out.write(record())
    with pytest.raises(InputDataError, match=message) as info:
        read_stacked(path)
    assert_names(info, path, 1)


def test_unknown_schema_and_empty_file(tmp_path):
    path = tmp_path / "other.tfrecords"
    with raw_writer(path) as out:
        out.write(example(image=np.zeros((2, 2), np.float32)))
    with pytest.raises(InputDataError, match="expected Feature, Label") as info:
        detect_kind(path)
    assert_names(info, path, 0)
    empty = tmp_path / "empty.tfrecords"
    with raw_writer(empty):
        pass
    with pytest.raises(InputDataError, match="no records"):
        detect_kind(empty)
    with pytest.raises(InputDataError, match="not found"):
        list(read_stage3(tmp_path / "missing.tfrecords"))


def test_writers_refuse_bad_data_and_leave_nothing(tmp_path):
    path = tmp_path / "out.tfrecords"
    good = np.zeros((3, H, W, 17), np.float32)
    bad = np.full((3, H, W, 17), np.nan, np.float32)
    with pytest.raises(InputDataError, match="record 1: Feature holds nan"):
        write_stage3(path, [good, bad])
    with pytest.raises(InputDataError, match="record 0: Feature has 16 channels"):
        write_stage3(path, [np.zeros((3, H, W, 16), np.float32)])
    with pytest.raises(InputDataError, match="not after the previous"):
        write_stacked(path, np.array([T0, T0]), *(np.zeros((2, H, W, c), np.float32) for c in (2, 2, 13)))
    assert list(tmp_path.iterdir()) == []


def test_stage3_counts_from_headers(tmp_path):
    rng = np.random.default_rng(6)
    path = tmp_path / "c.tfrecords"
    write_stage3(path, windows(rng, counts=(3, 9, 4)))
    assert stage3_counts(path).tolist() == [3, 9, 4]
    bad = tmp_path / "bad.tfrecords"
    with raw_writer(bad) as out:
        out.write(good_stage3_record(rng))
        out.write(example(Feature=np.zeros((2, H, W, 18), np.float32), Label=np.zeros((H, W), np.float32)))
    with pytest.raises(InputDataError, match="Feature has shape") as info:
        stage3_counts(bad)
    assert_names(info, bad, 1)


def test_stacked_timestamps_alone(tmp_path):
    rng = np.random.default_rng(8)
    stamps = T0 + np.arange(5) * 3 * DAY
    path = tmp_path / "s.tfrecords"
    write_stacked(path, stamps, *(rng.normal(size=(5, H, W, c)).astype(np.float32) for c in (2, 2, 13)))
    assert np.array_equal(read_stacked_timestamps(path), stamps)
