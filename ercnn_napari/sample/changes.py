"""Dated urban changes of 2017-2020 planned on the base town, as patches of new land cover.

The sample must contain the changes ERCNN-DRS is meant to find, with known dates: construction
(meadow or field -> bare soil -> foundations -> building with parking and lawn), demolition
(building -> rubble, then either green wasteland or a new building), new car parks and a new
street. Each event is a list of (date, patch) phases; the same phases drive the Sentinel signals,
the reference images, the answer key and the analyst-style label polygons.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ercnn_napari.sample.landcover import Cover, LandCover, Patch, Roof
from ercnn_napari.sample.layout import Town
from ercnn_napari.sample.site import utc

DAY = 86400.0
#: Events start (first visible change) between these dates: after the "before" reference images
#: and early enough that the start is seen by the 2017-2020 windows.
FIRST_CHANGE = "2017-05-01"
LAST_CHANGE = "2020-08-31"


@dataclass
class ChangeEvent:
    """One change: where (site bounds on the 1 m raster), what, and its dated phases."""

    event_id: int
    kind: str
    site: tuple[int, int, int, int]                     # r0, c0, r1, c1 (1 m cells)
    phases: list[tuple[float, Patch]] = field(default_factory=list)
    phase_names: list[str] = field(default_factory=list)

    @property
    def start(self) -> float:
        return self.phases[0][0]

    def describe(self) -> dict:
        """JSON-ready record for the answer key (dates as UNIX seconds; writers add ISO text)."""
        return {
            "id": self.event_id,
            "kind": self.kind,
            "site_fine": list(self.site),
            "phases": [{"name": n, "time": t} for n, (t, _) in zip(self.phase_names, self.phases, strict=True)],
        }


def plan_events(town: Town, rng: np.random.Generator, n_construction: int, n_demolition: int,
                n_parking: int, n_roads: int) -> list[ChangeEvent]:
    """Place non-overlapping change events on the town and date their phases."""
    land = town.land
    taken = np.zeros(land.shape, bool)
    taken |= town.river
    events: list[ChangeEvent] = []
    t0, t1 = utc(FIRST_CHANGE), utc(LAST_CHANGE)

    def next_id() -> int:
        return len(events) + 1

    for _ in range(n_demolition):
        ev = _demolition(town, taken, rng, next_id(), rng.uniform(t0, t1 - 200 * DAY))
        if ev is not None:
            events.append(ev)
    for _ in range(n_construction):
        ev = _construction(land, taken, rng, next_id(), rng.uniform(t0, t1))
        if ev is not None:
            events.append(ev)
    for _ in range(n_parking):
        site = _find_site(land, taken, rng, (25, 45), (30, 60), (Cover.GRASS, Cover.CROP))
        if site is not None:
            when = rng.uniform(t0, t1)
            ev = ChangeEvent(next_id(), "car park", site)
            ev.phases.append((when, _fill_patch(land, site, Cover.BARE)))
            ev.phase_names.append("earthworks")
            ev.phases.append((when + rng.uniform(40, 90) * DAY, _car_park_patch(land, site)))
            ev.phase_names.append("paved")
            events.append(ev)
    for _ in range(n_roads):
        ev = _new_street(land, taken, rng, next_id(), rng.uniform(t0, t1))
        if ev is not None:
            events.append(ev)
    events.sort(key=lambda e: e.start)
    for k, ev in enumerate(events, start=1):
        ev.event_id = k
    return events


# ---------------------------------------------------------------------------- site search
def _find_site(land: LandCover, taken: np.ndarray, rng: np.random.Generator, height_range: tuple[int, int],
               width_range: tuple[int, int], allowed: tuple[Cover, ...], tries: int = 400
               ) -> tuple[int, int, int, int] | None:
    """A free rectangle of mostly ``allowed`` cover within 15 m of a road, or None."""
    rows, cols = land.shape
    allowed_values = np.array([int(a) for a in allowed] + [int(Cover.TREE)])
    for _ in range(tries):
        h, w = int(rng.uniform(*height_range)), int(rng.uniform(*width_range))
        r0, c0 = int(rng.uniform(0, rows - h)), int(rng.uniform(0, cols - w))
        r1, c1 = r0 + h, c0 + w
        if taken[max(r0 - 10, 0):r1 + 10, max(c0 - 10, 0):c1 + 10].any():
            continue
        inside = land.cover[r0:r1, c0:c1]
        if np.isin(inside, allowed_values).mean() < 0.97:
            continue
        around = land.cover[max(r0 - 15, 0):r1 + 15, max(c0 - 15, 0):c1 + 15]
        if not (around == Cover.ROAD).any():
            continue
        taken[r0:r1, c0:c1] = True
        return r0, c0, r1, c1
    return None


def _fill_patch(land: LandCover, site: tuple[int, int, int, int], cover: Cover) -> Patch:
    r0, c0, r1, c1 = site
    shape = (r1 - r0, c1 - c0)
    patch = LandCover.empty(shape, cover)
    return Patch(r0, c0, patch.cover, patch.height, patch.roof, patch.shade, np.ones(shape, bool))


def _as_patch(r0: int, c0: int, window: LandCover, mask: np.ndarray | None = None) -> Patch:
    mask = np.ones(window.shape, bool) if mask is None else mask
    return Patch(r0, c0, window.cover, window.height, window.roof, window.shade, mask)


# ---------------------------------------------------------------------------- event kinds
def _construction(land: LandCover, taken: np.ndarray, rng: np.random.Generator, event_id: int,
                  start: float) -> ChangeEvent | None:
    """Vegetation -> bare soil -> foundations -> finished building(s) with parking and lawn."""
    style = str(rng.choice(["houses", "apartments", "hall"], p=[0.45, 0.35, 0.2]))
    sizes = {"houses": ((24, 34), (40, 75)), "apartments": ((28, 45), (30, 60)), "hall": ((35, 55), (50, 80))}
    site = _find_site(land, taken, rng, *sizes[style], allowed=(Cover.GRASS, Cover.CROP, Cover.BARE))
    if site is None:
        return None
    ev = ChangeEvent(event_id, f"construction ({style})", site)
    duration = rng.uniform(200, 480) * DAY
    finished, footprints = _built_site(site, style, rng)
    foundations = LandCover.empty(finished.shape, Cover.BARE)
    for fr0, fc0, fr1, fc1 in footprints:
        foundations.rect(fr0, fc0, fr1, fc1, Cover.PAVED)
    ev.phases += [(start, _fill_patch(land, site, Cover.BARE)),
                  (start + 0.3 * duration, _as_patch(site[0], site[1], foundations)),
                  (start + duration, _as_patch(site[0], site[1], finished))]
    ev.phase_names += ["site cleared", "foundations", "completed"]
    return ev


def _built_site(site: tuple[int, int, int, int], style: str, rng: np.random.Generator
                ) -> tuple[LandCover, list[tuple[int, int, int, int]]]:
    """The finished site (local coordinates) and its building footprints."""
    r0, c0, r1, c1 = site
    h, w = r1 - r0, c1 - c0
    done = LandCover.empty((h, w), Cover.GRASS)
    footprints: list[tuple[int, int, int, int]] = []
    if style == "houses":
        roof = Roof.RED_TILE if rng.uniform() < 0.5 else Roof.SLATE
        pos = 3
        while pos + 10 <= w - 2:
            hw = int(rng.uniform(8, 11))
            rect = (4, pos, 4 + int(rng.uniform(8, 11)), pos + hw)
            done.building(*rect, height=rng.uniform(6, 8), roof=roof, pitched=True)
            done.rect(rect[2], pos + 2, h, pos + 5, Cover.PAVED)
            footprints.append(rect)
            pos += hw + int(rng.uniform(4, 7))
    elif style == "apartments":
        depth = int(rng.uniform(12, 16))
        rect = (5, 4, 5 + depth, w - 4)
        done.building(*rect, height=rng.uniform(12, 18), roof=Roof(rng.choice([Roof.BITUMEN, Roof.FLAT_GREY])),
                      pitched=False)
        done.rect(5 + depth + 3, 2, h - 2, w - 2, Cover.PAVED)
        footprints.append(rect)
    else:
        rect = (4, 4, h - int(rng.uniform(10, 16)), w - 4)
        done.rect(0, 0, h, w, Cover.PAVED)
        done.building(*rect, height=rng.uniform(9, 13), roof=Roof.METAL, pitched=False)
        footprints.append(rect)
    for _ in range(int(rng.integers(1, 4))):          # young trees in the new lawn
        done.tree(rng.uniform(h - 6, h - 2), rng.uniform(3, w - 3), rng.uniform(1.5, 2.5), rng.uniform(3, 5))
    return done, footprints


def _car_park_patch(land: LandCover, site: tuple[int, int, int, int]) -> Patch:
    r0, c0, r1, c1 = site
    park = LandCover.empty((r1 - r0, c1 - c0), Cover.PAVED)
    park.rect(0, 0, 2, c1 - c0, Cover.GRASS)
    park.shade[:, ::5] = 1.25                      # painted bay lines
    return _as_patch(r0, c0, park)


def _demolition(town: Town, taken: np.ndarray, rng: np.random.Generator, event_id: int,
                start: float) -> ChangeEvent | None:
    """A hall or a house is pulled down; the plot greens over or gets a new building."""
    candidates = [(b, rect) for b in town.blocks if b.kind in ("industrial", "detached", "terraced")
                  for rect in b.buildings]
    for _ in range(200):
        block, rect = candidates[int(rng.integers(len(candidates)))]
        if block.kind == "terraced":
            continue
        r0, c0, r1, c1 = rect[0] - 3, rect[1] - 3, rect[2] + 3, rect[3] + 3
        if r0 < 0 or c0 < 0 or r1 > taken.shape[0] or c1 > taken.shape[1]:
            continue
        if taken[max(r0 - 10, 0):r1 + 10, max(c0 - 10, 0):c1 + 10].any():
            continue
        taken[r0:r1, c0:c1] = True
        site = (r0, c0, r1, c1)
        ev = ChangeEvent(event_id, "demolition", site)
        ev.phases.append((start, _fill_patch(town.land, site, Cover.BARE)))
        ev.phase_names.append("demolished")
        if rng.uniform() < 0.5 and (r1 - r0) >= 24 and (c1 - c0) >= 24:
            ev.kind = "demolition and rebuilding"
            finished, _ = _built_site(site, "apartments", rng)
            ev.phases.append((start + rng.uniform(300, 500) * DAY, _as_patch(r0, c0, finished)))
            ev.phase_names.append("rebuilt")
        else:
            ev.phases.append((start + rng.uniform(200, 350) * DAY, _fill_patch(town.land, site, Cover.GRASS)))
            ev.phase_names.append("greened over")
        return ev
    return None


def _new_street(land: LandCover, taken: np.ndarray, rng: np.random.Generator, event_id: int,
                start: float) -> ChangeEvent | None:
    """A new street with sidewalks cut through a field or meadow."""
    site = _find_site(land, taken, rng, (16, 17), (110, 200), (Cover.GRASS, Cover.CROP))
    if site is None:
        return None
    r0, c0, r1, c1 = site
    ev = ChangeEvent(event_id, "new street", site)
    ev.phases.append((start, _fill_patch(land, site, Cover.BARE)))
    street = LandCover.empty((r1 - r0, c1 - c0), Cover.PAVED)
    street.rect(3, 0, r1 - r0 - 3, c1 - c0, Cover.ROAD)
    ev.phases.append((start + rng.uniform(60, 150) * DAY, _as_patch(r0, c0, street)))
    ev.phase_names += ["earthworks", "paved"]
    return ev
