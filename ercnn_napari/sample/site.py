"""Where and when the synthetic Liège sample lives: grid placement, period, names.

The grid sits inside the authors' Liège AoI (their shapefile is a lon/lat box, reproduced here
so the generator needs no external file) in UTM zone 31N, the zone Liège falls in, on the same
10 m / 32-pixel tiling the authors used. Everything else in the sample package derives its
geometry from :class:`SampleSpec`, so changing the grid size here changes the whole sample.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from ercnn_napari.core.constants import PERIOD_END, PERIOD_START, PIXEL_SIZE_M, TILE_SIZE

SITE_NAME = "Liege"
CRS = "EPSG:32631"

#: The authors' Liège AoI (their ``Liege_4326.shp``), lon/lat corners in EPSG:4326.
LIEGE_AOI_LONLAT = (5.382712423099305, 50.54747107625641, 5.728061532830526, 50.73503904914708)

#: Default seed of the committed sample.
DEFAULT_SEED = 2017

#: Metres per land-cover cell: the very-high-resolution scale the reference images show.
FINE_M = 1.0
#: Land-cover cells per 10 m Sentinel pixel along one side.
FINE_PER_PIXEL = int(round(PIXEL_SIZE_M / FINE_M))
#: Land-cover cells per tile side (320 at 1 m).
FINE_PER_TILE = TILE_SIZE * FINE_PER_PIXEL


def utc(text: str) -> float:
    """ISO date/time (UTC) -> UNIX seconds."""
    value = dt.datetime.fromisoformat(text)
    if value.tzinfo is None:
        value = value.replace(tzinfo=dt.timezone.utc)
    return value.timestamp()


def iso(seconds: float) -> str:
    """UNIX seconds -> ISO-8601 UTC text (second precision), as people read it in files."""
    return dt.datetime.fromtimestamp(float(seconds), dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass(frozen=True)
class SampleSpec:
    """Size, placement and period of the sample AoI.

    ``origin_x/origin_y`` are the top-left corner of tile (0, 0) in ``CRS`` metres; the default
    puts the grid over the Meuse valley south-east of Liège centre, well inside the authors' AoI.
    """

    rows: int = 6
    cols: int = 8
    origin_x: float = 682000.0
    origin_y: float = 5612000.0
    period_start: str = PERIOD_START
    period_end: str = "2021-01-16T05:50:00"
    seed: int = DEFAULT_SEED

    @property
    def fine_shape(self) -> tuple[int, int]:
        """(rows, cols) of the 1 m land-cover map of the whole AoI."""
        return self.rows * FINE_PER_TILE, self.cols * FINE_PER_TILE

    @property
    def start_seconds(self) -> float:
        return utc(self.period_start)

    @property
    def end_seconds(self) -> float:
        return utc(self.period_end)

    def tiles(self) -> list[tuple[int, int]]:
        return [(y, x) for y in range(self.rows) for x in range(self.cols)]

    def tile_grid(self):  # -> core.geo.TileGrid (imported lazily: PROJECT's module)
        """The project's :class:`~ercnn_napari.core.geo.TileGrid` for this spec."""
        from ercnn_napari.core.geo import TileGrid

        return TileGrid(CRS, self.origin_x, self.origin_y, PIXEL_SIZE_M, PIXEL_SIZE_M, self.rows, self.cols, TILE_SIZE)

    def fine_to_xy(self, row: float, col: float) -> tuple[float, float]:
        """Fine (1 m) raster position (row, col) of a cell corner -> CRS (x, y)."""
        return self.origin_x + col * FINE_M, self.origin_y - row * FINE_M


assert PERIOD_START == "2017-01-01"  # the spec's default start relies on it
assert PERIOD_END == "2021-01-16"
