"""The sample's land cover, change events, answer key and labels (TF-free, small grids)."""

from __future__ import annotations

import numpy as np
import pytest
from rasterio.warp import transform as warp_transform

from ercnn_napari.sample import truth
from ercnn_napari.sample.landcover import Cover
from ercnn_napari.sample.scene import STREAM_LABELS, build_scene, stream, tile_bounds_fine
from ercnn_napari.sample.site import CRS, LIEGE_AOI_LONLAT, SampleSpec, utc

SMALL = SampleSpec(rows=3, cols=4, seed=11)


@pytest.fixture(scope="module")
def small_scene():
    return build_scene(SMALL)


def _corners_lonlat(spec: SampleSpec) -> list[tuple[float, float]]:
    size = 320.0
    xs = [spec.origin_x, spec.origin_x + spec.cols * size]
    ys = [spec.origin_y, spec.origin_y - spec.rows * size]
    pts = [(x, y) for x in xs for y in ys]
    lon, lat = warp_transform(CRS, "EPSG:4326", [p[0] for p in pts], [p[1] for p in pts])
    return list(zip(lon, lat, strict=True))


def test_default_grid_lies_inside_the_authors_liege_aoi() -> None:
    spec = SampleSpec()
    assert spec.rows >= 4 and spec.cols >= 6
    west, south, east, north = LIEGE_AOI_LONLAT
    for lon, lat in _corners_lonlat(spec):
        assert west < lon < east and south < lat < north


def test_default_grid_inside_the_shared_aoi_polygon(shared_dir) -> None:
    import shapefile
    from shapely.geometry import Point, shape

    aoi = shape(shapefile.Reader(str(shared_dir / "aoi" / "Liege_4326.shp")).shapes()[0].__geo_interface__)
    assert all(aoi.contains(Point(lon, lat)) for lon, lat in _corners_lonlat(SampleSpec()))


def test_scene_is_deterministic_for_a_seed(small_scene) -> None:
    again, _ = build_scene(SMALL)
    scene, _ = small_scene
    assert np.array_equal(scene.base.cover, again.base.cover)
    assert [e.site for e in scene.events] == [e.site for e in again.events]
    other, _ = build_scene(SampleSpec(rows=3, cols=4, seed=12))
    assert not np.array_equal(scene.base.cover, other.base.cover)


def test_land_cover_has_every_class_in_plausible_shares(small_scene) -> None:
    scene, _ = small_scene
    share = np.bincount(scene.base.cover.ravel(), minlength=len(Cover)) / scene.base.cover.size
    for cover in (Cover.GRASS, Cover.TREE, Cover.ROAD, Cover.PAVED, Cover.BUILDING):
        assert share[cover] > 0.02, cover
    assert share[Cover.GRASS] < 0.7 and share[Cover.BUILDING] < 0.3


def test_construction_goes_from_vegetation_to_bare_soil_to_building(small_scene) -> None:
    scene, _ = small_scene
    built = [e for e in scene.events if e.kind.startswith("construction")]
    assert built, "the sample must contain constructions"
    ev = built[0]
    cleared, completed = ev.phases[0][0], ev.phases[-1][0]
    assert utc("2017-01-01") < cleared < completed
    before = scene.state_at(cleared - 86400, ev.site).cover
    during = scene.state_at(cleared + 86400, ev.site).cover
    after = scene.state_at(completed + 86400, ev.site).cover
    assert np.isin(before, (Cover.GRASS, Cover.CROP, Cover.TREE, Cover.BARE)).mean() > 0.95
    assert (during == Cover.BARE).all()
    assert (after == Cover.BUILDING).mean() > 0.15


def test_answer_key_marks_exactly_the_tiles_with_events(small_scene) -> None:
    scene, _ = small_scene
    touched = set()
    for ev in scene.events:
        r0, c0, r1, c1 = ev.site
        touched |= {(r // 320, c // 320) for r in range(r0, r1) for c in range(c0, c1)}
    for tile in SMALL.tiles():
        key = truth.answer_key(scene, SMALL, tile)
        assert key.shape == (32, 32) and key.dtype == np.uint8
        if tile not in touched:
            assert not key.any(), tile
    assert sum(truth.answer_key(scene, SMALL, t).sum() for t in SMALL.tiles()) > 20


def test_labels_are_close_to_but_not_the_answer_key(small_scene) -> None:
    scene, _ = small_scene
    outlines = truth.label_polygons(scene, SMALL, stream(SMALL.seed, STREAM_LABELS))
    inter = union = differ = 0
    for tile in SMALL.tiles():
        label = truth.rasterize_label(truth.tile_polygons(outlines, SMALL, tile), SMALL, tile).astype(bool)
        key = truth.answer_key(scene, SMALL, tile).astype(bool)
        inter += (label & key).sum()
        union += (label | key).sum()
        differ += (label != key).sum()
    assert union > 0 and inter / union > 0.55      # an analyst's outlines match the truth roughly
    assert differ > 0                               # ... but not pixel for pixel


def test_state_windows_agree_with_the_whole_map(small_scene) -> None:
    scene, _ = small_scene
    when = utc("2020-12-01")
    whole = scene.state_at(when)
    r0, c0, r1, c1 = tile_bounds_fine((1, 2))
    assert np.array_equal(whole.cover[r0:r1, c0:c1], scene.state_at(when, (r0, c0, r1, c1)).cover)
