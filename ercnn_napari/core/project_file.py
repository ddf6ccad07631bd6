"""``ercnn_project.json``: the small file that lets a project folder open without guessing.

The authors' layout (``ground_truth/{y}:{x}/``, ``training/numpy_ground_truth/``,
``training/V{n}/``) records no CRS, grid or period anywhere readable. Our project file adds exactly
that, next to their folders, and nothing else: the label files stay the authors' files. When the
file is missing (a folder downloaded from the authors' repository), :func:`infer_project_file`
reconstructs what it can from the label GeoTIFFs and file names and lists what it had to assume.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import warnings as pywarnings
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NamedTuple

from ercnn_napari.core.atomic import atomic_write_text
from ercnn_napari.core.constants import PERIOD_END, PERIOD_START, TILE_SIZE
from ercnn_napari.core.errors import ProjectError
from ercnn_napari.core.geo import TileGrid
from ercnn_napari.core.tiles import TileId, format_tile_id, parse_tile_id, parse_tile_stem

FORMAT_NAME = "ercnn-napari-project"
FORMAT_VERSION = 1
PROJECT_FILE_NAME = "ercnn_project.json"

# The authors' folder layout, relative to the project root.
GROUND_TRUTH_DIR = "ground_truth"
TRAINING_DIR = "training"
NPY_DIR = "training/numpy_ground_truth"
STACKED_OBSERVATIONS_DIR = "observations"

OBSERVATION_KINDS = ("stacked", "stage3")


class Period(NamedTuple):
    """First and last day (ISO dates, ``YYYY-MM-DD``) the project's labels describe."""

    start: str
    end: str


DEFAULT_PERIOD = Period(PERIOD_START, PERIOD_END)


@dataclass
class ProjectFile:
    """Everything ``ercnn_project.json`` holds."""

    site: str
    grid: TileGrid
    period: Period = DEFAULT_PERIOD
    observations: dict[str, Any] | None = None
    extra: dict[str, Any] = field(default_factory=dict)  # unknown keys, kept when rewriting

    def to_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = dict(self.extra)
        data.update({
            "format": FORMAT_NAME,
            "version": FORMAT_VERSION,
            "site": self.site,
            "grid": self.grid.to_dict(),
            "period": {"start": self.period.start, "end": self.period.end},
            "observations": self.observations,
        })
        return data


def check_site(site: Any, path: Any = None) -> str:
    """Site names become file-name prefixes (``<Site>_{y}_{x}.npy``): no separators, not empty."""
    if not isinstance(site, str) or not site.strip():
        raise ProjectError(f"site name must be a non-empty string, got {site!r}", path)
    if any(ch in site for ch in "/\\:") or site != site.strip():
        raise ProjectError(f"site name {site!r} must not contain '/', '\\', ':' or surrounding spaces", path)
    return site


def check_period(period: Any, path: Any = None) -> Period:
    """Accept (start, end) or {"start", "end"} ISO dates with start before end."""
    if isinstance(period, dict):
        period = (period.get("start"), period.get("end"))
    try:
        start, end = period
        start_date = dt.date.fromisoformat(str(start)[:10])
        end_date = dt.date.fromisoformat(str(end)[:10])
    except (TypeError, ValueError) as exc:
        raise ProjectError(f"period must be two ISO dates (YYYY-MM-DD), got {period!r}", path) from exc
    if end_date <= start_date:
        raise ProjectError(f"period end {end_date} is not after its start {start_date}", path)
    return Period(start_date.isoformat(), end_date.isoformat())


def check_observations(config: Any, path: Any = None) -> dict[str, Any] | None:
    """Validate the observations entry: None, or {"kind": "stacked"|"stage3", "path": str, ...}."""
    if config is None:
        return None
    if not isinstance(config, dict):
        raise ProjectError(f"'observations' must be an object, got {config!r}", path)
    kind = config.get("kind")
    if kind not in OBSERVATION_KINDS:
        raise ProjectError(f"observations kind must be one of {OBSERVATION_KINDS}, got {kind!r}", path)
    if not isinstance(config.get("path"), str) or not config["path"]:
        raise ProjectError("observations entry needs a 'path' (relative to the project or absolute)", path)
    if "window_csv" in config and config["window_csv"] is not None and not isinstance(config["window_csv"], str):
        raise ProjectError(f"observations 'window_csv' must be a path string, got {config['window_csv']!r}", path)
    return dict(config)


