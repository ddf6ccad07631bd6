"""``manifest.csv`` of a local observation folder: one row per acquisition file.

Columns (header required, order free)::

    path,time,sensor,orbit,product,units,bands,mask

``path`` relative to the folder (or absolute); ``time`` ISO-8601 in UTC (``2020-06-01T10:47:00Z``;
a time without zone is read as UTC); ``sensor`` ``S1``|``S2``; ``orbit`` ``ascending``|``descending``
for S1 (empty for S2); ``product`` e.g. ``S2_L1C``, ``S2_L2A``, ``S1_GRD_GAMMA0_ELLIPSOID``, ``S1_RTC``;
``units`` ``reflectance``|``dn``|``linear``|``db``|``amplitude``; ``bands`` the file's bands in
order, by name, separated by ``,`` or ``;`` or spaces (quote the cell when it holds commas); ``mask``
optional: the name of a band of the file or the path of a separate raster, 1 = valid pixel, or
``s2cloudless`` (S2 L1C only) to compute the cloud mask here as the authors' CLM was made
(s2cloudless at 160 m, ``ingest.cloudmask``; needs the ``cloudmask`` extra).
An optional column ``offset`` gives the DN offset of an S2 ``dn`` file (``1000`` or ``0``) where
the date rule (offset from 2022-01-25 on) is wrong, e.g. ESA's reprocessed archive.

Parsing checks everything that can be checked without opening rasters, row by row: a bad row
becomes one :class:`InputDataError` naming the manifest, the row and the file, and the other rows
are still used. Two rows for the same stream and second are both refused (there is no way to
tell which one is right).
"""

from __future__ import annotations

import csv
import re
from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

from ercnn_napari.core.errors import InputDataError
from ercnn_napari.ingest.scene import ORBITS, S1_BANDS, S2_BANDS, SENSORS, UNITS, SceneInfo
from ercnn_napari.ingest.units import check_units

MANIFEST_NAME = "manifest.csv"
REQUIRED_COLUMNS = ("path", "time", "sensor", "orbit", "product", "units", "bands")
#: Bands a product may lack, filled with zeros and said so in the fidelity record (L2A has no cirrus band).
OPTIONAL_BANDS: dict[str, tuple[str, ...]] = {"S2_L2A": ("B10",)}


@dataclass(frozen=True)
class ManifestRow:
    """A checked manifest row: the scene's info and where its pixels and mask are."""

    row: int                     #: 1-based data row number (the header is row 0)
    info: SceneInfo
    path: Path
    mask_band: str | None        #: a band of ``path`` holding the mask
    mask_path: Path | None       #: or a separate raster holding it

    @property
    def second(self) -> int:
        return int(self.info.epoch_seconds)


def parse_time(text: str) -> datetime:
    """ISO-8601 -> timezone-aware UTC; a time without zone is UTC."""
    value = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    return (value if value.tzinfo else value.replace(tzinfo=timezone.utc)).astimezone(timezone.utc)


def split_bands(text: str) -> tuple[str, ...]:
    return tuple(b.strip().upper() for b in re.split(r"[,;\s]+", text.strip()) if b.strip())


def read_manifest(folder: Path) -> tuple[list[ManifestRow], list[InputDataError]]:
    """The usable rows of ``folder/manifest.csv`` and one error per unusable row."""
    manifest = folder / MANIFEST_NAME
    try:
        with open(manifest, newline="", encoding="utf-8-sig") as fh:
            reader = csv.DictReader(fh)
            header = [c.strip().lower() for c in (reader.fieldnames or [])]
            missing = [c for c in REQUIRED_COLUMNS if c not in header]
            if missing:
                raise InputDataError(f"manifest lacks column(s) {', '.join(missing)} "
                                     f"(expected {','.join(REQUIRED_COLUMNS)},mask)", manifest)
            raw_rows = [{(k or "").strip().lower(): (v or "").strip() for k, v in row.items()} for row in reader]
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise InputDataError(f"cannot read the manifest: {exc}", manifest) from exc
    rows: list[ManifestRow] = []
    problems: list[InputDataError] = []
    for number, raw in enumerate(raw_rows, start=1):
        try:
            rows.append(_parse_row(folder, manifest, number, raw))
        except InputDataError as exc:
            problems.append(exc)
    groups: dict[tuple[str, int], list[ManifestRow]] = defaultdict(list)
    for row in rows:
        groups[(row.info.stream, row.second)].append(row)
    duplicates = {id(r) for group in groups.values() if len(group) > 1 for r in group}
    for group in groups.values():
        if len(group) > 1:
            for row in group:
                others = ", ".join(f"row {o.row} ({o.info.source})" for o in group if o is not row)
                problems.append(row_error(manifest, row.row, row.path.name,
                                          f"same {row.info.stream} acquisition second as {others}; none of them used"))
    usable = sorted((r for r in rows if id(r) not in duplicates), key=lambda r: r.row)
    return usable, sorted(problems, key=_row_number)


