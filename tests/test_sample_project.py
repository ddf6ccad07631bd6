"""The committed sample project: what the generator writes, read back through the project API."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import imageio.v3 as iio
import numpy as np
import pytest

from ercnn_napari.cli.main import main
from ercnn_napari.core.polygons import rasterize_tile_polygons
from ercnn_napari.core.project import Project
from ercnn_napari.core.windowing import compute_windows
from ercnn_napari.sample.prepare import COMMITTED_SAMPLE, generate_sample

pytestmark = pytest.mark.skipif(not COMMITTED_SAMPLE.is_dir(), reason="committed sample_data/liege not present")


@pytest.fixture(scope="module")
def fresh(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The project as the generator writes it now (default seed, no observations)."""
    return generate_sample(tmp_path_factory.mktemp("fresh") / "liege", with_observations=False)


def _files(root: Path, pattern: str) -> list[Path]:
    return sorted(p.relative_to(root) for p in root.rglob(pattern))


def test_committed_sample_equals_the_generator_output(fresh: Path) -> None:
    for pattern in ("*.npy", "*.txt", "*.png", "*.tif", "*.shp", "ercnn_project.json", "timestamps.json"):
        assert _files(fresh, pattern) == _files(COMMITTED_SAMPLE, pattern), pattern
    for rel in _files(fresh, "*.npy"):
        assert np.array_equal(np.load(fresh / rel), np.load(COMMITTED_SAMPLE / rel)), rel
    for rel in _files(fresh, "*.txt") + _files(fresh, "timestamps.json"):
        assert (fresh / rel).read_text() == (COMMITTED_SAMPLE / rel).read_text(), rel
    for rel in _files(fresh, "*.png"):                 # PNG bytes may differ across library versions
        assert np.array_equal(iio.imread(fresh / rel), iio.imread(COMMITTED_SAMPLE / rel)), rel
    a = json.loads((fresh / "answer_key" / "sample.json").read_text())
    b = json.loads((COMMITTED_SAMPLE / "answer_key" / "sample.json").read_text())
    assert a == b


def test_sample_layout_sizes_and_splits() -> None:
    project = Project.open(COMMITTED_SAMPLE)
    grid = project.grid
    assert (grid.rows, grid.cols, grid.crs, project.site) == (6, 8, "EPSG:32631", "Liege")
    labelled = project.tiles_with_labels()
    assert 0 < len(labelled) < grid.rows * grid.cols            # some tiles left for the analyst
    splits = project.splits()
    assert sorted(splits) == ["V1", "V2", "V3"]
    vals = [set(s.val) for s in splits.values()]
    assert not (vals[0] & vals[1]) and not (vals[0] & vals[2]) and not (vals[1] & vals[2])
    tests = {tuple(s.test) for s in splits.values()}
    assert len(tests) == 1
    for split in splits.values():
        assert set(split.train + split.val + split.test) <= set(labelled)
        assert not set(split.train) & (set(split.val) | set(split.test))
    pairs = [project.reference_pair(t) for t in grid.tiles()]
    assert sum(p.complete for p in pairs) >= grid.rows * grid.cols - 2
    assert {p.before_year for p in pairs if p.before_year} <= {2016, 2017}
    assert {p.after_year for p in pairs if p.after_year} <= {2020, 2021}
    assert any(p.before is None for p in pairs) and any(p.after is None for p in pairs)
    size = sum(f.stat().st_size for f in COMMITTED_SAMPLE.rglob("*") if f.is_file())
    assert size < 25 * 2**20


def test_labels_agree_with_their_polygons_and_with_the_answer_key() -> None:
    project = Project.open(COMMITTED_SAMPLE)
    inter = union = 0
    for tile in project.tiles_with_labels():
        label = project.labels.read(tile)
        key = np.load(COMMITTED_SAMPLE / "answer_key" / f"{tile[0]}_{tile[1]}.npy")
        if project.polygon_path(tile).is_file():
            burnt, _ = rasterize_tile_polygons(project, tile)
            assert np.array_equal(burnt, label), tile
        else:
            assert not label.any()
        inter += int((label.astype(bool) & key.astype(bool)).sum())
        union += int((label.astype(bool) | key.astype(bool)).sum())
    assert union > 0 and 0.55 < inter / union < 1.0


