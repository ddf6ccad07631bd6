"""Which source reads a SOURCE argument of ``ercnn-napari ingest``: one table, one function.

A folder holding ``manifest.csv`` is a local folder; a ``catalog.json`` (or a folder holding one),
an ``http(s)://`` URL or a preset name is a STAC catalogue, read by ``ingest.stac_source``;
``sentinelhub[:PROFILE]`` is the Sentinel Hub Process API (``ingest.sentinelhub_source``). Those
modules are imported only when needed (they pull in pystac-client, odc-stac, sentinelhub). A new kind of source adds one entry to
:data:`SOURCE_KINDS`. Every factory is called as ``factory(argument, grid=TileGrid, period=Period)``
(the project's grid and period, so a catalogue can search the AoI and dates) and returns an object
with ``scenes()`` (see ``ingest.scene.Source``) and optionally ``problems`` (errors of skipped
acquisitions) and ``description`` (for the fidelity record).
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ercnn_napari.core.errors import InputDataError
from ercnn_napari.ingest.manifest import MANIFEST_NAME


def _is_local(spec: str) -> bool:
    return (Path(spec) / MANIFEST_NAME).is_file() or (Path(spec).name == MANIFEST_NAME and Path(spec).is_file())


def _is_stac(spec: str) -> bool:
    """An API URL or a static catalogue (optionally ``#collection,...``), or a named preset."""
    base = spec.partition("#")[0]
    path = Path(base)
    if base.startswith(("http://", "https://")) or (path.name == "catalog.json" and path.is_file()) \
            or (path / "catalog.json").is_file():
        return True
    try:
        from ercnn_napari.ingest.stac_presets import PRESETS  # named collections (earth-search/..., ...)
    except ImportError:
        return False
    return spec in PRESETS


def _is_sentinelhub(spec: str) -> bool:
    return spec == "sentinelhub" or spec.startswith("sentinelhub:")


#: (name, test on the argument, module, factory) in the order they are tried.
SOURCE_KINDS: list[tuple[str, Callable[[str], bool], str, str]] = [
    ("local folder", _is_local, "ercnn_napari.ingest.local_source", "LocalSource"),
    ("STAC catalogue", _is_stac, "ercnn_napari.ingest.stac_source", "open_stac_source"),
    ("Sentinel Hub request", _is_sentinelhub, "ercnn_napari.ingest.sentinelhub_source", "open_sentinelhub_source"),
]


def open_source(spec: str, **options: Any) -> Any:
    """The source object for one SOURCE argument; :class:`InputDataError` if nothing can read it."""
    for name, test, module_name, factory in SOURCE_KINDS:
        if not test(spec):
            continue
        try:
            module = importlib.import_module(module_name)
        except ImportError as exc:
            raise InputDataError(f"looks like a {name}, but this installation cannot read one ({exc})", spec) from None
        target = spec
        if name == "local folder" and Path(spec).name == MANIFEST_NAME:
            target = str(Path(spec).parent)
        return getattr(module, factory)(target, **options)
    raise InputDataError(f"not an observation source: expected a folder with {MANIFEST_NAME}, a STAC catalog.json, "
                         "an http(s) STAC API URL, a STAC preset name or sentinelhub[:PROFILE]", spec)
