"""Observation sources: stacked-on-the-fly and stage-3 give the same windows, through one interface."""

from __future__ import annotations

import numpy as np
import pytest

from ercnn_napari.core.errors import InputDataError, ProjectError
from ercnn_napari.core.geo import TileGrid
from ercnn_napari.core.project import Project
from ercnn_napari.core.window_table import write_window_csv
from ercnn_napari.core.windowing import compute_windows
from ercnn_napari.ml.data.observations import open_observation_folder, open_observations
from ercnn_napari.ml.data.tfrecords import write_stacked, write_stage3

DAY = 86400.0
H = W = 4


def make_series(rng, n=75, days=2.7):
    stamps = 1.4832e9 + np.cumsum(rng.uniform(2.0, 2 * days - 2.0, n)) * DAY
    streams = [rng.normal(size=(n, H, W, c)).astype(np.float32) for c in (2, 2, 13)]
    return stamps, streams


@pytest.fixture(scope="module")
def same_windows_both_ways(tmp_path_factory):
    """A project with stacked series for two tiles, and stage-3 files written from the same series."""
    root = tmp_path_factory.mktemp("project")
    rng = np.random.default_rng(7)
    grid = TileGrid("EPSG:32631", 680000.0, 5615000.0, 10.0, 10.0, rows=4, cols=4, tile_size=H)
    project = Project.create(root, "Liege", grid, observations={"kind": "stacked", "path": "observations"})
    series = {}
    for tile in ((0, 1), (2, 3)):
        stamps, streams = make_series(rng)
        write_stacked(root / "observations" / f"{tile[0]}_{tile[1]}.tfrecords", stamps, *streams)
        series[tile] = (stamps, np.concatenate(streams, axis=-1))
    # the authors' stage-3 layout, from the same series, and their window CSV
    stamps, observations = series[(0, 1)]
    table = compute_windows(stamps)
    stage3_dir = root / "training" / "V1" / "data" / "train"
    write_stage3(stage3_dir / "Liege_0_1.tfrecords",
                 [observations[s:s + n] for s, n in zip(table.start_index, table.n_obs, strict=True)])
    write_window_csv(table, root / "windows.csv")
    return project, series, table


def test_stacked_source_through_a_project(same_windows_both_ways):
    project, series, table = same_windows_both_ways
    source = open_observations(project)
    assert source.kind == "stacked"
    assert source.tiles() == [(0, 1), (2, 3)]
    assert source.window_table((0, 1)).equals(table)
    windows = source.windows((0, 1), [2, 0])
    assert windows.shape == (2, 92, H, W, 17) and windows.dtype == np.float32
    stamps, observations = series[(0, 1)]
    s, n = table.start_index[2], table.n_obs[2]
    assert np.array_equal(windows[0, :n], observations[s:s + n]) and np.all(windows[0, n:] == -1)


def test_on_the_fly_windows_equal_stage3_windows(same_windows_both_ways):
    project, _, table = same_windows_both_ways
    stacked = open_observations(project)
    stage3 = open_observation_folder(project.root / "training", "stage3", site="Liege",
                                     window_csv=project.root / "windows.csv")
    assert stage3.tiles() == [(0, 1)]
    assert stage3.window_table((0, 1)).equals(table)
    every = np.arange(len(table))
    from_stacked = stacked.windows((0, 1), every)
    from_stage3 = stage3.windows((0, 1), every)
    assert np.array_equal(from_stacked, from_stage3)
    picked = [0, 3, len(table) - 1]
    for source in (stacked, stage3):
        pairs = list(source.dataset((0, 1), picked))
        assert [int(c) for c, _ in pairs] == table.n_obs[picked].tolist()
        assert np.array_equal(np.stack([w.numpy() for _, w in pairs]), from_stacked[picked])
    shuffled = [5, 1, 5]  # out of file order and repeated: still the same windows
    assert np.array_equal(np.stack([w.numpy() for _, w in stage3.dataset((0, 1), shuffled)]),
                          from_stacked[shuffled])


def test_stage3_without_csv_knows_counts_only(same_windows_both_ways):
    project, _, table = same_windows_both_ways
    stage3 = open_observation_folder(project.root / "training", "stage3", site="Liege")
    bare = stage3.window_table((0, 1))
    assert bare.n_obs.tolist() == table.n_obs.tolist()
    assert not bare.has_times


def test_mismatched_window_csv_is_refused(same_windows_both_ways, tmp_path):
    project, _, table = same_windows_both_ways
    shifted = table.select(np.arange(1, len(table)))  # drops the first row: counts no longer line up
    write_window_csv(shifted, tmp_path / "other.csv")
    stage3 = open_observation_folder(project.root / "training", "stage3", window_csv=tmp_path / "other.csv")
    rows = np.flatnonzero(shifted.n_obs != table.n_obs[: len(shifted)])
    with pytest.raises(InputDataError, match="does not belong to this file") as info:
        stage3.windows((0, 1), [int(rows[0])])
    assert "Liege_0_1.tfrecords" in str(info.value)


def test_bad_requests(same_windows_both_ways, tmp_path):
    project, _, table = same_windows_both_ways
    source = open_observations(project)
    with pytest.raises(InputDataError, match="no observations for tile 9:9"):
        source.window_table((9, 9))
    with pytest.raises(InputDataError, match="outside the"):
        source.windows((0, 1), [len(table)])
    with pytest.raises(ProjectError, match="does not exist"):
        open_observation_folder(tmp_path / "nowhere", "stacked")
    with pytest.raises(ProjectError, match="unknown observations kind"):
        open_observation_folder(tmp_path, "stage4")


def test_window_csv_beside_stacked_series_must_match(same_windows_both_ways, tmp_path):
    project, _, table = same_windows_both_ways
    write_window_csv(table, tmp_path / "same.csv")
    source = open_observation_folder(project.root / "observations", "stacked", window_csv=tmp_path / "same.csv")
    assert source.window_table((0, 1)).equals(table)
    write_window_csv(table.select(np.arange(len(table) - 1)), tmp_path / "short.csv")
    source = open_observation_folder(project.root / "observations", "stacked", window_csv=tmp_path / "short.csv")
    with pytest.raises(InputDataError, match="does not match the windows of tile 0:1") as info:
        source.window_table((0, 1))
    assert "short.csv" in str(info.value)


def test_sample_project_windows_look_like_the_authors(sample_project):
    source = open_observations(Project.open(sample_project))
    tile = source.tiles()[0]
    table = source.window_table(tile)
    assert 480 <= len(table) <= 600                       # the authors' Liège 2017-2020: 540
    assert table.n_obs.min() == 35 and table.n_obs.max() <= 92
    assert len(table.every(5)) == -(-len(table) // 5)      # their maps: every 5th window
    windows = source.windows(tile, [0, len(table) - 1])
    assert windows.shape == (2, 92, 32, 32, 17) and np.isfinite(windows).all()
    last = int(table.n_obs[-1])
    assert np.all(windows[1, last:] == -1) and not np.any(np.all(windows[1, :last] == -1, axis=(1, 2, 3)))
    # the published model's timestep mask reads pixel (0, 0), channel 0: real steps must not look padded
    # (only the series' first steps, before any S1-ascending acquisition, hold the stacking's initial 0)
    first = windows[0, : int(table.n_obs[0]), 0, 0, 0]
    assert not np.any(first == -1) and np.count_nonzero(first == 0) <= 2
