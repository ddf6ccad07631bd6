"""Synthetic Sentinel-1/2 time series of one tile, stacked as the authors stacked theirs.

Per acquisition, each 10 m pixel is the area-weighted mixture of its 1 m land-cover end-members
(``spectra``) for the land-cover state of that date, so a construction appears in the signals on
the day it happens. Sentinel-2 then gets atmosphere, sensor noise, clouds and cloud shadows;
Sentinel-1 gets per-building orientation effects and gamma speckle. Finally the three streams are
merged on the 2-day grid: each written step holds the latest valid value of every stream, cloud-
masked pixels keep their previous value, and a stream that has not been seen yet is zero.
This module is numpy-only (TF-free); ``write.py`` turns its arrays into TFRecords.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ercnn_napari.core.constants import PIXEL_SIZE_M, TILE_SIZE
from ercnn_napari.sample import acquisitions, atmosphere, clouds, dihedral, records
from ercnn_napari.sample.landcover import N_COVERS, Scene
from ercnn_napari.sample.records import recorded_schedule
from ercnn_napari.sample.scene import STREAM_PIXELS, stream, tile_bounds_fine
from ercnn_napari.sample.shading import cast_shadow
from ercnn_napari.sample.site import FINE_PER_PIXEL, SampleSpec
from ercnn_napari.sample.speckle import tile_speckle
from ercnn_napari.sample.spectra import (
    CLOUD_S2,
    HAZE_S2,
    N_ENDMEMBERS,
    endmember_index,
    s1_endmembers,
    s2_endmembers,
)

#: Brightness left in a shadow (diffuse skylight), for building shadows and cloud shadows.
SHADOW_LIGHT = 0.35
CLOUD_SHADOW_DEPTH = 0.55
#: Equivalent number of looks of Sentinel-1 IW GRD high-resolution products.
S1_LOOKS = 4.4
#: Pass-to-pass fluctuation of a building's double bounce, as looks (intensity CV 0.2).
STABLE_LOOKS = 25.0
S2_NOISE = 0.002
SHADOW_MARGIN = 40      #: 1 m cells around a tile whose buildings may shade it


@dataclass
class TileTimeline:
    """The land-cover states of a tile as 10 m end-member fractions (picklable for workers)."""

    tile: tuple[int, int]
    times: np.ndarray          # [S] UNIX s: state k holds from times[k] (times[0] = -inf)
    lit: np.ndarray            # float32 [S, 32, 32, E] sunlit share of each end-member
    shaded: np.ndarray         # float32 [S, 32, 32, E] share in building/tree shadow
    walls: np.ndarray          # float32 [S, 32, 32, 2] wall facing west / east (dihedral.facing_walls)

    def state_index(self, seconds: np.ndarray | float) -> np.ndarray:
        return np.searchsorted(self.times, seconds, side="right") - 1


@dataclass
class StackedSeries:
    """A tile's stacked series in the stage-2 layout."""

    timestamps: np.ndarray     # float64 [N]
    s1_asc: np.ndarray         # float32 [N, 32, 32, 2]
    s1_desc: np.ndarray        # float32 [N, 32, 32, 2]
    s2: np.ndarray             # float32 [N, 32, 32, 13]


def tile_timeline(scene: Scene, spec: SampleSpec, tile: tuple[int, int]) -> TileTimeline:
    """End-member fractions of every land-cover state a tile goes through up to the period end."""
    bounds = tile_bounds_fine(tile, SHADOW_MARGIN)
    dates = [d for d in scene.change_dates(bounds) if d <= spec.end_seconds]
    times = [-np.inf, *dates]
    lit, shaded, walls = [], [], []
    for when in times:
        state = scene.state_at(spec.start_seconds - 1.0 if when == -np.inf else when, _clip(bounds, scene))
        state_bounds = _clip(bounds, scene)
        inner = _inner_slices(state_bounds, tile_bounds_fine(tile))
        shadow = cast_shadow(state.height)[inner]
        em = endmember_index(state.cover[inner], state.roof[inner])
        lit.append(_fractions(em, ~shadow))
        shaded.append(_fractions(em, shadow))
        walls.append(dihedral.facing_walls(state, inner))
    return TileTimeline(tile, np.array(times), np.stack(lit), np.stack(shaded), np.stack(walls))


def _clip(bounds: tuple[int, int, int, int], scene: Scene) -> tuple[int, int, int, int]:
    rows, cols = scene.base.shape
    r0, c0, r1, c1 = bounds
    return max(r0, 0), max(c0, 0), min(r1, rows), min(c1, cols)


