"""The held-out report (core.heldout) on maps whose figures are worked out by hand; numpy only."""

from __future__ import annotations

import math

import numpy as np
import pytest

from ercnn_napari.core.answer_key import Event
from ercnn_napari.core.geo import TileGrid
from ercnn_napari.core.heldout import ensemble, event_timing, fit_threshold, map_report, pooled_counts


def _maps() -> tuple[dict, dict]:
    truth = np.zeros((6, 6), np.float32)
    truth[2:4, 2:4] = 1.0                          # 4 changed pixels, all inside the ring
    score = np.full((6, 6), 0.1, np.float32)
    score[2:4, 2:4] = 0.7
    score[2, 2] = 0.3                              # one missed change pixel
    score[0, :] = 0.9                              # the ring lights up: 6 false positives on the edge
    return {(0, 0): score}, {(0, 0): truth}


def test_inner_and_ring_are_scored_apart() -> None:
    maps, truth = _maps()
    report = map_report(maps, truth, fitted_threshold=0.2, border=1)
    inner, ring = report["inner"], report["ring"]
    assert inner["pixels"] == 16 and ring["pixels"] == 20 and inner["changed"] == 4
    # inner at 0.5: tp 3, fp 0, fn 1 -> F1 = 6 / 7; at 0.2 all four found, nothing else above 0.2
    assert inner["at_0_5"]["f1"] == pytest.approx(6 / 7)
    assert inner["at_fitted"]["f1"] == pytest.approx(1.0)
    # ranking: every change pixel (0.3, 0.7 x3) is above every unchanged inner pixel (0.1)
    assert inner["auc"] == pytest.approx(1.0) and inner["ap"] == pytest.approx(1.0)
    # ring: no change there, 6 false positives; F1 is 0, AUC undefined
    assert ring["at_0_5"]["fp"] == 6 and ring["at_0_5"]["f1"] == 0.0 and math.isnan(ring["auc"])


def test_fitted_threshold_comes_from_the_training_maps() -> None:
    maps, truth = _maps()
    fitted = fit_threshold(maps, truth, border=1)
    assert fitted["train_f1"] == pytest.approx(1.0)
    assert 0.1 < fitted["threshold"] < 0.3          # halfway between 0.3 and 0.1
    assert math.isnan(fit_threshold(maps, {(0, 0): np.zeros((6, 6))})["threshold"])


def test_pooled_counts_sum_each_fold_at_its_own_threshold() -> None:
    maps, truth = _maps()
    a = map_report(maps, truth, fitted_threshold=0.5, border=1)   # tp 3, fn 1
    b = map_report(maps, truth, fitted_threshold=0.2, border=1)   # tp 4
    pooled = pooled_counts([a, b])
    assert (pooled["tp"], pooled["fp"], pooled["fn"]) == (7, 0, 1)
    assert pooled["f1"] == pytest.approx(14 / 15)


def test_ensemble_is_the_mean_on_common_tiles() -> None:
    one = {(0, 0): np.zeros((2, 2)), (0, 1): np.ones((2, 2))}
    two = {(0, 0): np.ones((2, 2))}
    mean = ensemble([one, two])
    assert list(mean) == [(0, 0)] and np.all(mean[(0, 0)] == 0.5)


def test_event_timing_asks_whether_the_peak_window_overlaps_the_event() -> None:
    grid = TileGrid("EPSG:32631", 0.0, 320.0, 10.0, 10.0, 1, 1)
    # event over pixels rows 2-3, cols 2-3 (x 20-40, y 280-300), from t=100 to t=200
    event = Event(1, "construction", 100.0, 200.0, (20.0, 280.0, 40.0, 300.0), ((0, 0),))
    windows = np.zeros((3, 32, 32), np.float32)
    windows[1, 2:4, 2:4] = 0.9                     # the second window sees it
    starts, ends = np.array([0.0, 150.0, 300.0]), np.array([90.0, 250.0, 400.0])
    timing = event_timing({(0, 0): windows}, {(0, 0): starts}, {(0, 0): ends}, [event], grid)
    assert timing["scored"] == 1 and timing["events"][0]["best_window"] == 1 and timing["hit_rate"] == 1.0
    windows[2, 2:4, 2:4] = 1.0                     # now a later window peaks: it does not overlap
    timing = event_timing({(0, 0): windows}, {(0, 0): starts}, {(0, 0): ends}, [event], grid)
    assert timing["events"][0]["best_window"] == 2 and timing["hit_rate"] == 0.0
