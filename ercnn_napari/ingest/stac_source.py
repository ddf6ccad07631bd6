"""A STAC catalogue as an observation source: items -> :class:`Scene` objects read with odc-stac.

Why STAC: the open catalogues (Earth Search, the Planetary Computer) are where most analysts can
get Sentinel data without an account, as cloud-optimised GeoTIFFs that odc-stac reads window by
window straight onto the project grid (``odc.stac.load(..., geobox=...)``), so no scene is ever
downloaded whole. The catalogue is searched once for the project's extent and period
(``pystac-client`` for an API, ``pystac`` for a static ``catalog.json``); items of one stream taken
within a minute of each other (neighbouring MGRS granules of one datatake) become one acquisition,
as the authors' one request per acquisition timestamp did.

What reading does (:meth:`StacScene.read`): pixels to network units (S2 DN -> TOA/BOA reflectance
0-1 with the raster extension's scale/offset or the processing-baseline rule, negatives clamped to
0; S1 dB -> linear), the validity mask (S2: data AND the item's cloud mask, or ``s2cloudless`` run
locally at 160 m when the item has none; S1: finite positive backscatter), and the bands a product
lacks (L2A's B10) filled with zeros and said so in ``SceneInfo.processing``, in ``StacSource.notes``
and in a logged warning.

Signing: a catalogue that hands out assets through signed URLs (the Planetary Computer) needs a
function ``href -> signed href``; the preset names it (``planetary_computer:sign``, used if the
package is installed) and a user can pass any callable by dotted path.
"""

from __future__ import annotations

import importlib
import logging
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import numpy as np

from ercnn_napari.core.errors import InputDataError
from ercnn_napari.ingest.scene import S2_BANDS, SceneInfo, TargetGrid
from ercnn_napari.ingest.source_args import as_target_grid, to_utc, utc_range
from ercnn_napari.ingest.stac_presets import PRESETS, SCL_INVALID, CollectionPreset, preset_for_item

#: Items of one stream closer in time than this are one acquisition (granules of one datatake).
SAME_ACQUISITION = timedelta(seconds=60)
#: The S2 processing baseline from which L1C/L2A DN carry a +1000 offset, and its first day.
OFFSET_BASELINE = 4.0
OFFSET_SINCE = datetime(2022, 1, 25, tzinfo=timezone.utc)


#: A signing function for the command line, ``package.module:function`` (the Python API takes ``sign=``).
SIGN_ENV = "ERCNN_STAC_SIGN"
#: Fidelity notes and signing hints go to this logger (one line each on the command line's stderr);
#: ``ingest``'s fidelity record repeats them in ``info``, ``train`` and the viewer.
LOG = logging.getLogger(__name__)


def resolve_callable(dotted: str) -> Callable[..., Any]:
    """``"package.module:function"`` or ``"package.module.function"`` -> the function."""
    module_name, _, attr = dotted.partition(":") if ":" in dotted else dotted.rpartition(".")
    try:
        func = getattr(importlib.import_module(module_name), attr)
    except (ImportError, AttributeError, ValueError) as exc:
        raise InputDataError(f"cannot import the signing function {dotted!r}: {exc}") from exc
    if not callable(func):
        raise InputDataError(f"{dotted!r} is not a function")
    return func


def default_signer(preset: CollectionPreset, catalog: str) -> Callable[[str], str] | None:
    """The preset's signer when reading from the preset's own catalogue and the package is there."""
    if preset.sign is None or preset.catalog_url is None or not catalog.startswith(preset.catalog_url):
        return None
    try:
        return resolve_callable(preset.sign)
    except InputDataError:
        LOG.warning("%s: %s assets need signed URLs; install the package of %r or pass a signing function",
                    catalog, preset.name, preset.sign.split(":")[0])
        return None


def s2_reflectance(dn: np.ndarray, scale: float | None, offset: float | None,
                   baseline: float | None, when: datetime) -> np.ndarray:
    """S2 digital numbers -> reflectance 0-1, negatives clamped to 0 (Sentinel Hub's harmonisation).

    The raster extension's scale/offset win when the catalogue gives them (it knows whether its
    files carry the baseline-04.00 offset); otherwise the processing baseline (or, without one, the
    date it came into force) decides between (DN - 1000) / 10000 and DN / 10000.
    """
    dn = dn.astype(np.float32)
    if scale is not None:
        out = dn * np.float32(scale) + np.float32(offset or 0.0)
    else:
        shifted = baseline >= OFFSET_BASELINE if baseline is not None else when >= OFFSET_SINCE
        out = (dn - np.float32(1000.0 if shifted else 0.0)) / np.float32(10000.0)
    return np.maximum(out, np.float32(0.0))


