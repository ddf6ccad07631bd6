"""Sentinel Hub's Process API as an observation source: the request the authors made (fidelity path).

The published network was trained on data from exactly this service (ercnn_facts §8.1): S1 IW GRD
split into an ascending and a descending collection, VV and VH orthorectified with the Copernicus
DEM, Sentinel Hub's default backscatter coefficient gamma0 on the ellipsoid, linear power, float32;
S2 L1C, all 13 bands as TOA reflectance 0-1 plus CLM and dataMask, merged as
valid = dataMask AND CLM != 1. The same service runs on the Copernicus Data Space Ecosystem with a
free account, so :func:`cdse_config` points ``sentinelhub`` there unless the user's configuration
names another deployment. Acquisitions are listed with the Catalog API over the grid's extent; one
Process request per acquisition timestamp (+-1 s), on the target grid itself (its CRS, bounds and
pixel count), so no reprojection of ours touches these pixels.

Needs the ``sentinelhub`` extra. Credentials come from sentinelhub's own configuration
(``sentinelhub.config --sh_client_id ... --sh_client_secret ...``, a profile, or the
``SH_CLIENT_ID``/``SH_CLIENT_SECRET`` environment variables); nothing here stores them.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import numpy as np

from ercnn_napari.core.errors import InputDataError
from ercnn_napari.ingest.cloudmask import merge_clm
from ercnn_napari.ingest.scene import S1_BANDS, S2_BANDS, SceneInfo, TargetGrid
from ercnn_napari.ingest.source_args import as_target_grid, to_utc, utc_range

CDSE_BASE_URL = "https://sh.dataspace.copernicus.eu"
CDSE_TOKEN_URL = "https://identity.dataspace.copernicus.eu/auth/realms/CDSE/protocol/openid-connect/token"
#: sentinelhub's own default deployment: when a config still names it, we move it to the CDSE.
_SH_DEFAULT_BASE_URL = "https://services.sentinel-hub.com"
#: One request per acquisition timestamp, +- this much (the authors' eo-learn retrieval).
TIME_TOLERANCE = timedelta(seconds=1)

#: S1 processing options of the authors' request. backCoeff is Sentinel Hub's default, written out.
S1_PROCESSING: dict[str, Any] = {"orthorectify": True, "demInstance": "COPERNICUS", "backCoeff": "GAMMA0_ELLIPSOID"}

_S2_NAMES = ", ".join(f'"{b}"' for b in S2_BANDS)
_S2_UNITS = ", ".join('"REFLECTANCE"' for _ in S2_BANDS)
_S2_VALUES = ", ".join(f"s.{b}" for b in S2_BANDS)
S2_EVALSCRIPT = f"""//VERSION=3
function setup() {{
  return {{
    input: [{{bands: [{_S2_NAMES}, "CLM", "dataMask"], units: [{_S2_UNITS}, "DN", "DN"]}}],
    output: {{id: "default", bands: {len(S2_BANDS) + 2}, sampleType: "FLOAT32"}}
  }};
}}
function evaluatePixel(s) {{
  return [{_S2_VALUES}, s.CLM, s.dataMask];
}}
"""

S1_EVALSCRIPT = """//VERSION=3
function setup() {
  return {
    input: [{bands: ["VV", "VH", "dataMask"], units: ["LINEAR_POWER", "LINEAR_POWER", "DN"]}],
    output: {id: "default", bands: 3, sampleType: "FLOAT32"}
  };
}
function evaluatePixel(s) {
  return [s.VV, s.VH, s.dataMask];
}
"""


@dataclass(frozen=True)
class Stream:
    """One of the authors' three collections and how to read it."""

    name: str
    sensor: str
    orbit: str | None
    collection: str          # attribute of sentinelhub.DataCollection
    product: str
    evalscript: str
    processing: dict[str, Any] = field(default_factory=dict)


STREAMS: dict[str, Stream] = {s.name: s for s in (
    Stream("S1_ascending", "S1", "ascending", "SENTINEL1_IW_ASC", "S1_GRD_GAMMA0_ELLIPSOID", S1_EVALSCRIPT,
           S1_PROCESSING),
    Stream("S1_descending", "S1", "descending", "SENTINEL1_IW_DES", "S1_GRD_GAMMA0_ELLIPSOID", S1_EVALSCRIPT,
           S1_PROCESSING),
    Stream("S2", "S2", None, "SENTINEL2_L1C", "S2_L1C", S2_EVALSCRIPT),
)}


