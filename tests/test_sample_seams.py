"""The sample has no tile borders: what belongs to a satellite pass is one field over the AoI.

Before, haze, gain, cloud brightness and wind were drawn per tile, so a pixel's series jumped at
every tile border (the row-mean column difference across a border varied 4-11x more over time
than inside a tile in the blue and red bands); a network that sees a tile with its neighbours'
context fired on the border. Also: all-cloud Sentinel-2 scenes leave no record, as the authors'
retrieval dropped them.
"""

from __future__ import annotations

import numpy as np

from ercnn_napari.sample import atmosphere, clouds, records
from ercnn_napari.sample import observations as obs
from ercnn_napari.sample.scene import build_scene
from ercnn_napari.sample.site import SampleSpec

SPEC = SampleSpec(rows=1, cols=2, seed=5)


def _border_over_inside(left: np.ndarray, right: np.ndarray) -> float:
    """Temporal spread of the row-mean column difference at the border over its median inside.

    Static structure (land cover) is removed by subtracting each column pair's mean over time;
    what remains is how much the two sides move against each other from pass to pass.
    """
    both = np.concatenate([left, right], axis=2).astype(np.float64)      # [N, 32, 64]
    step = np.diff(both, axis=2).mean(axis=1)                             # [N, 63]
    spread = (step - step.mean(axis=0)).std(axis=0)
    return float(spread[31] / np.median(np.delete(spread, 31)))


def test_neighbouring_tiles_agree_at_their_border() -> None:
    scene, _ = build_scene(SPEC)
    sched = records.recorded_schedule(SPEC)
    weather = records.weather(SPEC)
    pick = np.arange(0, sched.s2.size, max(1, sched.s2.size // 60))[:60]
    sides = []
    for tile in ((0, 0), (0, 1)):
        timeline = obs.tile_timeline(scene, SPEC, tile)
        sides.append(obs._s2_acquisitions(SPEC, timeline, sched.s2[pick], weather, sched.s2_numbers()[pick]))
    clear = [k for k in range(len(pick)) if sides[0][k][1].all() and sides[1][k][1].all()]
    assert len(clear) >= 15
    for band in (1, 3, 7):                                                # B02, B04, B08
        left = np.stack([sides[0][k][0][..., band] for k in clear])
        right = np.stack([sides[1][k][0][..., band] for k in clear])
        assert _border_over_inside(left, right) < 1.5, band


def test_pass_fields_are_the_same_whichever_tile_asks() -> None:
    sky = atmosphere.s2_pass(SPEC.seed, 17, 64)
    whole = atmosphere.haze_field(sky, 0, 0, 64)
    for r in (0, 32):
        for c in (0, 32):
            assert np.allclose(whole[r:r + 32, c:c + 32], atmosphere.haze_field(sky, r, c, 32), atol=1e-6)
    assert whole.std() > 0.0                                              # it does vary in space
    assert atmosphere.s2_pass(SPEC.seed, 17, 64).gain == sky.gain
    assert atmosphere.s1_wind(SPEC.seed, 3, True) == atmosphere.s1_wind(SPEC.seed, 3, True)


def test_all_cloud_scenes_have_no_record() -> None:
    full, kept = records.full_schedule(SPEC), records.recorded_schedule(SPEC)
    cloudiness, _ = records.weather(SPEC).at(full.s2)
    aoi_m = 2 * 320.0
    overcast = []
    for k, (t, c) in enumerate(zip(full.s2, cloudiness, strict=True)):
        lat = clouds.cloud_lattices(SPEC.seed, k, float(c), aoi_m)
        masks = [clouds.tile_clouds(lat, float(t), 0, col, 32)[1] for col in (0, 32)]
        overcast.append(all(m.all() for m in masks))
    overcast = np.array(overcast)
    assert 0.1 < overcast.mean() < 0.5                   # a few in ten passes see only cloud
    assert np.array_equal(kept.s2_ids, np.flatnonzero(~overcast))
    assert np.array_equal(kept.s2, full.s2[~overcast])
    assert np.array_equal(kept.s1_asc, full.s1_asc) and np.array_equal(kept.s1_desc, full.s1_desc)


def test_speckle_is_correlated_like_grd_and_runs_through_tile_borders() -> None:
    from ercnn_napari.sample.speckle import tile_speckle

    passes = [np.concatenate([tile_speckle(SPEC.seed, (0, 0), k, 4.4), tile_speckle(SPEC.seed, (0, 1), k, 4.4)],
                             axis=1)[..., 0] for k in range(40)]
    field = np.stack(passes)                                             # [40, 32, 64]
    assert abs(field.mean() - 1.0) < 0.02 and abs(field.std() - 1 / np.sqrt(4.4)) < 0.02   # 4.4 looks

    def corr(a: int) -> float:
        return float(np.corrcoef(field[:, :, a].ravel(), field[:, :, a + 1].ravel())[0, 1])

    inside = np.median([corr(a) for a in range(4, 28)])
    assert 0.55 < inside < 0.8                       # 2/3 for the [1/4, 1/2, 1/4] blur
    assert abs(corr(31) - inside) < 0.1              # across the tile border as inside
    # the same pass and tile give the same field whichever tile asks for the ring
    assert np.array_equal(tile_speckle(SPEC.seed, (0, 0), 3, 4.4), tile_speckle(SPEC.seed, (0, 0), 3, 4.4))
    # no part of the ring is left undrawn (a neighbour's perimeter comes first in its stream)
    assert np.isfinite(field).all()
