"""Threshold-free scores (ROC AUC, average precision) and a threshold fitted on training tiles.

Why: F1 at 0.5 mixes two questions, "does the model rank changed pixels above unchanged ones?"
and "is 0.5 the right cut for this model on this area?". A fine-tune that only shifts the output
level moves F1 at 0.5 a lot and AUC not at all; a reviewer needs both. The threshold an analyst
would use is the one that was best on the tiles the model was trained on (never on the tiles it
is judged on). numpy only: the viewer and the TF-free index baseline use it too.
"""

from __future__ import annotations

import math

import numpy as np


def _flat(scores: np.ndarray, truth: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    s = np.asarray(scores, dtype=np.float64).ravel()
    t = np.asarray(truth).ravel() > 0
    if s.shape != t.shape:
        raise ValueError(f"{s.size} scores for {t.size} truth values")
    if np.isnan(s).any():
        raise ValueError("scores contain NaN values")
    return s, t


def roc_auc(scores: np.ndarray, truth: np.ndarray) -> float:
    """Area under the ROC curve (Mann-Whitney U with average ranks for ties); nan if one class is absent."""
    s, t = _flat(scores, truth)
    n_pos = int(t.sum())
    n_neg = t.size - n_pos
    if n_pos == 0 or n_neg == 0:
        return math.nan
    order = np.argsort(s, kind="mergesort")
    ranks = np.empty(s.size, dtype=np.float64)
    sorted_s = s[order]
    # average rank of every run of equal scores (1-based ranks)
    starts = np.flatnonzero(np.r_[True, sorted_s[1:] != sorted_s[:-1]])
    ends = np.r_[starts[1:], s.size]
    for a, b in zip(starts, ends, strict=True):
        ranks[order[a:b]] = (a + 1 + b) / 2.0
    u = ranks[t].sum() - n_pos * (n_pos + 1) / 2.0
    return float(u / (n_pos * n_neg))


def _curve(s: np.ndarray, t: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Distinct thresholds (descending) with the true and false positives at ``score >= threshold``."""
    order = np.argsort(-s, kind="mergesort")
    s_sorted, t_sorted = s[order], t[order]
    last = np.flatnonzero(np.r_[s_sorted[1:] != s_sorted[:-1], True])  # last index of each tie run
    tp = np.cumsum(t_sorted)[last].astype(np.float64)
    fp = (last + 1) - tp
    return s_sorted[last], tp, fp


def average_precision(scores: np.ndarray, truth: np.ndarray) -> float:
    """Average precision: sum over thresholds of (recall gain) x precision; nan without positives."""
    s, t = _flat(scores, truth)
    n_pos = int(t.sum())
    if n_pos == 0:
        return math.nan
    _, tp, fp = _curve(s, t)
    precision = tp / (tp + fp)
    recall = tp / n_pos
    gains = np.diff(np.r_[0.0, recall])
    return float((gains * precision).sum())


def best_f1_threshold(scores: np.ndarray, truth: np.ndarray) -> tuple[float, float]:
    """``(threshold, f1)``: the cut (``score >= threshold`` = change) with the highest F1.

    The threshold is placed halfway between the chosen score and the next lower distinct score, so
    a slightly different model or tile set does not fall exactly on the edge. Without positives
    (nothing to find) the result is ``(nan, nan)``: no threshold can be fitted.
    """
    s, t = _flat(scores, truth)
    n_pos = int(t.sum())
    if n_pos == 0:
        return math.nan, math.nan
    thresholds, tp, fp = _curve(s, t)
    f1 = 2 * tp / (tp + fp + n_pos)
    best = int(np.argmax(f1))
    lower = thresholds[best + 1] if best + 1 < thresholds.size else thresholds[best] - 1e-6
    return float((thresholds[best] + lower) / 2.0), float(f1[best])
