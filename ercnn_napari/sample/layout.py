"""The base (pre-2017) 1 m land cover: a Meuse-like river, streets, and the blocks between them.

A landscape an analyst recognises is mostly structure, so the generator lays out what a town on
the Meuse has: a river with quays, a grid of streets bent into a plan by a density field (dense
terraced blocks near the centre, detached houses with gardens, industrial halls near the water,
parks, and fields, meadows and woods at the edge), trees in gardens, along roads and in hedges.
All choices come from one seeded generator, so a seed always gives the same town.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ercnn_napari.sample.landcover import Cover, LandCover, Roof
from ercnn_napari.sample.noise import smooth_field


@dataclass
class Block:
    """A street block (1 m raster bounds, street edges excluded) and what was built in it."""

    r0: int
    c0: int
    r1: int
    c1: int
    kind: str
    buildings: list[tuple[int, int, int, int]]


@dataclass
class Town:
    """The base land cover plus the structure the change events are planned on."""

    land: LandCover
    river: np.ndarray          # bool, water and its banks: nothing is ever built there
    density: np.ndarray        # urban density field in [0, 1]
    blocks: list[Block]


def build_town(shape: tuple[int, int], rng: np.random.Generator) -> Town:
    """Generate the base land cover of an AoI of ``shape`` 1 m cells."""
    rows, cols = shape
    land = LandCover.empty(shape, Cover.GRASS)
    density = _density(shape, rng)
    river_center, river_half = _river_course(cols, rows, rng)
    rr = np.arange(rows)[:, None]
    dist = np.abs(rr - river_center[None, :])
    water = dist <= river_half
    banks = dist <= river_half + 30
    row_lines, col_lines = _street_lines(rows, rng), _street_lines(cols, rng)
    blocks = []
    for i in range(len(row_lines) - 1):
        for j in range(len(col_lines) - 1):
            r0, r1 = max(row_lines[i] + 6, 0), min(row_lines[i + 1] - 6, rows)
            c0, c1 = max(col_lines[j] + 6, 0), min(col_lines[j + 1] - 6, cols)
            if r1 - r0 < 30 or c1 - c0 < 30:
                continue
            d = float(density[(r0 + r1) // 2, (c0 + c1) // 2])
            kind = _block_kind(d, float(banks[r0:r1, c0:c1].mean()), rng)
            block = Block(r0, c0, r1, c1, kind, [])
            _FILLERS[kind](land, block, rng, banks)
            blocks.append(block)
    _draw_streets(land, density, row_lines, col_lines, rng)
    _draw_river(land, water, river_center, river_half, col_lines, rng)
    return Town(land, banks, density, blocks)


# ---------------------------------------------------------------------------- zoning
def _density(shape: tuple[int, int], rng: np.random.Generator) -> np.ndarray:
    """Urban density: highest toward the north-west (Liège centre), with patchy suburbs."""
    rows, cols = shape
    rr, cc = np.mgrid[0:rows, 0:cols].astype(np.float32)
    gradient = 1.0 - 0.75 * np.hypot(rr / rows, cc / cols) / np.sqrt(2.0)
    noise = smooth_field(rng, shape, cell=600.0, octaves=2).astype(np.float32)
    return np.clip(gradient - 0.15 + 0.18 * noise, 0.0, 1.0)


def _river_course(cols: int, rows: int, rng: np.random.Generator) -> tuple[np.ndarray, float]:
    """Row of the river's centre line for each column: a gentle diagonal meander."""
    c = np.arange(cols, dtype=np.float64)
    start = rows * rng.uniform(0.5, 0.62)
    slope = rng.uniform(-0.18, -0.08)
    phase = rng.uniform(0, 2 * np.pi)
    center = start + slope * c + 45.0 * np.sin(2 * np.pi * c / rng.uniform(1400, 2000) + phase)
    return center, float(rng.uniform(42, 55))


def _street_lines(length: int, rng: np.random.Generator) -> list[int]:
    """Positions of parallel streets: blocks 90-190 m deep, the first and last off the edges."""
    lines = [int(-rng.uniform(20, 80))]
    while lines[-1] < length + 40:
        lines.append(lines[-1] + int(rng.uniform(95, 190)))
    return lines


