"""Before/after validation metrics of a finished run (RUN/evaluation.json) as a clickable table.

The trainer scores the baseline and the fine-tuned model on the validation and test tiles of the
split. One row per tile shows F1 and IoU before -> after, so the analyst sees *where* the fine-tune
helped or hurt; clicking a row jumps to that tile to look at the labels and images there.

Beside them, the index-difference baseline (``evaluation.json``'s ``index_baseline``: the index with
the best F1 on the run's training tiles, at the threshold fitted there) on the same tiles: a
reviewer's first question is whether the network beats a plain index difference, so the answer
sits in the same row. When the project cannot give that baseline, :func:`index_note` says why
instead of leaving the columns silently empty.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from qtpy.QtCore import Qt
from qtpy.QtWidgets import QAbstractItemView, QTableWidget, QTableWidgetItem

from ercnn_napari.core.errors import ErcnnError
from ercnn_napari.core.tiles import TileId, parse_tile_id

COLUMNS = ("set", "tile", "F1 before", "F1 after", "IoU before", "IoU after", "F1 index", "IoU index")


@dataclass
class ResultRow:
    set_name: str
    tile: TileId | None  # None for the overall row of a set
    f1_before: float
    f1_after: float
    iou_before: float
    iou_after: float
    f1_index: float = math.nan
    iou_index: float = math.nan


def read_evaluation(run_dir: str | Path) -> dict[str, Any]:
    """RUN/evaluation.json as a dict; missing or broken files are one clear error naming the file."""
    path = Path(run_dir) / "evaluation.json"
    if not path.is_file():
        raise ErcnnError("the run has no evaluation (it was cancelled, or trained with --no-evaluate)", path)
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise ErcnnError(f"evaluation file is unreadable ({exc})", path) from exc


def result_rows(evaluation: dict[str, Any]) -> list[ResultRow]:
    """Overall row then one row per tile, for each set (val first, then test)."""
    rows: list[ResultRow] = []
    sets = evaluation.get("sets", {})
    index_sets = (evaluation.get("index_baseline") or {}).get("sets", {})
    for set_name in sorted(sets, key=lambda s: (s != "val", s)):
        entry = sets[set_name]
        before, after = entry.get("before", {}), entry.get("after", {})
        index = index_sets.get(set_name, {})
        rows.append(ResultRow(set_name, None, *_scores(before.get("overall", {}), after.get("overall", {}),
                                                       index.get("overall", {}))))
        tiles_before = before.get("per_tile", {})
        tiles_after = after.get("per_tile", {})
        tiles_index = index.get("per_tile", {})
        for name in sorted(set(tiles_before) | set(tiles_after), key=lambda n: parse_tile_id(n)):
            rows.append(ResultRow(set_name, parse_tile_id(name),
                                  *_scores(tiles_before.get(name, {}), tiles_after.get(name, {}),
                                           tiles_index.get(name, {}))))
    return rows


def index_note(evaluation: dict[str, Any]) -> str:
    """One line on the index columns: which index, its fitted threshold, or why there is none."""
    index = evaluation.get("index_baseline")
    if not index:
        return "index baseline: not in this run's evaluation (a run from before it existed)"
    if "skipped" in index:
        return f"index baseline not available: {index['skipped']}"
    threshold = index.get("threshold")
    if threshold is None or (isinstance(threshold, float) and math.isnan(threshold)):
        return f"index baseline ({index.get('index', '?')}): no threshold (the training tiles hold no change)"
    return (f"index columns: {str(index.get('index', '?')).upper()} difference at {float(threshold):.3f}, "
            f"the cut fitted on the training tiles (training F1 {_fmt(_get(index, 'train_f1'))})")


def _get(d: dict[str, Any], key: str) -> float:
    value = d.get(key)
    return float("nan") if value is None else float(value)


def _scores(before: dict[str, Any], after: dict[str, Any],
            index: dict[str, Any]) -> tuple[float, float, float, float, float, float]:
    return (_get(before, "f1"), _get(after, "f1"), _get(before, "iou"), _get(after, "iou"),
            _get(index, "f1"), _get(index, "iou"))


def _fmt(value: float) -> str:
    return "–" if math.isnan(value) else f"{value:.3f}"


class ResultsTable(QTableWidget):
    """The rows of :func:`result_rows`; ``on_tile(tile)`` is called when a tile row is clicked."""

    def __init__(self, on_tile: Callable[[TileId], None]) -> None:
        super().__init__(0, len(COLUMNS))
        self.setHorizontalHeaderLabels(COLUMNS)
        self.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.verticalHeader().setVisible(False)
        self.rows: list[ResultRow] = []
        self._on_tile = on_tile
        self.cellClicked.connect(self._clicked)

    def show_rows(self, rows: list[ResultRow]) -> None:
        self.rows = rows
        self.setRowCount(len(rows))
        for i, row in enumerate(rows):
            tile = "overall" if row.tile is None else f"{row.tile[0]}:{row.tile[1]}"
            values = (row.set_name, tile, _fmt(row.f1_before), _fmt(row.f1_after),
                      _fmt(row.iou_before), _fmt(row.iou_after), _fmt(row.f1_index), _fmt(row.iou_index))
            for j, text in enumerate(values):
                item = QTableWidgetItem(text)
                if j >= 2:
                    item.setTextAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
                if j == 3 and not (math.isnan(row.f1_before) or math.isnan(row.f1_after)):
                    if row.f1_after != row.f1_before:
                        better = row.f1_after > row.f1_before
                        item.setForeground(Qt.GlobalColor.green if better else Qt.GlobalColor.red)
                self.setItem(i, j, item)
        self.resizeColumnsToContents()

    def _clicked(self, row: int, _column: int) -> None:
        if 0 <= row < len(self.rows) and self.rows[row].tile is not None:
            self._on_tile(self.rows[row].tile)
