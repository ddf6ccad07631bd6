"""A simulated labelling session: label tiles in ``suggest`` order versus random order.

On the synthetic Liège sample (its labels play the analyst; its answer key is not used), a pool of
labelled tiles is "unlabelled" and revealed batch by batch. After each batch a quick fine-tune
(``train --preset quick``, frozen backbone, from the demo baseline) learns from the tiles revealed
so far, and ``evaluate`` scores it on held-out test tiles (max-over-windows map, F1 at 0.5). The
suggested order asks ``suggest`` (MC dropout of the latest fine-tune) for the next batch among the
unrevealed pool tiles; the random order draws them with a fixed seed. Both orders start from the
same random seed batch. Everything runs through the command line, as an analyst would.

Printed: a table of held-out F1 against labelled tiles for both orders, then, as the last line::

    tiles_to_reach_f1=<suggested> random=<random> target_f1=<t> pool=<n> batch=<b>

where the target is 90 % of the best F1 either order reached and a count is the number of labelled
tiles at which an order first reached it (``pool+`` if it never did).

Usage: ``python benchmarks/active_learning.py [--pool 8] [--batch 2] [--test 3] [--workdir DIR]``.
Small by default (2 cores): a dozen tiles of observations, five quick fine-tunes of a few epochs.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np


def cli(*args: str) -> subprocess.CompletedProcess:
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3")
    result = subprocess.run([sys.executable, "-m", "ercnn_napari", *args], capture_output=True, text=True, env=env)
    if result.returncode != 0:
        raise SystemExit(f"ercnn-napari {' '.join(args[:2])} failed:\n{result.stderr[-3000:]}")
    return result


def tiles_text(tiles: list[tuple[int, int]]) -> str:
    return ",".join(f"{y}:{x}" for y, x in tiles)


def choose_tiles(root: Path, n_pool: int, n_test: int, seed: int) -> tuple[list, list, tuple]:
    """Pool, test tiles and one validation tile, among the sample's labelled tiles (some with change)."""
    from ercnn_napari.core.project import Project

    project = Project.open(root)
    labelled = sorted(project.tiles_with_labels())
    rng = random.Random(seed)
    rng.shuffle(labelled)
    changed = [t for t in labelled if project.labels.read(t).any()]
    test = changed[:n_test]
    val = next(t for t in changed if t not in test)
    pool = [t for t in labelled if t not in test and t != val][:n_pool]
    return pool, test, val


def fine_tune_and_score(root: Path, name: str, train: list, val: tuple, test: list, out: Path,
                        epochs: int, windows: int) -> tuple[float, Path]:
    from ercnn_napari.core.project import Project
    from ercnn_napari.core.splits import Split

    project = Project.open(root)
    project.write_splits({name: Split(name, sorted(train), [val], sorted(test), [])})
    run = out / f"run_{name}"
    cli("train", str(root), "--split", name, "--preset", "quick", "--epochs", str(epochs),
        "--windows-per-sample", str(windows), "--eval-windows", str(windows), "--no-evaluate",
        "--out", str(run), "--gpus", "none", "--progress", "none")
    scores = out / f"scores_{name}.json"
    cli("evaluate", "--model", str(run), "--project", str(root), "--tiles", tiles_text(test),
        "--windows", str(windows), "--out", str(scores), "--gpus", "none", "--progress", "none")
    f1 = json.loads(scores.read_text())["overall"]["f1"]
    return (0.0 if f1 is None or not np.isfinite(f1) else float(f1)), run


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pool", type=int, default=8)
    parser.add_argument("--batch", type=int, default=2)
    parser.add_argument("--test", type=int, default=3)
    parser.add_argument("--epochs", type=int, default=8)
    parser.add_argument("--windows", type=int, default=6)
    parser.add_argument("--seed", type=int, default=5)
    parser.add_argument("--workdir", help="keep the project and runs here (default: a temporary folder)")
    args = parser.parse_args()
    work = Path(args.workdir or tempfile.mkdtemp(prefix="al_bench_"))
    work.mkdir(parents=True, exist_ok=True)
    root = work / "liege"
    started = time.time()

    from ercnn_napari.sample import prepare_sample_project

    if not root.exists():
        prepare_sample_project(root, with_observations=False)
    pool, test, val = choose_tiles(root, args.pool, args.test, args.seed)
    cli("sample", str(root), "--tiles", tiles_text(pool + test + [val]), "--workers", "2", "--progress", "none")
    print(f"pool {tiles_text(pool)} | val {tiles_text([val])} | test {tiles_text(test)}", flush=True)

    rng = random.Random(args.seed)
    seed_batch = rng.sample(pool, args.batch)
    curves: dict[str, list[tuple[int, float]]] = {}
    shared_f1, shared_run = fine_tune_and_score(root, "V10", seed_batch, val, test, work, args.epochs, args.windows)
    for order in ("suggested", "random"):
        labelled, run, f1 = list(seed_batch), shared_run, shared_f1
        curves[order] = [(len(labelled), f1)]
        order_rng = random.Random(args.seed + 1)
        step = 0
        while len(labelled) < len(pool):
            rest = [t for t in pool if t not in labelled]
            if order == "random":
                batch = order_rng.sample(rest, min(args.batch, len(rest)))
            else:
                result = cli("suggest", str(root), "--model", str(run), "--tiles", tiles_text(rest),
                             "--n", str(min(args.batch, len(rest))), "--passes", "3", "--windows", "2",
                             "--min-distance", "0", "--json", "--progress", "none", "--gpus", "none")
                batch = [tuple(int(v) for v in item["tile"].split(":")) for item in
                         json.loads(result.stdout)["suggested"]]
            labelled += batch
            step += 1
            f1, run = fine_tune_and_score(root, f"V{20 if order == 'suggested' else 30}{step}", labelled, val, test, work,
                                          args.epochs, args.windows)
            curves[order].append((len(labelled), f1))
            print(f"{order:9s} {len(labelled):2d} tiles: F1 {f1:.3f}", flush=True)

    best = max(f for curve in curves.values() for _n, f in curve)
    target = 0.9 * best
    print("\nlabelled tiles | F1 suggested | F1 random")
    for (n, fs), (_n, fr) in zip(curves["suggested"], curves["random"], strict=True):
        print(f"{n:14d} | {fs:12.3f} | {fr:9.3f}")

    def reach(curve: list[tuple[int, float]]) -> str:
        return next((str(n) for n, f in curve if f >= target and best > 0), f"{len(pool)}+")

    print(f"({time.time() - started:.0f} s, work folder {work})")
    print(f"tiles_to_reach_f1={reach(curves['suggested'])} random={reach(curves['random'])} "
          f"target_f1={target:.3f} pool={len(pool)} batch={args.batch}")


if __name__ == "__main__":
    main()