def _block_kind(d: float, bank_fraction: float, rng: np.random.Generator) -> str:
    if bank_fraction > 0.5:
        return "riverside"
    u = rng.uniform()
    if d > 0.62:
        return "terraced" if u < 0.85 else ("industrial" if u < 0.93 else "park")
    if d > 0.42:
        if bank_fraction > 0.05 and u < 0.45:
            return "industrial"
        return "detached" if u < 0.75 else ("industrial" if u < 0.87 else "park")
    if d > 0.27:
        return "detached" if u < 0.4 else ("field" if u < 0.75 else ("park" if u < 0.85 else "forest"))
    return "field" if u < 0.6 else "forest"


# ---------------------------------------------------------------------------- block fillers
def _free(banks: np.ndarray, r0: int, c0: int, r1: int, c1: int) -> bool:
    """True if a footprint stays off the river and its banks and inside the raster."""
    rows, cols = banks.shape
    if r0 < 0 or c0 < 0 or r1 > rows or c1 > cols:
        return False
    return not banks[r0:r1, c0:c1].any()


def _garden_trees(land: LandCover, r0: int, c0: int, r1: int, c1: int, count: int,
                  rng: np.random.Generator) -> None:
    for _ in range(count):
        if r1 - r0 < 8 or c1 - c0 < 8:
            return
        land.tree(rng.uniform(r0 + 3, r1 - 3), rng.uniform(c0 + 3, c1 - 3), rng.uniform(2.5, 5.0),
                  rng.uniform(7, 15))


def _fill_terraced(land: LandCover, b: Block, rng: np.random.Generator, banks: np.ndarray) -> None:
    """Rows of narrow houses along the four street sides, gardens or a yard in the middle."""
    inner = Cover.PAVED if rng.uniform() < 0.25 else Cover.GRASS
    land.rect(b.r0, b.c0, b.r1, b.c1, inner)
    roof = Roof.RED_TILE if rng.uniform() < 0.6 else Roof.SLATE
    depth = int(rng.uniform(9, 13))
    for side in ("top", "bottom", "left", "right"):
        pos = b.c0 if side in ("top", "bottom") else b.r0 + depth
        end = b.c1 if side in ("top", "bottom") else b.r1 - depth
        while pos < end - 4:
            width = int(rng.uniform(5, 9))
            stop = min(pos + width, end)
            if rng.uniform() < 0.08:            # a gap: an alley or an empty plot
                pos = stop + 2
                continue
            h = rng.uniform(7, 11)
            this_roof = roof if rng.uniform() < 0.85 else Roof(rng.choice([Roof.RED_TILE, Roof.SLATE, Roof.FLAT_GREY]))
            if side == "top":
                rect = (b.r0, pos, b.r0 + depth, stop)
            elif side == "bottom":
                rect = (b.r1 - depth, pos, b.r1, stop)
            elif side == "left":
                rect = (pos, b.c0, stop, b.c0 + depth)
            else:
                rect = (pos, b.c1 - depth, stop, b.c1)
            if _free(banks, *rect):
                land.building(*rect, height=h, roof=this_roof, pitched=this_roof != Roof.FLAT_GREY)
                b.buildings.append(rect)
            pos = stop
    if inner == Cover.GRASS:
        area = (b.r1 - b.r0 - 2 * depth) * (b.c1 - b.c0 - 2 * depth)
        _garden_trees(land, b.r0 + depth + 2, b.c0 + depth + 2, b.r1 - depth - 2, b.c1 - depth - 2,
                      int(area / 500), rng)


