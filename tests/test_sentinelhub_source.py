"""The Sentinel Hub source against a stand-in service on 127.0.0.1 (no network in CI)."""

from __future__ import annotations

from datetime import datetime, timezone

import numpy as np
import pytest
from affine import Affine

pytest.importorskip("sentinelhub", reason="the Sentinel Hub source is the optional 'sentinelhub' extra")

from sentinelhub import SHConfig  # noqa: E402

from ercnn_napari.core.errors import InputDataError  # noqa: E402
from ercnn_napari.ingest.scene import S2_BANDS, TargetGrid  # noqa: E402
from ercnn_napari.ingest.sentinelhub_source import (  # noqa: E402
    CDSE_BASE_URL,
    CDSE_TOKEN_URL,
    SentinelHubSource,
    cdse_config,
    open_sentinelhub_source,
)
from tests.sentinelhub_standin import CLM_CLOUD, CLM_NO_DATA_CODE, NO_DATA, StandIn, s2_value  # noqa: E402

START = datetime(2017, 1, 1, tzinfo=timezone.utc)
END = datetime(2021, 1, 17, tzinfo=timezone.utc)
GRID = TargetGrid("EPSG:32631", Affine(10, 0, 680000, 0, -10, 5610000), 32, 64)


@pytest.fixture
def standin(monkeypatch):
    monkeypatch.setenv("OAUTHLIB_INSECURE_TRANSPORT", "1")  # the stand-in speaks plain http on 127.0.0.1
    with StandIn() as server:
        yield server


def _config(url: str, secret: str = "secret", client: str = "client") -> SHConfig:
    return SHConfig(use_defaults=True, sh_base_url=url, sh_token_url=f"{url}/oauth/token",
                    sh_client_id=client, sh_client_secret=secret, max_download_attempts=1)


def test_acquisitions_from_the_catalog_per_stream(standin):
    source = SentinelHubSource(GRID, START, END, config=_config(standin.url))
    scenes = list(source.scenes())
    assert [(s.info.stream, s.info.time.isoformat()) for s in scenes] == [
        ("S2", "2018-06-01T10:30:21.100000+00:00"),   # two granules 0.5 s apart: one acquisition
        ("S1_ascending", "2018-06-02T17:30:40+00:00"),
        ("S1_descending", "2018-06-03T05:50:10+00:00"),
        ("S2", "2018-06-06T10:31:02+00:00"),
    ]
    s1 = scenes[1].info
    assert (s1.product, s1.units, s1.bands) == ("S1_GRD_GAMMA0_ELLIPSOID", "linear", ("VV", "VH"))
    assert s1.processing["backCoeff"] == "GAMMA0_ELLIPSOID" and s1.processing["orthorectify"] == "true"
    assert (scenes[0].info.product, scenes[0].info.units) == ("S2_L1C", "reflectance")
    searches = standin.bodies("/api/v1/catalog/1.0.0/search")
    assert [b["collections"] for b in searches] == [["sentinel-1-grd"], ["sentinel-1-grd"], ["sentinel-2-l1c"]]
    filters = [b.get("filter") for b in searches]
    assert "sat:orbit_state='ascending'" in filters[0] and "sat:orbit_state='descending'" in filters[1]
    assert all("sar:instrument_mode='IW'" in f and "s1:polarization='DV'" in f for f in filters[:2])
    assert filters[2] is None
    assert searches[2]["datetime"] == "2017-01-01T00:00:00Z/2021-01-17T00:00:00Z"
    lon_min, lat_min, lon_max, lat_max = searches[2]["bbox"]
    assert 5.5 < lon_min < lon_max < 5.6 and 50.5 < lat_min < lat_max < 50.7