def cdse_config(profile: str | None = None, **overrides: Any) -> Any:
    """The user's sentinelhub configuration, moved to the Copernicus Data Space unless it names another
    deployment; credentials missing -> one sentence saying how to set them."""
    try:
        from sentinelhub import SHConfig
    except ImportError as exc:
        raise InputDataError("the Sentinel Hub source needs sentinelhub: pip install 'ercnn-napari[sentinelhub]'") from exc
    config = SHConfig(profile, **overrides)
    if config.sh_base_url.rstrip("/") == _SH_DEFAULT_BASE_URL and "sh_base_url" not in overrides:
        config.sh_base_url = CDSE_BASE_URL
        config.sh_token_url = CDSE_TOKEN_URL
    if not (config.sh_client_id and config.sh_client_secret):
        raise InputDataError("Sentinel Hub credentials are not set: create an OAuth client in the Copernicus Data "
                             "Space dashboard and run `sentinelhub.config --sh_client_id ID --sh_client_secret "
                             "SECRET` (or set SH_CLIENT_ID and SH_CLIENT_SECRET)")
    return config


def data_collection(stream: Stream, config: Any) -> Any:
    """The sentinelhub collection of a stream, served by the configured deployment."""
    from sentinelhub import DataCollection

    base = getattr(DataCollection, stream.collection)
    # a collection name is global in sentinelhub: one per deployment URL
    suffix = "".join(c if c.isalnum() else "_" for c in config.sh_base_url)
    return base.define_from(f"ERCNN_{stream.collection}_{suffix}", service_url=config.sh_base_url)


def sh_bbox(grid: TargetGrid) -> Any:
    """The grid's bounds as a sentinelhub BBox in the grid's own CRS (UTM or WGS84)."""
    from rasterio.crs import CRS as RioCRS
    from sentinelhub import CRS, BBox

    epsg = RioCRS.from_user_input(grid.crs).to_epsg()
    if epsg is None:
        raise InputDataError(f"Sentinel Hub needs an EPSG grid, the project grid is {grid.crs}")
    left, top = grid.transform @ (0, 0)
    right, bottom = grid.transform @ (grid.width, grid.height)
    return BBox((min(left, right), min(top, bottom), max(left, right), max(top, bottom)), crs=CRS(epsg))


def process_request(stream: Stream, when: datetime, grid: TargetGrid, config: Any) -> Any:
    """The Process API request of one acquisition on ``grid``: the authors' evalscript and options,
    time range ``when`` +- 1 s, output exactly the grid's pixels."""
    from sentinelhub import MimeType, SentinelHubRequest

    other = {"processing": dict(stream.processing)} if stream.processing else None
    input_data = SentinelHubRequest.input_data(
        data_collection(stream, config), time_interval=(when - TIME_TOLERANCE, when + TIME_TOLERANCE),
        other_args=other)
    return SentinelHubRequest(
        evalscript=stream.evalscript, input_data=[input_data],
        responses=[SentinelHubRequest.output_response("default", MimeType.TIFF)],
        bbox=sh_bbox(grid), size=(grid.width, grid.height), config=config)


def decode_response(content: bytes, stream: Stream, grid: TargetGrid, source: str) -> tuple[np.ndarray, np.ndarray]:
    """A Process API GeoTIFF -> (values in network units and band order, valid mask)."""
    from rasterio.errors import RasterioIOError
    from rasterio.io import MemoryFile

    bands = S1_BANDS if stream.sensor == "S1" else S2_BANDS
    try:
        with MemoryFile(content) as memory, memory.open() as dataset:
            data = dataset.read().astype(np.float32)
    except RasterioIOError as exc:
        raise InputDataError(f"the Sentinel Hub response is not a GeoTIFF: {exc}", source) from exc
    expected = (len(bands) + (2 if stream.sensor == "S2" else 1), grid.height, grid.width)
    if data.shape != expected:
        raise InputDataError(f"the Sentinel Hub response has shape {data.shape}, expected {expected} "
                             "(bands, height, width)", source)
    values = np.moveaxis(data[: len(bands)], 0, -1)
    if stream.sensor == "S2":
        valid = merge_clm(data[-1] > 0, data[-2])
        values = np.maximum(values, np.float32(0.0))  # Sentinel Hub's harmonisation clamps negatives
    else:
        valid = (data[-1] > 0) & np.all(np.isfinite(values), axis=-1)
    values = np.where(valid[..., None], np.nan_to_num(values), np.float32(0.0)).astype(np.float32)
    return values, valid


