"""Precision, recall, F1 and IoU of change maps against labels, with numpy only.

The viewer shows these next to a tile while the analyst labels, and the evaluator writes them to
``evaluation.json``; both must agree to the last digit, so both call this module. It is TF-free
because the napari process imports it.

Conventions (the same everywhere in the project):

- a pixel is predicted as change when ``prediction >= threshold`` (0.5 by default);
- a pixel is labelled as change when ``label > 0`` (as the authors' trainer reads label files);
- a pixel labelled negative (``-1``: the analyst was unsure) is left out of every count;
- ``border`` pixels on each side of the last two axes are ignored (``border=1`` gives the inner
  30x30 of a 32x32 tile, the region the transfer loss is computed on);
- a score whose denominator is zero (e.g. precision of a tile where nothing is predicted) is
  ``nan``: "undefined", not a made-up 0 or 1. Pooled (overall) scores are rarely undefined.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np


@dataclass(frozen=True)
class Confusion:
    """Pixel counts of one comparison; adding two pools them (the "overall" of several tiles)."""

    tp: int = 0
    fp: int = 0
    fn: int = 0
    tn: int = 0

    def __add__(self, other: Confusion) -> Confusion:
        return Confusion(self.tp + other.tp, self.fp + other.fp, self.fn + other.fn, self.tn + other.tn)

    @property
    def total(self) -> int:
        return self.tp + self.fp + self.fn + self.tn

    def to_dict(self) -> dict[str, int]:
        return {"tp": self.tp, "fp": self.fp, "fn": self.fn, "tn": self.tn}


def _crop(array: np.ndarray, border: int) -> np.ndarray:
    if border < 0:
        raise ValueError(f"border must be >= 0, got {border}")
    if border == 0:
        return array
    if array.ndim < 2 or min(array.shape[-2:]) <= 2 * border:
        raise ValueError(f"array of shape {array.shape} has no pixels left inside a border of {border}")
    return array[..., border:-border, border:-border]


def confusion(pred: np.ndarray, label: np.ndarray, threshold: float = 0.5, border: int = 0) -> Confusion:
    """Count true/false positives/negatives of ``pred >= threshold`` against ``label > 0``.

    ``pred`` and ``label`` must have the same shape (e.g. ``[32, 32]`` or ``[n, 32, 32]``). NaN in
    ``pred`` is refused: it would silently count as "no change".
    """
    pred = np.asarray(pred)
    label = np.asarray(label)
    if pred.shape != label.shape:
        raise ValueError(f"prediction shape {pred.shape} does not match label shape {label.shape}")
    if np.issubdtype(pred.dtype, np.floating) and np.isnan(pred).any():
        raise ValueError("prediction contains NaN values")
    predicted = _crop(pred, border) >= threshold
    cropped = _crop(label, border)
    actual = cropped > 0
    known = ~(cropped < 0)  # unsure pixels count nowhere
    tp = int(np.count_nonzero(predicted & actual))
    fp = int(np.count_nonzero(predicted & ~actual & known))
    fn = int(np.count_nonzero(~predicted & actual))
    tn = int(np.count_nonzero(known) - tp - fp - fn)
    return Confusion(tp, fp, fn, tn)


def _ratio(numerator: int, denominator: int) -> float:
    return numerator / denominator if denominator else math.nan


def scores(counts: Confusion) -> dict[str, float]:
    """Precision, recall, F1 and IoU (of the change class) from pooled counts; ``nan`` if undefined."""
    precision = _ratio(counts.tp, counts.tp + counts.fp)
    recall = _ratio(counts.tp, counts.tp + counts.fn)
    f1 = _ratio(2 * counts.tp, 2 * counts.tp + counts.fp + counts.fn)
    iou = _ratio(counts.tp, counts.tp + counts.fp + counts.fn)
    return {"precision": precision, "recall": recall, "f1": f1, "iou": iou}


def score_maps(pred: np.ndarray, label: np.ndarray, threshold: float = 0.5, border: int = 0) -> dict[str, float]:
    """Shortcut: :func:`scores` of :func:`confusion` for one pair of maps."""
    return scores(confusion(pred, label, threshold=threshold, border=border))


def tile_scores(
    pairs: Mapping[Any, tuple[np.ndarray, np.ndarray]] | Iterable[tuple[Any, tuple[np.ndarray, np.ndarray]]],
    threshold: float = 0.5,
    border: int = 0,
) -> tuple[dict[Any, dict[str, Any]], dict[str, Any]]:
    """Scores per tile and overall for ``{tile: (prediction, label)}``.

    Returns ``(per_tile, overall)``; each entry holds the four scores plus the counts. The overall
    scores pool the counts of all tiles (micro-average), so a tile without any change does not
    drag a mean of undefined ratios around.
    """
    items = pairs.items() if isinstance(pairs, Mapping) else pairs
    per_tile: dict[Any, dict[str, Any]] = {}
    pooled = Confusion()
    for tile, (pred, label) in items:
        counts = confusion(pred, label, threshold=threshold, border=border)
        pooled = pooled + counts
        per_tile[tile] = {**scores(counts), **counts.to_dict()}
    overall = {**scores(pooled), **pooled.to_dict(), "tiles": len(per_tile)}
    return per_tile, overall