def _inner_slices(outer: tuple[int, int, int, int], inner: tuple[int, int, int, int]) -> tuple[slice, slice]:
    return (slice(inner[0] - outer[0], inner[2] - outer[0]), slice(inner[1] - outer[1], inner[3] - outer[1]))


def _fractions(em: np.ndarray, select: np.ndarray) -> np.ndarray:
    """float32 [32, 32, E]: share of each 10 m pixel that is end-member e and selected."""
    n = TILE_SIZE
    pix = (np.arange(n * FINE_PER_PIXEL) // FINE_PER_PIXEL)
    pixel_index = pix[:, None] * n + pix[None, :]
    counts = np.bincount((pixel_index * N_ENDMEMBERS + em)[select].ravel(), minlength=n * n * N_ENDMEMBERS)
    return (counts.reshape(n, n, N_ENDMEMBERS) / FINE_PER_PIXEL**2).astype(np.float32)


def synthesize_tile(spec: SampleSpec, timeline: TileTimeline,
                    sched: acquisitions.Schedule | None = None) -> StackedSeries:
    """The stacked 17-channel series of one tile (deterministic for spec.seed and the tile).

    Only passes with a record count (``records.recorded_schedule``: no all-cloud S2 scenes);
    ``sched`` is that schedule when the caller already has it (it takes seconds to find).
    """
    sched = sched or recorded_schedule(spec)
    weather = records.weather(spec)
    y, x = timeline.tile
    rng = stream(spec.seed, STREAM_PIXELS, y, x)
    s2 = _s2_acquisitions(spec, timeline, sched.s2, weather, sched.s2_numbers())
    asc = _s1_acquisitions(spec, timeline, sched.s1_asc, weather, rng, ascending=True)
    desc = _s1_acquisitions(spec, timeline, sched.s1_desc, weather, rng, ascending=False)
    return stack(spec, sched, asc, desc, s2)


def _s2_acquisitions(spec: SampleSpec, tl: TileTimeline, times: np.ndarray, weather: acquisitions.Weather,
                     numbers: np.ndarray | None = None) -> list[tuple[np.ndarray, np.ndarray]]:
    """Per S2 acquisition: (reflectance [32, 32, 13] quantised like L1C, valid mask [32, 32]).

    ``numbers`` are the acquisitions' numbers in the full schedule (default 0..n-1). Everything
    that belongs to the pass -- haze, gain, clouds, cloud brightness -- is an AoI-wide field keyed
    by that number (``atmosphere.py``), so neighbouring tiles agree at their border; only the
    sensor noise is drawn per pixel, from a stream keyed by the tile and the pass.
    """
    numbers = np.arange(len(times)) if numbers is None else np.asarray(numbers)
    cloudiness, wetness = weather.at(times)
    states = tl.state_index(times)
    y, x = tl.tile
    aoi_px = max(spec.rows, spec.cols) * TILE_SIZE
    aoi_m = aoi_px * PIXEL_SIZE_M
    row0, col0 = y * TILE_SIZE, x * TILE_SIZE
    out = []
    for k, t in enumerate(times):
        number = int(numbers[k])
        table = s2_endmembers(float(t), float(wetness[k]))
        surface = tl.lit[states[k]] @ table + SHADOW_LIGHT * (tl.shaded[states[k]] @ table)
        sky = atmosphere.s2_pass(spec.seed, number, aoi_px)
        haze = atmosphere.haze_field(sky, row0, col0, TILE_SIZE)[..., None]
        noise = stream(spec.seed, STREAM_PIXELS, y, x, number).standard_normal(surface.shape).astype(np.float32)
        toa = surface * sky.gain + haze * HAZE_S2 + S2_NOISE * noise
        lat = clouds.cloud_lattices(spec.seed, number, float(cloudiness[k]), aoi_m)
        opacity, mask, shade = clouds.tile_clouds(lat, float(t), row0, col0, TILE_SIZE)
        toa = toa * (1.0 - CLOUD_SHADOW_DEPTH * shade * (1.0 - opacity))[..., None]
        toa = (1.0 - opacity[..., None]) * toa + opacity[..., None] * CLOUD_S2 * sky.cloud_brightness
        toa = np.round(np.clip(toa, 0.0, 1.5) * 1e4) / 1e4           # L1C: integers / 10000
        out.append((toa.astype(np.float32), ~mask))
    return out


def _s1_acquisitions(spec: SampleSpec, tl: TileTimeline, times: np.ndarray, weather: acquisitions.Weather,
                     rng: np.random.Generator, ascending: bool) -> list[np.ndarray]:
    """Per S1 acquisition of one orbit direction: linear VV, VH [32, 32, 2] with speckle.

    The wind on water belongs to the pass (one value over the AoI, ``atmosphere.s1_wind``). Ground
    (distributed scatterers) gets fully developed speckle, spatially correlated and continuous
    across tiles (``speckle.py``). Buildings are dominated by the wall-ground double bounce, a
    deterministic scatterer whose return is stable from pass to pass (the persistent scatterers
    of PS-InSAR, amplitude dispersion < 0.25; Ferretti et al. 2001, IEEE TGRS 39(1), 8-20): a
    static per-pixel facade term per direction and only ``STABLE_LOOKS`` of fluctuation, so a
    finished building is a lasting step up, not a flicker like the fields around it. The walls
    that face this orbit's radar add the dihedral's heavy tail (``dihedral.py``).
    """
    _, wetness = weather.at(times)
    states = tl.state_index(times)
    # strong urban returns depend on how facades face the radar: a static per-pixel term per direction
    facade_db = rng.normal(0.0, 2.5, size=(TILE_SIZE, TILE_SIZE, 1)).astype(np.float32)
    wall_gain = dihedral.static_gain(rng, (TILE_SIZE, TILE_SIZE))
    face = 0 if ascending else 1
    out = []
    for k, t in enumerate(times):
        wind = atmosphere.s1_wind(spec.seed, k, ascending)
        table = s1_endmembers(float(t), float(wetness[k]), wind, ascending)
        fractions = tl.lit[states[k]] + tl.shaded[states[k]]
        ground = fractions[..., :N_COVERS] @ table[:N_COVERS]
        structures = (fractions[..., N_COVERS:] @ table[N_COVERS:]) * 10.0 ** (facade_db / 10.0)
        structures = structures + tl.walls[states[k], ..., face:face + 1] * wall_gain
        speckle = tile_speckle(spec.seed, tl.tile, (1 if ascending else 2) * 100000 + k, S1_LOOKS)
        stable = rng.gamma(STABLE_LOOKS, 1.0 / STABLE_LOOKS, size=structures.shape).astype(np.float32)
        out.append((ground * speckle + structures * stable).astype(np.float32))
    return out


def stack(spec: SampleSpec, sched: acquisitions.Schedule, asc: list[np.ndarray], desc: list[np.ndarray],
          s2: list[tuple[np.ndarray, np.ndarray]]) -> StackedSeries:
    """Merge the streams on the 2-day grid, carrying the latest valid value of each forward."""
    events = ([(t, 0, k) for k, t in enumerate(sched.s1_asc)] + [(t, 1, k) for k, t in enumerate(sched.s1_desc)]
              + [(t, 2, k) for k, t in enumerate(sched.s2)])
    events.sort()
    times = np.array([e[0] for e in events])
    buckets, step_times = acquisitions.stack_steps(times, spec.start_seconds)
    n = step_times.size
    cur_asc = np.zeros((TILE_SIZE, TILE_SIZE, 2), np.float32)
    cur_desc = np.zeros_like(cur_asc)
    cur_s2 = np.zeros((TILE_SIZE, TILE_SIZE, 13), np.float32)
    out_asc = np.empty((n, TILE_SIZE, TILE_SIZE, 2), np.float32)
    out_desc = np.empty_like(out_asc)
    out_s2 = np.empty((n, TILE_SIZE, TILE_SIZE, 13), np.float32)
    step = -1
    previous_bucket = None
    for (_, kind, k), bucket in zip(events, buckets, strict=True):
        if bucket != previous_bucket and previous_bucket is not None:
            step += 1
            out_asc[step], out_desc[step], out_s2[step] = cur_asc, cur_desc, cur_s2
        previous_bucket = bucket
        if kind == 0:
            cur_asc = asc[k]
        elif kind == 1:
            cur_desc = desc[k]
        else:
            values, valid = s2[k]
            cur_s2 = cur_s2.copy()
            cur_s2[valid] = values[valid]
    step += 1
    out_asc[step], out_desc[step], out_s2[step] = cur_asc, cur_desc, cur_s2
    assert step == n - 1
    return StackedSeries(step_times, out_asc, out_desc, out_s2)
