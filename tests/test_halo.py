"""Context halo: the block read from neighbours, the AoI edge, the mask rule, and equality with a larger block."""

from __future__ import annotations

import keras
import numpy as np
import pytest

from ercnn_napari.core.geo import TileGrid
from ercnn_napari.core.project import Project
from ercnn_napari.ml.data.halo import HaloReader, align_steps, context_windows
from ercnn_napari.ml.data.observations import open_observations
from ercnn_napari.ml.data.pipeline import pad_numpy
from ercnn_napari.ml.data.tfrecords import write_stacked
from ercnn_napari.ml.model.network import ModelConfig, build_model
from ercnn_napari.ml.model.shared_steps import SharedStepModel, predict_series
from ercnn_napari.ml.training.augment import augment_static

DAY = 86400.0
S = 8           # tile size
N = 40          # time steps
ROWS = COLS = 5


@pytest.fixture(scope="module")
def field_project(tmp_path_factory):
    """A 5x5-tile project cut from one continuous field; tile (4, 4) has no observations."""
    root = tmp_path_factory.mktemp("halo")
    rng = np.random.default_rng(2)
    stamps = 1.4832e9 + np.cumsum(rng.uniform(2.0, 3.4, N)) * DAY
    smooth = np.cumsum(np.cumsum(rng.normal(0, 0.02, (N, ROWS * S, COLS * S, 17)), axis=1), axis=2) / 8.0
    field = (0.25 + smooth + rng.normal(0, 0.01, smooth.shape)).astype(np.float32)
    grid = TileGrid("EPSG:32631", 680000.0, 5615000.0, 10.0, 10.0, rows=ROWS, cols=COLS, tile_size=S)
    project = Project.create(root / "p", "Liege", grid, observations={"kind": "stacked", "path": "observations"})
    for y in range(ROWS):
        for x in range(COLS):
            if (y, x) != (4, 4):
                t = field[:, y * S:(y + 1) * S, x * S:(x + 1) * S]
                write_stacked(project.root / "observations" / f"{y}_{x}.tfrecords", stamps,
                              t[..., :2], t[..., 2:4], t[..., 4:])
    return {"source": open_observations(Project.open(project.root)), "field": field, "stamps": stamps}


def test_interior_block_is_the_field_around_the_tile(field_project):
    block = HaloReader(field_project["source"], halo=3).block((2, 1))
    field = field_project["field"]
    assert np.array_equal(block.series, field[:, 2 * S - 3:3 * S + 3, S - 3:2 * S + 3])
    assert block.centre == (slice(3, 3 + S), slice(3, 3 + S))


def test_aoi_edge_reflects_or_stops(field_project):
    field = field_project["field"]
    source = field_project["source"]
    block = HaloReader(source, halo=3, edge="reflect").block((0, 0))
    available = field[:, 0:S + 3, 0:S + 3]
    assert np.array_equal(block.series, np.pad(available, ((0, 0), (3, 0), (3, 0), (0, 0)), mode="reflect"))
    assert block.centre == (slice(3, 3 + S), slice(3, 3 + S))
    none = HaloReader(source, halo=3, edge="none").block((0, 0))
    assert np.array_equal(none.series, available) and none.centre == (slice(0, S), slice(0, S))
    # (3, 3): its lower-right neighbour (4, 4) has no observations: the corner is the centre's, mirrored
    corner = HaloReader(source, halo=2).block((3, 3))
    centre = field[:, 3 * S:4 * S, 3 * S:4 * S]
    assert np.array_equal(corner.series[:, -2:, -2:], centre[:, -2:, -2:][:, ::-1, ::-1])
    assert np.array_equal(corner.series[:, :-2, :-2], field[:, 3 * S - 2:4 * S, 3 * S - 2:4 * S])


def test_align_steps_carries_the_last_state_forward():
    stamps = np.array([0.0, 10.0, 20.0])
    obs = np.arange(3.0)
    assert np.array_equal(align_steps(stamps, obs, np.array([-5.0, 0.0, 15.0, 20.0, 99.0])), [0, 0, 1, 2, 2])


@pytest.fixture(scope="module")
def small_model():
    keras.utils.set_random_seed(7)
    return build_model(ModelConfig(time_steps=40, sar_filters=2, opt_filters=3, head_filters=2))


