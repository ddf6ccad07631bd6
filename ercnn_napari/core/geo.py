"""The AoI's tile grid: tile (y, x) <-> bounds in the project CRS <-> pixel window.

The authors cut their stacked AoI raster into non-overlapping 32x32 tiles starting at the
top-left corner and dropped the remainder at the right and bottom edges. A :class:`TileGrid`
records exactly that geometry (origin = top-left corner of tile (0, 0), positive pixel sizes in
CRS units, number of tile rows and columns) so labels, predictions and reference images of any
tile can be placed on a map, and a label GeoTIFF can be checked against the tile it claims to be.
Only rasterio (GDAL) is used for CRS work: the viewer process must not need anything heavier.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Iterator
from dataclasses import dataclass
from functools import cached_property
from typing import Any

from affine import Affine
from rasterio.crs import CRS
from rasterio.errors import CRSError
from rasterio.warp import transform_bounds
from rasterio.windows import Window

from ercnn_napari.core.constants import TILE_SIZE
from ercnn_napari.core.errors import ProjectError
from ercnn_napari.core.tiles import TileId, format_tile_id

Bounds = tuple[float, float, float, float]  #: (left, bottom, right, top) in CRS units

#: Relative tolerance (of a pixel) when comparing coordinates read back from files.
PIXEL_TOLERANCE = 1e-3


def normalize_crs(value: Any, path: Any = None) -> str:
    """Return a CRS as ``"EPSG:n"`` when it has an EPSG code, else as WKT.

    Accepts anything rasterio accepts (``"EPSG:32631"``, WKT, a ``CRS``). An unreadable CRS is a
    :class:`ProjectError`, because every later coordinate depends on it.
    """
    try:
        crs = value if isinstance(value, CRS) else CRS.from_user_input(value)
    except (CRSError, TypeError, ValueError) as exc:
        raise ProjectError(f"cannot understand the coordinate reference system {value!r}: {exc}", path) from exc
    epsg = crs.to_epsg()
    return f"EPSG:{epsg}" if epsg is not None else crs.to_wkt()


def same_crs(a: Any, b: Any) -> bool:
    """True if two CRS descriptions (strings or ``CRS``) mean the same system."""
    try:
        crs_a = a if isinstance(a, CRS) else CRS.from_user_input(a)
        crs_b = b if isinstance(b, CRS) else CRS.from_user_input(b)
    except (CRSError, TypeError, ValueError):
        return False
    if crs_a == crs_b:
        return True
    epsg_a, epsg_b = crs_a.to_epsg(), crs_b.to_epsg()
    return epsg_a is not None and epsg_a == epsg_b


#: Largest grid (pixels) one project may have: the label mosaic and its saved copy are held in
#: memory (2 x 256 MiB at this bound); a bigger AoI gave a bare MemoryError or 18 GB of RAM.
MAX_GRID_PIXELS = 2 ** 28


@dataclass(frozen=True)
class TileGrid:
    """A regular grid of ``tile_size`` x ``tile_size`` pixel tiles, numbered (row y, column x)."""

    crs: str
    origin_x: float
    origin_y: float
    pixel_width: float
    pixel_height: float
    rows: int
    cols: int
    tile_size: int = TILE_SIZE

    def __post_init__(self) -> None:
        object.__setattr__(self, "crs", normalize_crs(self.crs))
        for name in ("origin_x", "origin_y", "pixel_width", "pixel_height"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, numbers.Real) or not math.isfinite(value):
                raise ProjectError(f"tile grid {name} must be a finite number, got {value!r}")
            object.__setattr__(self, name, float(value))
        if self.pixel_width <= 0 or self.pixel_height <= 0:
            raise ProjectError(
                f"tile grid pixel sizes must be positive (got {self.pixel_width}, {self.pixel_height})"
            )
        for name in ("rows", "cols", "tile_size"):
            value = getattr(self, name)
            if (isinstance(value, bool) or not isinstance(value, numbers.Real) or not math.isfinite(value)
                    or int(value) != value or value <= 0):
                raise ProjectError(f"tile grid {name} must be a positive integer, got {value!r}")
            object.__setattr__(self, name, int(value))
        pixels = self.rows * self.cols * self.tile_size ** 2
        if pixels > MAX_GRID_PIXELS:
            side_km = math.sqrt(MAX_GRID_PIXELS * self.pixel_width * self.pixel_height) / 1000
            raise ProjectError(
                f"tile grid of {self.rows} rows x {self.cols} columns ({pixels:,} pixels) is larger than the "
                f"{MAX_GRID_PIXELS:,} pixels one project holds (about {side_km:.0f} km square at this pixel size; "
                "the viewer keeps the whole label mosaic in memory); split the AoI into several projects"
            )

    # ----------------------------------------------------------------- construction
    @classmethod
    def from_aoi_bounds(
        cls,
        crs: Any,
        left: float,
        bottom: float,
        right: float,
        top: float,
        pixel_size: float | tuple[float, float],
        tile_size: int = TILE_SIZE,
    ) -> TileGrid:
        """The authors' tiling of an AoI box: start at the top-left, whole tiles only.

        Tiles that would stick out past the right or bottom edge are dropped, as the authors'
        VALID tiling dropped them. An AoI smaller than one tile is an error.
        """
        if isinstance(pixel_size, (tuple, list)):
            pixel_width, pixel_height = (float(v) for v in pixel_size)
        else:
            pixel_width = pixel_height = float(pixel_size)
        if pixel_width <= 0 or pixel_height <= 0:
            raise ProjectError(f"pixel size must be positive, got {pixel_size!r}")
        if right <= left or top <= bottom:
            raise ProjectError(f"AoI bounds are empty or inverted: left={left} bottom={bottom} right={right} top={top}")
        # a tiny epsilon so an AoI of exactly N tiles is not cut to N-1 by floating point
        cols = math.floor((right - left) / (pixel_width * tile_size) + 1e-9)
        rows = math.floor((top - bottom) / (pixel_height * tile_size) + 1e-9)
        if rows < 1 or cols < 1:
            raise ProjectError(
                f"AoI of {right - left:g} x {top - bottom:g} CRS units is smaller than one tile of "
                f"{tile_size} x {tile_size} pixels of {pixel_width:g} x {pixel_height:g}"
            )
        return cls(crs, left, top, pixel_width, pixel_height, rows, cols, tile_size)

    def to_dict(self) -> dict[str, Any]:
        """The grid as plain JSON values (used by the project file and prediction.json)."""
        return {
            "crs": self.crs,
            "origin_x": self.origin_x,
            "origin_y": self.origin_y,
            "pixel_width": self.pixel_width,
            "pixel_height": self.pixel_height,
            "rows": self.rows,
            "cols": self.cols,
            "tile_size": self.tile_size,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TileGrid:
        """Inverse of :meth:`to_dict`; missing or bad keys raise :class:`ProjectError`."""
        try:
            return cls(
                crs=data["crs"],
                origin_x=data["origin_x"],
                origin_y=data["origin_y"],
                pixel_width=data["pixel_width"],
                pixel_height=data["pixel_height"],
                rows=data["rows"],
                cols=data["cols"],
                tile_size=data.get("tile_size", TILE_SIZE),
            )
        except KeyError as exc:
            raise ProjectError(f"tile grid description lacks {exc.args[0]!r}") from exc
        except (TypeError, ValueError) as exc:
            raise ProjectError(f"tile grid description is invalid: {exc}") from exc

    # ----------------------------------------------------------------- whole grid
    @cached_property
    def crs_object(self) -> CRS:
        """The CRS as a rasterio object (parsed once: label reads ask for it on every tile)."""
        return CRS.from_user_input(self.crs)

    @cached_property
    def is_geographic(self) -> bool:
        """True for latitude/longitude grids (pixel sizes in degrees)."""
        return bool(self.crs_object.is_geographic)

    @property
    def transform(self) -> Affine:
        """Pixel -> CRS transform of the whole grid (north up)."""
        return Affine(self.pixel_width, 0.0, self.origin_x, 0.0, -self.pixel_height, self.origin_y)

    @property
    def shape_pixels(self) -> tuple[int, int]:
        """(height, width) of the whole grid in pixels."""
        return self.rows * self.tile_size, self.cols * self.tile_size

    @property
    def bounds(self) -> Bounds:
        height, width = self.shape_pixels
        return (
            self.origin_x,
            self.origin_y - height * self.pixel_height,
            self.origin_x + width * self.pixel_width,
            self.origin_y,
        )

    def bounds_4326(self) -> Bounds:
        """Bounds of the whole grid in longitude/latitude, for display and sanity checks."""
        return _to_4326(self.crs, self.bounds)

    def tiles(self) -> Iterator[TileId]:
        """Every tile of the grid, row by row."""
        for y in range(self.rows):
            for x in range(self.cols):
                yield (y, x)

    def contains(self, tile: TileId) -> bool:
        y, x = tile
        return 0 <= y < self.rows and 0 <= x < self.cols

    def check_tile(self, tile: TileId, path: Any = None) -> TileId:
        """Return ``tile`` if it lies on the grid, else raise a :class:`ProjectError` naming ``path``."""
        if not self.contains(tile):
            raise ProjectError(
                f"tile {format_tile_id(tile)} is outside the project grid of {self.rows} rows x {self.cols} columns",
                path,
            )
        return (int(tile[0]), int(tile[1]))

    # ----------------------------------------------------------------- one tile
    def tile_transform(self, tile: TileId) -> Affine:
        """Pixel -> CRS transform of one tile (its top-left pixel corner is the translation)."""
        y, x = tile
        span_x = self.tile_size * self.pixel_width
        span_y = self.tile_size * self.pixel_height
        return Affine(self.pixel_width, 0.0, self.origin_x + x * span_x, 0.0, -self.pixel_height,
                      self.origin_y - y * span_y)

    def tile_bounds(self, tile: TileId) -> Bounds:
        """(left, bottom, right, top) of a tile in the project CRS."""
        transform = self.tile_transform(tile)
        left, top = transform.c, transform.f
        return (left, top - self.tile_size * self.pixel_height, left + self.tile_size * self.pixel_width, top)

    def tile_bounds_4326(self, tile: TileId) -> Bounds:
        """A tile's bounds in longitude/latitude (a box enclosing the reprojected tile)."""
        return _to_4326(self.crs, self.tile_bounds(tile))

    def tile_window(self, tile: TileId) -> Window:
        """The tile's pixel window inside the whole-grid raster (rasterio ``Window``)."""
        y, x = tile
        return Window(x * self.tile_size, y * self.tile_size, self.tile_size, self.tile_size)

    def tile_slices(self, tile: TileId) -> tuple[slice, slice]:
        """(row slice, column slice) of the tile inside a whole-grid numpy mosaic."""
        y, x = tile
        ts = self.tile_size
        return slice(y * ts, (y + 1) * ts), slice(x * ts, (x + 1) * ts)

    def tile_at(self, x: float, y: float) -> TileId | None:
        """The tile containing CRS point (x, y), or None outside the grid.

        Points on a shared edge belong to the tile to the right/below, like pixel indexing.
        """
        col = math.floor((x - self.origin_x) / self.pixel_width)
        row = math.floor((self.origin_y - y) / self.pixel_height)
        tile = (row // self.tile_size, col // self.tile_size)
        return tile if row >= 0 and col >= 0 and self.contains(tile) else None

    def tiles_in_bounds(self, bounds: Bounds) -> list[TileId]:
        """Tiles whose area overlaps the box (left, bottom, right, top) in the project CRS."""
        left, bottom, right, top = bounds
        span_x = self.tile_size * self.pixel_width
        span_y = self.tile_size * self.pixel_height
        x0 = max(0, math.floor((left - self.origin_x) / span_x))
        x1 = min(self.cols - 1, math.ceil((right - self.origin_x) / span_x) - 1)
        y0 = max(0, math.floor((self.origin_y - top) / span_y))
        y1 = min(self.rows - 1, math.ceil((self.origin_y - bottom) / span_y) - 1)
        return [(y, x) for y in range(y0, y1 + 1) for x in range(x0, x1 + 1)]

    def matches_tile_transform(self, transform: Affine, tile: TileId) -> bool:
        """True if a raster's transform is the tile's transform (within a thousandth of a pixel)."""
        expected = self.tile_transform(tile)
        tol_x = self.pixel_width * PIXEL_TOLERANCE
        tol_y = self.pixel_height * PIXEL_TOLERANCE
        return (
            abs(transform.a - expected.a) <= tol_x * 1e-2
            and abs(transform.e - expected.e) <= tol_y * 1e-2
            and abs(transform.b) <= tol_x * 1e-2
            and abs(transform.d) <= tol_y * 1e-2
            and abs(transform.c - expected.c) <= tol_x
            and abs(transform.f - expected.f) <= tol_y
        )

    def tile_of_transform(self, transform: Affine) -> TileId | None:
        """Which tile a tile-sized raster with this top-left corner is (None if it is not aligned)."""
        center_x, center_y = transform @ (self.tile_size / 2, self.tile_size / 2)
        tile = self.tile_at(center_x, center_y)
        if tile is None or not self.matches_tile_transform(transform, tile):
            return None
        return tile


def _to_4326(crs: str, bounds: Bounds) -> Bounds:
    if same_crs(crs, "EPSG:4326"):
        return bounds
    left, bottom, right, top = transform_bounds(CRS.from_user_input(crs), CRS.from_epsg(4326), *bounds, densify_pts=21)
    return (left, bottom, right, top)
