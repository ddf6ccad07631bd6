"""Build the sample's scene (town + dated changes) from a spec, deterministically.

Every random choice of the sample flows from ``SampleSpec.seed`` through named child streams
(``_stream``), so adding draws to one part (say, the clouds) never reshuffles another (the town).
"""

from __future__ import annotations

import numpy as np

from ercnn_napari.sample.changes import plan_events
from ercnn_napari.sample.landcover import Scene
from ercnn_napari.sample.layout import Town, build_town
from ercnn_napari.sample.site import FINE_PER_TILE, SampleSpec

#: Child-stream numbers (never reuse one for a different purpose: it would change the sample).
STREAM_TOWN = 1
STREAM_EVENTS = 2
STREAM_LABELS = 3
STREAM_SPLITS = 4
STREAM_RENDER = 5
STREAM_WEATHER = 6
STREAM_CLOUDS = 7
STREAM_PIXELS = 8
STREAM_ATMOSPHERE = 9
STREAM_SPECKLE = 10


def stream(seed: int, *keys: int) -> np.random.Generator:
    """An independent generator for one purpose (and optionally one tile or acquisition)."""
    return np.random.default_rng(np.random.SeedSequence([int(seed), *map(int, keys)]))


def build_scene(spec: SampleSpec) -> tuple[Scene, Town]:
    """The base town and its 2017-2020 change events for ``spec``."""
    town = build_town(spec.fine_shape, stream(spec.seed, STREAM_TOWN))
    n_tiles = spec.rows * spec.cols
    events = plan_events(
        town, stream(spec.seed, STREAM_EVENTS),
        n_construction=max(2, round(n_tiles * 0.45)),
        n_demolition=max(1, round(n_tiles * 0.12)),
        n_parking=max(1, round(n_tiles * 0.05)),
        n_roads=1,
    )
    return Scene(town.land, events), town


def tile_bounds_fine(tile: tuple[int, int], margin: int = 0) -> tuple[int, int, int, int]:
    """(r0, c0, r1, c1) of a tile on the 1 m raster, optionally grown by ``margin`` cells."""
    y, x = tile
    r0, c0 = y * FINE_PER_TILE, x * FINE_PER_TILE
    return r0 - margin, c0 - margin, r0 + FINE_PER_TILE + margin, c0 + FINE_PER_TILE + margin
