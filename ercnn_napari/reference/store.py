"""Where a project keeps its cached reference imagery, and what is there.

Layout (relative to the project root)::

    reference/reference.json          which image is "before"/"after": year, source, factor, file
    reference/<which>_<year>.tif      the cached image: RGBA COG with overviews, on the project grid
    reference/.<which>_<year>.parts/  the resumable work of an unfinished cache (row bands)

The manifest is written last, after the COG is complete and verified, so a reader never sees a
half-made image.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ercnn_napari.core.atomic import atomic_write_text
from ercnn_napari.core.errors import ProjectError

REFERENCE_DIR = "reference"
MANIFEST_NAME = "reference.json"
ROLES = ("before", "after")


@dataclass(frozen=True)
class CachedImage:
    """One cached reference image."""

    role: str        # "before" or "after"
    year: int
    path: Path       # the COG
    factor: int      # cache pixels per grid pixel
    source: str      # what it was read from (a path, a service description)


def reference_dir(root: str | Path) -> Path:
    return Path(root) / REFERENCE_DIR


def cog_path(root: str | Path, role: str, year: int) -> Path:
    return reference_dir(root) / f"{role}_{int(year)}.tif"


def parts_dir(root: str | Path, role: str, year: int) -> Path:
    return reference_dir(root) / f".{role}_{int(year)}.parts"


def read_manifest(root: str | Path) -> dict[str, CachedImage]:
    """The cached images of a project by role (empty if none); a broken manifest is a ProjectError."""
    path = reference_dir(root) / MANIFEST_NAME
    if not path.is_file():
        return {}
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        images = {}
        for role, entry in data.get("images", {}).items():
            if role not in ROLES:
                continue
            cog = reference_dir(root) / entry["file"]
            if cog.is_file():
                images[role] = CachedImage(role, int(entry["year"]), cog, int(entry["factor"]),
                                           str(entry.get("source", "")))
        return images
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        raise ProjectError(f"reference manifest is not valid ({exc})", path) from exc


def record_image(root: str | Path, image: CachedImage) -> None:
    """Add (or replace) one role in the manifest, atomically."""
    path = reference_dir(root) / MANIFEST_NAME
    try:
        current = json.loads(path.read_text(encoding="utf-8")) if path.is_file() else {}
    except ValueError:
        current = {}
    images: dict[str, Any] = dict(current.get("images", {}))
    images[image.role] = {"year": image.year, "file": image.path.name, "factor": image.factor,
                          "source": image.source}
    atomic_write_text(path, json.dumps({"format": "ercnn-napari-reference", "version": 1, "images": images},
                                       indent=2, sort_keys=True) + "\n")
