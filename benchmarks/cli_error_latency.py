"""How long a command-line mistake takes to be reported, against a bare start of the command line.

A typo in a path, a tile id or a split name should be answered in about the time the program
needs to start, not after TensorFlow has loaded (which took 29-49 s on a busy 2-core machine).
Each mistake runs as a real ``python -m ercnn_napari`` process; its wall time is compared with
``python -m ercnn_napari --version`` measured in the same run (the floor of any command), and
with ``python -c "import tensorflow"`` (what an argument check must not wait for). Every case
must end with exit code 2 and one ``ercnn-napari: error:`` line.

    python benchmarks/cli_error_latency.py [--repeat 1]

Last line: ``key=value`` pairs (``max_error_s``, ``max_ratio``, ``goal_met`` for the 2 s goal).
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PROJECT = ROOT / "sample_data" / "liege"
GOAL_S = 2.0


def cases(tmp: Path) -> list[tuple[str, list[str]]]:
    """(name, arguments) of one typical mistake per command and option."""
    p, nope = str(PROJECT), str(tmp / "no_such")
    return [
        ("train_missing_project", ["train", nope, "--preset", "quick"]),
        ("train_missing_baseline", ["train", p, "--baseline", nope + ".h5"]),
        ("train_bad_split", ["train", p, "--split", "V9"]),
        ("train_bad_gpus", ["train", p, "--gpus", "first"]),
        ("train_missing_resume", ["train", "--resume", nope]),
        ("evaluate_missing_model", ["evaluate", "--model", nope + ".h5", "--project", p]),
        ("evaluate_bad_tiles", ["evaluate", "--model", nope + ".h5", "--project", p, "--tiles", "3-5"]),
        ("evaluate_bad_split", ["evaluate", "--model", str(_demo_model()), "--project", p, "--split", "V9"]),
        ("predict_missing_model", ["predict", "--model", nope + ".h5", "--project", p, "--out", nope]),
        ("predict_missing_input", ["predict", "--model", str(_demo_model()), "--out", nope, nope + ".tfrecords"]),
        ("predict_bad_tiles", ["predict", "--model", str(_demo_model()), "--project", p, "--tiles", "99:99",
                               "--out", nope]),
        ("info_missing_project", ["info", nope]),
        ("sample_bad_tiles", ["sample", nope, "--tiles", "99:99"]),
        ("demo_missing_project", ["demo", "--project", nope]),
        ("demo_bad_tile", ["demo", "--project", p, "--tile", "three"]),
        ("new_missing_aoi", ["new", nope + "_project", "--aoi", nope + ".shp"]),
        ("ingest_missing_project", ["ingest", nope, nope + "_source"]),
        ("map_missing_project", ["map", nope, "--model", str(_demo_model()), "--out", nope + "_map"]),
    ]


def _demo_model() -> Path:
    return ROOT / "ercnn_napari" / "resources" / "demo_baseline.ercnn.h5"


def timed(argv: list[str], env: dict[str, str]) -> tuple[float, int, str]:
    start = time.perf_counter()
    result = subprocess.run(argv, capture_output=True, text=True, env=env, cwd=ROOT, check=False)
    return time.perf_counter() - start, result.returncode, result.stderr


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=1, help="runs per case (median reported)")
    parser.add_argument("--no-tensorflow-reference", action="store_true", help="skip timing `import tensorflow`")
    args = parser.parse_args(argv)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])),
           "TF_CPP_MIN_LOG_LEVEL": "2"}
    cli = [sys.executable, "-m", "ercnn_napari"]
    floor = statistics.median(timed(cli + ["--version"], env)[0] for _ in range(max(1, args.repeat)))
    print(f"reference: `ercnn-napari --version` {floor:.2f} s")
    tf_s = float("nan")
    if not args.no_tensorflow_reference:
        tf_s = timed([sys.executable, "-c", "import tensorflow"], env)[0]
        print(f"reference: `import tensorflow`       {tf_s:.2f} s")
    worst, failures = 0.0, []
    with tempfile.TemporaryDirectory() as tmp:
        for name, case in cases(Path(tmp)):
            runs = [timed(cli + case, env) for _ in range(max(1, args.repeat))]
            seconds = statistics.median(r[0] for r in runs)
            _, code, stderr = runs[-1]
            last = (stderr.strip().splitlines() or [""])[-1]
            ok = code == 2 and last.startswith("ercnn-napari: error:")
            if not ok:
                failures.append(name)
            worst = max(worst, seconds)
            print(f"{name:26s} {seconds:6.2f} s  x{seconds / floor:5.2f}  rc={code}  {last[:110]}")
    print(f"cases={len(cases(Path('.')))} failures={len(failures)} max_error_s={worst:.2f} "
          f"reference_s={floor:.2f} max_ratio={worst / floor:.2f} import_tensorflow_s={tf_s:.2f} "
          f"goal_s={GOAL_S} goal_met={worst < GOAL_S and not failures}")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