def row_error(manifest: Path, row: int, name: str, what: str) -> InputDataError:
    return InputDataError(f"row {row} ({name}): {what}", manifest)


def _row_number(error: InputDataError) -> int:
    match = re.match(r"row (\d+)", error.message)
    return int(match.group(1)) if match else 0


def _parse_row(folder: Path, manifest: Path, number: int, raw: dict[str, str]) -> ManifestRow:
    name = raw.get("path", "") or "(no path)"

    def fail(what: str) -> InputDataError:
        return row_error(manifest, number, name, what)

    if not raw.get("path"):
        raise fail("empty path")
    path = Path(raw["path"]).expanduser()
    path = path if path.is_absolute() else folder / path
    if not path.is_file():
        raise fail(f"file not found: {path}")
    try:
        time = parse_time(raw["time"])
    except ValueError:
        raise fail(f"time {raw['time']!r} is not ISO-8601 (e.g. 2020-06-01T10:47:00Z)") from None
    sensor = raw["sensor"].upper()
    if sensor not in SENSORS:
        raise fail(f"sensor {raw['sensor']!r} is not one of {', '.join(SENSORS)}")
    orbit = raw["orbit"].lower() or None
    if sensor == "S1" and orbit not in ORBITS:
        raise fail(f"S1 needs orbit ascending or descending, got {raw['orbit']!r}")
    if sensor == "S2":
        orbit = None
    units = raw["units"].lower()
    if units not in UNITS:
        raise fail(f"units {raw['units']!r} is not one of {', '.join(UNITS)}")
    problem = check_units(sensor, units)
    if problem:
        raise fail(problem)
    product = raw["product"].strip()
    if not product:
        raise fail("empty product (e.g. S2_L1C, S1_GRD_GAMMA0_ELLIPSOID)")
    bands = split_bands(raw["bands"])
    if len(set(bands)) != len(bands):
        raise fail(f"bands {raw['bands']!r} name a band twice")
    mask_band, mask_path = _mask(raw.get("mask", ""), bands, folder, fail)
    data_bands = tuple(b for b in bands if b != mask_band)
    needed = S1_BANDS if sensor == "S1" else S2_BANDS
    absent = [b for b in needed if b not in data_bands and b not in OPTIONAL_BANDS.get(product.upper(), ())]
    if absent:
        raise fail(f"{sensor} needs band(s) {', '.join(absent)}; the row lists {', '.join(bands) or 'none'}")
    processing = {}
    if raw.get("mask", "").strip().lower() == S2CLOUDLESS:
        if sensor != "S2" or units not in ("dn", "reflectance"):
            raise fail("mask s2cloudless applies to S2 L1C (reflectance or DN) only")
        processing["cloud_mask"] = "s2cloudless at 160 m (local)"
    if raw.get("offset"):
        if sensor != "S2" or units != "dn":
            raise fail("an offset applies to S2 DN only")
        try:
            processing["dn_offset"] = str(float(raw["offset"]))
        except ValueError:
            raise fail(f"offset {raw['offset']!r} is not a number (e.g. 1000 or 0)") from None
    info = SceneInfo(time=time, sensor=sensor, orbit=orbit, product=product, units=units, bands=bands,
                     source=str(path), processing=processing)
    return ManifestRow(number, info, path, mask_band, mask_path)


#: The ``mask`` cell that asks for the cloud mask to be computed locally (s2cloudless at 160 m).
S2CLOUDLESS = "s2cloudless"


def _mask(text: str, bands: tuple[str, ...], folder: Path, fail) -> tuple[str | None, Path | None]:
    if not text or text.strip().lower() == S2CLOUDLESS:
        return None, None
    if text.upper() in bands:
        return text.upper(), None
    path = Path(text).expanduser()
    path = path if path.is_absolute() else folder / path
    if not path.is_file():
        raise fail(f"mask {text!r} is neither a band of the file nor an existing raster ({path})")
    return None, path
