"""Which source reads a SOURCE argument of ``ercnn-napari ingest``: one table, one function.

A folder holding ``manifest.csv`` is a local folder; a ``catalog.json`` (or a folder holding one)
or an ``http(s)://`` URL is a STAC catalogue, read by ``ingest.stac_source`` (imported only when
needed: it pulls in pystac-client and odc-stac). A new kind of source adds one entry to
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
    path = Path(spec)
    return (spec.startswith(("http://", "https://")) or (path.name == "catalog.json" and path.is_file())
            or (path / "catalog.json").is_file())


#: (name, test on the argument, module, factory) in the order they are tried.
SOURCE_KINDS: list[tuple[str, Callable[[str], bool], str, str]] = [
    ("local folder", _is_local, "ercnn_napari.ingest.local_source", "LocalSource"),
    ("STAC catalogue", _is_stac, "ercnn_napari.ingest.stac_source", "open_stac_source"),
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
    raise InputDataError(f"not an observation source: expected a folder with {MANIFEST_NAME}, a STAC catalog.json "
                         "or an http(s) STAC API URL", spec)
