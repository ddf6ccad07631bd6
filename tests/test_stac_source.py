"""The STAC source on a static catalogue of local COGs, read through odc-stac for real."""

from __future__ import annotations

import logging
from datetime import datetime, timezone

import numpy as np
import pytest
from affine import Affine

from ercnn_napari.core.errors import InputDataError
from ercnn_napari.ingest.scene import S2_BANDS, TargetGrid
from ercnn_napari.ingest.stac_presets import EARTH_SEARCH_URL, PRESETS
from ercnn_napari.ingest.stac_source import open_stac_source, s2_reflectance
from tests.stac_catalog import CLEAR, CLOUD, GRID_ORIGIN, GRID_SIZE, UTM, build_catalog, l2a_dn

START = datetime(2017, 1, 1, tzinfo=timezone.utc)
END = datetime(2023, 1, 1, tzinfo=timezone.utc)
GRID = TargetGrid(UTM, Affine(10, 0, GRID_ORIGIN[0], 0, -10, GRID_ORIGIN[1]), GRID_SIZE, GRID_SIZE)


@pytest.fixture(scope="module")
def catalog(tmp_path_factory):
    return build_catalog(tmp_path_factory.mktemp("stac"))


def _scenes(catalog, **options):
    source = open_stac_source(str(catalog), GRID, start=START, end=END, **options)
    scenes = list(source.scenes())
    return source, scenes, source.notes


def test_items_become_acquisitions_with_their_fidelity(catalog, caplog):
    with caplog.at_level(logging.WARNING, logger="ercnn_napari.ingest.stac_source"):
        source, scenes, fidelity = _scenes(catalog)
    assert [r.getMessage().split(": ", 1)[1] for r in caplog.records] == fidelity, "each note logged once"
    assert [(s.info.stream, s.info.product) for s in scenes] == [
        ("S2", "S2_L2A"), ("S1_ascending", "S1_RTC"), ("S1_descending", "S1_RTC"), ("S2", "S2_L1C")]
    l2a, asc, _, l1c = scenes
    assert len(l2a.items) == 2, "two granules 10 s apart are one acquisition"
    assert l2a.info.time == datetime(2018, 6, 1, 10, 30, tzinfo=timezone.utc)
    assert l2a.info.units == "dn" and l2a.info.processing["B10"] == "filled with 0"
    assert l2a.info.processing["cloud_mask"] == "scl (scl)"
    assert asc.info.orbit == "ascending" and asc.info.processing["terrain_flattening"] == "yes"
    assert l1c.info.processing["cloud_mask"] == "s2cloudless at 160 m (local)"
    assert [s.split(": ")[1] for s in source.skipped] == ["no preset reads collection 'landsat' with assets ['thermal']"]
    assert any("L2A has no B10" in w for w in fidelity) and any("terrain-flattened" in w for w in fidelity)
    assert not any("sentinel-2-l1c" in w for w in fidelity), "L1C is what the network saw: no warning"


def test_l2a_reflectance_from_raster_scale_offset_b10_zero_and_scl_mask(catalog):
    _, scenes, _ = _scenes(catalog)
    values, valid = scenes[0].read(GRID)
    assert values.shape == (GRID_SIZE, GRID_SIZE, 13) and values.dtype == np.float32
    assert not valid[:50, :50].any() and valid[50:].all() and valid[:, 50:].all()
    for index, band in enumerate(S2_BANDS):
        west, east = values[100, 10, index], values[100, 300, index]
        if band == "B10":
            assert west == east == 0.0
        elif band == "B04":
            assert west == 0.0, "negative reflectance (DN below the offset) is clamped to 0"
        else:
            assert west == pytest.approx(l2a_dn(index) * 1e-4 - 0.1, abs=1e-6)
            assert east == pytest.approx((l2a_dn(index) + 1) * 1e-4 - 0.1, abs=1e-6), "east granule"
    assert values[100, 150, 0] == pytest.approx(l2a_dn(0) * 1e-4 - 0.1, abs=1e-6), "the earlier granule wins"
    assert (values[:50, :50] == 0).all(), "masked pixels carry no values"


def test_l1c_baseline_offset_and_local_cloud_mask(catalog):
    _, scenes, _ = _scenes(catalog)
    values, valid = scenes[-1].read(GRID)
    clear = values[250:, 250:]
    assert np.allclose(clear.mean(axis=(0, 1)), CLEAR, rtol=0.02, atol=1e-3), "(DN - 1000) / 10000 for baseline 04.00"
    assert not valid[CLOUD].any(), "the bright block is flagged as cloud"
    assert valid[240:, 240:].all(), "clear land stays valid"


def test_s1_rtc_reprojected_from_another_crs(catalog):
    _, scenes, _ = _scenes(catalog)
    for scene, vv in ((scenes[1], 0.25), (scenes[2], 0.5)):
        values, valid = scene.read(GRID)
        assert valid.all()
        assert np.allclose(values[..., 0], vv) and np.allclose(values[..., 1], vv / 5)


