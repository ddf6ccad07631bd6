"""Command-line mistakes are reported before TensorFlow (or napari) loads, for every command.

All cases run in ONE fresh Python process (this test process may already hold TensorFlow from
other tests): the script calls the real ``main()`` for each mistake and records the exit code,
the error line and whether ``tensorflow``/``keras``/``napari``/Qt had been imported by then.
"""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SAMPLE = REPO / "sample_data" / "liege"
DEMO_MODEL = REPO / "ercnn_napari" / "resources" / "demo_baseline.ercnn.h5"

SCRIPT = r"""
import contextlib, io, json, sys, time
from ercnn_napari.cli.main import main
out = []
for argv in json.loads(sys.argv[1]):
    err = io.StringIO()
    start = time.perf_counter()
    with contextlib.redirect_stderr(err):
        code = main(argv)
    out.append({"code": code, "stderr": err.getvalue(), "seconds": time.perf_counter() - start,
                "heavy": [m for m in ("tensorflow", "keras", "napari", "qtpy", "PyQt6") if m in sys.modules]})
print(json.dumps(out))
"""


def _cases(tmp: Path) -> list[tuple[list[str], str]]:
    """(argv, text the error line must contain) for each command's common mistakes."""
    p, nope = str(SAMPLE), str(tmp / "no_such")
    not_a_model = tmp / "notes.h5"
    not_a_model.write_text("not HDF5")
    run_without_checkpoint = tmp / "run"
    run_without_checkpoint.mkdir()
    (run_without_checkpoint / "config.json").write_text("{}")
    return [
        (["train", nope], "project folder does not exist"),
        (["train", p, "--baseline", nope + ".h5"], "model file does not exist"),
        (["train", p, "--baseline", str(not_a_model)], "not an HDF5 file"),
        (["train", p, "--split", "V9"], "no split 'V9'; splits there: V1, V2, V3"),
        (["train", p, "--gpus", "first"], "--gpus must be"),
        (["train", p, "--augment", "a-b"], "--augment takes codes"),
        (["train", "--resume", nope], "not a training run folder"),
        (["train", "--resume", str(run_without_checkpoint)], "no resumable checkpoint"),
        (["train"], "give a PROJECT folder"),
        (["evaluate", "--model", nope + ".h5", "--project", p], "model file does not exist"),
        (["evaluate", "--model", str(DEMO_MODEL), "--project", nope], "project folder does not exist"),
        (["evaluate", "--model", str(DEMO_MODEL), "--project", p, "--tiles", "3-5"], "not a tile id"),
        (["evaluate", "--model", str(DEMO_MODEL), "--project", p, "--tiles", "9:9"], "outside the grid"),
        (["evaluate", "--model", str(DEMO_MODEL), "--project", p, "--split", "V0"], "no split 'V0'"),
        (["predict", "--model", nope + ".h5", "--project", p, "--out", nope], "model file does not exist"),
        (["predict", "--model", str(DEMO_MODEL), "--out", nope, nope + ".tfrecords"], "no_such.tfrecords: file not found"),
        (["predict", "--model", str(DEMO_MODEL), "--project", nope, "--out", nope], "project folder does not exist"),
        (["predict", "--model", str(DEMO_MODEL), "--project", p, "--tiles", "99:99", "--out", nope],
         "outside the grid"),
        (["predict", "--model", str(DEMO_MODEL), "--project", p, "--tiles", "x", "--out", nope], "not a tile id"),
        (["info", nope], "project folder does not exist"),
        (["sample", nope, "--tiles", "99:99"], "outside the grid of 6 rows x 8 columns"),
        (["sample", nope, "--tiles", ","], "lists no tiles"),
        (["sample", str(not_a_model)], "is a file, not a folder"),
        (["demo", "--project", nope], "project folder does not exist"),
        (["demo", "--project", p, "--tile", "three"], "--tile: 'three' is not a tile id"),
        (["demo", "--project", p, "--tile", "9:9"], "outside the grid"),
        (["demo", "--project", p, "--size", "big"], "--size must look like"),
        (["demo", "--project", p, "--run", nope], "--run: folder does not exist"),
        (["demo", "--project", p, "--threshold", "2"], "--threshold must be between 0 and 1"),
        # the commands added since (project creation, ingestion, maps) keep the same rule
        (["new", str(tmp / "new_project"), "--aoi", nope + ".shp"], "polygon file does not exist"),
        (["ingest", nope, nope + "_source"], "project folder does not exist"),
        (["map", nope, "--model", str(DEMO_MODEL), "--out", str(tmp / "map")], "project folder does not exist"),
    ]


