"""A project: one AoI folder in the authors' layout plus our ``ercnn_project.json``.

Layout (relative to the project root)::

    ercnn_project.json                       site, CRS, grid, period, observations (ours)
    ground_truth/{y}:{x}/{y}:{x}.tif         label GeoTIFF of a tile
    ground_truth/{y}:{x}/{y}:{x}.shp/.shx    hand-drawn change polygons (no .dbf/.prj: the label's CRS)
    ground_truth/{y}:{x}/<year>.png          reference pair (before 2015-2017, after 2020-2021)
    training/numpy_ground_truth/<Site>_{y}_{x}.npy   the label the trainer reads
    training/V{n}/tiles_{train,val}_cv{n}.txt, tiles_testing.txt, tiles_not_used.txt
    observations/{y}_{x}.tfrecords           stacked series (or stage-3 files, see the project file)

The viewer, the trainer and the command line all go through :class:`Project`, so a folder means
the same thing everywhere. Nothing here imports TensorFlow or Qt.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np

from ercnn_napari.core.atomic import atomic_path, remove_stale_temps
from ercnn_napari.core.errors import ProjectError
from ercnn_napari.core.geo import TileGrid
from ercnn_napari.core.labels import LabelStore
from ercnn_napari.core.project_file import (
    DEFAULT_PERIOD,
    GROUND_TRUTH_DIR,
    NPY_DIR,
    PROJECT_FILE_NAME,
    TRAINING_DIR,
    Period,
    ProjectFile,
    check_observations,
    check_period,
    check_site,
    infer_project_file,
    read_project_file,
    write_project_file,
)
from ercnn_napari.core.splits import Split, check_split_in_grid, read_split, split_names, write_splits
from ercnn_napari.core.tiles import TileId, format_tile_id, parse_tile_id, parse_tile_stem

_YEAR_PNG = re.compile(r"^(\d{4})$")


@dataclass(frozen=True)
class ReferencePair:
    """The tile's two reference images (PNGs without georeference covering the tile's extent)."""

    before: Path | None
    after: Path | None
    before_year: int | None
    after_year: int | None

    @property
    def complete(self) -> bool:
        return self.before is not None and self.after is not None

    @property
    def problem(self) -> str | None:
        """A sentence for a tile whose pair is incomplete (None when it is complete)."""
        if self.complete:
            return None
        if self.before is None and self.after is None:
            return "no reference images"
        if self.before is None:
            return f"only the after image ({self.after_year}) exists"
        return f"only the before image ({self.before_year}) exists"


class Project:
    """An opened project folder. Use :meth:`open` or :meth:`create`."""

    def __init__(self, root: Path, project_file: ProjectFile, warnings: list[str] | None = None,
                 inferred: bool = False) -> None:
        self.root = Path(root)
        self._file = project_file
        self.warnings: list[str] = list(warnings or [])
        self.inferred = inferred  # True if ercnn_project.json was absent and settings were guessed
        #: temporary files of interrupted saves removed when the project was opened (only stale ones)
        self.removed_temp_files: list[Path] = []

    # ----------------------------------------------------------------- open / create
    @classmethod
    def open(cls, path: str | os.PathLike) -> Project:
        """Open a project folder (or its ``ercnn_project.json``); infer settings if the file is absent."""
        path = Path(path)
        if path.is_file() and path.name == PROJECT_FILE_NAME:
            path = path.parent
        if not path.is_dir():
            raise ProjectError("project folder does not exist", path)
        file_path = path / PROJECT_FILE_NAME
        if file_path.is_file():
            project = cls(path, read_project_file(file_path))
        else:
            project_file, warnings = infer_project_file(path)
            project = cls(path, project_file, warnings, inferred=True)
        project._warn_about_stray_tiles()
        project.removed_temp_files = remove_stale_temps(project.labels.label_folders() + [path])
        return project

    @classmethod
    def create(cls, path: str | os.PathLike, site: str, grid: TileGrid, period: Any = DEFAULT_PERIOD,
               observations: dict[str, Any] | None = None, overwrite: bool = False) -> Project:
        """Create (or adopt an existing authors'-layout folder as) a project and write its file."""
        path = Path(path)
        file_path = path / PROJECT_FILE_NAME
        if file_path.exists() and not overwrite:
            raise ProjectError("a project already exists here (pass overwrite=True to replace its settings)", file_path)
        if not isinstance(grid, TileGrid):
            raise ProjectError(f"grid must be a TileGrid, got {type(grid).__name__}", file_path)
        project_file = ProjectFile(
            site=check_site(site, file_path),
            grid=grid,
            period=check_period(period, file_path),
            observations=check_observations(observations, file_path),
        )
        (path / GROUND_TRUTH_DIR).mkdir(parents=True, exist_ok=True)
        (path / NPY_DIR).mkdir(parents=True, exist_ok=True)
        write_project_file(file_path, project_file)
        return cls(path, project_file)

    def save(self) -> None:
        """Write the current settings to ``ercnn_project.json`` (e.g. to keep inferred ones)."""
        write_project_file(self.file_path, self._file)
        self.inferred = False

    # ----------------------------------------------------------------- settings
    @property
    def file_path(self) -> Path:
        return self.root / PROJECT_FILE_NAME

    @property
    def site(self) -> str:
        return self._file.site

    @property
    def grid(self) -> TileGrid:
        return self._file.grid

    @property
    def period(self) -> Period:
        return self._file.period

    @property
    def observations_config(self) -> dict[str, Any] | None:
        """``{"kind": "stacked"|"stage3", "path": ..., "window_csv"?: ...}`` or None."""
        config = self._file.observations
        return None if config is None else dict(config)

    def set_observations(self, config: dict[str, Any] | None, save: bool = True) -> None:
        """Record where the observations are (validated), and save the project file."""
        self._file.observations = check_observations(config, self.file_path)
        if save:
            self.save()

    @property
    def training_dir(self) -> Path:
        return self.root / TRAINING_DIR

    # ----------------------------------------------------------------- labels
    @cached_property
    def labels(self) -> LabelStore:
        return LabelStore(self.root, self.site, self.grid)

    def tiles_with_labels(self) -> list[TileId]:
        return self.labels.tiles()

    def tile_dir(self, tile: TileId) -> Path:
        return self.root / GROUND_TRUTH_DIR / format_tile_id(tile)

    def polygon_path(self, tile: TileId) -> Path:
        """The tile's hand-drawn polygons (``.shp``; the authors shipped no ``.prj``)."""
        name = format_tile_id(tile)
        return self.tile_dir(tile) / f"{name}.shp"

    # ----------------------------------------------------------------- reference pairs
    def reference_images(self, tile: TileId) -> dict[int, Path]:
        """All ``<year>.png`` of a tile, by year."""
        folder = self.tile_dir(tile)
        if not folder.is_dir():
            return {}
        found = {}
        for png in folder.glob("*.png"):
            match = _YEAR_PNG.match(png.stem)
            if match:
                found[int(match.group(1))] = png
        return dict(sorted(found.items()))

    def reference_pair(self, tile: TileId) -> ReferencePair:
        """Earliest image = before, latest = after; a single image is placed by the period.

        A lone image from the period's first year or earlier is a "before" image, later ones are
        "after" images, so a tile with only ``2020.png`` reports a missing before image.
        """
        images = self.reference_images(tile)
        if not images:
            return ReferencePair(None, None, None, None)
        years = sorted(images)
        if len(years) >= 2:
            return ReferencePair(images[years[0]], images[years[-1]], years[0], years[-1])
        year = years[0]
        if year <= int(self.period.start[:4]):
            return ReferencePair(images[year], None, year, None)
        return ReferencePair(None, images[year], None, year)

    def reference_path(self, tile: TileId, year: int) -> Path:
        return self.tile_dir(tile) / f"{int(year)}.png"

    def write_reference_image(self, tile: TileId, year: int, rgb: np.ndarray) -> Path:
        """Save a reference image (uint8 [H, W, 3|4] or [H, W]) as ``<year>.png``, atomically."""
        import imageio.v3 as iio

        tile = self.grid.check_tile(tile, self.reference_path(tile, year))
        data = np.asarray(rgb)
        if data.dtype != np.uint8 or data.ndim not in (2, 3) or (data.ndim == 3 and data.shape[2] not in (3, 4)):
            raise ProjectError(f"reference image must be uint8 [H, W] or [H, W, 3|4], got {data.dtype} {data.shape}",
                               self.reference_path(tile, year))
        target = self.reference_path(tile, year)
        with atomic_path(target) as tmp:
            iio.imwrite(tmp, data, extension=".png")
        return target

    def tiles_with_reference(self) -> list[TileId]:
        """Tiles with at least one reference image (see :meth:`tiles_with_incomplete_reference`)."""
        base = self.root / GROUND_TRUTH_DIR
        if not base.is_dir():
            return []
        tiles = []
        for folder in base.iterdir():
            try:
                tile = parse_tile_id(folder.name)
            except ProjectError:
                continue
            if self.reference_images(tile):
                tiles.append(tile)
        return sorted(tiles)

    def tiles_with_incomplete_reference(self) -> dict[TileId, str]:
        """Tiles that have a label or an image but not both reference images, with what is missing."""
        candidates = set(self.tiles_with_reference()) | set(self.tiles_with_labels())
        result = {}
        for tile in sorted(candidates):
            problem = self.reference_pair(tile).problem
            if problem:
                result[tile] = problem
        return result

    # ----------------------------------------------------------------- observations
    def observations_path(self) -> Path | None:
        """The observations folder (resolved against the project root), or None if not configured."""
        config = self._file.observations
        if config is None:
            return None
        path = Path(config["path"]).expanduser()
        return path if path.is_absolute() else self.root / path

    def window_csv_path(self) -> Path | None:
        config = self._file.observations
        if not config or not config.get("window_csv"):
            return None
        path = Path(config["window_csv"]).expanduser()
        return path if path.is_absolute() else self.root / path

    def observation_files(self) -> dict[TileId, Path]:
        """One TFRecord file per tile: ``{y}_{x}.tfrecords`` or ``<Site>_{y}_{x}.tfrecords``.

        Stacked series sit directly in the folder; the authors' stage-3 files are found anywhere
        below it (``training/V{n}/data/{train,val}/``), the first copy of a tile winning since
        every version holds the same windows of a tile.
        """
        folder = self.observations_path()
        if folder is None or not folder.is_dir():
            return {}
        kind = self._file.observations["kind"]
        files = folder.glob("*.tfrecords") if kind == "stacked" else folder.rglob("*.tfrecords")
        found: dict[TileId, Path] = {}
        for path in sorted(files):
            if not path.is_file():  # a folder named 0_0.tfrecords is not a tile's observations
                continue
            parsed = parse_tile_stem(path.stem)
            if parsed is None or (parsed[0] is not None and parsed[0] != self.site):
                continue
            found.setdefault(parsed[1], path)
        return found

    def tiles_with_observations(self) -> list[TileId]:
        return sorted(self.observation_files())

    # ----------------------------------------------------------------- splits
    def split_names(self) -> list[str]:
        return split_names(self.training_dir)

    def splits(self) -> dict[str, Split]:
        """Every ``training/V{n}`` split (empty dict if none were made yet), each checked against the grid."""
        return {name: self.split(name) for name in self.split_names()}

    def split(self, name: str) -> Split:
        """One split; a missing list file, or a tile outside the grid, is a ProjectError naming file and line."""
        split = read_split(self.training_dir, name)
        check_split_in_grid(self.training_dir, split, self.grid)
        return split

    def write_splits(self, splits: dict[str, Split]) -> None:
        for split in splits.values():
            for tile in split.train + split.val + split.test + split.not_used:
                self.grid.check_tile(tile, self.training_dir / split.name)
        write_splits(self.training_dir, splits)

    # ----------------------------------------------------------------- checks
    def _warn_about_stray_tiles(self) -> None:
        """Files for tiles beyond the grid are reported once on open rather than failing later."""
        stray = [t for t in self.labels.tiles() if not self.grid.contains(t)]
        if stray:
            names = ", ".join(format_tile_id(t) for t in stray[:8]) + (" ..." if len(stray) > 8 else "")
            self.warnings.append(
                f"{len(stray)} labelled tile(s) lie outside the {self.grid.rows} x {self.grid.cols} grid: {names}"
            )

    def __repr__(self) -> str:
        return f"Project({str(self.root)!r}, site={self.site!r}, grid={self.grid.rows}x{self.grid.cols})"