def test_timestamps_give_about_the_authors_number_of_windows() -> None:
    data = json.loads((COMMITTED_SAMPLE / "observations" / "timestamps.json").read_text())
    stamps = np.array(data["timestamps"])
    table = compute_windows(stamps)
    assert 500 <= len(table) <= 580                     # the authors' Liège TL table has 540
    assert table.n_obs.min() >= 35 and table.n_obs.max() <= 92


def test_prepare_copies_the_sample_without_importing_tensorflow(tmp_path: Path) -> None:
    code = (
        "import sys\n"
        "from ercnn_napari.sample import prepare_sample_project\n"
        "root = prepare_sample_project(with_observations=False)\n"
        "assert (root / 'ercnn_project.json').is_file(), root\n"
        "assert prepare_sample_project(with_observations=False) == root\n"
        "bad = [m for m in sys.modules if m.split('.')[0] in ('tensorflow', 'keras')]\n"
        "assert not bad, bad\n"
        "print(root)\n"
    )
    env = dict(os.environ, ERCNN_NAPARI_CACHE=str(tmp_path / "cache"))
    done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert Path(done.stdout.strip()) == tmp_path / "cache" / "sample-liege"
    assert not any((tmp_path / "cache").glob(".sample-liege.*"))        # no staging folder left


def test_sample_command_refuses_foreign_folders_and_bad_tiles(tmp_path: Path, capsys) -> None:
    busy = tmp_path / "busy"
    busy.mkdir()
    (busy / "notes.txt").write_text("mine")
    assert main(["sample", str(busy), "--no-observations"]) == 2
    assert "not empty" in capsys.readouterr().err
    assert main(["sample", str(tmp_path / "new"), "--tiles", "3:x"]) == 2
    assert "'3:x'" in capsys.readouterr().err
    assert not (tmp_path / "new").exists()


def test_sample_command_again_keeps_the_analysts_labels(tmp_path: Path) -> None:
    from ercnn_napari.sample import prepare_sample_project

    root = prepare_sample_project(tmp_path / "liege", with_observations=False)
    project = Project.open(root)
    tile = project.tiles_with_labels()[0]
    painted = np.ones((32, 32), np.uint8)
    project.labels.write(tile, painted)
    assert main(["sample", str(root), "--no-observations", "--progress", "none"]) == 0
    assert np.array_equal(Project.open(root).labels.read(tile), painted)


def test_cancelling_the_sample_command_ends_its_worker_processes(tmp_path: Path) -> None:
    """SIGTERM (the viewer's Cancel) used to end the command but leave its two generator workers running."""
    import signal
    import time

    psutil = pytest.importorskip("psutil")
    from ercnn_napari.core.messages import Finished, parse_message
    from ercnn_napari.sample import prepare_sample_project

    root = prepare_sample_project(tmp_path / "liege", with_observations=False)
    process = subprocess.Popen([sys.executable, "-m", "ercnn_napari", "sample", str(root), "--tiles",
                                "1:2,1:3,2:2,2:3,3:2,3:3", "--workers", "2", "--progress", "json"],
                               stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
                               env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3"))
    try:
        lines = []
        for line in process.stdout:   # the pool starts right after the first "observations" progress line
            lines.append(line)
            if '"observations' in line:
                break
        parent = psutil.Process(process.pid)
        deadline = time.monotonic() + 120
        workers: list = []
        while time.monotonic() < deadline and len(workers) < 2:
            workers = [p for p in parent.children(recursive=True) if "resource_tracker" not in " ".join(p.cmdline())]
            time.sleep(0.2)
        assert len(workers) >= 2, "the generator's two worker processes never started"
        process.send_signal(signal.SIGTERM)
        lines += process.stdout.read().splitlines()
        assert process.wait(timeout=60) == 130
    finally:
        if process.poll() is None:
            process.kill()
    _, alive = psutil.wait_procs(workers, timeout=20)
    assert not alive, f"worker processes left running after Cancel: {[p.pid for p in alive]}"
    last = parse_message(lines[-1])
    assert isinstance(last, Finished) and last.status == "cancelled"
