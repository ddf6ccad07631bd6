"""Buildings' wall-ground double bounce: where it appears, and that it gives the published network's
SAR block the input statistics it was trained on.

The second test is the calibration target of ``sample/dihedral.py``: the published weights'
first SAR convolution has batch-norm moving variances of 5.7-92 per filter. Those statistics were
accumulated over the authors' training windows, padded frames (-1) included, so the sample's
statistics are computed the same way: the convolution of real sample acquisitions (every 24th S1
pass of both orbits, every tile) mixed with the padded share of a sample window. Without
the double bounce the sample gave ~1000x less variance (the SAR path saw a flat signal).
"""

from __future__ import annotations

import h5py
import numpy as np
import pytest

from ercnn_napari.core.constants import MAX_OBSERVATIONS, WINDOW_DAYS
from ercnn_napari.sample import acquisitions, dihedral
from ercnn_napari.sample import observations as obs
from ercnn_napari.sample.landcover import Cover, LandCover, Roof
from ercnn_napari.sample.scene import STREAM_PIXELS, STREAM_WEATHER, build_scene, stream
from ercnn_napari.sample.site import FINE_PER_PIXEL, SampleSpec

SPEC = SampleSpec()


def test_walls_facing_each_orbit_are_the_west_and_east_edges() -> None:
    """A 6 m high block spanning 1 m cells 25..54 (pixels 2..5) x 12..41 (pixels 1..4) of a 10 x 10 pixel
    window: ascending passes (looking east) see its west wall in pixel column 1, descending its east wall in
    column 4; a wall of 10 m in a pixel counts 1.0, here 5, 10, 10, 5 m down the rows."""
    n = 10 * FINE_PER_PIXEL
    state = LandCover.empty((n, n), Cover.GRASS)
    state.building(25, 12, 55, 42, height=6.0, roof=Roof.SLATE, pitched=False)
    walls = dihedral.facing_walls(state, (slice(0, n), slice(0, n)))
    assert walls.shape == (10, 10, 2)
    west, east = walls[..., 0], walls[..., 1]
    np.testing.assert_allclose(west[2:6, 1], [0.5, 1.0, 1.0, 0.5])       # rows 25-29, 30-39, 40-49, 50-54
    np.testing.assert_allclose(east[2:6, 4], [0.5, 1.0, 1.0, 0.5])
    assert west.sum() == pytest.approx(3.0) and east.sum() == pytest.approx(3.0)
    assert not west[:, [0, 2, 3, 4, 5, 6, 7, 8, 9]].any() and not east[:, [0, 1, 2, 3, 5, 6, 7, 8, 9]].any()
    taller = LandCover.empty((n, n), Cover.GRASS)
    taller.building(25, 12, 55, 42, height=12.0, roof=Roof.SLATE, pitched=False)
    np.testing.assert_allclose(dihedral.facing_walls(taller, (slice(0, n), slice(0, n))), 2 * walls)


def test_aligned_walls_are_bright_and_mostly_co_polarised() -> None:
    gain = dihedral.static_gain(np.random.default_rng(0), (64, 64))
    vv_db, vh_db = (10 * np.log10(gain[..., k]) for k in (0, 1))
    assert vv_db.max() <= dihedral.PEAK_DB + 1e-4 and vv_db.max() > dihedral.PEAK_DB - 0.5
    assert vv_db.min() >= dihedral.PEAK_DB - dihedral.FALLOFF_DB_PER_DEG * dihedral.MAX_MISALIGNMENT_DEG - 1e-4
    np.testing.assert_allclose(vh_db - vv_db, dihedral.CROSS_POL_DB, atol=1e-4)


def _padded_share() -> float:
    """Share of a sample window's 92 steps that are -1 padding (the stacked steps are tile-independent)."""
    sched = acquisitions.schedule(SPEC, stream(SPEC.seed, STREAM_WEATHER, 1))
    times = np.concatenate([sched.s1_asc, sched.s1_desc, sched.s2])
    _, steps = acquisitions.stack_steps(times, SPEC.start_seconds)
    per_window = steps.size * WINDOW_DAYS * 86400.0 / (steps.max() - steps.min())
    return 1.0 - min(per_window, MAX_OBSERVATIONS) / MAX_OBSERVATIONS


def test_sar_input_statistics_match_the_published_batch_norm(published_weights) -> None:
    with h5py.File(published_weights, "r") as handle:
        group = handle["model_weights/conv_sar_10"]
        kernel = group["conv2d/kernel:0"][()]
        moving_variance = group["batch_normalization/moving_variance:0"][()]
    scene, _ = build_scene(SPEC)
    sched = acquisitions.schedule(SPEC, stream(SPEC.seed, STREAM_WEATHER, 1))
    weather = acquisitions.weather(SPEC, stream(SPEC.seed, STREAM_WEATHER))
    n = min(sched.s1_asc.size, sched.s1_desc.size)
    frames = []
    for tile in SPEC.tiles():
        timeline = obs.tile_timeline(scene, SPEC, tile)
        rng = stream(SPEC.seed, STREAM_PIXELS, *tile)
        asc = obs._s1_acquisitions(SPEC, timeline, sched.s1_asc[:n:24], weather, rng, ascending=True)
        desc = obs._s1_acquisitions(SPEC, timeline, sched.s1_desc[:n:24], weather, rng, ascending=False)
        frames += [np.concatenate([a, d], axis=-1) for a, d in zip(asc, desc, strict=True)]
    padded_frames = np.pad(np.stack(frames), ((0, 0), (1, 1), (1, 1), (0, 0)))      # "same" zero padding
    patches = np.lib.stride_tricks.sliding_window_view(padded_frames, (3, 3), axis=(1, 2))  # F, 32, 32, 4, 3, 3
    outputs = np.einsum("fyxcij,ijck->fyxk", patches, kernel, optimize=True)
    valid = outputs.reshape(-1, kernel.shape[-1]).astype(np.float64)
    padded = -kernel.sum(axis=(0, 1, 2))            # the convolution of a -1 frame (inside the tile)
    p = _padded_share()
    assert 0.1 < p < 0.4, p
    mean = valid.mean(axis=0)
    variance = (1 - p) * valid.var(axis=0) + p * (1 - p) * (padded - mean) ** 2
    ratio = moving_variance / variance
    # the median filter within a factor of 4 of the published statistics (a heavy tail's variance is
    # noisy; the sample is a town centre, more built-up than the authors' 500 km2 AoI, so a little more)
    print("published / sample variance per filter:", np.round(ratio, 2))
    assert 1 / 4 < float(np.median(ratio)) < 4, ratio