def test_s2_request_is_the_authors_and_the_response_is_merged_with_clm(standin):
    scene = next(iter(SentinelHubSource(GRID, START, END, config=_config(standin.url), streams=("S2",)).scenes()))
    values, valid = scene.read(GRID)
    body = standin.bodies("/api/v1/process")[-1]
    data = body["input"]["data"][0]
    assert data["type"] == "sentinel-2-l1c"
    assert data["dataFilter"]["timeRange"] == {"from": "2018-06-01T10:30:20.100000Z", "to": "2018-06-01T10:30:22.100000Z"}
    script = body["evalscript"]
    assert 'bands: ["B01", "B02", "B03", "B04", "B05", "B06", "B07", "B08", "B8A", "B09", "B10", "B11", "B12", ' \
           '"CLM", "dataMask"]' in script
    assert script.count('"REFLECTANCE"') == 13 and 'sampleType: "FLOAT32"' in script and "bands: 15" in script
    assert body["input"]["bounds"]["properties"]["crs"].endswith("/32631")
    assert body["input"]["bounds"]["bbox"] == [680000.0, 5609680.0, 680640.0, 5610000.0]
    assert (body["output"]["width"], body["output"]["height"]) == (64, 32)
    assert values.shape == (32, 64, 13) and values.dtype == np.float32
    expected = np.ones((32, 64), bool)
    expected[CLM_CLOUD] = False        # CLM == 1
    expected[NO_DATA] = False          # dataMask == 0
    assert (valid == expected).all()
    assert valid[CLM_NO_DATA_CODE].all(), "CLM 255 is not 1: only dataMask removes pixels (the authors' merge)"
    for band in range(len(S2_BANDS)):
        assert values[10, 10, band] == pytest.approx(max(0.0, s2_value(band, 0)))
    assert (values[~valid] == 0).all()


def test_s1_request_options_and_linear_values(standin):
    source = SentinelHubSource(GRID, START, END, config=_config(standin.url), streams=("S1_descending",))
    (scene,) = list(source.scenes())
    values, valid = scene.read(GRID)
    data = standin.bodies("/api/v1/process")[-1]["input"]["data"][0]
    assert data["type"] == "sentinel-1-grd"
    assert data["processing"] == {"orthorectify": True, "demInstance": "COPERNICUS", "backCoeff": "GAMMA0_ELLIPSOID"}
    assert data["dataFilter"]["orbitDirection"] == "DESCENDING"
    assert data["dataFilter"]["acquisitionMode"] == "IW" and data["dataFilter"]["polarization"] == "DV"
    assert valid.all() and np.allclose(values[..., 0], 0.3) and np.allclose(values[..., 1], 0.06)


def test_refusals_are_one_sentence(standin):
    source = SentinelHubSource(GRID, START, END, config=_config(standin.url), streams=("S1_ascending",))
    (scene,) = list(source.scenes())
    too_wide = TargetGrid(GRID.crs, GRID.transform, 32, 3000)
    with pytest.raises(InputDataError, match="refused the request.*not more than 2500 pixels") as info:
        scene.read(too_wide)
    assert "\n" not in str(info.value) and "/api/v1/process" in str(info.value)
    with pytest.raises(InputDataError, match="catalog search failed.*Invalid client"):
        list(SentinelHubSource(GRID, START, END, config=_config(standin.url, "wrong", "other")).scenes())


def test_config_moves_to_the_data_space_and_asks_for_credentials(monkeypatch, tmp_path):
    monkeypatch.setenv("SH_CLIENT_ID", "id")
    monkeypatch.setenv("SH_CLIENT_SECRET", "secret")
    config = cdse_config()
    assert (config.sh_base_url, config.sh_token_url) == (CDSE_BASE_URL, CDSE_TOKEN_URL)
    assert cdse_config(sh_base_url="https://services-uswest2.sentinel-hub.com").sh_base_url.endswith("uswest2.sentinel-hub.com")
    monkeypatch.delenv("SH_CLIENT_ID")
    monkeypatch.delenv("SH_CLIENT_SECRET")
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path))
    with pytest.raises(InputDataError, match="credentials are not set"):
        open_sentinelhub_source("sentinelhub", GRID, start=START, end=END)