def test_halo_prediction_equals_a_larger_block(field_project, small_model):
    """A full-tile halo on a 3x3 neighbourhood IS the larger block; a smaller halo comes close, none does not."""
    source, field = field_project["source"], field_project["field"]
    shared = [SharedStepModel(small_model)]
    starts, counts = np.array([0, 3]), np.array([36, 37])
    big = field[:, S:4 * S, S:4 * S]                       # tiles (1..3, 1..3) around (2, 2)
    windows = np.stack([pad_numpy(big[s:s + c], 40) for s, c in zip(starts, counts, strict=True)])
    reference = small_model(windows, training=False).numpy()[:, S:2 * S, S:2 * S]

    def halo_prediction(h):
        block = HaloReader(source, halo=h).block((2, 2))
        probs = predict_series(shared, block.series, starts, counts, mask_region=block.centre)
        return probs[:, block.centre[0], block.centre[1]]

    assert np.abs(halo_prediction(S) - reference).max() < 1e-5
    far = np.abs(halo_prediction(0) - reference).max()
    near = np.abs(halo_prediction(4) - reference).max()
    assert far > 1e-3 and near < far / 3, (near, far)


def test_the_tiles_own_top_left_pixel_decides_the_quirk_mask(field_project, small_model):
    source = field_project["source"]
    reader = HaloReader(source, halo=2)
    block = reader.block((2, 2))
    shared = [SharedStepModel(small_model)]
    starts, counts = np.array([0]), np.array([38])

    def with_value(row, col, value):
        series = block.series.copy()
        series[::3, row, col, 0] = value
        return predict_series(shared, series, starts, counts, mask_region=block.centre)

    # 0 vs a tiny non-zero value: the same input to the convolutions, a different "quirk" flag
    halo_corner = np.abs(with_value(0, 0, 0.0) - with_value(0, 0, 1e-9)).max()
    tile_corner = np.abs(with_value(2, 2, 0.0) - with_value(2, 2, 1e-9)).max()
    assert halo_corner < 1e-6 < 1e-4 < tile_corner, (halo_corner, tile_corner)


def test_training_windows_carry_the_halo_and_keep_the_tiles_corner_rule(field_project):
    """train --context: windows are cut from the halo block; under every augmentation the input's
    top-left pixel (the "quirk" mask's pixel) is the augmented tile's own top-left pixel, and the
    label stays aligned with the centre (frozen columns on the label's odd columns)."""
    source, field, h = field_project["source"], field_project["field"], 2
    table = source.window_table((2, 1))
    rows = np.array([0, len(table) - 1])
    windows = context_windows(HaloReader(source, h), (2, 1), table, rows, time_steps=12)
    assert windows.shape == (2, 12, S + 2 * h, S + 2 * h, 17)
    start, count = int(table.start_index[0]), min(int(table.n_obs[0]), 12)
    expected = field[start:start + count, 2 * S - h:3 * S + h, S - h:2 * S + h].copy()
    corners = [(0, 0), (0, -1), (-1, 0), (-1, -1)]
    for r, c in corners:  # only the four outer corners differ: they hold the tile's corners
        assert np.array_equal(windows[0, :count, r, c], expected[:, h if r == 0 else -h - 1, h if c == 0 else -h - 1])
        expected[:, r, c] = windows[0, :count, r, c]
    assert np.array_equal(windows[0, :count], expected) and np.all(windows[0, count:] == -1.0)
    label = windows[0, 0, h:-h, h:-h, 0].copy()
    for code in range(16):
        got_w, got_l = (np.asarray(a) for a in augment_static(windows, label, code))
        assert np.array_equal(got_w[..., 0, 0, :], got_w[..., h, h, :]), code
        centre = got_w[0, 0, h:-h, h:-h, 0]
        assert np.array_equal(centre[:, ::2], got_l[:, ::2]), code
        if code < 8:
            assert np.array_equal(centre, got_l), code
        else:
            assert not got_l[:, 1::2].any(), code
            assert np.array_equal(got_w[0, 3, h:-h, h:-h][:, 1::2], got_w[0, 0, h:-h, h:-h][:, 1::2]), code
