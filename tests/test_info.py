"""``ercnn-napari info``: text and JSON summaries, window counts without TensorFlow, clear errors."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest

from ercnn_napari.cli.main import main
from ercnn_napari.core.geo import TileGrid
from ercnn_napari.core.project import Project
from ercnn_napari.core.project_file import PROJECT_FILE_NAME

GRID = TileGrid("EPSG:32631", 680000.0, 5610000.0, 10.0, 10.0, 6, 8)
DAY = 86400.0


@pytest.fixture
def labelled_project(tmp_path):
    """Labels and reference pairs, no observations yet, one tile with a single image."""
    project = Project.create(tmp_path / "aoi", "Liege", GRID)
    rgb = np.zeros((8, 8, 3), np.uint8)
    change = np.zeros((32, 32))
    change[5:9, 5:9] = 1
    for tile in [(0, 0), (0, 1), (1, 3)]:
        project.labels.write(tile, change if tile != (0, 1) else np.zeros((32, 32)))
        project.write_reference_image(tile, 2017, rgb)
        if tile != (1, 3):
            project.write_reference_image(tile, 2020, rgb)
    v1 = project.training_dir / "V1"
    v1.mkdir(parents=True)
    (v1 / "tiles_train_cv1.txt").write_text("0:0\n0:1\n")
    (v1 / "tiles_val_cv1.txt").write_text("1:3\n")
    return project


def run_info(capsys, *args):
    code = main(["info", *args])
    out, err = capsys.readouterr()
    return code, out, err


def test_text_summary_without_observations(labelled_project, capsys):
    code, out, _ = run_info(capsys, str(labelled_project.root))
    assert code == 0
    assert "Site:         Liege" in out and "CRS:          EPSG:32631" in out
    assert "6 rows x 8 columns = 48 tiles" in out
    assert "Observations: none yet" in out and "Windows/tile: unknown" in out
    assert "Labels:       3 tile(s), 2 with change" in out
    assert "Reference:    2 complete pair(s), 1 incomplete" in out
    assert "1:3: only the before image (2017) exists" in out
    assert "Split V1:     train 2, val 1, test 0" in out


def test_json_summary(labelled_project, capsys):
    code, out, _ = run_info(capsys, str(labelled_project.root), "--json")
    summary = json.loads(out)
    assert code == 0 and summary["site"] == "Liege" and summary["grid"]["tiles"] == 48
    assert summary["labels"] == {"tiles": 3, "with_change": 2, "with_unsure": 0, "unsure_pixels": 0}
    assert summary["reference"]["incomplete"] == {"1:3": "only the before image (2017) exists"}
    assert summary["splits"]["V1"] == {"train": 2, "val": 1, "test": 0, "not_used": 0}
    assert summary["observations"]["tiles"] == 0 and summary["windows"]["count"] is None
    lon0, lat0, lon1, lat1 = summary["grid"]["bounds_lonlat"]
    assert 5.0 < lon0 < lon1 < 6.0 and 50.0 < lat0 < lat1 < 51.0   # east of Liège, Belgium


def test_windows_from_stacked_timestamps(labelled_project, capsys):
    folder = labelled_project.root / "observations"
    folder.mkdir()
    for tile in ("0_0", "0_1"):
        (folder / f"{tile}.tfrecords").write_bytes(b"")
    # one step every 2 days, 200 steps: a window from step s holds min(92, 200 - s) steps, and is
    # kept while that is >= 35, i.e. for s = 0 .. 165 -> 166 windows
    start = 1483228800.0  # 2017-01-01
    (folder / "timestamps.json").write_text(json.dumps({"timestamps": [start + 2 * DAY * i for i in range(200)]}))
    labelled_project.set_observations({"kind": "stacked", "path": "observations"})
    code, out, _ = run_info(capsys, str(labelled_project.root), "--json")
    summary = json.loads(out)
    assert summary["observations"]["tiles"] == 2
    assert summary["windows"]["count"] == 166
    # per-tile axes, ISO strings: the second tile has 100 steps -> 100 - 34 = 66 windows
    iso = [f"2017-01-{d:02d}T00:00:00Z" for d in range(1, 32)]
    per_tile = {"tiles": {"0_0": [start + 2 * DAY * i for i in range(200)],
                          "0:1": [start + 2 * DAY * i for i in range(100)], "1_3": iso}}
    (folder / "timestamps.json").write_text(json.dumps(per_tile))
    code, out, _ = run_info(capsys, str(labelled_project.root))
    assert "Windows/tile: 0-166" in out


def test_windows_from_the_window_csv(labelled_project, capsys):
    csv = labelled_project.root / "windows.csv"
    rows = ["ID,Start Time,End Time,# Observations"] + [
        f"{i},2017-01-{i:02d} 05:50:00,2017-07-{i:02d} 05:50:00,{40 + i}" for i in range(1, 11)]
    csv.write_text("\n".join(rows) + "\n")
    labelled_project.set_observations({"kind": "stage3", "path": "training", "window_csv": "windows.csv"})
    code, out, _ = run_info(capsys, str(labelled_project.root), "--json")
    assert json.loads(out)["windows"]["count"] == 10


def test_problems_are_listed_not_fatal(labelled_project, capsys):
    (labelled_project.training_dir / "V2").mkdir()
    (labelled_project.training_dir / "V2" / "tiles_train_cv2.txt").write_text("0:0\n")
    np.save(labelled_project.labels.npy_path((0, 0)), np.ones((32, 32)))
    code, out, _ = run_info(capsys, str(labelled_project.root))
    assert code == 0
    assert "Split V2:     unusable" in out and "tiles_val_cv2.txt" in out
    assert "Warning:" in out and "disagree" in out


def test_bad_input_gives_one_line_and_exit_code_2(tmp_path, labelled_project, capsys):
    code, _, err = run_info(capsys, str(tmp_path / "missing"))
    assert code == 2 and err.strip() == f"ercnn-napari: error: {tmp_path / 'missing'}: project folder does not exist"
    (labelled_project.root / PROJECT_FILE_NAME).write_text("{")
    code, _, err = run_info(capsys, str(labelled_project.root))
    assert code == 2 and PROJECT_FILE_NAME in err and "not valid JSON" in err
    assert len(err.strip().splitlines()) == 1


def test_info_command_never_imports_tensorflow(labelled_project):
    code = ("import sys; from ercnn_napari.cli.main import main; "
            f"rc = main(['info', {str(labelled_project.root)!r}]); "
            "bad = [m for m in sys.modules if m.split('.')[0] in ('tensorflow', 'keras')]; "
            "print('IMPORTED', bad, file=sys.stderr) if bad else None; sys.exit(rc or (3 if bad else 0))")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert "Site:" in result.stdout
