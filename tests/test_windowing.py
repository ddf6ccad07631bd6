"""Windowing rules and window tables (numpy only: this is what the viewer runs too)."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pytest

from ercnn_napari.core.errors import InputDataError
from ercnn_napari.core.window_table import (
    WindowTable,
    format_time,
    parse_time,
    read_window_csv,
    window_csv_text,
    write_window_csv,
)
from ercnn_napari.core.windowing import compute_windows, window_step_indices

DAY = 86400.0
T0 = dt.datetime(2017, 1, 1, 5, 50, 5, tzinfo=dt.timezone.utc).timestamp()


def brute_force_windows(stamps: np.ndarray, days: float = 182, lo: int = 35, hi: int = 92, stride: int = 1):
    """Independent, loop-by-loop statement of the rules: (start index, n_obs) of kept windows."""
    kept = []
    for s in range(0, len(stamps), stride):
        members = [i for i in range(s, len(stamps)) if stamps[i] <= stamps[s] + days * DAY][:hi]
        if len(members) >= lo:
            kept.append((s, len(members)))
    return kept


def stacked_liege_like(start: str = "2017-01-01", end: str = "2021-01-16", seed: int = 0) -> np.ndarray:
    """Timestamps of a stacked series with Sentinel revisits like Liège 2017-2020.

    S1 descending every 6 days at 05:50, S1 ascending every 6 days at 17:24 (3 days later), S2
    from two relative orbits every 5 days each at 10:56 and 10:46 (every 10 days before S2B,
    mid 2017), a few acquisitions missing at random; the streams are merged into 2-day buckets
    from the start date, each bucket's step stamped with its latest acquisition.
    """
    rng = np.random.default_rng(seed)
    t0 = dt.datetime.fromisoformat(start).replace(tzinfo=dt.timezone.utc).timestamp()
    t1 = dt.datetime.fromisoformat(end).replace(tzinfo=dt.timezone.utc).timestamp()
    s2b_start = dt.datetime(2017, 7, 1, tzinfo=dt.timezone.utc).timestamp()
    times = []
    for first_day, hour, every_days, is_s2 in ((0, 5.83, 6, False), (3, 17.4, 6, False),
                                               (1, 10.93, 5, True), (3, 10.77, 5, True)):
        t, k = t0 + first_day * DAY + hour * 3600, 0
        while t <= t1:
            if not (is_s2 and t < s2b_start and k % 2):
                times.append(t)
            t, k = t + every_days * DAY, k + 1
    times = np.sort(np.asarray(times))
    times = times[rng.random(len(times)) > 0.03]
    buckets = ((times - t0) // (2 * DAY)).astype(int)
    last_in_bucket = np.r_[buckets[1:] != buckets[:-1], True]
    return times[last_in_bucket]


def test_inclusive_end_gives_92_observations_on_the_densest_series():
    stamps = T0 + np.arange(200) * 2 * DAY          # one step every 2 days
    table = compute_windows(stamps)
    assert table.n_obs[0] == 92                       # +0, +2, ..., +182 days
    assert table.end_time[0] == stamps[0] + 182 * DAY
    assert table.n_obs.max() == 92


def test_cap_at_92_on_a_denser_series():
    stamps = T0 + np.arange(300) * DAY                # denser than stacking allows
    table = compute_windows(stamps)
    assert table.n_obs.max() == 92
    assert table.end_time[0] == stamps[91]            # the 93rd..183rd day are cut


def test_matches_the_rules_stated_loop_by_loop():
    rng = np.random.default_rng(3)
    stamps = T0 + np.cumsum(rng.uniform(2, 9, 160)) * DAY
    for stride in (1, 3, 5):
        table = compute_windows(stamps, stride=stride)
        expected = brute_force_windows(stamps, stride=stride)
        assert list(zip(table.start_index.tolist(), table.n_obs.tolist(), strict=True)) == expected
        assert table.ids.tolist() == list(range(1, len(expected) + 1))


def test_drops_sparse_windows_and_keeps_shrinking_tail():
    # 60 steps every 3 days: a window spans 61 steps at most -> starts 0..25 have >= 35 obs
    stamps = T0 + np.arange(60) * 3 * DAY
    table = compute_windows(stamps)
    assert len(table) == 60 - 35 + 1
    assert table.n_obs.min() == 35 and table.n_obs[-1] == 35
    tail = table.n_obs[-10:]
    assert np.all(np.diff(tail) == -1)                # shrinking one step at a time
    assert np.all(table.end_time[-10:] == stamps[-1])  # sharing the last date
    # a gap in the middle: windows that straddle it lose observations and are dropped
    gap = np.r_[stamps[:20], stamps[20:] + 200 * DAY]
    gapped = compute_windows(gap)
    assert gapped.n_obs.min() >= 35
    assert len(gapped) < len(table)


def test_stride_counts_steps_not_days():
    stamps = T0 + np.cumsum(np.r_[0, np.tile([1.0, 4.0], 100)]) * DAY
    table = compute_windows(stamps, stride=5)
    assert np.all(table.start_index % 5 == 0)
    assert table.start_time.tolist() == stamps[table.start_index].tolist()


def test_times_mid_point_and_step_indices():
    stamps = T0 + np.arange(100) * 2.5 * DAY
    table = compute_windows(stamps)
    assert np.allclose(table.end_time, stamps[table.start_index + table.n_obs - 1])
    assert np.allclose(table.mid_time, table.start_time + (table.end_time - table.start_time) / 2)
    assert window_step_indices(table, 3).tolist() == list(range(3, 3 + int(table.n_obs[3])))


def test_realistic_revisits_give_a_table_like_the_authors():
    stamps = stacked_liege_like()
    table = compute_windows(stamps)
    assert 450 <= len(table) <= 650                                # authors: 540
    assert table.n_obs.min() == 35                                 # authors: 35-82
    assert 60 <= table.n_obs.max() <= 92
    assert format_time(table.start_time[0])[:10] in ("2017-01-01", "2017-01-02")  # authors: 2017-01-01
    assert "2020-09" <= format_time(table.start_time[-1])[:7] <= "2020-11"  # authors: 2020-10-15
    assert table.end_time[-1] == stamps[-1]
    steps = np.diff(table.start_time) / DAY
    assert 2.0 <= np.median(steps) <= 3.5                          # "about 2-3 days apart"


@pytest.mark.parametrize("stamps, message", [
    (np.array([T0, T0 + DAY, T0 + DAY]), "record 2"),
    (np.array([T0, T0 - DAY]), "record 1"),
    (np.array([T0, np.nan]), "record 1"),
])
def test_bad_timestamps_name_the_record(stamps, message):
    with pytest.raises(InputDataError, match=message) as info:
        compute_windows(stamps, source="x/3_5.tfrecords")
    assert "x/3_5.tfrecords" in str(info.value)


def test_csv_round_trip_in_the_authors_format(tmp_path):
    stamps = T0 + np.arange(80) * 2.5 * DAY
    table = compute_windows(stamps)
    path = tmp_path / "windows.csv"
    write_window_csv(table, path)
    text = path.read_text()
    assert text.splitlines()[0] == "ID,Start Time,End Time,# Observations"
    assert text.splitlines()[1] == f"1,2017-01-01 05:50:05,{format_time(table.end_time[0])},{table.n_obs[0]}"
    back = read_window_csv(path)
    assert back.equals(table)
    assert np.all(back.start_index == -1)  # a CSV does not say where windows start on the time axis
    assert [p.name for p in tmp_path.iterdir()] == ["windows.csv"]  # no temp file left


def test_csv_reading_is_liberal(tmp_path):
    path = tmp_path / "w.csv"
    path.write_text("\ufeffid; start time ;END TIME;# observations\n"
                    "1;2017-01-01T05:50:05Z;2017-06-15T10:55:05+00:00;52\n"
                    "2;2017-01-04 17:24:23.5;2017-07-05;53\n"
                    f"3;{T0:.0f};;40\n\n")
    table = read_window_csv(path)
    assert table.ids.tolist() == [1, 2, 3]
    assert table.n_obs.tolist() == [52, 53, 40]
    assert format_time(table.start_time[0]) == "2017-01-01 05:50:05"
    assert table.end_time[1] == parse_time("2017-07-05 00:00:00")
    assert table.start_time[2] == T0 and np.isnan(table.end_time[2])
    assert window_csv_text(table).splitlines()[3] == "3,2017-01-01 05:50:05,,40"


@pytest.mark.parametrize("content, message", [
    ("ID,Start Time,# Observations\n1,2017-01-01,40\n", "lacks column"),
    ("ID,Start Time,End Time,# Observations\n1,2017-01-01,2017-06-01,40\n2,yesterday,2017-06-02,41\n",
     "line 3"),
    ("ID,Start Time,End Time,# Observations\n1,2017-01-01,2017-06-01,0\n", "line 2"),
    ("", "empty"),
])
def test_bad_csv_names_file_and_line(tmp_path, content, message):
    path = tmp_path / "bad.csv"
    path.write_text(content)
    with pytest.raises(InputDataError, match=message) as info:
        read_window_csv(path)
    assert str(path) in str(info.value)


def test_select_and_every():
    table = WindowTable.build(np.arange(1, 11), np.full(10, 40), T0 + np.arange(10) * DAY,
                              T0 + np.arange(10) * DAY + 100 * DAY, np.arange(10))
    assert table.every(4).tolist() == [0, 4, 8]
    picked = table.select(table.every(4))
    assert picked.ids.tolist() == [1, 5, 9]
    with pytest.raises(IndexError):
        table.select([10])


def test_equal_tables_agree_to_the_second():
    table = compute_windows(T0 + np.arange(80) * 2.5 * DAY)
    later = WindowTable.build(table.ids, table.n_obs, table.start_time + 3600, table.end_time, table.start_index)
    assert table.equals(table.select(np.arange(len(table))))
    assert not table.equals(later)


def test_viewer_side_modules_do_not_import_tensorflow():
    import subprocess
    import sys

    code = ("import sys, ercnn_napari.core.windowing, ercnn_napari.core.window_table, ercnn_napari.cli.cmd_predict; "
            "heavy = [m for m in ('tensorflow', 'keras') if m in sys.modules]; "
            "sys.exit(f'imported {heavy}' if heavy else 0)")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
