"""The S2 cloud mask: the authors' CLM merge, and s2cloudless run locally at 160 m."""

from __future__ import annotations

import numpy as np
import pytest
from affine import Affine

from ercnn_napari.core.errors import InputDataError
from ercnn_napari.ingest.cloudmask import (
    CLM_RESOLUTION_M,
    cloud_probability,
    coarse_grid,
    merge_clm,
    pixel_size_m,
    s2cloudless_valid,
)
from ercnn_napari.ingest.scene import TargetGrid
from tests.stac_catalog import CLEAR, CLOUDY


def _scene(size: int, cloud: tuple[slice, slice]) -> np.ndarray:
    rng = np.random.default_rng(1)
    scene = CLEAR * (1 + 0.05 * rng.standard_normal((size, size, 1))).astype(np.float32)
    scene[cloud] = CLOUDY
    return scene


def test_merge_is_datamask_and_clm_not_cloud():
    data_mask = np.array([1, 1, 1, 0, 0], np.uint8)
    clm = np.array([0, 1, 255, 0, 1], np.uint8)
    assert merge_clm(data_mask, clm).tolist() == [True, False, True, False, False]


def test_bright_block_is_flagged_and_detection_runs_at_160_m():
    grid = TargetGrid("EPSG:32631", Affine(10, 0, 680000, 0, -10, 5610000), 320, 320)
    cloud = (slice(160, 320), slice(0, 160))
    scene = _scene(320, cloud)
    probabilities, coarse = cloud_probability(scene, grid)
    assert (abs(coarse.transform.a), abs(coarse.transform.e)) == (CLM_RESOLUTION_M, CLM_RESOLUTION_M)
    assert probabilities.shape == (20, 20)
    assert probabilities[10:, :10].min() > 0.9 and probabilities[:8, 12:].max() < 0.4
    valid = s2cloudless_valid(scene, grid)
    assert valid.shape == (320, 320)
    assert not valid[cloud].any() and valid[:96, 224:].all()
    # the mask is made of whole 160 m cells: every 16 x 16 block of 10 m pixels is uniform
    blocks = valid.reshape(20, 16, 20, 16)
    assert (blocks.all(axis=(1, 3)) == blocks.any(axis=(1, 3))).all()


def test_coarse_grid_of_a_20_m_and_a_degree_grid_is_160_m():
    utm20 = TargetGrid("EPSG:32631", Affine(20, 0, 0, 0, -20, 0), 100, 100)
    assert pixel_size_m(coarse_grid(utm20)) == (160.0, 160.0)
    assert (coarse_grid(utm20).height, coarse_grid(utm20).width) == (13, 13)
    # the authors' EPSG:4326 grid: ~10 m pixels, different in x and y
    lonlat = TargetGrid("EPSG:4326", Affine(1.4e-4, 0, 5.5, 0, -9e-5, 50.7), 320, 320)
    x, y = pixel_size_m(coarse_grid(lonlat))
    assert x == pytest.approx(160.0, rel=0.01) and y == pytest.approx(160.0, rel=0.01)


def test_wrong_band_count_is_one_clear_error():
    grid = TargetGrid("EPSG:32631", Affine(10, 0, 0, 0, -10, 0), 32, 32)
    with pytest.raises(InputDataError, match="13 L1C bands"):
        s2cloudless_valid(np.zeros((32, 32, 12), np.float32), grid)


def test_local_manifest_row_can_ask_for_s2cloudless(tmp_path):
    """`mask = s2cloudless` in manifest.csv: the cloud is computed at 160 m during the read, S2 only."""
    import rasterio

    from ercnn_napari.ingest.local_source import LocalSource
    from ercnn_napari.ingest.scene import S2_BANDS

    grid = TargetGrid("EPSG:32631", Affine(10, 0, 680000, 0, -10, 5610000), 320, 320)
    cloud = (slice(160, 320), slice(0, 160))
    scene = _scene(320, cloud)
    profile = {"driver": "GTiff", "width": 320, "height": 320, "count": 13, "dtype": "float32",
               "crs": grid.crs, "transform": grid.transform}
    with rasterio.open(tmp_path / "s2.tif", "w", **profile) as dst:
        dst.write(np.moveaxis(scene, -1, 0))
    bands = " ".join(S2_BANDS)
    (tmp_path / "manifest.csv").write_text(
        "path,time,sensor,orbit,product,units,bands,mask\n"
        f"s2.tif,2020-06-01T10:47:00Z,S2,,S2_L1C,reflectance,{bands},s2cloudless\n"
        f"s2.tif,2020-06-02T10:47:00Z,S1,ascending,S1_GRD_GAMMA0_ELLIPSOID,linear,VV VH,s2cloudless\n")
    source = LocalSource(tmp_path)
    scenes = source.scenes()
    assert len(scenes) == 1 and scenes[0].info.processing["cloud_mask"].startswith("s2cloudless")
    assert len(source.problems) == 1 and "s2cloudless applies to S2" in str(source.problems[0])
    values, valid = scenes[0].read(grid)
    assert not valid[cloud].any() and valid[:96, 224:].all()
    assert np.all(values[~valid] == 0.0)
