"""The project model and ``info`` on the synthetic Liège sample (made through the project API)."""

from __future__ import annotations

import json

import numpy as np

from ercnn_napari.cli.main import main
from ercnn_napari.core.polygons import rasterize_tile_polygons
from ercnn_napari.core.project import Project


def test_sample_opens_cleanly_and_its_polygons_give_its_labels(sample_project_no_obs):
    project = Project.open(sample_project_no_obs)
    assert project.warnings == [] and not project.inferred and project.site == "Liege"
    labelled = project.tiles_with_labels()
    assert labelled and all(project.grid.contains(t) for t in labelled)
    with_polygons = [t for t in labelled if project.polygon_path(t).is_file()]
    assert with_polygons
    for tile in with_polygons:
        # the sample rasterized its own polygons; reading its shapefiles back must give the same pixels
        label, _ = rasterize_tile_polygons(project, tile)
        assert np.array_equal(label, project.labels.read(tile)), tile
    splits = project.splits()
    assert sorted(splits) == ["V1", "V2", "V3"]
    vals = [set(s.val) for s in splits.values()]
    assert not (vals[0] & vals[1] or vals[0] & vals[2] or vals[1] & vals[2])
    assert len({tuple(s.test) for s in splits.values()}) == 1


def test_info_on_the_sample_without_observations(sample_project_no_obs, capsys):
    assert main(["info", str(sample_project_no_obs), "--json"]) == 0
    summary = json.loads(capsys.readouterr().out)
    project = Project.open(sample_project_no_obs)
    assert summary["labels"]["tiles"] == len(project.tiles_with_labels())
    assert summary["observations"]["tiles"] == 0   # windows are still counted from timestamps.json
    incomplete = project.tiles_with_incomplete_reference()
    assert len(summary["reference"]["incomplete"]) == len(incomplete)
    assert summary["warnings"] == []


def test_info_window_count_matches_the_observation_files(sample_project, capsys):
    from ercnn_napari.ml.data.observations import open_observations

    project = Project.open(sample_project)
    assert main(["info", str(sample_project), "--json"]) == 0
    summary = json.loads(capsys.readouterr().out)
    observed = project.tiles_with_observations()
    assert summary["observations"]["tiles"] == len(observed) > 0
    # the TF-free count from timestamps.json equals the window table of the TFRecord series
    table = open_observations(project).window_table(observed[0])
    assert summary["windows"]["count"] == len(table) > 0
