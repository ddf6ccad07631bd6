"""The synthetic series behave like a real Sentinel-2 series (read from the shared reference data).

Same statistics on both sides (``sample/calibration.py``): seasonal NDVI amplitude of forest and
grassland, cloud cover, share of clear and overcast scenes over a ~1 km patch, persistence of
clouds between acquisitions, and Sentinel-2 revisit gaps before and after Sentinel-2B.
"""

from __future__ import annotations

import datetime as dt
import functools
import json

import numpy as np
import pytest

from ercnn_napari.sample import acquisitions, clouds
from ercnn_napari.sample import calibration as cal
from ercnn_napari.sample import observations as obs
from ercnn_napari.sample.landcover import Cover
from ercnn_napari.sample.scene import STREAM_WEATHER, build_scene, stream
from ercnn_napari.sample.site import SampleSpec, utc
from ercnn_napari.sample.spectra import ndvi

FOREST, GRASSLAND = 2, 3          # classes of the real patch's land-cover reference
SPEC = SampleSpec()


@pytest.fixture(scope="module")
def real(shared_dir):
    folder = shared_dir / "real_s2_eopatch"
    if not folder.is_dir():
        pytest.skip(f"real Sentinel-2 series not found in {folder} (set ERCNN_SHARED_DIR to a reference-data "
                    "folder with real_s2_eopatch/)")
    stamps = json.loads((folder / "timestamps.json").read_text())
    times = np.array([dt.datetime.fromisoformat(s).replace(tzinfo=dt.timezone.utc).timestamp() for s in stamps])
    return {
        "times": times,
        "ndvi": np.load(folder / "data_NDVI.npy")[..., 0],
        "cloud": np.load(folder / "mask_CLM.npy")[..., 0].astype(bool),
        "cover": np.load(folder / "mask_timeless_LULC.npy")[..., 0],
    }


@pytest.fixture(scope="module")
def synthetic_clouds():
    """Cloud masks of a 100 x 100 pixel (1 km) patch at every synthetic S2 acquisition."""
    sched = acquisitions.schedule(SPEC, stream(SPEC.seed, STREAM_WEATHER, 1))
    cloudiness, _ = acquisitions.weather(SPEC, stream(SPEC.seed, STREAM_WEATHER)).at(sched.s2)
    aoi_m = max(SPEC.rows, SPEC.cols) * 320.0
    masks = [clouds.tile_clouds(clouds.cloud_lattices(SPEC.seed, k, float(c), aoi_m), float(t), 40, 60, 100)[1]
             for k, (t, c) in enumerate(zip(sched.s2, cloudiness, strict=True))]
    return sched.s2, np.stack(masks)


def test_cloud_cover_and_its_spatial_coherence_match_the_real_series(real, synthetic_clouds) -> None:
    real_stats = cal.cloud_statistics(real["cloud"], real["times"])
    syn_stats = cal.cloud_statistics(synthetic_clouds[1], synthetic_clouds[0])
    assert abs(syn_stats["mean_cloud_fraction"] - real_stats["mean_cloud_fraction"]) < 0.08
    assert abs(syn_stats["clear_share"] - real_stats["clear_share"]) < 0.12
    assert abs(syn_stats["overcast_share"] - real_stats["overcast_share"]) < 0.10


def test_cloud_persistence_is_short_like_the_real_series(real, synthetic_clouds) -> None:
    times, masks = synthetic_clouds
    real_lift = cal.cloud_statistics(real["cloud"], real["times"], lag_days=10)["persistence_lift"]
    lift_10 = cal.cloud_statistics(masks, times, lag_days=10)["persistence_lift"]
    lift_5 = cal.cloud_statistics(masks, times, lag_days=5)["persistence_lift"]
    # ten days apart, neither series remembers much; five days apart the synthetic weather still does
    assert 0.6 < real_lift < 1.4 and 0.8 < lift_10 < 1.3
    assert lift_5 > lift_10 - 0.02


def test_revisit_gaps_match(real) -> None:
    sched = acquisitions.schedule(SPEC, stream(SPEC.seed, STREAM_WEATHER, 1))
    s2b = utc("2017-07-15")
    assert cal.modal_gap_days(real["times"][real["times"] < utc("2017-07-01")]) == 10
    assert cal.modal_gap_days(real["times"][real["times"] > s2b]) == 5
    assert cal.modal_gap_days(sched.s2[sched.s2 < utc("2017-07-01")]) == 10
    assert cal.modal_gap_days(sched.s2[sched.s2 > s2b]) == 5


@functools.lru_cache(maxsize=1)
def _timelines() -> tuple:
    """Every tile's land-cover timeline, computed once for both covers (the costly part)."""
    scene, _ = build_scene(SPEC)
    return tuple(obs.tile_timeline(scene, SPEC, tile) for tile in SPEC.tiles())