def _fill_detached(land: LandCover, b: Block, rng: np.random.Generator, banks: np.ndarray) -> None:
    """Houses on lots along the north and south streets, with drives and tree-lined gardens."""
    land.rect(b.r0, b.c0, b.r1, b.c1, Cover.GRASS)
    lot_depth = min(45, (b.r1 - b.r0) // 2)
    for side in ("top", "bottom"):
        pos = b.c0 + int(rng.uniform(0, 6))
        while pos < b.c1 - 16:
            lot = int(rng.uniform(16, 28))
            if rng.uniform() < 0.15:
                pos += lot
                continue
            setback, hw, hd = int(rng.uniform(4, 9)), int(rng.uniform(8, 13)), int(rng.uniform(8, 12))
            hc0 = pos + int(rng.uniform(1, max(2, lot - hw - 3)))
            if side == "top":
                rect = (b.r0 + setback, hc0, b.r0 + setback + hd, hc0 + hw)
                drive = (b.r0, hc0 + hw, b.r0 + setback + 4, min(hc0 + hw + 3, b.c1))
                garden = (b.r0 + setback + hd, pos, b.r0 + lot_depth, pos + lot)
            else:
                rect = (b.r1 - setback - hd, hc0, b.r1 - setback, hc0 + hw)
                drive = (b.r1 - setback - 4, hc0 + hw, b.r1, min(hc0 + hw + 3, b.c1))
                garden = (b.r1 - lot_depth, pos, b.r1 - setback - hd, pos + lot)
            if rect[3] <= b.c1 and _free(banks, *rect):
                land.rect(*drive, Cover.PAVED)
                roof = Roof(rng.choice([Roof.RED_TILE, Roof.RED_TILE, Roof.SLATE, Roof.SLATE, Roof.FLAT_GREY]))
                land.building(*rect, height=rng.uniform(6, 9), roof=roof, pitched=roof != Roof.FLAT_GREY)
                b.buildings.append(rect)
                _garden_trees(land, *garden, count=int(rng.integers(0, 3)), rng=rng)
            pos += lot
    _garden_trees(land, b.r0 + lot_depth, b.c0, b.r1 - lot_depth, b.c1,
                  int((b.r1 - b.r0 - 2 * lot_depth) * (b.c1 - b.c0) / 700), rng)


def _fill_industrial(land: LandCover, b: Block, rng: np.random.Generator, banks: np.ndarray) -> None:
    """A paved yard with one to three large flat-roofed halls."""
    land.rect(b.r0, b.c0, b.r1, b.c1, Cover.PAVED)
    land.rect(b.r0, b.c0, b.r0 + 4, b.c1, Cover.GRASS)
    for _ in range(int(rng.integers(1, 4))):
        hh, hw = int(rng.uniform(20, 55)), int(rng.uniform(30, 90))
        if hh + 10 > b.r1 - b.r0 or hw + 10 > b.c1 - b.c0:
            continue
        r0 = int(rng.uniform(b.r0 + 5, b.r1 - hh - 5))
        c0 = int(rng.uniform(b.c0 + 5, b.c1 - hw - 5))
        rect = (r0, c0, r0 + hh, c0 + hw)
        overlapping = any(r0 < q[2] + 4 and q[0] < r0 + hh + 4 and c0 < q[3] + 4 and q[1] < c0 + hw + 4
                          for q in b.buildings)
        if not overlapping and _free(banks, *rect):
            roof = Roof(rng.choice([Roof.METAL, Roof.FLAT_GREY, Roof.BITUMEN]))
            land.building(*rect, height=rng.uniform(8, 14), roof=roof, pitched=False)
            b.buildings.append(rect)


def _fill_park(land: LandCover, b: Block, rng: np.random.Generator, banks: np.ndarray) -> None:
    """Lawn, clumps of trees and a footpath."""
    land.rect(b.r0, b.c0, b.r1, b.c1, Cover.GRASS)
    mid = int(rng.uniform(b.r0 + 10, b.r1 - 10))
    land.rect(mid, b.c0, mid + 3, b.c1, Cover.PAVED)
    for _ in range(int(rng.integers(2, 5))):
        cr, cc = rng.uniform(b.r0, b.r1), rng.uniform(b.c0, b.c1)
        for _ in range(int(rng.integers(4, 12))):
            land.tree(cr + rng.normal(0, 9), cc + rng.normal(0, 9), rng.uniform(3, 6), rng.uniform(10, 20))


def _fill_field(land: LandCover, b: Block, rng: np.random.Generator, banks: np.ndarray) -> None:
    """Arable field or meadow, with a hedgerow of trees along some edges."""
    land.rect(b.r0, b.c0, b.r1, b.c1, Cover.CROP if rng.uniform() < 0.55 else Cover.GRASS)
    if rng.uniform() < 0.4:                       # split into two fields
        mid = int((b.c0 + b.c1) / 2 + rng.uniform(-20, 20))
        land.rect(b.r0, mid, b.r1, b.c1, Cover.CROP if rng.uniform() < 0.5 else Cover.GRASS)
    for edge in ("top", "left"):
        if rng.uniform() < 0.5:
            continue
        n = int(((b.c1 - b.c0) if edge == "top" else (b.r1 - b.r0)) / 9)
        for k in range(n):
            if rng.uniform() < 0.3:
                continue
            if edge == "top":
                land.tree(b.r0 + 3, b.c0 + 4 + 9 * k, rng.uniform(2.5, 4.5), rng.uniform(6, 12))
            else:
                land.tree(b.r0 + 4 + 9 * k, b.c0 + 3, rng.uniform(2.5, 4.5), rng.uniform(6, 12))


def _fill_forest(land: LandCover, b: Block, rng: np.random.Generator, banks: np.ndarray) -> None:
    """A closed deciduous wood with a few clearings."""
    land.rect(b.r0, b.c0, b.r1, b.c1, Cover.GRASS)
    land.canopy(b.r0, b.c0, b.r1, b.c1, rng, spacing=5.5, radius=(3.0, 6.5), height=(14.0, 24.0))


def _fill_riverside(land: LandCover, b: Block, rng: np.random.Generator, banks: np.ndarray) -> None:
    """Meadow and scattered trees along the water (flood plain)."""
    land.rect(b.r0, b.c0, b.r1, b.c1, Cover.GRASS)
    _garden_trees(land, b.r0, b.c0, b.r1, b.c1, int((b.r1 - b.r0) * (b.c1 - b.c0) / 900), rng)


_FILLERS = {
    "terraced": _fill_terraced,
    "detached": _fill_detached,
    "industrial": _fill_industrial,
    "park": _fill_park,
    "field": _fill_field,
    "forest": _fill_forest,
    "riverside": _fill_riverside,
}


# ---------------------------------------------------------------------------- streets and river
def _draw_streets(land: LandCover, density: np.ndarray, row_lines: list[int], col_lines: list[int],
                  rng: np.random.Generator) -> None:
    """Streets along the block edges; two of them are wide main roads with street trees."""
    rows, cols = land.shape
    main_row = row_lines[len(row_lines) // 2]
    main_col = col_lines[len(col_lines) // 3]
    for r in row_lines:
        for j in range(len(col_lines) - 1):
            c0, c1 = col_lines[j], col_lines[j + 1]
            main = r == main_row
            d = float(density[int(np.clip(r, 0, rows - 1)), int(np.clip((c0 + c1) // 2, 0, cols - 1))])
            if main or d > 0.3 or rng.uniform() < 0.12:
                _street(land, r, c0 - 6, r, c1 + 6, main)
    for c in col_lines:
        for i in range(len(row_lines) - 1):
            r0, r1 = row_lines[i], row_lines[i + 1]
            main = c == main_col
            d = float(density[int(np.clip((r0 + r1) // 2, 0, rows - 1)), int(np.clip(c, 0, cols - 1))])
            if main or d > 0.3 or rng.uniform() < 0.12:
                _street(land, r0 - 6, c, r1 + 6, c, main)
    for c in range(col_lines[0], cols, 14):        # plane trees along the main west-east road
        land.tree(main_row - 9, c + rng.uniform(-1, 1), rng.uniform(3, 4), rng.uniform(10, 14))


def _street(land: LandCover, r0: int, c0: int, r1: int, c1: int, main: bool) -> None:
    half = 7 if main else 4
    walk = 2
    if r0 == r1:
        land.rect(r0 - half - walk, c0, r0 + half + walk, c1, Cover.PAVED)
        land.rect(r0 - half, c0, r0 + half, c1, Cover.ROAD)
    else:
        land.rect(r0, c0 - half - walk, r1, c0 + half + walk, Cover.PAVED)
        land.rect(r0, c0 - half, r1, c0 + half, Cover.ROAD)


def _draw_river(land: LandCover, water: np.ndarray, center: np.ndarray, half: float,
                col_lines: list[int], rng: np.random.Generator) -> None:
    """Water, stone quays and a riverside road; one bridge carries the main north-south road."""
    rows, cols = land.shape
    rr = np.arange(rows)[:, None]
    dist = rr - center[None, :]
    quay = (np.abs(dist) > half) & (np.abs(dist) <= half + 4)
    north_road = (dist < -half - 10) & (dist >= -half - 22)
    land.cover[quay] = int(Cover.PAVED)
    land.cover[north_road] = int(Cover.ROAD)
    for arr in (land.height, land.shade):
        arr[quay | north_road] = 0.0 if arr is land.height else 1.0
    land.roof[quay | north_road] = 0
    land.cover[water] = int(Cover.WATER)
    land.height[water] = 0.0
    land.roof[water] = 0
    land.shade[water] = 1.0
    bridge_col = col_lines[len(col_lines) // 3]
    if 0 <= bridge_col < cols:
        top = int(center[bridge_col] - half - 24)
        bottom = int(center[bridge_col] + half + 24)
        land.rect(top, bridge_col - 9, bottom, bridge_col + 9, Cover.PAVED)
        land.rect(top, bridge_col - 7, bottom, bridge_col + 7, Cover.ROAD)
