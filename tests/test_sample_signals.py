"""The synthetic Sentinel series follow the land cover, the revisits and the authors' stacking."""

from __future__ import annotations

import numpy as np
import pytest

from ercnn_napari.sample import observations as obs
from ercnn_napari.sample import records
from ercnn_napari.sample.calibration import months_of
from ercnn_napari.sample.landcover import Cover
from ercnn_napari.sample.records import recorded_schedule
from ercnn_napari.sample.scene import STREAM_PIXELS, build_scene, stream
from ercnn_napari.sample.site import SampleSpec, utc
from ercnn_napari.sample.spectra import ndvi

SPEC = SampleSpec(rows=3, cols=4, seed=14)
DAY = 86400.0


@pytest.fixture(scope="module")
def scene_and_tile():
    scene, _ = build_scene(SPEC)
    ev = next(e for e in scene.events if e.kind.startswith("construction") and e.start > utc("2017-08-01")
              and e.phases[-1][0] < SPEC.end_seconds and e.site[0] // 320 == (e.site[2] - 1) // 320
              and e.site[1] // 320 == (e.site[3] - 1) // 320)       # a construction inside one tile
    tile = (ev.site[0] // 320, ev.site[1] // 320)
    return scene, ev, tile


@pytest.fixture(scope="module")
def parts(scene_and_tile):
    """The raw acquisitions and the stacked series of the construction tile."""
    scene, _, tile = scene_and_tile
    timeline = obs.tile_timeline(scene, SPEC, tile)
    sched = recorded_schedule(SPEC)
    weather = records.weather(SPEC)
    rng = stream(SPEC.seed, STREAM_PIXELS, *tile)
    s2 = obs._s2_acquisitions(SPEC, timeline, sched.s2, weather, sched.s2_numbers())
    asc = obs._s1_acquisitions(SPEC, timeline, sched.s1_asc, weather, rng, ascending=True)
    desc = obs._s1_acquisitions(SPEC, timeline, sched.s1_desc, weather, rng, ascending=False)
    return timeline, sched, s2, asc, desc, obs.stack(SPEC, sched, asc, desc, s2)


def test_synthesis_is_deterministic(scene_and_tile, parts) -> None:
    scene, _, tile = scene_and_tile
    series = obs.synthesize_tile(SPEC, obs.tile_timeline(scene, SPEC, tile))
    stacked = parts[-1]
    assert np.array_equal(series.s2, stacked.s2) and np.array_equal(series.s1_asc, stacked.s1_asc)


def test_revisits_match_the_constellations() -> None:
    sched = records.full_schedule(SPEC)
    gaps_asc = np.round(np.diff(sched.s1_asc) / DAY)
    assert np.median(gaps_asc) == 6 and np.median(np.round(np.diff(sched.s1_desc) / DAY)) == 6
    early = sched.s2[sched.s2 < utc("2017-07-01")]
    late = sched.s2[sched.s2 > utc("2017-07-15")]
    assert np.median(np.round(np.diff(early) / DAY)) == 10      # Sentinel-2A alone
    assert np.median(np.round(np.diff(late) / DAY)) == 5        # with Sentinel-2B
    assert 0 < (np.round(np.diff(late) / DAY) > 5).mean() < 0.1  # a few acquisitions missing


def test_stacking_one_step_per_2_day_bucket_with_latest_values(parts) -> None:
    _, sched, s2, asc, desc, stacked = parts
    t = stacked.timestamps
    assert np.all(np.diff(t) > 0)
    buckets = np.floor((t - SPEC.start_seconds) / (2 * DAY))
    assert np.unique(buckets).size == t.size
    assert t[0] == utc("2017-01-01T05:50:00") and t[-1] <= SPEC.end_seconds
    every = np.concatenate([sched.s1_asc, sched.s1_desc, sched.s2])
    assert set(np.unique(np.floor((every - SPEC.start_seconds) / (2 * DAY)))) == set(buckets)
    # each step shows the latest ascending pass at or before it
    for step in (0, 100, t.size - 1):
        k = np.searchsorted(sched.s1_asc, t[step], side="right") - 1
        expected = np.zeros_like(stacked.s1_asc[step]) if k < 0 else asc[k]
        assert np.array_equal(stacked.s1_asc[step], expected)
    assert stacked.s2.shape == (t.size, 32, 32, 13) and stacked.s1_desc.shape == (t.size, 32, 32, 2)


def test_cloudy_pixels_keep_the_previous_value_and_start_at_zero(parts) -> None:
    _, sched, s2, _, _, stacked = parts
    first_s2_step = np.searchsorted(stacked.timestamps, sched.s2[0])
    assert not stacked.s2[:first_s2_step].any()                  # initial state: zeros
    carried = 0
    for k in range(1, len(s2)):
        values, valid = s2[k]
        step = np.searchsorted(stacked.timestamps, sched.s2[k])
        if np.searchsorted(stacked.timestamps, sched.s2[k - 1]) == step:
            continue
        assert np.array_equal(stacked.s2[step][valid], values[valid])
        assert np.array_equal(stacked.s2[step][~valid], stacked.s2[step - 1][~valid])
        carried += (~valid).sum()
    assert carried > 0
    masked_share = np.mean([(~v).mean() for _, v in s2])
    assert 0.15 < masked_share < 0.45          # all-cloud scenes have no record (records.py)


def test_s2_is_l1c_like(parts) -> None:
    _, _, s2, *_ = parts
    values = np.stack([v for v, _ in s2])
    assert np.allclose(values * 1e4, np.round(values * 1e4), atol=1e-2)   # quantised to 1e-4
    assert values.min() >= 0 and values.max() < 1.6
    clear = np.stack([m for _, m in s2])
    surface = values[clear]
    # L1C: blue above red on average (path radiance), cirrus band dark without clouds
    assert surface[:, 1].mean() > surface[:, 3].mean() * 0.9
    assert np.median(surface[:, 10]) < 0.02


def test_s1_speckle_is_gamma_with_the_looks_of_grd(parts) -> None:
    timeline, _, _, asc, _, _ = parts
    always = (timeline.lit + timeline.shaded).min(axis=0)          # pure in every land-cover state
    water = always[..., Cover.WATER] > 0.99
    grass = always[..., Cover.GRASS] > 0.99
    pure = grass if grass.sum() > water.sum() else water
    assert pure.sum() >= 10
    vv = np.stack(asc)[:, pure, 0]
    cv = (vv.std(axis=1) / vv.mean(axis=1)).mean()             # spread within one pass
    assert abs(cv - 1 / np.sqrt(obs.S1_LOOKS)) < 0.12
    assert (np.stack(asc) > 0).all()


def test_construction_shows_in_ndvi_and_backscatter(scene_and_tile, parts) -> None:
    _, ev, _ = scene_and_tile
    timeline, sched, s2, asc, _, _ = parts
    cleared, completed = ev.phases[0][0], ev.phases[-1][0]
    fractions = timeline.lit + timeline.shaded
    bare = fractions[timeline.state_index(cleared)][..., Cover.BARE] > 0.9
    built = (fractions[-1][..., 8:] - fractions[0][..., 8:]).sum(axis=-1) > 0.4    # new roofs
    assert bare.sum() >= 2 and built.sum() >= 1
    months = months_of(sched.s2)

    def median_ndvi(t0: float, t1: float, pixels: np.ndarray, season: bool) -> float:
        picks = [ndvi(v[pixels])[m[pixels]] for t, month, (v, m) in zip(sched.s2, months, s2, strict=True)
                 if t0 <= t < t1 and (not season or 5 <= month <= 9)]
        return float(np.median(np.concatenate(picks)))

    def mean_vv(t0: float, t1: float) -> float:
        return float(np.mean([a[built, 0] for t, a in zip(sched.s1_asc, asc, strict=True) if t0 <= t < t1]))

    green_before = median_ndvi(SPEC.start_seconds, cleared, bare, season=True)
    while_bare = median_ndvi(cleared, ev.phases[1][0], bare, season=False)
    assert green_before - while_bare > 0.25
    assert mean_vv(completed, SPEC.end_seconds) > 2.0 * mean_vv(SPEC.start_seconds, cleared)


def test_clouds_cover_the_far_corner_of_a_large_grid_and_agree_across_tiles() -> None:
    from ercnn_napari.sample import clouds

    aoi_m = 16 * 320.0
    lat = clouds.cloud_lattices(3, 0, 0.5, aoi_m)
    when = utc("2017-12-21T10:47:00")                      # low sun: the longest cloud shadows
    opacity, mask, shade = clouds.tile_clouds(lat, when, 15 * 32, 15 * 32, 32)
    assert opacity.shape == mask.shape == shade.shape == (32, 32)
    # a 64-pixel window equals its four 32-pixel tiles: neighbouring tiles share one cloud deck
    big = clouds.tile_clouds(lat, when, 0, 0, 64)
    for r in (0, 32):
        for c in (0, 32):
            part = clouds.tile_clouds(lat, when, r, c, 32)
            for whole, piece in zip(big, part, strict=True):
                assert np.allclose(whole[r:r + 32, c:c + 32], piece, atol=1e-5)
    with pytest.raises(ValueError, match="outside its lattice"):
        clouds.tile_clouds(clouds.cloud_lattices(3, 0, 0.5, 320.0), when, 15 * 32, 15 * 32, 32)