def _synthetic_ndvi(cover: Cover) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """NDVI and cloud masks of the pure pixels of ``cover`` in the sample tile richest in them."""
    best = None
    for timeline in _timelines():
        tile = timeline.tile
        pure = (timeline.lit + timeline.shaded).min(axis=0)[..., cover] > 0.95
        if best is None or pure.sum() > best[2].sum():
            best = (tile, timeline, pure)
    tile, timeline, pure = best
    sched = acquisitions.schedule(SPEC, stream(SPEC.seed, STREAM_WEATHER, 1))
    weather = acquisitions.weather(SPEC, stream(SPEC.seed, STREAM_WEATHER))
    acq = obs._s2_acquisitions(SPEC, timeline, sched.s2, weather)
    return (np.stack([ndvi(v)[pure] for v, _ in acq]), np.stack([~m[pure] for _, m in acq]), sched.s2)


@pytest.mark.parametrize(("cover", "real_class", "tolerance"), [(Cover.TREE, FOREST, 0.08),
                                                                 (Cover.GRASS, GRASSLAND, 0.12)])
def test_seasonal_ndvi_amplitude_of_vegetation_matches(real, cover, real_class, tolerance) -> None:
    pixels = real["cover"] == real_class
    real_amp = cal.ndvi_amplitude(real["ndvi"][:, pixels], real["cloud"][:, pixels], real["times"])
    values, cloudy, times = _synthetic_ndvi(cover)
    assert values.shape[1] >= 50
    syn_amp = cal.ndvi_amplitude(values, cloudy, times)
    assert abs(syn_amp - real_amp) < tolerance, (syn_amp, real_amp)


def test_backscatter_levels_are_gamma_nought_in_published_ranges() -> None:
    """End-member gamma0 (dB) of a dry, calm, mid-summer day inside the typical C-band ranges of
    docs/sample_data.md (Ulaby & Dobson 1989), raised from sigma0 by 1 / cos(39 deg)."""
    from ercnn_napari.sample.spectra import SIGMA0_TO_GAMMA0_DB, s1_endmembers

    assert SIGMA0_TO_GAMMA0_DB == pytest.approx(1.10, abs=0.01)
    db = 10 * np.log10(s1_endmembers(utc("2018-07-01T12:00:00"), wetness=0.0, wind=0.0, ascending=True))
    ranges = {Cover.WATER: ((-25, -18), (-30, -24)), Cover.GRASS: ((-14, -9), (-22, -15)),
              Cover.TREE: ((-9, -6), (-15, -11)), Cover.BARE: ((-15, -8), (-24, -16)),
              Cover.BUILDING: ((-5, 5), (-15, -5))}
    for cover, ((vv_lo, vv_hi), (vh_lo, vh_hi)) in ranges.items():
        vv, vh = db[cover]
        assert vv_lo <= vv <= vv_hi and vh_lo <= vh <= vh_hi, (cover, vv, vh)


def test_reflectance_levels_are_l1c_toa_in_published_ranges() -> None:
    """End-member TOA reflectance (B04 red, B08 NIR, B11 SWIR1) of a green mid-summer day and a dormant
    mid-winter day inside the typical ranges of docs/sample_data.md; built surfaces brighter in SWIR
    than in NIR (the NDBI sign), vegetation the reverse."""
    from ercnn_napari.sample.landcover import N_COVERS, Roof
    from ercnn_napari.sample.spectra import s2_endmembers

    summer = s2_endmembers(utc("2018-07-01T10:47:00"), wetness=0.0)
    winter = s2_endmembers(utc("2018-01-15T10:47:00"), wetness=0.0)
    red, nir, swir = 3, 7, 11
    ranges = {Cover.GRASS: ((.03, .09), (.15, .40), (.15, .25)), Cover.TREE: ((.02, .07), (.15, .35), (.10, .20)),
              Cover.BARE: ((.10, .20), (.15, .30), (.25, .35)), Cover.ROAD: ((.05, .12), (.05, .12), (.05, .14)),
              Cover.WATER: ((.0, .06), (.0, .03), (.0, .03))}
    for table in (summer, winter):
        for cover, bounds in ranges.items():
            for band, (lo, hi) in zip((red, nir, swir), bounds, strict=True):
                assert lo <= table[cover, band] <= hi, (cover, band, table[cover, band])
    for cover in (Cover.GRASS, Cover.TREE, Cover.CROP):
        assert summer[cover, nir] > 1.3 * summer[cover, swir]                  # NDBI < 0 when green
    for roof in (Roof.RED_TILE, Roof.FLAT_GREY, Roof.METAL, Roof.SLATE, Roof.BITUMEN):
        row = summer[N_COVERS + roof - 1]
        assert row[swir] >= row[nir] > 0.07 and 0.06 <= row[red] <= 0.22, roof
