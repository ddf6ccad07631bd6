"""Argument checks every sub-command runs before anything heavy is imported.

A typo in a path, a tile id or a split name used to be reported after TensorFlow had loaded
(29-49 s on a busy machine, 117 s for ``sample --tiles`` outside the grid, which first wrote a
whole project). These checks use only the TensorFlow-free core (and h5py for a model file's
kind), so a mistake is answered in about the time Python needs to start. The later, deeper
checks stay where they are; these only move the common mistakes to the front.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from ercnn_napari.core.errors import ErcnnError, InputDataError, ModelFileError, ProjectError

TileId = tuple[int, int]


def project(path: str | os.PathLike) -> Any:
    """The opened :class:`~ercnn_napari.core.project.Project` (a missing folder is a ProjectError)."""
    if not Path(path).exists():   # the commonest typo, answered before rasterio and numpy load
        raise ProjectError("project folder does not exist", path)
    from ercnn_napari.core.project import Project

    return Project.open(path)


def split(project: Any, name: str) -> Any:
    """The split ``name`` of a project; an unknown name lists the ones there are."""
    names = project.split_names()
    if name not in names:
        have = ", ".join(names) if names else "none (no training/V<n>/ lists yet)"
        raise ProjectError(f"the project has no split {name!r}; splits there: {have}", project.training_dir)
    return project.split(name)


def tiles(text: str, option: str = "--tiles", grid: Any = None) -> list[TileId]:
    """``"3:5,3:6"`` -> tiles; bad syntax, an empty list or a tile off ``grid`` is an ErcnnError.

    ``grid`` is anything with ``rows`` and ``cols`` (a TileGrid, a sample's spec).
    """
    from ercnn_napari.core.tiles import parse_tile_id

    parsed = []
    for part in (p.strip() for p in str(text).split(",")):
        if not part:
            continue
        try:
            tile = parse_tile_id(part)
        except ProjectError as exc:
            raise ErcnnError(f"{option}: {exc.message}") from None
        if grid is not None and not (0 <= tile[0] < grid.rows and 0 <= tile[1] < grid.cols):
            raise ErcnnError(f"{option}: tile {part} is outside the grid of {grid.rows} rows x {grid.cols} columns")
        parsed.append(tile)
    if not parsed:
        raise ErcnnError(f"{option} lists no tiles (give them like 3:5,3:6)")
    return parsed


def model(path: str | os.PathLike) -> Path:
    """A model file (or run folder's model) that exists and is one of the two kinds we read."""
    if not Path(path).expanduser().exists():   # answered before h5py loads (a second on a busy machine)
        raise ModelFileError("model file does not exist", path)
    from ercnn_napari.core.model_files import model_file_kind, open_model_h5, resolve_model_path

    resolved = resolve_model_path(path)
    with open_model_h5(resolved) as handle:
        model_file_kind(handle)
    return resolved


def input_files(paths: list[str]) -> None:
    """Every input file exists and is a file."""
    for path in paths:
        if not Path(path).exists():
            raise InputDataError("file not found", path)   # the same words as the TFRecord reader
        if not Path(path).is_file():
            raise InputDataError("not a file", path)


def folder(path: str | os.PathLike, what: str) -> Path:
    """An existing folder (``what`` says which argument it came from)."""
    path = Path(path).expanduser()
    if not path.is_dir():
        raise ErcnnError(f"{what}: " + ("is not a folder" if path.exists() else "folder does not exist"), path)
    return path


def gpus(spec: str | None) -> None:
    """``--gpus`` syntax (the same parser the trainer uses; it needs no TensorFlow)."""
    from ercnn_napari.ml.training.distribute import parse_gpu_spec

    parse_gpu_spec(spec)


def in_range(value: float, low: float, high: float, option: str) -> None:
    """``low < value < high`` or an ErcnnError naming the option."""
    if not low < value < high:
        raise ErcnnError(f"{option} must be between {low:g} and {high:g}, got {value:g}")