@dataclass
class StacScene:
    """One acquisition: the STAC items of one stream at one time, read onto a target grid."""

    info: SceneInfo
    items: list[Any]                       # pystac.Item
    preset: CollectionPreset
    sign: Callable[[str], str] | None = None
    resampling: str = "nearest"
    cloud_mask: str = "auto"               # "auto": the item's mask, else s2cloudless (L1C); "none"

    def read(self, grid: TargetGrid) -> tuple[np.ndarray, np.ndarray]:
        values = np.zeros((grid.height, grid.width, len(self.preset.bands)), np.float32)
        valid = np.zeros((grid.height, grid.width), bool)
        for item in self.items:  # granules of one datatake: the first valid pixel wins
            item_values, item_valid = self._read_item(item, grid)
            take = item_valid & ~valid
            values[take] = item_values[take]
            valid |= take
        return values, valid

    # -- one item ---------------------------------------------------------------------------------
    def _read_item(self, item: Any, grid: TargetGrid) -> tuple[np.ndarray, np.ndarray]:
        raw, mask = self._load(item, grid)
        if self.preset.sensor == "S1":
            return self._s1(raw)
        return self._s2(item, raw, mask, grid)

    def _load(self, item: Any, grid: TargetGrid) -> tuple[dict[str, np.ndarray], np.ndarray | None]:
        import odc.stac
        from odc.geo.geobox import GeoBox

        keys = list(self.preset.assets.values())
        if self.cloud_mask != "none" and self.preset.mask_asset and self.preset.mask_asset in item.assets:
            keys.append(self.preset.mask_asset)
        geobox = GeoBox((grid.height, grid.width), grid.transform, grid.crs)
        resampling = {"*": self.resampling}
        if self.preset.mask_asset:
            resampling[self.preset.mask_asset] = "nearest"  # classes must never be averaged
        try:
            data = odc.stac.load([item], bands=keys, geobox=geobox, resampling=resampling, chunks=None,
                                 groupby="id", patch_url=self.sign, fail_on_error=True)
        except Exception as exc:  # rasterio/odc errors name neither the item nor the acquisition
            raise InputDataError(f"cannot read STAC item {item.id!r}: {exc}", self.info.source) from exc
        raw = {key: np.asarray(data[key].values[0]) for key in keys}
        mask = raw.pop(self.preset.mask_asset) if self.preset.mask_asset in raw else None
        return raw, mask

    def _s1(self, raw: dict[str, np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
        bands = [raw[self.preset.assets[b]].astype(np.float32) for b in self.preset.bands]
        values = np.stack(bands, axis=-1)
        if self.preset.units == "db":
            values = np.power(np.float32(10.0), values / np.float32(10.0))
        elif self.preset.units == "amplitude":
            values = values * values
        valid = np.all(np.isfinite(values) & (values > 0), axis=-1)
        return np.where(valid[..., None], values, np.float32(0.0)).astype(np.float32), valid

    def _s2(self, item: Any, raw: dict[str, np.ndarray], mask: np.ndarray | None,
            grid: TargetGrid) -> tuple[np.ndarray, np.ndarray]:
        baseline = _float_or_none(item.properties.get("s2:processing_baseline"))
        values = np.zeros((grid.height, grid.width, len(S2_BANDS)), np.float32)
        data = np.ones((grid.height, grid.width), bool)
        for index, band in enumerate(S2_BANDS):
            key = self.preset.assets.get(band)
            if key is None:
                continue  # a band the product lacks (L2A's B10): zero, recorded in SceneInfo.processing
            dn = raw[key]
            nodata = _asset_nodata(item, key)
            data &= np.isfinite(dn) & (dn != (0 if nodata is None else nodata))
            scale, offset = _asset_scale_offset(item, key)
            values[..., index] = s2_reflectance(np.nan_to_num(dn), scale, offset, baseline, self.info.time)
        if mask is not None and self.preset.mask_kind == "scl":
            data &= ~np.isin(mask, SCL_INVALID)
        elif mask is not None:
            from ercnn_napari.ingest.cloudmask import merge_clm
            data = merge_clm(data, mask)
        elif self.cloud_mask == "auto" and "B10" in self.preset.assets:
            from ercnn_napari.ingest.cloudmask import s2cloudless_valid
            data &= s2cloudless_valid(values, grid)
        values[~data] = 0.0
        return values, data


class StacSource:
    """The acquisitions of a STAC catalogue over a grid and a period, one :class:`StacScene` each."""

    def __init__(self, catalog: str, grid: TargetGrid, start: datetime, end: datetime,
                 collections: list[str] | None = None, preset: str | None = None,
                 sign: str | Callable[[str], str] | None = None, resampling: str = "nearest",
                 cloud_mask: str = "auto") -> None:
        if preset is not None and preset not in PRESETS:
            raise InputDataError(f"unknown STAC preset {preset!r}; known: {', '.join(PRESETS)}")
        self.catalog = catalog
        self.grid = grid
        self.start, self.end = to_utc(start), to_utc(end)
        self.collections = collections
        self.preset_name = preset
        self._sign = resolve_callable(sign) if isinstance(sign, str) else sign
        self.resampling = resampling
        self.cloud_mask = cloud_mask
        self.skipped: list[str] = []   # items no preset can read, one sentence each
        self.notes: list[str] = []     # where the products differ from what the network saw

    @property
    def problems(self) -> list[str]:
        """Items skipped because no preset reads them (``ingest`` reports them one line each)."""
        return list(self.skipped)

    @property
    def description(self) -> str:
        return f"STAC {self.catalog}" + (f" ({', '.join(self.collections)})" if self.collections else "")

    def scenes(self) -> Iterator[StacScene]:
        groups: dict[tuple[str, str], list[tuple[datetime, Any, CollectionPreset]]] = {}
        for item in self._items():
            preset = preset_for_item(item.collection_id, set(item.assets), self.preset_name)
            if preset is None:
                self.skipped.append(f"{item.id}: no preset reads collection {item.collection_id!r} "
                                    f"with assets {sorted(item.assets)}")
                continue
            orbit = self._orbit(item, preset)
            groups.setdefault((preset.name, orbit or ""), []).append((_item_time(item), item, preset))
        warned: set[str] = set()
        scenes: list[StacScene] = []
        for members in groups.values():
            members.sort(key=lambda member: member[0])
            for bunch in _bunch_by_time(members):
                scenes.append(self._scene(bunch, warned))
        yield from sorted(scenes, key=lambda scene: scene.info.time)

    # -- helpers ----------------------------------------------------------------------------------
    def _scene(self, bunch: list[tuple[datetime, Any, CollectionPreset]], warned: set[str]) -> StacScene:
        when, first, preset = bunch[0]
        if preset.name not in warned:
            warned.add(preset.name)
            for note in preset.fidelity_notes():
                self.notes.append(f"{preset.name}: {note}")
                LOG.warning("%s: %s: %s", self.catalog, preset.name, note)
        processing = dict(preset.processing)
        processing["catalog"] = self.catalog
        processing["collection"] = preset.collection
        if preset.sensor == "S2" and preset.mask_asset is None and "B10" in preset.assets:
            processing["cloud_mask"] = "s2cloudless at 160 m (local)" if self.cloud_mask == "auto" else "none"
        elif preset.mask_asset is not None:
            processing["cloud_mask"] = f"{preset.mask_asset} ({preset.mask_kind})"
        source = first.get_self_href() or f"{self.catalog}#{first.id}"
        info = SceneInfo(time=when, sensor=preset.sensor, orbit=self._orbit(first, preset),
                         product=preset.product, units=preset.units, bands=preset.bands,
                         source=source, processing=processing)
        sign = self._sign if self._sign is not None else default_signer(preset, self.catalog)
        return StacScene(info, [item for _, item, _ in bunch], preset, sign, self.resampling, self.cloud_mask)

    def _orbit(self, item: Any, preset: CollectionPreset) -> str | None:
        if preset.sensor != "S1":
            return None
        orbit = str(item.properties.get("sat:orbit_state", "")).lower()
        if orbit not in ("ascending", "descending"):
            raise InputDataError(f"S1 item {item.id!r} has no sat:orbit_state ascending/descending "
                                 f"(got {item.properties.get('sat:orbit_state')!r})", self.catalog)
        return orbit

    def _items(self) -> Iterator[Any]:
        bbox = _bbox_4326(self.grid)
        if self.catalog.startswith(("http://", "https://")):
            yield from self._search_api(bbox)
        else:
            yield from self._search_static(bbox)

    def _search_api(self, bbox: tuple[float, float, float, float]) -> Iterator[Any]:
        import pystac_client

        collections = self.collections or ([PRESETS[self.preset_name].collection] if self.preset_name else None)
        try:
            client = pystac_client.Client.open(self.catalog)
            search = client.search(collections=collections, bbox=bbox,
                                   datetime=[self.start.isoformat(), self.end.isoformat()])
            yield from search.items()
        except Exception as exc:  # network or catalogue errors: one sentence naming the catalogue
            raise InputDataError(f"STAC search failed: {' '.join(str(exc).split())}", self.catalog) from exc

    def _search_static(self, bbox: tuple[float, float, float, float]) -> Iterator[Any]:
        import pystac
        from shapely.geometry import box, shape

        path = Path(self.catalog)
        if path.is_dir():
            path = path / "catalog.json"
        try:
            catalog = pystac.Catalog.from_file(str(path))
            items = list(catalog.get_items(recursive=True))
        except Exception as exc:
            raise InputDataError(f"not a readable STAC catalogue: {exc}", path) from exc
        area = box(*bbox)
        for item in items:
            if self.collections and item.collection_id not in self.collections:
                continue
            if item.geometry is not None and not shape(item.geometry).intersects(area):
                continue
            if not self.start <= _item_time(item) <= self.end:
                continue
            yield item


def open_stac_source(spec: str, grid: Any, period: Any = None, start: datetime | None = None,
                     end: datetime | None = None, **options: Any) -> StacSource:
    """A source from what a user types: a preset name (``earth-search/sentinel-2-l1c``), an API URL
    or a static ``catalog.json`` (or its folder), the last two optionally followed by
    ``#collection[,collection]``. ``grid`` is the project's ``TileGrid`` or a :class:`TargetGrid`;
    the search period is ``period`` (the project's) unless ``start``/``end`` are given. Without
    ``sign``, the ``ERCNN_STAC_SIGN`` environment variable may name a signing function."""
    grid = as_target_grid(grid)
    start, end = utc_range(period, start, end)
    if options.get("sign") is None and os.environ.get(SIGN_ENV):
        options["sign"] = os.environ[SIGN_ENV]
    if spec in PRESETS:
        preset = PRESETS[spec]
        return StacSource(str(preset.catalog_url), grid, start, end, [preset.collection], preset=spec, **options)
    catalog, _, fragment = spec.partition("#")
    collections = [c for c in fragment.split(",") if c] or None
    if not catalog.startswith(("http://", "https://")) and not Path(catalog).exists():
        raise InputDataError("no such STAC catalogue (a catalog.json, a folder holding one, or an http(s) URL)",
                             catalog)
    return StacSource(catalog, grid, start, end, collections, **options)


def _bunch_by_time(members: list[tuple[datetime, Any, CollectionPreset]]) -> Iterator[list[Any]]:
    bunch: list[Any] = []
    for member in members:
        if bunch and member[0] - bunch[0][0] > SAME_ACQUISITION:
            yield bunch
            bunch = []
        bunch.append(member)
    if bunch:
        yield bunch


def _item_time(item: Any) -> datetime:
    when = item.datetime or item.common_metadata.start_datetime
    return to_utc(when)


def _bbox_4326(grid: TargetGrid) -> tuple[float, float, float, float]:
    from rasterio.warp import transform_bounds

    left, top = grid.transform @ (0, 0)
    right, bottom = grid.transform @ (grid.width, grid.height)
    return tuple(transform_bounds(grid.crs, "EPSG:4326", left, bottom, right, top))  # type: ignore[return-value]


def _raster_band(item: Any, key: str) -> dict[str, Any]:
    bands = item.assets[key].extra_fields.get("raster:bands") or []
    return bands[0] if bands else {}


def _asset_scale_offset(item: Any, key: str) -> tuple[float | None, float | None]:
    band = _raster_band(item, key)
    return _float_or_none(band.get("scale")), _float_or_none(band.get("offset"))


def _asset_nodata(item: Any, key: str) -> float | None:
    return _float_or_none(_raster_band(item, key).get("nodata"))


def _float_or_none(value: Any) -> float | None:
    try:
        return None if value is None else float(value)
    except (TypeError, ValueError):
        return None
