"""Precision, recall, F1 and IoU counted by hand."""

from __future__ import annotations

import math

import numpy as np
import pytest

from ercnn_napari.core.metrics import Confusion, confusion, score_maps, scores, tile_scores


def test_counts_and_scores_by_hand() -> None:
    pred = np.array([[0.9, 0.5], [0.49, 0.1]])
    label = np.array([[1, 0], [1, 0]], dtype=np.uint8)
    counts = confusion(pred, label)  # 0.5 counts as change (>= threshold)
    assert counts == Confusion(tp=1, fp=1, fn=1, tn=1)
    result = scores(counts)
    assert result == pytest.approx({"precision": 0.5, "recall": 0.5, "f1": 0.5, "iou": 1 / 3})


def test_threshold_and_label_values_above_zero() -> None:
    pred = np.array([[0.7, 0.2, 0.8]])
    label = np.array([[255, 0, 3]])  # any value > 0 is change, as the authors read label files
    assert confusion(pred, label, threshold=0.75) == Confusion(tp=1, fp=0, fn=1, tn=1)
    assert score_maps(pred, label, threshold=0.1)["precision"] == pytest.approx(2 / 3)


def test_border_excludes_outer_ring() -> None:
    pred = np.ones((4, 4))
    label = np.zeros((4, 4))
    label[1:3, 1:3] = 1
    assert confusion(pred, label, border=1) == Confusion(tp=4, fp=0, fn=0, tn=0)
    assert confusion(pred, label) == Confusion(tp=4, fp=12, fn=0, tn=0)


def test_undefined_scores_are_nan() -> None:
    result = score_maps(np.zeros((3, 3)), np.zeros((3, 3)))
    assert all(math.isnan(result[k]) for k in ("precision", "recall", "f1", "iou"))


def test_per_tile_and_pooled_overall() -> None:
    a_pred, a_label = np.array([[1.0, 1.0]]), np.array([[1, 0]])   # tp 1, fp 1
    b_pred, b_label = np.array([[0.0, 0.0]]), np.array([[0, 0]])   # tn 2: precision undefined
    per_tile, overall = tile_scores({(0, 1): (a_pred, a_label), (2, 3): (b_pred, b_label)})
    assert per_tile[(0, 1)]["precision"] == 0.5
    assert math.isnan(per_tile[(2, 3)]["precision"])
    assert overall["precision"] == 0.5 and overall["recall"] == 1.0
    assert (overall["tp"], overall["fp"], overall["fn"], overall["tn"], overall["tiles"]) == (1, 1, 0, 2, 2)


def test_mismatch_and_nan_are_refused() -> None:
    with pytest.raises(ValueError, match="does not match"):
        confusion(np.zeros((2, 2)), np.zeros((3, 3)))
    with pytest.raises(ValueError, match="NaN"):
        confusion(np.array([[np.nan]]), np.array([[1]]))
    with pytest.raises(ValueError, match="border"):
        confusion(np.zeros((2, 2)), np.zeros((2, 2)), border=1)
