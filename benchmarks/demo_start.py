"""How long ``ercnn-napari demo`` takes, warm, from the command to its first painted frame.

Measured as the wall time of ``ercnn-napari demo --screenshot PNG`` (start, sample-cache check,
viewer, docks, project, render, write the picture, exit) against a reference measured in the same
run: a bare napari that opens a shown viewer, renders the same kind of screenshot and exits.
The ratio says what ercnn-napari adds on top of napari itself. ``--compare CHECKOUT`` also times
the demo of another checkout of this repository (e.g. the previous version) in the same run.

    xvfb-run -a python benchmarks/demo_start.py [--repeat 3] [--compare ../old-checkout]

"Warm" means the sample is already in the cache (``ERCNN_NAPARI_CACHE`` or ~/.cache/ercnn-napari):
the script refuses to start otherwise, since it would time the first run's generation instead.
Two times per process: the *first frame* (when the canvas first paints with the project's layers:
the process prints a ``first frame painted`` line, timed here as it arrives) and the whole run
(the reference pair, which loads in a thread after the first frame, is in the screenshot).
Last line: ``key=value`` pairs (``first_frame_s`` and the bare napari's ``napari_reference_first_frame_s``,
their difference and ratio, the load average, ``demo_s``, ``napari_reference_s``, ``ratio``, ``goal_met``
for a first frame < 10 s).
"""

from __future__ import annotations

import argparse
import math
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
GOAL_S = 10.0

#: demo's sample-cache step alone, timed inside a process: wall and CPU (its own and its children's)
CACHE_CHECK = r"""
import resource, sys, time
start = time.perf_counter()
from ercnn_napari.cli.cmd_demo import ensure_sample
ensure_sample(True)
wall = time.perf_counter() - start
cpu = sum(getattr(resource.getrusage(who), f) for who in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN)
          for f in ("ru_utime", "ru_stime"))
print(f"{wall:.3f} {cpu:.3f}")
"""

REFERENCE = r"""
import sys
import napari
from qtpy.QtWidgets import QApplication, QMainWindow
from ercnn_napari.napari_plugin.first_frame import watch_first_frame
viewer = napari.Viewer(title="reference", show=True)
viewer.window.resize(1500, 950)
watch_first_frame([w for w in QApplication.topLevelWidgets() if isinstance(w, QMainWindow)][0], "reference")
for _ in range(30):
    QApplication.processEvents()
viewer.window.screenshot(path=sys.argv[1], canvas_only=False, flash=False)
viewer.close()
"""


def timed(argv: list[str], env: dict[str, str], what: str) -> tuple[float, float, float, float]:
    # cwd is the checkout on PYTHONPATH: `python -m`/`-c` put the working folder first on sys.path
    """(wall s, CPU s of the process and its waited-for children, first-frame wall s, its CPU s; nan if none).

    The first frame is timed here, when the process's ``first frame painted`` line arrives on its
    stderr (``napari_plugin/first_frame.py``); a checkout that does not print it gets nan.
    """
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    first = first_cpu = float("nan")
    lines: list[str] = []
    with subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, env=env,
                          cwd=env["ERCNN_BENCH_CODE"]) as process:
        for line in process.stderr:
            lines.append(line)
            if "first frame painted" in line and math.isnan(first):
                first = time.perf_counter() - start
                first_cpu = float(line.rsplit("(CPU", 1)[1].split()[0]) if "(CPU" in line else first_cpu
        returncode = process.wait()
    seconds = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if returncode != 0:
        raise SystemExit(f"{what} failed (exit {returncode}):\n{''.join(lines)[-3000:]}")
    return seconds, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime), first, first_cpu


def env_for(code: Path) -> dict[str, str]:
    env = dict(os.environ, ERCNN_BENCH_CODE=str(code))
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(code), os.environ.get("PYTHONPATH")]))
    env.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    return env


