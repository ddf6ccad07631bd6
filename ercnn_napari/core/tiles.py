"""Tile ids: ``(y, x)`` = (row, column) on the 32-pixel grid, as the authors number them.

The authors write a tile as ``"y:x"`` in split lists and ground-truth folder names and as
``{y}_{x}`` inside file names (``Liege_3_5.npy``, ``3_5.tfrecords``). Every module parses and
formats them here so that a typo in a list file is reported once, with the file and line, instead
of silently selecting the wrong tile.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable
from pathlib import Path

from ercnn_napari.core.errors import ProjectError

TileId = tuple[int, int]

_TILE_TEXT = re.compile(r"^\s*(\d+)\s*:\s*(\d+)\s*$")
_STEM = re.compile(r"^(?:(?P<site>.+?)_)?(?P<y>\d+)_(?P<x>\d+)$")


def parse_tile_id(text: str, path: str | os.PathLike | None = None) -> TileId:
    """``"3:5"`` -> ``(3, 5)``; anything else raises a :class:`ProjectError` (naming ``path``)."""
    match = _TILE_TEXT.match(str(text))
    if match is None:
        raise ProjectError(f"{text!r} is not a tile id of the form 'y:x' (row:column, e.g. '3:5')", path)
    return int(match.group(1)), int(match.group(2))


def format_tile_id(tile: TileId) -> str:
    """``(3, 5)`` -> ``"3:5"`` (split lists, ground-truth folder names)."""
    y, x = tile
    return f"{int(y)}:{int(x)}"


def tile_stem(tile: TileId) -> str:
    """``(3, 5)`` -> ``"3_5"`` (file names, where ':' is awkward)."""
    y, x = tile
    return f"{int(y)}_{int(x)}"


def parse_tile_stem(stem: str) -> tuple[str | None, TileId] | None:
    """Split a file stem like ``Liege_3_5`` or ``3_5`` into (site or None, tile); None if it is not one.

    The site is everything before the last two numbers, so site names containing underscores
    (``Liege_2017_3_5``) still work.
    """
    match = _STEM.match(stem)
    if match is None:
        return None
    return match.group("site"), (int(match.group("y")), int(match.group("x")))


def parse_tile_list(text: str, path: str | os.PathLike | None = None) -> list[TileId]:
    """Parse a list file's text: one ``y:x`` per line; blank lines and ``#`` comments are ignored.

    A malformed line is reported with its line number, because a split list with one broken line
    would otherwise train on a different set of tiles than the analyst thinks.
    """
    tiles: list[TileId] = []
    for number, line in enumerate(text.splitlines(), start=1):
        content = line.split("#", 1)[0].strip()
        if not content:
            continue
        match = _TILE_TEXT.match(content)
        if match is None:
            raise ProjectError(f"line {number}: {content!r} is not a tile id of the form 'y:x'", path)
        tiles.append((int(match.group(1)), int(match.group(2))))
    return tiles


def read_tile_list(path: str | os.PathLike) -> list[TileId]:
    """Read a ``y:x``-per-line list file; a missing file is a :class:`ProjectError` naming it."""
    path = Path(path)
    if not path.is_file():
        raise ProjectError("tile list file is missing", path)
    return parse_tile_list(path.read_text(encoding="utf-8"), path)


def format_tile_list(tiles: Iterable[TileId]) -> str:
    """The text of a list file, one ``y:x`` per line, in the order given."""
    return "".join(format_tile_id(t) + "\n" for t in tiles)