@dataclass
class SentinelHubScene:
    """One acquisition timestamp of one stream, requested on the grid it is read onto."""

    info: SceneInfo
    stream: Stream
    config: Any

    def read(self, grid: TargetGrid) -> tuple[np.ndarray, np.ndarray]:
        request = process_request(self.stream, self.info.time, grid, self.config)
        try:
            response = request.get_data(decode_data=False)[0]
        except _service_errors() as exc:
            raise InputDataError(f"Sentinel Hub refused the request: {_one_line(exc)}", self.info.source) from exc
        return decode_response(response.content, self.stream, grid, self.info.source)


class SentinelHubSource:
    """The authors' three streams over a grid and a period, one scene per acquisition timestamp."""

    def __init__(self, grid: TargetGrid, start: datetime, end: datetime, config: Any | None = None,
                 streams: tuple[str, ...] = tuple(STREAMS), profile: str | None = None) -> None:
        unknown = [s for s in streams if s not in STREAMS]
        if unknown:
            raise InputDataError(f"unknown Sentinel Hub stream(s) {unknown}; known: {', '.join(STREAMS)}")
        self.grid = grid
        self.start, self.end = to_utc(start), to_utc(end)
        self.config = config if config is not None else cdse_config(profile)
        self.streams = [STREAMS[s] for s in streams]
        self.problems: list[str] = []
        self.description = f"Sentinel Hub Process API at {self.config.sh_base_url}"

    def scenes(self) -> Iterator[SentinelHubScene]:
        scenes = [scene for stream in self.streams for scene in self._stream_scenes(stream)]
        yield from sorted(scenes, key=lambda scene: scene.info.time)

    def acquisition_times(self, stream: Stream) -> list[datetime]:
        """Catalog API search over the grid and period: distinct timestamps (+-1 s merged), sorted."""
        from sentinelhub import SentinelHubCatalog

        catalog = SentinelHubCatalog(config=self.config)
        try:
            features = list(catalog.search(data_collection(stream, self.config), bbox=sh_bbox(self.grid),
                                           time=(self.start, self.end),
                                           fields={"include": ["id", "properties.datetime"], "exclude": []}))
        except _service_errors() as exc:
            raise InputDataError(f"Sentinel Hub catalog search failed: {_one_line(exc)}", self.config.sh_base_url) from exc
        times = sorted(to_utc(datetime.fromisoformat(f["properties"]["datetime"].replace("Z", "+00:00")))
                       for f in features)
        distinct: list[datetime] = []
        for when in times:
            if not distinct or when - distinct[-1] > TIME_TOLERANCE:
                distinct.append(when)
        return distinct

    def _stream_scenes(self, stream: Stream) -> Iterator[SentinelHubScene]:
        processing = {k: str(v).lower() if isinstance(v, bool) else str(v) for k, v in stream.processing.items()}
        processing["service"] = self.config.sh_base_url
        if stream.sensor == "S2":
            processing.update({"reflectance": "TOA", "cloud_mask": "dataMask AND CLM != 1"})
        for when in self.acquisition_times(stream):
            source = f"{self.config.sh_base_url}/api/v1/process {stream.collection} {when.isoformat()}"
            units = "linear" if stream.sensor == "S1" else "reflectance"
            bands = S1_BANDS if stream.sensor == "S1" else S2_BANDS
            info = SceneInfo(when, stream.sensor, stream.orbit, stream.product, units, bands, source, dict(processing))
            yield SentinelHubScene(info, stream, self.config)


def open_sentinelhub_source(spec: str, grid: Any, period: Any = None, start: datetime | None = None,
                            end: datetime | None = None, **options: Any) -> SentinelHubSource:
    """``sentinelhub`` or ``sentinelhub:PROFILE`` (a profile of sentinelhub's config.toml), over the
    project's ``TileGrid`` (or a :class:`TargetGrid`) and period."""
    _, _, profile = spec.partition(":")
    start, end = utc_range(period, start, end)
    return SentinelHubSource(as_target_grid(grid), start, end, profile=profile or None, **options)


def _service_errors() -> tuple[type[BaseException], ...]:
    """What the service's refusals arrive as: a failed download, a refused token, a dead connection."""
    from oauthlib.oauth2.rfc6749.errors import OAuth2Error
    from requests import RequestException
    from sentinelhub.exceptions import DownloadFailedException

    return DownloadFailedException, OAuth2Error, RequestException


def _one_line(exc: Exception) -> str:
    return " ".join(str(exc).split())