def test_every_command_reports_mistakes_before_heavy_imports(tmp_path: Path) -> None:
    cases = _cases(tmp_path)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")]))}
    env.pop("ERCNN_NAPARI_BASELINE", None)
    result = subprocess.run([sys.executable, "-c", SCRIPT, json.dumps([argv for argv, _ in cases])],
                            capture_output=True, text=True, env=env, cwd=tmp_path, timeout=300, check=False)
    assert result.returncode == 0, result.stderr[-3000:]
    outcomes = json.loads(result.stdout.strip().splitlines()[-1])
    commands = set()
    for (argv, expected), outcome in zip(cases, outcomes, strict=True):
        lines = outcome["stderr"].strip().splitlines()
        assert outcome["code"] == 2, (argv, outcome)
        assert lines and lines[-1].startswith("ercnn-napari: error: "), (argv, outcome)
        assert expected in lines[-1], (argv, lines[-1])
        # the point: answered before TensorFlow (or the viewer) was imported
        assert outcome["heavy"] == [], (argv, outcome["heavy"])
        assert outcome["seconds"] < 20, (argv, outcome["seconds"])   # loose: it was 29-117 s before
        commands.add(argv[0])
    assert commands == {"train", "evaluate", "predict", "info", "sample", "demo", "new", "ingest", "map"}
    assert not (tmp_path / "no_such").exists()   # sample wrote nothing before refusing the tiles


def test_sample_text_progress_says_tiles_and_time_left() -> None:
    from ercnn_napari.cli.cmd_sample import ProgressReporter
    from ercnn_napari.core.messages import MessageWriter, parse_message

    now = [100.0]
    text, json_out = io.StringIO(), io.StringIO()
    reporter = ProgressReporter(MessageWriter("text", stream=text, job="sample"), clock=lambda: now[0])
    machine = ProgressReporter(MessageWriter("json", stream=json_out, job="sample"), clock=lambda: now[0])
    for done in range(0, 5):            # observations: 10 s per tile (the first one also starts workers)
        reporter("observations", done, 4)
        machine("observations", done, 4)
        now[0] += 10.0
    for done in range(1, 101):          # a fast stage: 10 ms per tile
        reporter("labels", done, 100)
        now[0] += 0.01
    lines = text.getvalue().splitlines()
    assert lines[:5] == ["[sample] observations 0/4 tiles", "[sample] observations 1/4 tiles",
                         "[sample] observations 2/4 tiles (about 20 s left)",
                         "[sample] observations 3/4 tiles (about 10 s left)", "[sample] observations 4/4 tiles"]
    labels = lines[5:]
    assert labels[0] == "[sample] labels 1/100 tiles" and labels[-1] == "[sample] labels 100/100 tiles"
    assert len(labels) == 2              # one line a second at most, plus the last
    events = [parse_message(line) for line in json_out.getvalue().splitlines()]
    assert [(e.event, e.done, e.total, e.desc, e.unit) for e in events] == [
        ("progress", d, 4, "observations", "tiles") for d in range(5)]


@pytest.mark.parametrize("size", ["1500x950", "200X100"])
def test_demo_size_parses(size: str) -> None:
    from ercnn_napari.cli.cmd_demo import _size

    assert _size(size) == tuple(int(v) for v in size.lower().split("x"))
