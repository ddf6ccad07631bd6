"""Round trip: the sample generator's raw acquisitions -> files + manifest -> new -> ingest -> the
generator's own stacked series, tensor for tensor; and a 2-worker Dask run equals the 1-worker run."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from ingest_export import aoi_geojson, export_folder, generator_acquisitions

from ercnn_napari.cli.main import main
from ercnn_napari.core.project import Project
from ercnn_napari.ingest.pipeline import ingest
from ercnn_napari.sample.site import SampleSpec

# a period across 2022-01-25, so S2 DN come both without and with the baseline-04.00 offset
SPEC = SampleSpec(rows=2, cols=3, period_start="2022-01-15", period_end="2022-02-20T00:00:00")


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    root = tmp_path_factory.mktemp("roundtrip")
    sched, raw, expected = generator_acquisitions(SPEC)
    folder = export_folder(root / "acquisitions", SPEC, sched, raw)
    aoi = aoi_geojson(root / "aoi.geojson", SPEC)
    return root, folder, aoi, expected, sched


def _new(root: Path, aoi: Path, name: str) -> Project:
    dest = root / name
    assert main(["new", str(dest), "--aoi", str(aoi), "--site", "Sample", "--start", SPEC.period_start,
                 "--end", SPEC.period_end[:10]]) == 0
    project = Project.open(dest)
    assert project.grid == SPEC.tile_grid()
    return project


def _read_all(project: Project) -> dict:
    from ercnn_napari.ml.data.tfrecords import read_stacked

    return {tile: read_stacked(path) for tile, path in project.observation_files().items()}


def test_ingested_series_equal_the_generators(exported, capsys):
    root, folder, aoi, expected, sched = exported
    project = _new(root, aoi, "p1")
    capsys.readouterr()
    assert main(["ingest", str(project.root), str(folder), "--workers", "1"]) == 0
    project = Project.open(project.root)
    series = _read_all(project)
    assert sorted(series) == SPEC.tiles()
    for tile, want in expected.items():
        got = series[tile]
        np.testing.assert_array_equal(got.timestamps, want.timestamps)
        np.testing.assert_array_equal(got.observations[..., 0:2], want.s1_asc)
        np.testing.assert_array_equal(got.observations[..., 2:4], want.s1_desc)
        np.testing.assert_array_equal(got.observations[..., 4:], want.s2)
    # the time axis for TF-free readers, and the fidelity record: all as the published weights expect
    stamps = json.loads((project.root / "observations" / "timestamps.json").read_text())["timestamps"]
    np.testing.assert_array_equal(stamps, expected[(0, 0)].timestamps)
    fidelity = json.loads((project.root / "observations" / "fidelity.json").read_text())
    dropped = [line for line in capsys.readouterr().err.splitlines() if "no valid pixel" in line]
    assert dropped and all("(s2_" in line for line in dropped)       # the all-cloud S2 scenes, one line each
    assert fidelity["streams"]["S2"]["products"] == {"S2_L1C": len(sched.s2) - len(dropped)}
    assert fidelity["streams"]["S1_ascending"]["source_units"] == {"db": len(sched.s1_asc)}
    # resumable: a second run warps and stacks nothing
    capsys.readouterr()
    assert main(["ingest", str(project.root), str(folder), "--workers", "1"]) == 0
    captured = capsys.readouterr()
    assert "0 acquisition(s) warped" in captured.out and "0 tile(s) stacked" in captured.out
    assert "skipped" not in captured.err           # empty scenes are remembered, not re-reported


def test_two_dask_workers_and_an_existing_scheduler_equal_one_worker(exported, tmp_path):
    root, folder, aoi, expected, _ = exported
    one = _new(tmp_path, aoi, "one")
    two = _new(tmp_path, aoi, "two")
    ingest(one, [str(folder)], workers=1, block_tiles=2)
    report = ingest(two, [str(folder)], workers=2, block_tiles=2)
    assert "LocalCluster of 2" in report.runner
    # and through --scheduler: an existing cluster (here a LocalCluster started apart, as a SLURMCluster would be)
    from distributed import LocalCluster

    three = _new(tmp_path, aoi, "three")
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None) as cluster:
        report = ingest(three, [str(folder)], scheduler=cluster.scheduler_address, block_tiles=2)
    assert report.runner == f"Dask scheduler {cluster.scheduler_address}"
    files = [sorted(p.read_bytes() for p in Project.open(x.root).observation_files().values()) for x in (one, three)]
    assert files[0] == files[1]                      # byte-identical stage-2 files
    a, b = _read_all(Project.open(one.root)), _read_all(Project.open(two.root))
    assert sorted(a) == sorted(b) == SPEC.tiles()
    for tile in a:
        np.testing.assert_array_equal(a[tile].timestamps, b[tile].timestamps)
        np.testing.assert_array_equal(a[tile].observations, b[tile].observations)
        np.testing.assert_array_equal(a[tile].observations[..., 4:], expected[tile].s2)
