"""Export the sample generator's raw acquisitions (before stacking) as a local ingest folder.

The generator (``ercnn_napari.sample``) synthesises every acquisition of a tile and then stacks
them with the authors' rule. This helper replays the same calls for every tile, mosaics each
acquisition over the AoI, and writes one GeoTIFF per acquisition plus ``manifest.csv`` in the
formats analysts bring: S1 ascending in dB (float64), S1 descending as linear power and one as
amplitude, S2 as L1C DN (with the +1000 offset from 2022-01-25 on), one S2 as reflectance, masks as
a separate file or as a band, bands in shuffled order, some files larger than the AoI. It also
returns the stacked series the generator writes directly, per tile, to compare with.
"""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import rasterio
from affine import Affine

from ercnn_napari.ingest.scene import S2_BANDS
from ercnn_napari.ingest.units import s2_dn_offset
from ercnn_napari.sample import acquisitions
from ercnn_napari.sample.observations import (
    _s1_acquisitions,
    _s2_acquisitions,
    stack,
    synthesize_tile,
    tile_timeline,
)
from ercnn_napari.sample.scene import STREAM_PIXELS, STREAM_WEATHER, build_scene, stream
from ercnn_napari.sample.site import CRS, SampleSpec, iso


def generator_acquisitions(spec: SampleSpec):
    """(schedule, {tile: (asc list, desc list, s2 list)}, {tile: expected StackedSeries}).

    The export holds every pass, including S2 acquisitions with no valid pixel in the whole AoI
    (all cloud); the expected series leaves them out, because the authors dropped such scenes and
    both ingest and the generator (``records.recorded_schedule``) do too. The expected series is
    computed by the generator's own ``stack`` and equals ``synthesize_tile``'s.
    """
    scene, _ = build_scene(spec)
    sched = acquisitions.schedule(spec, stream(spec.seed, STREAM_WEATHER, 1))
    weather = acquisitions.weather(spec, stream(spec.seed, STREAM_WEATHER))
    raw, expected = {}, {}
    for tile in spec.tiles():
        timeline = tile_timeline(scene, spec, tile)
        rng = stream(spec.seed, STREAM_PIXELS, *tile)
        s2 = _s2_acquisitions(spec, timeline, sched.s2, weather)
        asc = _s1_acquisitions(spec, timeline, sched.s1_asc, weather, rng, ascending=True)
        desc = _s1_acquisitions(spec, timeline, sched.s1_desc, weather, rng, ascending=False)
        raw[tile] = (asc, desc, s2)
    seen = np.array([any(raw[t][2][k][1].any() for t in raw) for k in range(len(sched.s2))], bool)
    kept = acquisitions.Schedule(sched.s1_asc, sched.s1_desc, sched.s2[seen])
    for tile, (asc, desc, s2) in raw.items():
        expected[tile] = stack(spec, kept, asc, desc, [a for a, keep in zip(s2, seen, strict=True) if keep])
    # the replay is the generator: the same series as synthesize_tile, which drops the same scenes
    direct = synthesize_tile(spec, tile_timeline(scene, spec, (0, 0)))
    assert np.array_equal(direct.s2, expected[(0, 0)].s2) and np.array_equal(direct.s1_asc, expected[(0, 0)].s1_asc)
    return sched, raw, expected


def _mosaic(spec: SampleSpec, per_tile: dict, pick) -> np.ndarray:
    rows = []
    for y in range(spec.rows):
        rows.append(np.concatenate([pick(per_tile[(y, x)]) for x in range(spec.cols)], axis=1))
    return np.concatenate(rows, axis=0)


def _write(path: Path, bands_first: np.ndarray, transform: Affine, nodata=None) -> None:
    count, height, width = bands_first.shape
    with rasterio.open(path, "w", driver="GTiff", width=width, height=height, count=count,
                       dtype=bands_first.dtype, crs=CRS, transform=transform, nodata=nodata) as dst:
        dst.write(bands_first)


