"""The authors' stacking rule on hand-made cases, the unit conversions, and the TF-free writer."""

from __future__ import annotations

from datetime import datetime, timezone

import numpy as np
import pytest

from ercnn_napari.ingest.stacking import plan_steps, stack_tile
from ercnn_napari.ingest.units import to_network_units

DAY = 86400.0
START = 1_600_000_000.0   # any start; buckets are [START + 2k days, START + 2(k+1) days)


def _frame(stream: str, value: float, h: int = 2, w: int = 2) -> np.ndarray:
    channels = 13 if stream == "S2" else 2
    return np.full((h, w, channels), value, np.float32)


def _run(acqs):
    """acqs: (time, stream, value, valid [2, 2]) -> list of records."""
    plan = plan_steps([a[0] for a in acqs], START)

    def read(a):
        _, stream, value, valid = acqs[a]
        return stream, _frame(stream, value), np.asarray(valid, bool)

    return plan, list(stack_tile(plan, read, 2, 2))


ALL = np.ones((2, 2), bool)


def test_prestart_observations_only_prefill():
    plan, records = _run([(START - 5 * DAY, "S2", 0.3, ALL), (START - 1, "S1_ascending", 0.02, ALL),
                          (START + 0.5 * DAY, "S1_descending", 0.05, ALL)])
    assert plan.prefill.tolist() == [True, True, False]
    assert len(records) == 1
    stamp, asc, desc, s2 = records[0]
    assert stamp == START + 0.5 * DAY
    assert (asc == np.float32(0.02)).all() and (desc == np.float32(0.05)).all() and (s2 == np.float32(0.3)).all()


def test_empty_buckets_write_nothing_and_streams_start_at_zero():
    plan, records = _run([(START + 0.1 * DAY, "S2", 0.2, ALL), (START + 9.0 * DAY, "S1_ascending", 0.01, ALL)])
    assert [r[0] for r in records] == [START + 0.1 * DAY, START + 9.0 * DAY]   # buckets 0 and 4 only
    assert (records[0][1] == 0).all() and (records[0][2] == 0).all()          # nothing seen yet -> 0
    assert (records[1][3] == np.float32(0.2)).all()                           # S2 carried forward


def test_bucket_with_several_streams_is_one_record_stamped_with_its_last_observation():
    acqs = [(START + 2.1 * DAY, "S1_descending", 0.04, ALL), (START + 2.5 * DAY, "S2", 0.25, ALL),
            (START + 3.9 * DAY, "S1_ascending", 0.03, ALL), (START + 4.0 * DAY, "S2", 0.5, ALL)]
    plan, records = _run(acqs)
    assert plan.buckets.tolist() == [1, 1, 1, 2]
    assert [r[0] for r in records] == [START + 3.9 * DAY, START + 4.0 * DAY]
    _, asc, desc, s2 = records[0]
    assert (asc == np.float32(0.03)).all() and (desc == np.float32(0.04)).all() and (s2 == np.float32(0.25)).all()
    assert (records[1][3] == np.float32(0.5)).all() and (records[1][1] == np.float32(0.03)).all()


def test_masked_pixels_keep_their_last_value_and_a_never_valid_pixel_stays_zero():
    first = np.array([[True, True], [True, False]])
    cloudy = np.array([[False, True], [True, False]])
    plan, records = _run([(START + 0.2 * DAY, "S2", 0.1, first), (START + 2.2 * DAY, "S2", 0.7, cloudy),
                          (START + 4.2 * DAY, "S2", 0.9, np.zeros((2, 2), bool))])
    s2 = [r[3][..., 0] for r in records]
    np.testing.assert_array_equal(s2[0], np.float32([[0.1, 0.1], [0.1, 0.0]]))
    np.testing.assert_array_equal(s2[1], np.float32([[0.1, 0.7], [0.7, 0.0]]))
    np.testing.assert_array_equal(s2[2], s2[1])          # an all-masked acquisition still closes its bucket
    assert s2[2][1, 1] == 0.0                            # never valid: zero throughout


def test_plan_matches_the_sample_generators_bucketing():
    from ercnn_napari.sample.acquisitions import stack_steps

    rng = np.random.default_rng(3)
    times = np.sort(START + rng.uniform(0, 60 * DAY, 40))
    assert np.array_equal(plan_steps(times, START).timestamps, stack_steps(times, START)[1])


def test_unit_conversions():
    before = datetime(2021, 6, 1, tzinfo=timezone.utc)
    after = datetime(2022, 1, 25, 10, tzinfo=timezone.utc)
    dn = np.array([0, 500, 1234, 11234], np.uint16)
    np.testing.assert_array_equal(to_network_units(dn, "S2", "dn", before), np.float32([0, 0.05, 0.1234, 1.1234]))
    np.testing.assert_array_equal(to_network_units(dn, "S2", "dn", after), np.float32([0, 0, 0.0234, 1.0234]))
    np.testing.assert_array_equal(to_network_units(np.array([-0.01, 0.3]), "S2", "reflectance", before),
                                  np.float32([0, 0.3]))
    np.testing.assert_allclose(to_network_units(np.array([-10.0, 0.0, 3.0]), "S1", "db", before),
                               [0.1, 1.0, 10 ** 0.3], rtol=1e-7)
    np.testing.assert_array_equal(to_network_units(np.array([0.5, 2.0]), "S1", "amplitude", before),
                                  np.float32([0.25, 4.0]))
    np.testing.assert_array_equal(to_network_units(dn, "S2", "dn", before, dn_offset=1000),   # reprocessed archive
                                  np.float32([0, 0, 0.0234, 1.0234]))
    assert np.isnan(to_network_units(np.array([np.nan]), "S2", "dn", before)).all()
    with pytest.raises(ValueError, match="do not apply to S1"):
        to_network_units(dn, "S1", "dn", before)


def test_tf_free_writer_is_read_by_tensorflow(tmp_path):
    tf = pytest.importorskip("tensorflow")
    from ercnn_napari.ingest.tfrecord_writer import serialize_tensor, write_stacked_records
    from ercnn_napari.ml.data.tfrecords import read_stacked

    rng = np.random.default_rng(0)
    for array in (np.float64(1.6e9 + 0.25), rng.random((32, 32, 13), dtype=np.float32)):
        assert serialize_tensor(array) == tf.io.serialize_tensor(array).numpy()
    records = [(1.6e9 + 3600.0 * i, rng.random((32, 32, 2), dtype=np.float32), rng.random((32, 32, 2), dtype=np.float32),
                rng.random((32, 32, 13), dtype=np.float32)) for i in range(3)]
    assert write_stacked_records(tmp_path / "0_0.tfrecords", iter(records)) == 3
    series = read_stacked(tmp_path / "0_0.tfrecords")
    np.testing.assert_array_equal(series.timestamps, [r[0] for r in records])
    for i, (_, asc, desc, s2) in enumerate(records):
        np.testing.assert_array_equal(series.observations[i], np.concatenate([asc, desc, s2], axis=-1))
    # a non-increasing time axis is refused and leaves no file
    from ercnn_napari.core.errors import InputDataError

    with pytest.raises(InputDataError, match="does not follow"):
        write_stacked_records(tmp_path / "0_1.tfrecords", [records[1], records[0]])
    assert sorted(p.name for p in tmp_path.iterdir()) == ["0_0.tfrecords"]
