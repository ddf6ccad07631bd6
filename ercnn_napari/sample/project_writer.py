"""Write the sample as a project in the authors' layout: labels, polygons, reference pairs, splits.

Everything goes through the project's own API (``Project.create``, ``LabelStore.write``,
``write_reference_image``, ``write_splits``, the polygon writer), so the sample is exactly what
an analyst's project looks like, plus an ``answer_key/`` folder the authors' data never had: the
exact change mask of every tile and the dated events, so results can be checked against truth.
Nothing here imports TensorFlow (the napari sample-data command runs this code in the viewer).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import numpy as np

from ercnn_napari.core.atomic import atomic_path, atomic_write_text
from ercnn_napari.core.polygons import write_polygons_shapefile
from ercnn_napari.core.project import Project
from ercnn_napari.core.splits import Split, generate_splits
from ercnn_napari.core.tiles import format_tile_id, tile_stem
from ercnn_napari.sample import acquisitions, truth
from ercnn_napari.sample.files import ANSWER_DIR, OBSERVATIONS_DIR, SAMPLE_FILE, TIMESTAMPS_FILE  # noqa: F401
from ercnn_napari.sample.landcover import Scene
from ercnn_napari.sample.records import recorded_schedule
from ercnn_napari.sample.render import render_tile
from ercnn_napari.sample.scene import (
    STREAM_LABELS,
    STREAM_RENDER,
    STREAM_SPLITS,
    stream,
    tile_bounds_fine,
)
from ercnn_napari.sample.site import CRS, SITE_NAME, SampleSpec, iso, utc

#: Dates of the reference images by year (before: spring 2017 or summer 2016; after: late summer
#: 2020 or spring 2021), as the authors' Google Earth pairs were dated.
IMAGE_DATES = {2016: "2016-06-21T10:30:00", 2017: "2017-04-12T10:30:00",
               2020: "2020-09-08T10:30:00", 2021: "2021-04-18T10:30:00"}
RENDER_MARGIN = 40
#: Share of tiles left unlabelled for the analyst, and tiles labelled but "not used" (as the authors').
UNLABELLED_SHARE = 1 / 3
N_NOT_USED = 2

Progress = Callable[[str, int, int], None]


def write_project(dest: Path, spec: SampleSpec, scene: Scene, progress: Progress | None = None) -> Project:
    """Create the sample project at ``dest`` (no observations) and return it."""
    report = progress or (lambda desc, done, total: None)
    project = Project.create(dest, SITE_NAME, spec.tile_grid(), period=(spec.period_start, spec.period_end[:10]),
                             observations={"kind": "stacked", "path": OBSERVATIONS_DIR}, overwrite=True)
    tiles = spec.tiles()
    keys = {tile: truth.answer_key(scene, spec, tile) for tile in tiles}
    labelled, not_used = _choose_labelled(spec, keys)
    outlines = truth.label_polygons(scene, spec, stream(spec.seed, STREAM_LABELS))
    for done, tile in enumerate(tiles, start=1):
        if tile in labelled:
            polygons = truth.tile_polygons(outlines, spec, tile)
            project.labels.write(tile, truth.rasterize_label(polygons, spec, tile))
            if polygons:
                write_polygons_shapefile(project.polygon_path(tile), polygons, crs=CRS)
        report("labels", done, len(tiles))
    years = _reference_years(spec, labelled)
    for done, tile in enumerate(tiles, start=1):
        for year in years[tile]:
            seconds = utc(IMAGE_DATES[year])
            bounds = _clip(tile_bounds_fine(tile, RENDER_MARGIN), spec)
            state = scene.state_at(seconds, bounds)
            rgb = render_tile(_pad(state, tile, spec), RENDER_MARGIN, seconds, stream(spec.seed, STREAM_RENDER, *tile, year))
            project.write_reference_image(tile, year, rgb)
        report("reference images", done, len(tiles))
    project.write_splits(_splits(spec, labelled, not_used, keys))
    _write_answer_key(project.root, spec, scene, keys, labelled)
    write_timestamps(project.root, spec)
    return project


def _choose_labelled(spec: SampleSpec, keys: dict) -> tuple[list, list]:
    """Tiles the "analyst" has labelled (two thirds, changed and unchanged alike) and the not-used ones."""
    rng = stream(spec.seed, STREAM_LABELS, 1)
    changed = [t for t, k in keys.items() if k.any()]
    quiet = [t for t, k in keys.items() if not k.any()]
    labelled = []
    for group in (changed, quiet):
        order = [group[i] for i in rng.permutation(len(group))]
        labelled += order[:int(round(len(group) * (1 - UNLABELLED_SHARE)))]
    labelled = sorted(labelled)
    not_used = sorted(labelled[i] for i in rng.permutation(len(labelled))[:N_NOT_USED])
    return labelled, not_used


def _splits(spec: SampleSpec, labelled: list, not_used: list, keys: dict) -> dict[str, Split]:
    """V1-V3 like the authors' (common test set, pairwise disjoint validation sets).

    The first seed whose test and validation sets all contain changed and unchanged tiles is
    taken, so every version can be validated meaningfully.
    """
    usable = len(labelled) - len(not_used)
    fraction = max(1, round(usable / 7)) / usable
    base = int(stream(spec.seed, STREAM_SPLITS).integers(1 << 30))
    for attempt in range(200):
        splits = generate_splits(labelled, n_versions=3, val_fraction=fraction, test_fraction=fraction,
                                 seed=base + attempt, not_used=not_used)
        sets = [next(iter(splits.values())).test] + [s.val for s in splits.values()]
        if all(any(keys[t].any() for t in s) and any(not keys[t].any() for t in s) for s in sets):
            return splits
    return splits


def _reference_years(spec: SampleSpec, labelled: list) -> dict:
    """Image years per tile: mostly 2017/2020, a few 2016 or 2021, two unlabelled tiles with one image."""
    rng = stream(spec.seed, STREAM_RENDER)
    years = {t: [2016 if rng.uniform() < 0.15 else 2017, 2021 if rng.uniform() < 0.15 else 2020]
             for t in spec.tiles()}
    unlabelled = [t for t in spec.tiles() if t not in set(labelled)]
    lonely = [unlabelled[i] for i in rng.permutation(len(unlabelled))[:2]]
    if lonely:
        years[lonely[0]] = years[lonely[0]][1:]          # only an "after" image
    if len(lonely) > 1:
        years[lonely[1]] = years[lonely[1]][:1]          # only a "before" image
    return years


def _clip(bounds: tuple[int, int, int, int], spec: SampleSpec) -> tuple[int, int, int, int]:
    rows, cols = spec.fine_shape
    return max(bounds[0], 0), max(bounds[1], 0), min(bounds[2], rows), min(bounds[3], cols)


def _pad(state, tile: tuple[int, int], spec: SampleSpec):
    """Grow a clipped edge-tile window back to tile + margin by repeating edge cells."""
    want = tile_bounds_fine(tile, RENDER_MARGIN)
    have = _clip(want, spec)
    pads = ((have[0] - want[0], want[2] - have[2]), (have[1] - want[1], want[3] - have[3]))
    if not any(a or b for a, b in pads):
        return state
    from ercnn_napari.sample.landcover import LandCover

    return LandCover(*(np.pad(a, pads, mode="edge") for a in (state.cover, state.height, state.roof, state.shade)))


def _write_answer_key(root: Path, spec: SampleSpec, scene: Scene, keys: dict, labelled: list) -> None:
    folder = root / ANSWER_DIR
    for tile, key in keys.items():
        with atomic_path(folder / f"{tile_stem(tile)}.npy") as tmp:
            np.save(tmp, key)
    events = []
    for ev in scene.events:
        record = ev.describe()
        r0, c0, r1, c1 = ev.site
        (left, top), (right, bottom) = spec.fine_to_xy(r0, c0), spec.fine_to_xy(r1, c1)
        record["bounds"] = [left, bottom, right, top]
        record["tiles"] = sorted({format_tile_id((r // 320, c // 320)) for r in (r0, r1 - 1) for c in (c0, c1 - 1)})
        for phase in record["phases"]:
            phase["date"] = iso(phase["time"])
        events.append(record)
    summary = {
        "description": "Synthetic Liège sample generated by ercnn-napari: exact change masks (answer_key/{y}_{x}.npy, "
                       f"1 = at least {truth.CHANGED_AREA_FRACTION:.0%} of the 10 m pixel changed between "
                       f"{spec.period_start} and {spec.period_end}) and the dated change events.",
        "seed": spec.seed, "rows": spec.rows, "cols": spec.cols, "crs": CRS,
        "origin_x": spec.origin_x, "origin_y": spec.origin_y,
        "period_start": spec.period_start, "period_end": spec.period_end,
        "labelled_tiles": [format_tile_id(t) for t in labelled],
        "changed_tiles": [format_tile_id(t) for t, k in keys.items() if k.any()],
        "events": events,
    }
    atomic_write_text(folder / SAMPLE_FILE, json.dumps(summary, indent=1))


def write_timestamps(root: Path, spec: SampleSpec) -> np.ndarray:
    """``observations/timestamps.json``: the stacked time axis shared by all tiles (TF-free readers)."""
    stamps = acquisitions.stacked_timestamps(spec, recorded_schedule(spec))
    data = {"timestamps": [float(t) for t in stamps], "iso": [iso(t) for t in stamps],
            "note": "UNIX seconds (UTC) of the stacked 2-day steps, identical for every tile"}
    atomic_write_text(root / OBSERVATIONS_DIR / TIMESTAMPS_FILE, json.dumps(data, indent=0))
    return stamps