def check_warm_cache() -> Path:
    sys.path.insert(0, str(ROOT))
    from ercnn_napari.sample import default_sample_dir
    from ercnn_napari.sample.prepare import missing_observation_tiles, read_spec

    root = default_sample_dir()
    try:
        missing = missing_observation_tiles(root, read_spec(root), None)
    except Exception as exc:  # noqa: BLE001 - any reason the cache is unusable ends the benchmark
        raise SystemExit(f"no warm sample cache at {root} ({exc}): run `ercnn-napari demo` once first") from None
    if missing:
        raise SystemExit(f"the sample cache at {root} lacks {len(missing)} tile(s): run `ercnn-napari demo` once first")
    return root


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3, help="timed runs of each (median reported; default 3)")
    parser.add_argument("--compare", metavar="CHECKOUT", help="also time the demo of this other checkout")
    args = parser.parse_args(argv)
    if not os.environ.get("DISPLAY") and not os.environ.get("WAYLAND_DISPLAY"):
        if shutil.which("xvfb-run") and not os.environ.get("ERCNN_BENCH_XVFB"):
            os.environ["ERCNN_BENCH_XVFB"] = "1"
            return subprocess.call(["xvfb-run", "-a", sys.executable, __file__, *(argv or sys.argv[1:])])
        raise SystemExit("no display: run under `xvfb-run -a`")
    cache = check_warm_cache()
    print(f"warm sample cache: {cache}")
    load_start = os.getloadavg()
    runs: dict[str, list[tuple[float, float, float, float]]] = {"reference": [], "demo": [], "compare": []}
    with tempfile.TemporaryDirectory() as tmp:
        png = str(Path(tmp) / "shot.png")
        commands = {
            "reference": ([sys.executable, "-c", REFERENCE, png], env_for(ROOT)),
            "demo": ([sys.executable, "-m", "ercnn_napari", "demo", "--screenshot", png], env_for(ROOT)),
        }
        if args.compare:
            commands["compare"] = ([sys.executable, "-m", "ercnn_napari", "demo", "--screenshot", png],
                                   env_for(Path(args.compare).resolve()))
        for name, (command, env) in commands.items():   # one untimed run each: disk caches, .pyc files
            timed(command, env, name)
        for _ in range(max(1, args.repeat)):             # interleaved, so load changes hit all alike
            for name, (command, env) in commands.items():
                runs[name].append(timed(command, env, name))
    checks = {"demo": ROOT, **({"compare": Path(args.compare).resolve()} if args.compare else {})}
    cache_check: dict[str, tuple[float, float]] = {}
    for name, code in checks.items():   # the step the change is about, without napari around it
        out = subprocess.run([sys.executable, "-c", CACHE_CHECK], capture_output=True, text=True, env=env_for(code),
                             cwd=code, check=True).stdout.split()
        cache_check[name] = (float(out[-2]), float(out[-1]))
        print(f"{name:9s} sample-cache check: wall {cache_check[name][0]:.2f} s  CPU {cache_check[name][1]:.2f} s "
              "(imports included)")
    wall = {name: statistics.median(v[0] for v in values) for name, values in runs.items() if values}
    cpu = {name: statistics.median(v[1] for v in values) for name, values in runs.items() if values}
    first = {name: statistics.median(v[2] for v in values) for name, values in runs.items() if values}
    first_cpu = {name: statistics.median(v[3] for v in values) for name, values in runs.items() if values}
    for name, values in runs.items():
        if values:
            print(f"{name:9s} median wall {wall[name]:6.2f} s  CPU {cpu[name]:6.2f} s  first frame "
                  f"{first[name]:6.2f} s (CPU {first_cpu[name]:.2f} s)  runs (wall/CPU/first/first CPU) "
                  + " ".join(f"{w:.1f}/{c:.1f}/{f:.1f}/{fc:.1f}" for w, c, f, fc in values))
    load_end = os.getloadavg()
    print(f"load average (1 min) at start {load_start[0]:.1f}, at end {load_end[0]:.1f}")
    demo, reference = wall["demo"], wall["reference"]
    line = (f"first_frame_s={first['demo']:.2f} napari_reference_first_frame_s={first['reference']:.2f} "
            f"first_frame_overhead_s={first['demo'] - first['reference']:.2f} "
            f"first_frame_ratio={first['demo'] / first['reference']:.2f} "
            f"first_frame_cpu_s={first_cpu['demo']:.2f} napari_reference_first_frame_cpu_s="
            f"{first_cpu['reference']:.2f} first_frame_cpu_ratio={first_cpu['demo'] / first_cpu['reference']:.2f} "
            f"load_1min={(load_start[0] + load_end[0]) / 2:.1f} ")
    line += (f"demo_s={demo:.2f} napari_reference_s={reference:.2f} ratio={demo / reference:.2f} "
            f"demo_cpu_s={cpu['demo']:.2f} napari_reference_cpu_s={cpu['reference']:.2f} "
            f"cpu_ratio={cpu['demo'] / cpu['reference']:.2f}")
    line += f" cache_check_s={cache_check['demo'][0]:.2f} cache_check_cpu_s={cache_check['demo'][1]:.2f}"
    if "compare" in wall:
        line += (f" compare_s={wall['compare']:.2f} compare_first_frame_s={first['compare']:.2f} "
                 f"compare_first_frame_cpu_s={first_cpu['compare']:.2f} "
                 f"compare_cpu_s={cpu['compare']:.2f} "
                 f"compare_cpu_ratio={cpu['compare'] / cpu['reference']:.2f} "
                 f"compare_cache_check_s={cache_check['compare'][0]:.2f} "
                 f"compare_cache_check_cpu_s={cache_check['compare'][1]:.2f}")
    print(line + f" repeat={max(1, args.repeat)} goal_s={GOAL_S:g} goal_met={first['demo'] < GOAL_S}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