def read_project_file(path: str | os.PathLike) -> ProjectFile:
    """Read and validate ``ercnn_project.json``; every problem names the file."""
    path = Path(path)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise ProjectError("project file is missing", path) from exc
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ProjectError(f"project file is not valid JSON: {exc}", path) from exc
    if not isinstance(data, dict) or data.get("format") != FORMAT_NAME:
        raise ProjectError(f"not an {FORMAT_NAME} file (its 'format' is {data.get('format') if isinstance(data, dict) else None!r})", path)
    version = data.get("version")
    if not isinstance(version, int) or version > FORMAT_VERSION or version < 1:
        raise ProjectError(f"project file version {version!r} is not supported (this version reads 1..{FORMAT_VERSION})", path)
    if not isinstance(data.get("grid"), dict):
        raise ProjectError("project file lacks the 'grid' object", path)
    try:
        grid = TileGrid.from_dict(data["grid"])
    except ProjectError as exc:
        raise ProjectError(exc.message, path) from exc
    known = {"format", "version", "site", "grid", "period", "observations"}
    return ProjectFile(
        site=check_site(data.get("site"), path),
        grid=grid,
        period=check_period(data.get("period", DEFAULT_PERIOD), path),
        observations=check_observations(data.get("observations"), path),
        extra={k: v for k, v in data.items() if k not in known},
    )


def write_project_file(path: str | os.PathLike, project_file: ProjectFile) -> None:
    """Write ``ercnn_project.json`` atomically (an interrupted save keeps the previous file)."""
    atomic_write_text(path, json.dumps(project_file.to_dict(), indent=2) + "\n")


# ---------------------------------------------------------------------------------- inference
@dataclass
class _LabelGeometry:
    tile: TileId
    crs: str | None
    transform: Any
    path: Path


def label_tif_tiles(root: Path) -> dict[TileId, Path]:
    """Tiles with a label GeoTIFF ``ground_truth/{y}:{x}/{y}:{x}.tif`` (folders with other names are ignored)."""
    found: dict[TileId, Path] = {}
    base = root / GROUND_TRUTH_DIR
    if not base.is_dir():
        return found
    for folder in base.iterdir():
        tif = folder / f"{folder.name}.tif"
        if not tif.is_file():
            continue
        try:
            found[parse_tile_id(folder.name)] = tif
        except ProjectError:
            continue
    return found


def npy_tiles(root: Path) -> dict[TileId, tuple[str | None, Path]]:
    """Tiles with a ``<Site>_{y}_{x}.npy`` label, with the site each file name carries."""
    found: dict[TileId, tuple[str | None, Path]] = {}
    base = root / NPY_DIR
    if not base.is_dir():
        return found
    for npy in base.glob("*.npy"):
        parsed = parse_tile_stem(npy.stem)
        if parsed is not None:
            found[parsed[1]] = (parsed[0], npy)
    return found


def infer_project_file(root: str | os.PathLike) -> tuple[ProjectFile, list[str]]:
    """Reconstruct the project file of a folder in the authors' layout; return it and what was assumed.

    Site: the prefix of the ``.npy`` names. CRS, pixel size and grid origin: the label GeoTIFFs'
    transforms together with their tile indices. Grid size: the largest tile index seen in any
    file name or list (a lower bound, said so in the warnings). Period: the authors' Liège period.
    Raises :class:`ProjectError` only when no georeferenced label exists at all, because without
    one the tiles cannot be placed on a map.
    """
    root = Path(root)
    warnings: list[str] = [f"{PROJECT_FILE_NAME} is missing; project settings were inferred from the files"]
    npys = npy_tiles(root)
    sites = Counter(site for site, _ in npys.values() if site)
    if sites:
        site = sites.most_common(1)[0][0]
        if len(sites) > 1:
            warnings.append(f"label .npy files name several sites {sorted(sites)}; using {site!r}")
    else:
        site = root.resolve().name or "site"
        warnings.append(f"no <Site>_y_x.npy label files; site name taken from the folder name: {site!r}")

    geometries = _label_geometries(root)
    if not geometries:
        raise ProjectError(
            f"cannot infer the tile grid: there is no {PROJECT_FILE_NAME} and no georeferenced label GeoTIFF "
            f"under {GROUND_TRUTH_DIR}/; create the project with 'Project.create' or write {PROJECT_FILE_NAME}",
            root,
        )
    grid_crs, origin_x, origin_y, pixel_width, pixel_height = _grid_from_geometries(geometries, warnings)

    all_tiles = set(npys) | set(label_tif_tiles(root)) | _tiles_in_lists(root) | set(_observation_tiles(root))
    rows = max(t[0] for t in all_tiles) + 1
    cols = max(t[1] for t in all_tiles) + 1
    warnings.append(
        f"grid size inferred from the largest tile indices as {rows} rows x {cols} columns; the AoI may be larger"
    )
    grid = TileGrid(grid_crs, origin_x, origin_y, pixel_width, pixel_height, rows, cols, TILE_SIZE)
    warnings.append(f"period not recorded; assuming {DEFAULT_PERIOD.start} to {DEFAULT_PERIOD.end}")
    observations = infer_observations(root)
    if observations is None:
        warnings.append("no observation TFRecords found (observations/ or training/V*/data/)")
    return ProjectFile(site=site, grid=grid, period=DEFAULT_PERIOD, observations=observations), warnings


