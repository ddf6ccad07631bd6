"""The Fine-tune dock's before/after table shows the index-difference baseline beside the model.

The run folder's ``evaluation.json`` is written here with the trainer's own scoring function
(``core.metrics.tile_scores``) on maps whose counts are known, so the figures the dock shows can
be checked against what they must be; the dock is opened the way napari opens it.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
from gui_helpers import open_plugin_dock

from ercnn_napari.core.metrics import tile_scores

TILES = {"val": ["1:1"], "test": ["1:2", "0:2"]}


def _label() -> np.ndarray:
    label = np.zeros((32, 32), np.float32)
    label[8:16, 8:16] = 1.0  # 64 changed pixels, all inside the inner 30 x 30
    return label


def _maps(hit_rows: int, false_rows: int) -> np.ndarray:
    """A map that finds ``hit_rows`` of the 8 changed rows and marks ``false_rows`` rows of 8 elsewhere."""
    pred = np.zeros((32, 32), np.float32)
    pred[8:8 + hit_rows, 8:16] = 0.9
    pred[20:20 + false_rows, 20:28] = 0.9
    return pred


def _scored(hit_rows: int, false_rows: int, names: list[str]) -> dict:
    per_tile, overall = tile_scores({n: (_maps(hit_rows, false_rows), _label()) for n in names}, threshold=0.5,
                                    border=1)
    return {"per_tile": per_tile, "overall": overall}


def _write_run(run_dir, index_block: dict) -> None:
    run_dir.mkdir(parents=True)
    sets = {name: {"before": _scored(0, 4, names), "after": _scored(4, 4, names)} for name, names in TILES.items()}
    evaluation = {"threshold": 0.5, "border": 1, "sets": sets, "index_baseline": index_block}
    (run_dir / "evaluation.json").write_text(json.dumps(evaluation))


@pytest.fixture
def dock(make_napari_viewer):
    return open_plugin_dock(make_napari_viewer(), "finetune")


def test_index_columns_beside_before_and_after(dock, tmp_path):
    run = tmp_path / "run"
    index = {"index": "ndvi", "threshold": 0.155, "train_f1": 0.8,
             "sets": {name: _scored(8, 0, names) for name, names in TILES.items()}}
    _write_run(run, index)
    dock.show_results(run)
    headers = [dock.results.horizontalHeaderItem(j).text() for j in range(dock.results.columnCount())]
    assert headers[-2:] == ["F1 index", "IoU index"]
    rows = dock.results.rows
    assert [(r.set_name, r.tile) for r in rows] == [("val", None), ("val", (1, 1)), ("test", None),
                                                      ("test", (0, 2)), ("test", (1, 2))]
    # before: 0 hits, 32 false; after: 32 of 64 hits, 32 false (F1 0.5); index: all 64, none false (F1 1)
    for i, row in enumerate(rows):
        assert row.f1_before == 0.0 and row.f1_after == pytest.approx(0.5) and row.f1_index == pytest.approx(1.0)
        cells = [dock.results.item(i, j).text() for j in range(dock.results.columnCount())]
        assert cells[2:] == ["0.000", "0.500", "0.000", "0.333", "1.000", "1.000"]
    assert "NDVI" in dock.index_label.text() and "0.155" in dock.index_label.text()
    assert "training" in dock.index_label.text()


def test_missing_index_baseline_says_why(dock, tmp_path):
    run = tmp_path / "run"
    reason = "the observations of tile 0:0 do not cover two 365-day periods"
    _write_run(run, {"skipped": reason})
    dock.show_results(run)
    assert all(np.isnan(r.f1_index) for r in dock.results.rows)
    assert dock.results.item(0, 6).text() == "–"
    assert dock.index_label.text() == f"index baseline not available: {reason}"
