"""``ercnn-napari evaluate``: per-tile and pooled scores on the max-over-windows map, computed
independently here from the model's own predictions and the label files."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from known_change_project import save_biased_tiny_model

from ercnn_napari.core.messages import Error, Finished, parse_message
from ercnn_napari.core.metrics import confusion
from ercnn_napari.core.project import Project
from ercnn_napari.core.tiles import format_tile_id


def cli(*args: str) -> subprocess.CompletedProcess:
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2")
    return subprocess.run([sys.executable, "-m", "ercnn_napari", *args], capture_output=True, text=True,
                          timeout=240, env=env)


@pytest.fixture(scope="module")
def tiny_model_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny network whose output is biased towards "change", so the scores are not all zero."""
    return save_biased_tiny_model(tmp_path_factory.mktemp("models") / "tiny.ercnn.h5")


def test_scores_match_an_independent_computation(tiny_model_file: Path, sample_project: Path, tmp_path: Path) -> None:
    from ercnn_napari.ml.data.observations import open_observations
    from ercnn_napari.ml.inference.evaluate import evenly_spaced, fit_time_steps
    from ercnn_napari.ml.model.weights import load_model

    project = Project.open(sample_project)
    split = project.split("V1")
    tiles = split.val + split.test
    out = tmp_path / "scores.json"
    result = cli("evaluate", "--model", str(tiny_model_file), "--project", str(sample_project),
                 "--tiles", ",".join(format_tile_id(t) for t in tiles), "--windows", "3", "--out", str(out),
                 "--progress", "json")
    assert result.returncode == 0, result.stderr[-3000:]
    messages = [parse_message(line) for line in result.stdout.splitlines()]
    assert isinstance(messages[-1], Finished) and messages[-1].status == "completed"
    scores = json.loads(out.read_text())

    model, config = load_model(tiny_model_file)
    source = open_observations(project)
    pooled = None
    for tile in tiles:
        table = source.window_table(tile)
        rows = evenly_spaced(len(table), 3)
        windows = fit_time_steps(source.windows(tile, rows), config.time_steps)
        max_map = np.asarray(model(windows, training=False)).max(axis=0)
        counts = confusion(max_map, project.labels.read(tile), threshold=0.5, border=1)  # CLI default
        assert scores["per_tile"][format_tile_id(tile)]["tp"] == counts.tp
        assert scores["per_tile"][format_tile_id(tile)]["fp"] == counts.fp
        assert scores["windows"][format_tile_id(tile)] == [int(table.ids[r]) for r in rows]
        pooled = counts if pooled is None else pooled + counts
    overall = scores["overall"]
    assert (overall["tp"], overall["fp"], overall["fn"], overall["tn"]) == (pooled.tp, pooled.fp, pooled.fn, pooled.tn)
    expected_f1 = 2 * pooled.tp / (2 * pooled.tp + pooled.fp + pooled.fn) if pooled.tp + pooled.fp + pooled.fn else None
    assert overall["f1"] == (pytest.approx(expected_f1) if expected_f1 is not None else None)


def test_split_set_and_unlabelled_tile_errors(tiny_model_file: Path, sample_project: Path) -> None:
    project = Project.open(sample_project)
    missing = [t for t in project.grid.tiles() if not project.labels.exists(t)]
    if not missing:
        pytest.skip("every tile of the sample is labelled")
    unlabelled = missing[0]
    result = cli("evaluate", "--model", str(tiny_model_file), "--project", str(sample_project),
                 "--tiles", format_tile_id(unlabelled), "--progress", "json")
    assert result.returncode == 2
    error = parse_message(result.stdout.splitlines()[-1])
    assert isinstance(error, Error) and error.kind == "bad_label" and format_tile_id(unlabelled) in error.message

    result = cli("evaluate", "--model", str(sample_project / "nope.ercnn.h5"), "--project", str(sample_project))
    assert result.returncode == 2 and "nope.ercnn.h5" in result.stderr


def test_heldout_refuses_a_project_without_answer_key(tiny_model_file: Path, tmp_path: Path) -> None:
    from ercnn_napari.core.geo import TileGrid

    Project.create(tmp_path / "p", "Site", TileGrid("EPSG:32631", 0.0, 320.0, 10.0, 10.0, 1, 1))
    result = cli("evaluate", "--model", str(tiny_model_file), "--project", str(tmp_path / "p"), "--set", "heldout")
    assert result.returncode == 2 and "answer key" in result.stderr
