"""What to label next: rank unlabelled tiles by model uncertainty, spread over the AoI, and keep it.

The scores come from ``ml.suggest`` (disagreement between fine-tuned versions, or MC dropout); this
module is TF-free so the viewer reads the result. Why spread: uncertain tiles cluster (a big
construction site, a cloud-plagued corner), and ten suggestions from one corner teach the model
one thing; a greedy pick that keeps suggestions ``min_distance`` tiles apart (Chebyshev) covers
the AoI, and fills up with the next best tiles only when the AoI is too small for that.

Files (in the project)::

    suggestions/suggestions.json     ranked tiles with scores, models, method, time
    suggestions/uncertainty.npy      float32 [rows*32, cols*32] per-pixel uncertainty (NaN = not scored)
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import numpy as np

from ercnn_napari.core.atomic import atomic_path, atomic_write_text
from ercnn_napari.core.errors import ProjectError
from ercnn_napari.core.tiles import TileId, format_tile_id, parse_tile_id

SUGGESTIONS_DIR = "suggestions"
SUGGESTIONS_FILE = "suggestions.json"
UNCERTAINTY_FILE = "uncertainty.npy"


def spread_ranking(scores: dict[TileId, float], n: int, min_distance: int = 2) -> list[TileId]:
    """Up to ``n`` tiles, most uncertain first, at least ``min_distance`` tiles apart where possible."""
    ordered = sorted(scores, key=lambda t: (-scores[t], t))
    chosen: list[TileId] = []
    for tile in ordered:
        if len(chosen) >= n:
            break
        if all(max(abs(tile[0] - c[0]), abs(tile[1] - c[1])) >= min_distance for c in chosen):
            chosen.append(tile)
    for tile in ordered:  # a small AoI: fill with the next best, even if close
        if len(chosen) >= n:
            break
        if tile not in chosen:
            chosen.append(tile)
    return chosen


def suggestions_dir(root: str | Path) -> Path:
    return Path(root) / SUGGESTIONS_DIR


def write_suggestions(root: str | Path, ranked: list[TileId], scores: dict[TileId, float],
                      uncertainty: np.ndarray, info: dict[str, Any]) -> dict[str, Any]:
    """Save the ranking and the uncertainty mosaic atomically; returns the JSON document."""
    folder = suggestions_dir(root)
    with atomic_path(folder / UNCERTAINTY_FILE) as tmp:
        np.save(tmp, np.asarray(uncertainty, np.float32))
    document = {
        "format": "ercnn-napari-suggestions", "version": 1, "time": time.time(), **info,
        "suggested": [{"tile": format_tile_id(t), "score": float(scores[t])} for t in ranked],
        "scores": {format_tile_id(t): float(s) for t, s in sorted(scores.items())},
    }
    atomic_write_text(folder / SUGGESTIONS_FILE, json.dumps(document, indent=1) + "\n")
    return document


def read_suggestions(root: str | Path) -> tuple[list[tuple[TileId, float]], np.ndarray | None, dict[str, Any]]:
    """(ranked tiles with scores, uncertainty mosaic or None, the document); empty if none saved."""
    path = suggestions_dir(root) / SUGGESTIONS_FILE
    if not path.is_file():
        return [], None, {}
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
        ranked = [(parse_tile_id(item["tile"], path), float(item["score"])) for item in document["suggested"]]
    except (ValueError, KeyError, TypeError) as exc:
        raise ProjectError(f"suggestions file is not valid ({exc})", path) from exc
    mosaic_path = suggestions_dir(root) / UNCERTAINTY_FILE
    mosaic = np.load(mosaic_path) if mosaic_path.is_file() else None
    return ranked, mosaic, document
