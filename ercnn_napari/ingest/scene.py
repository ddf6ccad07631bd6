"""The contract between an observation source and the stacker: one acquisition of one stream.

A source knows how to list its acquisitions cheaply (:class:`SceneInfo`, no pixels) and how to
read one of them onto any target grid (:meth:`Scene.read`). Reading returns values already in the
units the published network saw (ercnn_facts §8: S1 gamma0 linear power, S2 L1C TOA reflectance
0-1 with B01..B12 and B8A after B08) and a validity mask (True = use this pixel), so everything
downstream is source-agnostic. Keeping pixels out of :class:`SceneInfo` is what lets an ingest plan,
deduplicate and resume without touching raster data, and stream scene by scene.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Protocol

import numpy as np
from affine import Affine

#: The three streams of the stacked series, in the channel order of the network input.
STREAMS: tuple[str, ...] = ("S1_ascending", "S1_descending", "S2")
#: Band order the network expects for each sensor.
S1_BANDS: tuple[str, ...] = ("VV", "VH")
S2_BANDS: tuple[str, ...] = (
    "B01", "B02", "B03", "B04", "B05", "B06", "B07", "B08", "B8A", "B09", "B10", "B11", "B12",
)
SENSORS: tuple[str, ...] = ("S1", "S2")
ORBITS: tuple[str, ...] = ("ascending", "descending")
UNITS: tuple[str, ...] = ("reflectance", "dn", "linear", "db", "amplitude")


def stream_of(sensor: str, orbit: str | None) -> str:
    """The stacked-series stream an acquisition feeds (S1 is split by orbit direction)."""
    if sensor == "S2":
        return "S2"
    if sensor == "S1" and orbit in ORBITS:
        return f"S1_{orbit}"
    raise ValueError(f"no stream for sensor {sensor!r} with orbit {orbit!r}")


@dataclass(frozen=True)
class TargetGrid:
    """Where to put the pixels: a north-up raster in ``crs`` (the project grid or a part of it)."""

    crs: str
    transform: Affine
    height: int
    width: int


@dataclass(frozen=True)
class SceneInfo:
    """What is known about an acquisition before reading it (cheap; no pixels)."""

    time: datetime                 #: acquisition time, timezone-aware UTC
    sensor: str                    #: "S1" | "S2"
    orbit: str | None              #: "ascending" | "descending" for S1, None for S2
    product: str                   #: e.g. "S2_L1C", "S2_L2A", "S1_GRD_GAMMA0_ELLIPSOID", "S1_RTC"
    units: str                     #: units of the source pixels, one of UNITS
    bands: tuple[str, ...]         #: band names of the source, in the source's order
    source: str                    #: file path, URL or request id, for messages and the fidelity record
    processing: dict[str, str] = field(default_factory=dict)  #: e.g. {"backscatter": "GAMMA0_ELLIPSOID"}

    @property
    def stream(self) -> str:
        return stream_of(self.sensor, self.orbit)

    @property
    def epoch_seconds(self) -> float:
        return self.time.astimezone(timezone.utc).timestamp()


class Scene(Protocol):
    """One acquisition a source can read onto a target grid."""

    info: SceneInfo

    def read(self, grid: TargetGrid) -> tuple[np.ndarray, np.ndarray]:
        """Values float32 [H, W, C] in network units and band order (S1_BANDS or S2_BANDS), and
        valid bool [H, W]. Raises :class:`~ercnn_napari.core.errors.ErcnnError` naming
        ``info.source`` when the file or response is unusable."""
        ...


class Source(Protocol):
    """Anything that lists acquisitions for a project's extent and period."""

    def scenes(self) -> Iterable[Scene] | Iterator[Scene]:
        ...
