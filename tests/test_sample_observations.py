"""The sample's stacked observation files (written through ml.tfrecords) and the session fixture."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from ercnn_napari.core.constants import PERIOD_START
from ercnn_napari.core.project import Project


def test_fixture_has_observations_for_every_listed_tile(sample_project: Path) -> None:
    project = Project.open(sample_project)
    with_obs = set(project.tiles_with_observations())
    assert len(with_obs) == 5
    splits = project.splits()
    vals = [s.val[0] for s in splits.values()]
    assert len(set(vals)) == 3
    for split in splits.values():
        listed = set(split.train + split.val + split.test)
        assert listed <= with_obs and len(split.val) == 1 and len(split.test) == 1
        assert set(vals) - set(split.val) <= set(split.train)
        assert all(project.labels.exists(t) for t in listed)


def test_stacked_files_hold_the_synthetic_series(sample_project: Path) -> None:
    from ercnn_napari.ml.data.tfrecords import read_stacked
    from ercnn_napari.sample.observations import synthesize_tile, tile_timeline
    from ercnn_napari.sample.prepare import read_spec
    from ercnn_napari.sample.scene import build_scene

    project = Project.open(sample_project)
    files = project.observation_files()
    tile = sorted(files)[0]
    series = read_stacked(files[tile])
    stamps = json.loads((sample_project / "observations" / "timestamps.json").read_text())["timestamps"]
    assert np.array_equal(series.timestamps, np.array(stamps))
    assert series.observations.shape == (len(stamps), 32, 32, 17)
    spec = read_spec(sample_project)
    scene, _ = build_scene(spec)
    expected = synthesize_tile(spec, tile_timeline(scene, spec, tile))
    assert np.array_equal(series.observations[..., 0:2], expected.s1_asc)
    assert np.array_equal(series.observations[..., 2:4], expected.s1_desc)
    assert np.array_equal(series.observations[..., 4:], expected.s2)
    assert series.timestamps[0] >= np.datetime64(PERIOD_START).astype("datetime64[s]").astype(float)
    size = files[tile].stat().st_size
    assert 5e6 < size < 60e6


def test_preparing_again_reuses_the_files(sample_project: Path) -> None:
    from ercnn_napari.sample import prepare_sample_project

    files = Project.open(sample_project).observation_files()
    stamps = {t: p.stat().st_mtime_ns for t, p in files.items()}
    assert prepare_sample_project(sample_project, tiles=sorted(files)) == sample_project
    assert {t: p.stat().st_mtime_ns for t, p in files.items()} == stamps
