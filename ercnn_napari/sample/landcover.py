"""The 1 m land-cover raster that every synthetic signal and picture is derived from.

One source of truth keeps the sample honest: the Sentinel-1/2 pixels are area-weighted mixtures
of the 1 m classes, the reference PNGs are renderings of the same cells, and the answer key and
labels are the cells that change. A construction is thus visible in all of them at the same dates.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import IntEnum

import numpy as np
from scipy import ndimage


class Cover(IntEnum):
    """Land-cover classes of the 1 m raster."""

    WATER = 0
    GRASS = 1      # lawns, pasture, gardens, wasteland
    CROP = 2       # arable fields (bare soil outside the growing season)
    TREE = 3       # deciduous tree crowns
    BARE = 4       # bare soil, construction sites, rubble
    ROAD = 5       # asphalt
    PAVED = 6      # concrete, sidewalks, parking, yards
    BUILDING = 7   # roofs


N_COVERS = len(Cover)
VEGETATION = (Cover.GRASS, Cover.CROP, Cover.TREE)


class Roof(IntEnum):
    """Roof materials (what the reference images show and what shifts the spectra of a roof)."""

    NONE = 0
    RED_TILE = 1
    SLATE = 2
    FLAT_GREY = 3
    METAL = 4
    BITUMEN = 5


@dataclass
class LandCover:
    """Rasters of one land-cover state, all the same shape (rows, cols) at 1 m.

    ``height`` (m) of buildings and trees casts shadows in the reference images; ``shade`` is the
    brightness factor of a roof facet or crown part facing toward or away from the sun.
    """

    cover: np.ndarray                  # uint8 Cover
    height: np.ndarray                 # float32 metres
    roof: np.ndarray                   # uint8 Roof
    shade: np.ndarray                  # float32, 1 = flat

    @classmethod
    def empty(cls, shape: tuple[int, int], cover: Cover = Cover.GRASS) -> LandCover:
        return cls(
            cover=np.full(shape, int(cover), np.uint8),
            height=np.zeros(shape, np.float32),
            roof=np.zeros(shape, np.uint8),
            shade=np.ones(shape, np.float32),
        )

    @property
    def shape(self) -> tuple[int, int]:
        return self.cover.shape

    def copy(self) -> LandCover:
        return LandCover(self.cover.copy(), self.height.copy(), self.roof.copy(), self.shade.copy())

    def window(self, r0: int, c0: int, r1: int, c1: int) -> LandCover:
        """A copy of a rectangular part (used per tile and per event)."""
        return LandCover(*(a[r0:r1, c0:c1].copy() for a in (self.cover, self.height, self.roof, self.shade)))

    def paste(self, patch: Patch) -> None:
        """Overwrite the cells of ``patch`` where its mask is set."""
        r0, c0 = patch.r0, patch.c0
        r1, c1 = r0 + patch.mask.shape[0], c0 + patch.mask.shape[1]
        m = patch.mask
        self.cover[r0:r1, c0:c1][m] = patch.cover[m]
        self.height[r0:r1, c0:c1][m] = patch.height[m]
        self.roof[r0:r1, c0:c1][m] = patch.roof[m]
        self.shade[r0:r1, c0:c1][m] = patch.shade[m]

    # ------------------------------------------------------------------ drawing helpers
    def rect(self, r0: int, c0: int, r1: int, c1: int, cover: Cover, height: float = 0.0,
             roof: Roof = Roof.NONE, shade: float = 1.0) -> None:
        """Fill a rectangle (clipped to the raster)."""
        r0, c0 = max(r0, 0), max(c0, 0)
        r1, c1 = min(r1, self.shape[0]), min(c1, self.shape[1])
        if r1 <= r0 or c1 <= c0:
            return
        self.cover[r0:r1, c0:c1] = int(cover)
        self.height[r0:r1, c0:c1] = height
        self.roof[r0:r1, c0:c1] = int(roof)
        self.shade[r0:r1, c0:c1] = shade

    def building(self, r0: int, c0: int, r1: int, c1: int, height: float, roof: Roof,
                 pitched: bool) -> None:
        """A building footprint; pitched roofs get a lit and a shaded facet along the long axis.

        The sun of the reference images stands in the south-south-east, so a south-facing facet
        is brighter than a north-facing one and an east-facing one a little brighter than west.
        """
        self.rect(r0, c0, r1, c1, Cover.BUILDING, height, roof, 1.0)
        if not pitched:
            return
        r0, c0 = max(r0, 0), max(c0, 0)
        r1, c1 = min(r1, self.shape[0]), min(c1, self.shape[1])
        if (c1 - c0) >= (r1 - r0):          # ridge runs west-east: north and south facets
            mid = (r0 + r1) // 2
            self.shade[r0:mid, c0:c1] = 0.8
            self.shade[mid:r1, c0:c1] = 1.12
        else:                               # ridge runs north-south: west and east facets
            mid = (c0 + c1) // 2
            self.shade[r0:r1, c0:mid] = 0.9
            self.shade[r0:r1, mid:c1] = 1.05

    def tree(self, row: float, col: float, radius: float, height: float) -> None:
        """A round crown with a sunlit south-east side (cells already built over are kept)."""
        r0, r1 = int(np.floor(row - radius)), int(np.ceil(row + radius)) + 1
        c0, c1 = int(np.floor(col - radius)), int(np.ceil(col + radius)) + 1
        r0c, c0c = max(r0, 0), max(c0, 0)
        r1c, c1c = min(r1, self.shape[0]), min(c1, self.shape[1])
        if r1c <= r0c or c1c <= c0c:
            return
        rr, cc = np.mgrid[r0c:r1c, c0c:c1c]
        dr, dc = (rr + 0.5 - row) / radius, (cc + 0.5 - col) / radius
        dist2 = dr * dr + dc * dc
        free = self.cover[r0c:r1c, c0c:c1c]
        inside = (dist2 <= 1.0) & np.isin(free, (Cover.GRASS, Cover.CROP, Cover.TREE, Cover.BARE, Cover.PAVED))
        crown_h = height * np.sqrt(np.clip(1.0 - dist2, 0.0, 1.0)) * 0.4 + height * 0.6
        crown_shade = 1.0 + 0.28 * (0.94 * dr + 0.34 * dc) - 0.2 * dist2
        sub_h = self.height[r0c:r1c, c0c:c1c]
        taller = inside & ((self.cover[r0c:r1c, c0c:c1c] != Cover.TREE) | (crown_h >= sub_h))
        self.cover[r0c:r1c, c0c:c1c][taller] = int(Cover.TREE)
        self.height[r0c:r1c, c0c:c1c][taller] = crown_h[taller]
        self.roof[r0c:r1c, c0c:c1c][taller] = 0
        self.shade[r0c:r1c, c0c:c1c][taller] = crown_shade[taller]

    def canopy(self, r0: int, c0: int, r1: int, c1: int, rng: np.random.Generator, spacing: float,
               radius: tuple[float, float], height: tuple[float, float]) -> None:
        """A closed wood: many crowns at once (each cell belongs to its nearest crown centre).

        Drawing thousands of crowns one by one is slow; a distance transform to random crown
        centres gives the same picture (touching crowns, gaps where no centre is near) in one pass.
        """
        r0, c0 = max(r0, 0), max(c0, 0)
        r1, c1 = min(r1, self.shape[0]), min(c1, self.shape[1])
        if r1 - r0 < 2 or c1 - c0 < 2:
            return
        shape = (r1 - r0, c1 - c0)
        n = max(1, int(shape[0] * shape[1] / spacing**2))
        centres = np.stack([rng.integers(0, shape[0], n), rng.integers(0, shape[1], n)], axis=1)
        radii, heights = rng.uniform(*radius, n), rng.uniform(*height, n)
        seeds = np.full(shape, -1, np.int64)
        seeds[centres[:, 0], centres[:, 1]] = np.arange(n)
        dist, (near_r, near_c) = ndimage.distance_transform_edt(seeds < 0, return_indices=True)
        crown = seeds[near_r, near_c]
        rad = radii[crown]
        rr, cc = np.mgrid[0:shape[0], 0:shape[1]]
        dr, dc = (rr - near_r) / rad, (cc - near_c) / rad
        dist2 = (dist / rad) ** 2
        free = np.isin(self.cover[r0:r1, c0:c1], (Cover.GRASS, Cover.CROP, Cover.TREE, Cover.BARE))
        inside = (dist2 <= 1.0) & free
        window = (slice(r0, r1), slice(c0, c1))
        self.cover[window][inside] = int(Cover.TREE)
        self.height[window][inside] = (heights[crown] * (0.6 + 0.4 * np.sqrt(np.clip(1 - dist2, 0, 1))))[inside]
        self.roof[window][inside] = 0
        self.shade[window][inside] = (1.0 + 0.28 * (0.94 * dr + 0.34 * dc) - 0.2 * dist2)[inside]


@dataclass
class Patch:
    """A masked rectangle of new land cover that a change event pastes at a date."""

    r0: int
    c0: int
    cover: np.ndarray
    height: np.ndarray
    roof: np.ndarray
    shade: np.ndarray
    mask: np.ndarray

    @property
    def bounds(self) -> tuple[int, int, int, int]:
        return self.r0, self.c0, self.r0 + self.mask.shape[0], self.c0 + self.mask.shape[1]


@dataclass
class Scene:
    """The whole sample: base land cover (state before 2017) and the dated change events."""

    base: LandCover
    events: list = field(default_factory=list)   # list[changes.ChangeEvent], sorted by first date

    def state_at(self, seconds: float, bounds: tuple[int, int, int, int] | None = None) -> LandCover:
        """Land cover at a time, for the whole AoI or a (r0, c0, r1, c1) window of it."""
        r0, c0, r1, c1 = bounds if bounds is not None else (0, 0, *self.base.shape)
        state = self.base.window(r0, c0, r1, c1)
        phases = [(when, patch) for ev in self.events for when, patch in ev.phases if when <= seconds]
        for _, patch in sorted(phases, key=lambda item: item[0]):
            shifted = _clip_patch(patch, r0, c0, r1, c1)
            if shifted is not None:
                state.paste(shifted)
        return state

    def change_dates(self, bounds: tuple[int, int, int, int]) -> list[float]:
        """Dates at which something inside ``bounds`` changes, sorted."""
        return sorted({when for ev in self.events for when, patch in ev.phases
                       if _overlaps(patch.bounds, bounds)})


def _overlaps(a: tuple[int, int, int, int], b: tuple[int, int, int, int]) -> bool:
    return a[0] < b[2] and b[0] < a[2] and a[1] < b[3] and b[1] < a[3]


def _clip_patch(patch: Patch, r0: int, c0: int, r1: int, c1: int) -> Patch | None:
    """The part of ``patch`` inside a window, re-based to the window's origin."""
    pr0, pc0, pr1, pc1 = patch.bounds
    ir0, ic0, ir1, ic1 = max(pr0, r0), max(pc0, c0), min(pr1, r1), min(pc1, c1)
    if ir1 <= ir0 or ic1 <= ic0:
        return None
    sl = (slice(ir0 - pr0, ir1 - pr0), slice(ic0 - pc0, ic1 - pc0))
    return Patch(ir0 - r0, ic0 - c0, patch.cover[sl], patch.height[sl], patch.roof[sl], patch.shade[sl],
                 patch.mask[sl])
