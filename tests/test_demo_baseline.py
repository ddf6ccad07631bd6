"""The shipped demo baseline is not a tile-border detector (issue: the ring was never trained).

A network made from scratch keeps whatever it has on the 1-pixel ring when the pre-training loss
leaves the ring out; the earlier demo baselines flagged nearly the whole ring of every tile at
0.5 (922 of 992 ring pixels on eight held-out sample tiles). This scores the shipped file on the
sample project's tiles the way ``evaluate`` does (max over evenly spaced windows, each tile alone).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("tensorflow")

from ercnn_napari.core.model_files import DEMO_BASELINE  # noqa: E402
from ercnn_napari.core.project import Project  # noqa: E402
from ercnn_napari.ml.data.observations import open_observations  # noqa: E402
from ercnn_napari.ml.inference.evaluate import predict_window_maps  # noqa: E402
from ercnn_napari.ml.model.weights import load_model  # noqa: E402


def test_demo_baseline_does_not_flag_the_tile_ring(sample_project: Path) -> None:
    if not DEMO_BASELINE.is_file():
        pytest.skip(f"no demo baseline in this installation ({DEMO_BASELINE})")
    model, config = load_model(DEMO_BASELINE)
    project = Project.open(sample_project)
    source = open_observations(project)
    tiles = project.tiles_with_observations()
    assert tiles
    ring, inner = [], []
    for tile in tiles:
        maps, _, _ = predict_window_maps(model, config.time_steps, source, tile, 3)
        peak = maps.max(axis=0) >= 0.5
        mask = np.ones(peak.shape, bool)
        mask[1:-1, 1:-1] = False
        ring.append(peak[mask])
        inner.append(peak[~mask])
    ring_share, inner_share = float(np.concatenate(ring).mean()), float(np.concatenate(inner).mean())
    # the ring is flagged no more than the inside of the tiles (plus a few pixels of slack)
    assert ring_share <= inner_share + 0.05, (ring_share, inner_share)
