"""``ercnn-napari evaluate --set heldout`` on a project whose change is known, against an
independent computation: AUC and counts from the model's own maps and the answer key, the
threshold fitted on the training tiles, the index baseline beside the network, CV and ensemble."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from known_change_project import make_known_project, save_biased_tiny_model

from ercnn_napari.core.project import Project
from ercnn_napari.core.ranking import best_f1_threshold, roc_auc
from ercnn_napari.core.splits import Split


@pytest.fixture(scope="module")
def project_and_model(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    root = make_known_project(tmp_path_factory.mktemp("known") / "site")
    project = Project.open(root)
    test = [(1, 0), (1, 1)]
    project.write_splits({"V1": Split("V1", [(0, 0), (0, 1)], [], test), "V2": Split("V2", [(0, 1)], [(0, 0)], test)})
    return root, save_biased_tiny_model(tmp_path_factory.mktemp("models") / "tiny.ercnn.h5")


def test_heldout_report_matches_an_independent_computation(project_and_model, tmp_path: Path) -> None:
    from ercnn_napari.ml.data.observations import open_observations
    from ercnn_napari.ml.inference.evaluate import evenly_spaced, fit_time_steps
    from ercnn_napari.ml.model.weights import load_model

    root, model_path = project_and_model
    out = tmp_path / "heldout.json"
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2")
    result = subprocess.run([sys.executable, "-m", "ercnn_napari", "evaluate", "--model", str(model_path),
                             "--model", str(model_path), "--project", str(root), "--split", "V1,V2",
                             "--set", "heldout", "--windows", "3", "--out", str(out), "--progress", "none"],
                            capture_output=True, text=True, timeout=900, env=env)
    assert result.returncode == 0, result.stderr[-3000:]
    report = json.loads(out.read_text())
    fold = report["folds"]["V1"]
    assert fold["network"]["tiles"] == ["1:0", "1:1"] and fold["train_tiles"] == ["0:0", "0:1"]

    project = Project.open(root)
    model, config = load_model(model_path)
    source = open_observations(project)

    def inner_max(tile):
        rows = evenly_spaced(len(source.window_table(tile)), 3)
        windows = fit_time_steps(source.windows(tile, rows), config.time_steps)
        return np.asarray(model(windows, training=False)).max(axis=0)[1:-1, 1:-1]

    train = np.concatenate([inner_max(t).ravel() for t in ((0, 0), (0, 1))])
    labels = np.concatenate([(project.labels.read(t) > 0)[1:-1, 1:-1].ravel() for t in ((0, 0), (0, 1))])
    threshold, _ = best_f1_threshold(train, labels)
    assert fold["fitted"]["threshold"] == pytest.approx(threshold, rel=1e-5)
    held = np.concatenate([inner_max(t).ravel() for t in ((1, 0), (1, 1))])
    key = np.concatenate([(np.load(root / "answer_key" / f"{y}_{x}.npy") > 0)[1:-1, 1:-1].ravel()
                          for y, x in ((1, 0), (1, 1))])
    inner = fold["network"]["inner"]
    assert inner["auc"] == pytest.approx(roc_auc(held, key), abs=1e-9)
    assert inner["at_fitted"]["tp"] == int(((held >= threshold) & key).sum())
    assert inner["at_0_5"]["fp"] == int(((held >= 0.5) & ~key).sum())
    assert fold["network"]["ring"]["pixels"] == 2 * (32 * 32 - 30 * 30)

    # the index baseline finds the known change on the held-out tiles: the row a reviewer asks for
    index = fold["index_baseline"]
    assert index["indices"][index["best_on_training"]]["inner"]["at_fitted"]["f1"] > 0.95
    rows = [r for r in report["table"] if r["split"] == "V1"]
    assert rows[0]["scorer"].startswith("network") and rows[0]["f1_at_0_5"] == inner["at_0_5"]["f1"]
    assert any("best on training" in r["scorer"] and r["f1_at_0_5"] is None for r in rows)
    # two folds of the same model on the same tiles: pooled counts are twice one fold's
    cv = report["cross_validation"]["network"]
    assert cv["tiles"] == 4 and cv["at_0_5"]["tp"] == 2 * inner["at_0_5"]["tp"]
    assert report["ensemble"]["tiles"] == ["1:0", "1:1"]
    assert report["ensemble"]["inner"]["auc"] == pytest.approx(inner["auc"], abs=1e-9)


def test_one_split_twice_is_refused(project_and_model) -> None:
    root, model_path = project_and_model
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2")
    result = subprocess.run([sys.executable, "-m", "ercnn_napari", "evaluate", "--model", str(model_path),
                             "--model", str(model_path), "--project", str(root), "--split", "V1,V1",
                             "--set", "heldout"], capture_output=True, text=True, timeout=600, env=env)
    assert result.returncode == 2 and "twice" in result.stderr
