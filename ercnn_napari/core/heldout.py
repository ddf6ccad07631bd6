"""Scores of change maps on held-out tiles: ranking, two thresholds, inner and ring, event timing.

One report for anything that produces a per-pixel change score (a network's max-over-windows
probability, an index difference), so a network and the index baseline are judged on the same
tiles by the same code:

- ``auc`` and ``ap`` (``core.ranking``): does the map rank changed pixels above unchanged ones,
  whatever the cut;
- ``at_0_5`` and ``at_fitted``: precision/recall/F1/IoU at 0.5 and at the threshold that was best
  on the *training* tiles (``fit_threshold``), pooled over tiles (``core.metrics``);
- ``inner`` (inside ``border`` pixels, the region the loss trains) and ``ring`` (the outer
  ``border`` pixels alone, which only ever see the convolutions' zero padding): a model that
  drifts at tile edges shows it in ``ring``.

Event timing: for a dated event, the window whose mean score over the event's pixels is highest
should overlap the event (``event_timing``). numpy only.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from ercnn_napari.core.answer_key import Event, event_pixels, overlaps
from ercnn_napari.core.metrics import confusion, scores
from ercnn_napari.core.ranking import average_precision, best_f1_threshold, roc_auc
from ercnn_napari.core.tiles import TileId, format_tile_id


def _name(tile: Any) -> str:
    """``y:x`` for a tile, ``V1/y:x`` for a (fold, tile) key of a pooled cross-validation."""
    if isinstance(tile, tuple) and len(tile) == 2 and isinstance(tile[0], str):
        return f"{tile[0]}/{format_tile_id(tile[1])}"
    return format_tile_id(tile)


def _region(array: np.ndarray, border: int, which: str) -> np.ndarray:
    """Pixels of a [H, W] map inside the border (``inner``) or on it (``ring``), flattened."""
    if border == 0:
        return array.ravel() if which == "inner" else array[:0, :0].ravel()
    mask = np.zeros(array.shape, bool)
    mask[border:-border, border:-border] = True
    return array[mask] if which == "inner" else array[~mask]


def _pool(maps: Mapping[TileId, np.ndarray], truth: Mapping[TileId, np.ndarray], border: int,
          which: str) -> tuple[np.ndarray, np.ndarray]:
    tiles = [t for t in maps if t in truth]
    if not tiles:
        return np.zeros(0), np.zeros(0)
    s = np.concatenate([_region(np.asarray(maps[t], np.float64), border, which) for t in tiles])
    t = np.concatenate([_region(np.asarray(truth[t]) > 0, border, which) for t in tiles])
    return s, t


def fit_threshold(maps: Mapping[TileId, np.ndarray], labels: Mapping[TileId, np.ndarray],
                  border: int = 1) -> dict[str, float]:
    """The F1-best cut on training tiles' inner pixels: ``{"threshold", "train_f1"}`` (nan if no change)."""
    s, t = _pool(maps, labels, border, "inner")
    if s.size == 0:
        return {"threshold": math.nan, "train_f1": math.nan}
    threshold, f1 = best_f1_threshold(s, t)
    return {"threshold": threshold, "train_f1": f1}


def _at(s: np.ndarray, t: np.ndarray, threshold: float) -> dict[str, Any]:
    if s.size == 0 or math.isnan(threshold):
        return {"threshold": threshold, "precision": math.nan, "recall": math.nan, "f1": math.nan,
                "iou": math.nan}
    counts = confusion(s, t.astype(np.uint8), threshold=threshold)
    return {"threshold": threshold, **scores(counts), **counts.to_dict()}


def region_report(s: np.ndarray, t: np.ndarray, fitted: float) -> dict[str, Any]:
    """AUC, AP, and the scores at 0.5 and at the fitted threshold of pooled pixels."""
    if s.size == 0:
        return {"pixels": 0}
    return {"pixels": int(s.size), "changed": int(t.sum()),
            "auc": roc_auc(s, t), "ap": average_precision(s, t),
            "at_0_5": _at(s, t, 0.5), "at_fitted": _at(s, t, fitted)}


def map_report(maps: Mapping[TileId, np.ndarray], truth: Mapping[TileId, np.ndarray], *,
               fitted_threshold: float, border: int = 1) -> dict[str, Any]:
    """The held-out report of one scorer: ``inner`` and ``ring`` sections and the tiles used."""
    report: dict[str, Any] = {"tiles": [_name(t) for t in maps if t in truth], "border": border,
                              "fitted_threshold": fitted_threshold}
    for which in ("inner", "ring"):
        s, t = _pool(maps, truth, border, which)
        report[which] = region_report(s, t, fitted_threshold)
    return report


def event_timing(window_maps: Mapping[TileId, np.ndarray], starts: Mapping[TileId, Sequence[float]],
                 ends: Mapping[TileId, Sequence[float]], events: Sequence[Event], grid: Any,
                 truth: Mapping[TileId, np.ndarray] | None = None) -> dict[str, Any]:
    """For every (event, tile) with scores: does the window of maximum mean score overlap the event?

    ``window_maps[tile]`` is [k, H, W] (the k windows scored), ``starts``/``ends`` their time spans.
    The event's pixels are those whose centre lies in its bounds (and, when ``truth`` is given,
    that the answer key marks as changed: part of a large site may not have changed enough).
    """
    rows = []
    for event in events:
        for tile in event.tiles:
            if tile not in window_maps:
                continue
            pixels = event_pixels(event, grid, tile)
            if truth is not None and tile in truth and (pixels & (truth[tile] > 0)).any():
                pixels &= truth[tile] > 0
            if not pixels.any():
                continue
            per_window = np.asarray(window_maps[tile])[:, pixels].mean(axis=1)
            best = int(np.argmax(per_window))
            hit = overlaps(float(starts[tile][best]), float(ends[tile][best]), event)
            rows.append({"event": event.event_id, "kind": event.kind, "tile": format_tile_id(tile),
                         "best_window": best, "overlaps": hit})
    hits = sum(r["overlaps"] for r in rows)
    return {"events": rows, "hit_rate": hits / len(rows) if rows else math.nan, "scored": len(rows)}


def pooled_counts(reports: Sequence[Mapping[str, Any]], region: str = "inner") -> dict[str, Any]:
    """Scores from the summed ``at_fitted`` counts of several reports (each at its own threshold)."""
    from ercnn_napari.core.metrics import Confusion

    total = Confusion()
    for report in reports:
        at = report.get(region, {}).get("at_fitted", {})
        if "tp" in at:
            total = total + Confusion(at["tp"], at["fp"], at["fn"], at["tn"])
    return {**scores(total), **total.to_dict()}


def ensemble(maps: Sequence[Mapping[TileId, np.ndarray]]) -> dict[TileId, np.ndarray]:
    """Mean of several scorers' maps on the tiles they all have (the V1-V3 ensemble)."""
    common = set(maps[0]).intersection(*[set(m) for m in maps[1:]]) if maps else set()
    return {t: np.mean([np.asarray(m[t], np.float64) for m in maps], axis=0) for t in sorted(common)}