def infer_observations(root: Path) -> dict[str, Any] | None:
    """Stacked series in ``observations/`` win over the authors' stage-3 files in ``training/``."""
    stacked = root / STACKED_OBSERVATIONS_DIR
    if stacked.is_dir() and any(stacked.glob("*.tfrecords")):
        config: dict[str, Any] = {"kind": "stacked", "path": STACKED_OBSERVATIONS_DIR}
        csvs = sorted(stacked.glob("*window*.csv"))
        if csvs:
            config["window_csv"] = str(csvs[0].relative_to(root))
        return config
    training = root / TRAINING_DIR
    if training.is_dir() and any(training.glob("V*/data/**/*.tfrecords")):
        return {"kind": "stage3", "path": TRAINING_DIR}
    return None


def _label_geometries(root: Path) -> list[_LabelGeometry]:
    import rasterio  # local: keeps `import project_file` cheap for tools that only read JSON
    from rasterio.errors import NotGeoreferencedWarning

    geometries = []
    for tile, tif in sorted(label_tif_tiles(root).items()):
        try:
            with pywarnings.catch_warnings():
                pywarnings.simplefilter("ignore", NotGeoreferencedWarning)
                with rasterio.open(tif) as src:
                    crs = src.crs.to_string() if src.crs else None
                    transform = src.transform
        except rasterio.errors.RasterioIOError:
            continue
        if crs is None or transform.is_identity:
            continue
        geometries.append(_LabelGeometry(tile, crs, transform, tif))
    return geometries


def _grid_from_geometries(geometries: list[_LabelGeometry], warnings: list[str]) -> tuple[str, float, float, float, float]:
    """Origin and pixel size per label; the most common CRS; medians; disagreement is reported."""
    import numpy as np

    from ercnn_napari.core.geo import normalize_crs

    crs_counts = Counter(normalize_crs(g.crs) for g in geometries)
    grid_crs = crs_counts.most_common(1)[0][0]
    if len(crs_counts) > 1:
        warnings.append(f"label GeoTIFFs use several CRS {sorted(crs_counts)}; the grid uses {grid_crs}")
    usable = [g for g in geometries if normalize_crs(g.crs) == grid_crs]
    widths = np.array([g.transform.a for g in usable])
    heights = np.array([-g.transform.e for g in usable])
    origins_x = np.array([g.transform.c - g.tile[1] * TILE_SIZE * g.transform.a for g in usable])
    origins_y = np.array([g.transform.f + g.tile[0] * TILE_SIZE * (-g.transform.e) for g in usable])
    pixel_width, pixel_height = float(np.median(widths)), float(np.median(heights))
    origin_x, origin_y = float(np.median(origins_x)), float(np.median(origins_y))
    off = (np.abs(origins_x - origin_x) > 0.5 * pixel_width) | (np.abs(origins_y - origin_y) > 0.5 * pixel_height)
    if off.any():
        names = ", ".join(format_tile_id(g.tile) for g, bad in zip(usable, off, strict=True) if bad)
        warnings.append(f"label GeoTIFFs of tiles {names} do not line up with the others' grid")
    from rasterio.crs import CRS

    if CRS.from_user_input(grid_crs).is_geographic:
        warnings.append(
            f"label GeoTIFFs are in geographic {grid_crs}; the inferred grid is approximate - "
            f"write {PROJECT_FILE_NAME} with the projected grid of the observations"
        )
    return grid_crs, origin_x, origin_y, pixel_width, pixel_height


def _tiles_in_lists(root: Path) -> set[TileId]:
    from ercnn_napari.core.tiles import read_tile_list

    tiles: set[TileId] = set()
    for txt in (root / TRAINING_DIR).glob("V*/tiles_*.txt"):
        try:
            tiles.update(read_tile_list(txt))
        except ProjectError:
            continue  # reported properly when the splits are read
    return tiles


def _observation_tiles(root: Path) -> list[TileId]:
    tiles = []
    for tfr in list((root / STACKED_OBSERVATIONS_DIR).glob("*.tfrecords")) + list(
        (root / TRAINING_DIR).glob("V*/data/**/*.tfrecords")
    ):
        parsed = parse_tile_stem(tfr.stem)
        if parsed is not None:
            tiles.append(parsed[1])
    return tiles
