"""Train/validation/test tile lists (V1-V3), as the authors organised their transfer learning.

The authors trained three versions on one pool of labelled tiles: each version holds out a
different validation set (the three are pairwise disjoint, a partial cross-validation) and all
share one test set, kept in ``V3/tiles_testing.txt`` only. We read that layout as it is, write the
same file names, and generate new splits with the same structure for a new AoI.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ercnn_napari.core.atomic import atomic_write_text
from ercnn_napari.core.errors import ProjectError
from ercnn_napari.core.tiles import TileId, format_tile_id, format_tile_list, parse_tile_list, read_tile_list

_VERSION = re.compile(r"^V(\d+)$")
TEST_FILE = "tiles_testing.txt"
NOT_USED_FILE = "tiles_not_used.txt"


@dataclass(frozen=True)
class Split:
    """One version: the tiles it trains on, validates on, and the common test tiles."""

    name: str
    train: list[TileId]
    val: list[TileId]
    test: list[TileId]
    not_used: list[TileId] = field(default_factory=list)

    def tiles(self, which: str) -> list[TileId]:
        """The tiles of ``"train"``, ``"val"``, ``"test"`` or ``"not_used"``."""
        if which not in ("train", "val", "test", "not_used"):
            raise ProjectError(f"unknown tile set {which!r}; expected train, val, test or not_used")
        return list(getattr(self, which))


def version_number(name: str) -> int:
    """``"V2"`` -> 2; anything else is a :class:`ProjectError`."""
    match = _VERSION.match(str(name))
    if match is None:
        raise ProjectError(f"split name {name!r} is not of the form V<n> (V1, V2, ...)")
    return int(match.group(1))


def train_file(training_dir: Path, name: str) -> Path:
    n = version_number(name)
    return Path(training_dir) / name / f"tiles_train_cv{n}.txt"


def val_file(training_dir: Path, name: str) -> Path:
    n = version_number(name)
    return Path(training_dir) / name / f"tiles_val_cv{n}.txt"


def split_names(training_dir: str | os.PathLike) -> list[str]:
    """Version folders (``V<n>``) holding any tile list, in numeric order."""
    training_dir = Path(training_dir)
    if not training_dir.is_dir():
        return []
    names = [p.name for p in training_dir.iterdir()
             if p.is_dir() and _VERSION.match(p.name) and any(p.glob("tiles_*.txt"))]
    return sorted(names, key=version_number)


def _common_list(training_dir: Path, name: str, file_name: str) -> tuple[list[TileId], Path | None]:
    """A version's own list if it has one, else the one another version has (the authors' V3)."""
    own = training_dir / name / file_name
    if own.is_file():
        return read_tile_list(own), own
    for other in reversed(split_names(training_dir)):
        candidate = training_dir / other / file_name
        if candidate.is_file():
            return read_tile_list(candidate), candidate
    return [], None


def read_split(training_dir: str | os.PathLike, name: str) -> Split:
    """Read one version; a missing train or val list is a :class:`ProjectError` naming the file."""
    training_dir = Path(training_dir)
    train_path, val_path = train_file(training_dir, name), val_file(training_dir, name)
    for path in (train_path, val_path):
        if not path.is_file():
            raise ProjectError(f"split {name} is incomplete: this tile list file is missing", path)
    train, val = read_tile_list(train_path), read_tile_list(val_path)
    test, test_path = _common_list(training_dir, name, TEST_FILE)
    not_used, _ = _common_list(training_dir, name, NOT_USED_FILE)
    for tiles, path in ((train, train_path), (val, val_path), (test, test_path)):
        _check_unique(tiles, path)
    _check_disjoint(train, val, f"{train_path.name} and {val_path.name} share", val_path)
    if test_path is not None:
        _check_disjoint(train + val, test, f"{test_path.name} shares with the {name} train/val lists", test_path)
    return Split(name, train, val, test, not_used)


def read_splits(training_dir: str | os.PathLike) -> dict[str, Split]:
    """All versions found under ``training/`` (empty if there are none yet)."""
    return {name: read_split(training_dir, name) for name in split_names(training_dir)}


def write_splits(training_dir: str | os.PathLike, splits: dict[str, Split] | Iterable[Split]) -> None:
    """Write each version's lists under the authors' names (each file atomically).

    The test and not-used lists go into every version folder, so each folder is complete on its
    own; reading prefers a version's own copy, so the authors' V3-only layout still reads. An
    empty list is written as an empty file: skipping it would leave an older list in place (or let
    reading fall back to another version's), and the split read back would not be the one written.
    """
    training_dir = Path(training_dir)
    values = splits.values() if isinstance(splits, dict) else splits
    for split in values:
        atomic_write_text(train_file(training_dir, split.name), format_tile_list(split.train))
        atomic_write_text(val_file(training_dir, split.name), format_tile_list(split.val))
        folder = training_dir / split.name
        atomic_write_text(folder / TEST_FILE, format_tile_list(split.test))
        atomic_write_text(folder / NOT_USED_FILE, format_tile_list(split.not_used))


def generate_splits(
    tiles: Iterable[TileId],
    n_versions: int = 3,
    val_fraction: float = 1 / 6,
    test_fraction: float = 1 / 6,
    seed: int = 0,
    not_used: Iterable[TileId] = (),
) -> dict[str, Split]:
    """Split labelled tiles like the authors: one common test set, disjoint validation sets.

    Fractions are of the usable tiles (``tiles`` minus ``not_used``): the authors' 184 usable
    tiles with ``val_fraction = test_fraction = 32/184`` give their 32 test tiles, 3 x 32
    validation tiles and 120 training tiles per version. The result depends only on the tiles and
    ``seed``, so a split can be regenerated.
    """
    excluded = {tuple(t) for t in not_used}
    pool_all = sorted({(int(t[0]), int(t[1])) for t in tiles} - excluded)
    n = len(pool_all)
    if n_versions < 1:
        raise ProjectError(f"need at least one split version, got {n_versions}")
    if not (0 <= test_fraction < 1 and 0 < val_fraction < 1):
        raise ProjectError(f"fractions must be in [0, 1): val={val_fraction}, test={test_fraction}")
    n_test = int(round(n * test_fraction))
    n_val = int(round(n * val_fraction))
    if n_val < 1 or n_test + n_versions * n_val >= n:
        raise ProjectError(
            f"{n} tiles are too few for a test set of {n_test}, {n_versions} disjoint validation sets of "
            f"{n_val} and a non-empty training set; label more tiles or lower the fractions"
        )
    rng = np.random.default_rng(seed)
    order = [pool_all[i] for i in rng.permutation(n)]
    test = sorted(order[:n_test])
    pool = order[n_test:]
    splits: dict[str, Split] = {}
    for k in range(n_versions):
        val = sorted(pool[k * n_val:(k + 1) * n_val])
        val_set = set(val)
        train = sorted(t for t in pool if t not in val_set)
        name = f"V{k + 1}"
        splits[name] = Split(name, train, val, test, sorted(excluded))
    return splits


def list_files(training_dir: str | os.PathLike, name: str) -> list[Path]:
    """The list files a version reads: its train and val lists, and the test/not-used lists it uses."""
    training_dir = Path(training_dir)
    files = [train_file(training_dir, name), val_file(training_dir, name)]
    for common in (TEST_FILE, NOT_USED_FILE):
        own = training_dir / name / common
        if own.is_file():
            files.append(own)
            continue
        for other in reversed(split_names(training_dir)):
            if (training_dir / other / common).is_file():
                files.append(training_dir / other / common)
                break
    return [f for f in files if f.is_file()]


def check_split_in_grid(training_dir: str | os.PathLike, split: Split, grid: Any) -> None:
    """Refuse a split that names a tile outside the grid, naming the list file and its line.

    Without this, ``info`` counted such a tile silently and ``train`` failed naming a ``.npy``
    that cannot exist, leaving the analyst to guess which list was wrong.
    """
    listed = set(split.train) | set(split.val) | set(split.test) | set(split.not_used)
    if all(grid.contains(t) for t in listed):
        return
    for path in list_files(training_dir, split.name):
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
            content = line.split("#", 1)[0].strip()
            if not content:
                continue
            tile = parse_tile_list(content, path)[0]
            if not grid.contains(tile):
                raise ProjectError(
                    f"line {number}: tile {format_tile_id(tile)} is outside the project grid of "
                    f"{grid.rows} rows x {grid.cols} columns", path)


def _check_unique(tiles: list[TileId], path: Path | None) -> None:
    seen: set[TileId] = set()
    for tile in tiles:
        if tile in seen:
            raise ProjectError(f"tile {format_tile_id(tile)} is listed twice", path)
        seen.add(tile)


def _check_disjoint(a: list[TileId], b: list[TileId], what: str, path: Path) -> None:
    shared = sorted(set(a) & set(b))
    if shared:
        listed = ", ".join(format_tile_id(t) for t in shared[:5]) + (" ..." if len(shared) > 5 else "")
        raise ProjectError(f"{what} {len(shared)} tile(s): {listed}", path)