def test_collections_filter_and_a_user_signing_function(catalog):
    seen: list[str] = []

    def sign(href: str) -> str:
        seen.append(href)
        return href

    _, scenes, _ = _scenes(f"{catalog}#sentinel-1-rtc", sign=sign)
    assert [s.info.product for s in scenes] == ["S1_RTC", "S1_RTC"]
    scenes[0].read(GRID)
    assert sorted(h.rsplit("/", 1)[-1] for h in seen) == ["S1A_RTC_asc_vh.tif", "S1A_RTC_asc_vv.tif"]
    _, by_path, _ = _scenes(f"{catalog}#sentinel-1-rtc", sign="os.path:abspath")
    assert by_path[0].read(GRID)[1].all()


def test_the_command_line_names_a_signer_in_the_environment(catalog, monkeypatch):
    import os.path

    monkeypatch.setenv("ERCNN_STAC_SIGN", "os.path:abspath")
    _, scenes, _ = _scenes(f"{catalog}#sentinel-1-rtc")
    assert scenes[0].sign is os.path.abspath
    monkeypatch.setenv("ERCNN_STAC_SIGN", "no_such_module:sign")
    with pytest.raises(InputDataError, match="no_such_module:sign"):
        _scenes(catalog)


def test_presets_name_the_catalogues_and_bad_specs_say_why(catalog, tmp_path):
    source = open_stac_source("earth-search/sentinel-2-l1c", GRID, start=START, end=END)
    assert source.catalog == EARTH_SEARCH_URL and source.collections == ["sentinel-2-l1c"]
    assert PRESETS["planetary-computer/sentinel-1-rtc"].sign == "planetary_computer:sign"
    with pytest.raises(InputDataError, match="no such STAC catalogue"):
        open_stac_source(str(tmp_path / "nothing.json"), GRID, start=START, end=END)
    with pytest.raises(InputDataError, match="cannot import the signing function"):
        open_stac_source(str(catalog), GRID, start=START, end=END, sign="no_such_module:sign")
    (tmp_path / "catalog.json").write_text("{not json")
    with pytest.raises(InputDataError, match="not a readable STAC catalogue"):
        list(open_stac_source(str(tmp_path), GRID, start=START, end=END).scenes())


def test_dn_rule_without_scale_follows_the_baseline_or_its_date():
    dn = np.array([1500, 800], np.uint16)
    before = datetime(2021, 1, 1, tzinfo=timezone.utc)
    after = datetime(2022, 2, 1, tzinfo=timezone.utc)
    assert np.allclose(s2_reflectance(dn, None, None, 3.0, after), [0.15, 0.08])
    assert np.allclose(s2_reflectance(dn, None, None, 4.0, before), [0.05, 0.0])
    assert np.allclose(s2_reflectance(dn, None, None, None, before), [0.15, 0.08])
    assert np.allclose(s2_reflectance(dn, None, None, None, after), [0.05, 0.0])


def test_called_as_ingest_calls_it_with_the_project_grid_and_period(catalog):
    from ercnn_napari.core.geo import TileGrid
    from ercnn_napari.core.project_file import Period

    grid = TileGrid(UTM, GRID_ORIGIN[0], GRID_ORIGIN[1], 10.0, 10.0, GRID_SIZE // 32, GRID_SIZE // 32)
    source = open_stac_source(str(catalog.parent), grid=grid, period=Period("2018-01-01", "2018-06-01"))
    assert source.grid == GRID
    assert (source.start.isoformat(), source.end.isoformat()) == (
        "2018-01-01T00:00:00+00:00", "2018-06-01T23:59:59.999999+00:00")
    scenes = list(source.scenes())
    assert [s.info.product for s in scenes] == ["S2_L2A"], "the last day of the period is included, the next is not"
    assert source.problems == source.skipped and source.description.startswith("STAC ")


def test_a_stac_api_is_searched_over_the_grid_and_period_and_paged(catalog):
    from tests.stac_api_standin import StacApi

    with StacApi(str(catalog), page_size=1) as api:
        source = open_stac_source(f"{api.url}#sentinel-2-l2a,sentinel-1-rtc", GRID, start=START,
                                  end=datetime(2018, 6, 3, tzinfo=timezone.utc))
        scenes = list(source.scenes())
        values, valid = scenes[0].read(GRID)
    assert [(s.info.product, len(s.items)) for s in scenes] == [("S2_L2A", 2), ("S1_RTC", 1)]
    assert len(api.searches) == 3, "three items, one per page"
    first = api.searches[0]
    assert first["collections"] == ["sentinel-2-l2a", "sentinel-1-rtc"]
    assert first["datetime"].startswith("2017-01-01T00:00:00") and "2018-06-03T00:00:00" in first["datetime"]
    lon_min, lat_min, lon_max, lat_max = first["bbox"]
    assert lon_min < lon_max and lat_min < lat_max and 5.4 < lon_min < 5.7
    assert valid[60:, 60:].all() and values[100, 10, 0] == pytest.approx(l2a_dn(0) * 1e-4 - 0.1, abs=1e-6)


def test_an_unreachable_api_is_one_sentence():
    import socket

    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    source = open_stac_source(f"http://127.0.0.1:{port}", GRID, start=START, end=END)
    with pytest.raises(InputDataError, match="STAC search failed") as info:
        list(source.scenes())
    assert "\n" not in str(info.value) and str(port) in str(info.value)