def export_folder(folder: Path, spec: SampleSpec, sched, raw: dict) -> Path:
    """Write the GeoTIFFs and ``manifest.csv``; returns the folder."""
    folder.mkdir(parents=True, exist_ok=True)
    grid = spec.tile_grid()
    base = grid.transform
    margin = 5
    rows = []
    for k, t in enumerate(sched.s1_asc):
        img = _mosaic(spec, raw, lambda r, k=k: r[0][k])                       # linear [H, W, 2]
        db = 10.0 * np.log10(img.astype(np.float64))
        name = f"s1a_{k:03d}.tif"
        _write(folder / name, np.moveaxis(db, -1, 0), base)
        rows.append([name, iso(t), "S1", "ascending", "S1_GRD_GAMMA0_ELLIPSOID", "db", "VV,VH", ""])
    for k, t in enumerate(sched.s1_desc):
        img = _mosaic(spec, raw, lambda r, k=k: r[1][k])
        name = f"s1d_{k:03d}.tif"
        if k == 1:       # amplitude, VH first
            data = np.sqrt(img.astype(np.float64))[..., ::-1]
            _write(folder / name, np.moveaxis(data, -1, 0), base)
            rows.append([name, iso(t), "S1", "descending", "S1_GRD_GAMMA0_ELLIPSOID", "amplitude", "VH;VV", ""])
            continue
        # a larger file: a margin of other values around the AoI (warping must cut it away exactly)
        big = np.full((img.shape[0] + 2 * margin, img.shape[1] + 2 * margin, 2), 7.0, np.float32)
        big[margin:-margin, margin:-margin] = img
        _write(folder / name, np.moveaxis(big, -1, 0), base @ Affine.translation(-margin, -margin))
        rows.append([name, iso(t).replace("Z", "+00:00"), "S1", "descending", "S1_GRD_GAMMA0_ELLIPSOID", "linear",
                     "VV VH", ""])
    order = [S2_BANDS[i] for i in np.random.default_rng(1).permutation(len(S2_BANDS))]
    for k, t in enumerate(sched.s2):
        img = _mosaic(spec, raw, lambda r, k=k: r[2][k][0])                    # reflectance [H, W, 13]
        valid = _mosaic(spec, raw, lambda r, k=k: r[2][k][1])
        name = f"s2_{k:03d}.tif"
        if k == 2:       # as reflectance float32, mask as a band
            data = np.concatenate([img, valid[..., None].astype(np.float32)], axis=-1)
            _write(folder / name, np.moveaxis(data, -1, 0), base)
            rows.append([name, iso(t), "S2", "", "S2_L1C", "reflectance", ",".join(S2_BANDS) + ",VALID", "VALID"])
            continue
        from datetime import datetime, timezone

        offset = s2_dn_offset(datetime.fromtimestamp(t, timezone.utc))
        dn = np.round(img.astype(np.float64) * 1e4) + offset
        dn = dn[..., [S2_BANDS.index(b) for b in order]].astype(np.uint16)
        _write(folder / name, np.moveaxis(dn, -1, 0), base)
        mask_name = f"s2_{k:03d}_mask.tif"
        _write(folder / mask_name, valid[None].astype(np.uint8), base)
        rows.append([name, iso(t), "S2", "", "S2_L1C", "dn", ",".join(order), mask_name])
    with open(folder / "manifest.csv", "w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(["path", "time", "sensor", "orbit", "product", "units", "bands", "mask"])
        writer.writerows(rows)
    return folder


def aoi_geojson(path: Path, spec: SampleSpec) -> Path:
    """The sample grid's extent as a GeoJSON polygon in the grid CRS (so ``new`` lays the same grid)."""
    import json

    left, bottom, right, top = spec.tile_grid().bounds
    ring = [[left, top], [right, top], [right, bottom], [left, bottom], [left, top]]
    path.write_text(json.dumps({"type": "FeatureCollection", "crs": {"type": "name", "properties": {"name": CRS}},
                                "features": [{"type": "Feature", "properties": {},
                                              "geometry": {"type": "Polygon", "coordinates": [ring]}}]}))
    return path
