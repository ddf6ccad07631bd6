"""Does fine-tuning earn its keep? Held-out F1/AUC of the published weights, the quick fine-tune and
the index-difference baseline, on sample AoIs generated with seeds of our own.

For each seed: the sample generator writes a project (answer key included) with observations for
a subset of tiles (``--train-tiles`` of split V1's training tiles, its validation tiles, and
``--held-tiles`` tiles in no training or validation list, half of them changed); split V1 is
narrowed to the tiles with observations (dropped training tiles become held-out: nothing saw
them). Then, each as its own CLI process, exactly as an analyst would run them:

1. ``ercnn-napari train PROJECT --split V1 --preset quick --baseline PUBLISHED`` (+ ``--quick-args``);
2. ``ercnn-napari evaluate --set heldout`` of the published weights and of the fine-tuned model
   (AUC, AP, F1 at 0.5 and at the threshold fitted on the training tiles, and the index baseline
   fitted on the same training tiles, scored on the same held-out tiles).

Prints one table row per seed and scorer; the last line is exactly::

    finetuned_f1=<mean over seeds> index_f1=<best-on-training index, mean> ratio=<finetuned/index> ...

with ``finetuned_ring_fp``, the share of the held-out tiles' 1-pixel ring the fine-tuned model
flags wrongly at 0.5 (mean over seeds), among them.

F1 is the inner 30x30, at the threshold fitted on training tiles. Published weights are found in
``$ERCNN_PUBLISHED_WEIGHTS`` or ``$ERCNN_SHARED_DIR/models``. A run takes ~10-20 CPU minutes per
seed on two cores, mostly generating observations (kept in ``--work`` for the next run).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
from reference_data import published_weights


def prepare(seed: int, dest: Path, n_train: int, n_held: int) -> None:
    """Generate the sample for ``seed`` with observations for the chosen tiles; narrow split V1."""
    from ercnn_napari.core.project import Project
    from ercnn_napari.core.splits import Split
    from ercnn_napari.sample.prepare import _add_observations, generate_sample, read_spec

    if not (dest / "answer_key" / "sample.json").is_file():
        generate_sample(dest, seed=seed, with_observations=False)
    project = Project.open(dest)
    chosen = dest / "benchmark_tiles.json"
    if chosen.is_file():
        # prepared before: the split is narrowed already, so choosing again would see other tiles as
        # held out and add their observations (a different, incomparable held-out set)
        tiles = [tuple(t) for t in json.loads(chosen.read_text())["tiles"]]
        _add_observations(dest, read_spec(dest), None, tiles, 2, None)
        return
    splits = project.splits()
    v1 = splits["V1"]
    seen = set()
    for split in splits.values():
        seen |= set(split.train) | set(split.val)
    changed = lambda t: bool(np.load(dest / "answer_key" / f"{t[0]}_{t[1]}.npy").any())  # noqa: E731
    rng = np.random.default_rng(seed)
    held = [t for t in project.grid.tiles() if t not in seen]
    held = [held[i] for i in rng.permutation(len(held))]
    held_changed = [t for t in held if changed(t)][:(n_held + 1) // 2]
    held_quiet = [t for t in held if not changed(t)][:n_held - len(held_changed)]
    train = [v1.train[i] for i in rng.permutation(len(v1.train))][:n_train]
    tiles = sorted(set(train) | set(held_changed) | set(held_quiet) | set(v1.val))
    _add_observations(dest, read_spec(dest), None, tiles, 2, None)
    with_obs = set(project.tiles_with_observations())
    narrowed = Split("V1", sorted(t for t in v1.train if t in with_obs), sorted(t for t in v1.val if t in with_obs),
                     sorted(t for t in v1.test if t in with_obs), [])
    for name in list(splits):
        if name != "V1":
            import shutil

            shutil.rmtree(project.training_dir / name, ignore_errors=True)
    project.write_splits({"V1": narrowed})
    chosen.write_text(json.dumps({"tiles": [list(t) for t in tiles]}))   # last: a rerun finds it all done


def cli(*args: str) -> None:
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2")
    result = subprocess.run([sys.executable, "-m", "ercnn_napari", *args], capture_output=True, text=True, env=env)
    if result.returncode != 0:
        raise SystemExit(f"ercnn-napari {' '.join(args)} failed:\n{result.stderr[-3000:]}")


def rows_of(report: dict) -> dict[str, dict]:
    rows = {}
    for row in report["table"]:
        if row["scorer"].startswith("network"):
            rows["network"] = row
        elif "best on training" in row["scorer"]:
            rows["index (best on training)"] = row
        if row["scorer"].startswith("index"):
            rows[row["scorer"].split()[1]] = row
    return rows


def ring_false_positives(report: dict) -> tuple[int, int]:
    """(false positives at 0.5, pixels) on the outer 1-pixel ring of the held-out tiles, first fold:
    a head whose ring is never trained can light it up while the inner scores stay good."""
    fold = next(iter(report["folds"].values()))["network"]["ring"]
    return int(fold["at_0_5"]["fp"]), int(fold["pixels"])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", default="7,8", help="sample seeds, comma-separated (each its own AoI)")
    parser.add_argument("--work", default="/tmp/ercnn_finetune_quality")
    parser.add_argument("--train-tiles", type=int, default=8)
    parser.add_argument("--held-tiles", type=int, default=8)
    parser.add_argument("--windows", type=int, default=10)
    parser.add_argument("--quick-args", default="",
                        help="extra arguments for the quick fine-tune; write --quick-args='--adapt-bn' (with '=') "
                             "when they start with a dash")
    parser.add_argument("--tag", default="quick", help="name of this fine-tune variant (run folder suffix)")
    parser.add_argument("--reuse", action="store_true", help="reuse this variant's held-out report if present")
    args = parser.parse_args()
    weights = published_weights()
    work = Path(args.work)
    results = []
    for seed in [int(s) for s in args.seeds.split(",")]:
        project = work / f"seed{seed}"
        t0 = time.time()
        prepare(seed, project, args.train_tiles, args.held_tiles)
        t_prep = time.time() - t0
        run = work / f"seed{seed}_{args.tag}"
        if not (run / "model.ercnn.h5").is_file():
            cli("train", str(project), "--split", "V1", "--preset", "quick", "--baseline", str(weights),
                "--out", str(run), "--gpus", "none", "--progress", "none",
                *args.quick_args.split())
        t_train = time.time() - t0 - t_prep
        reports, rings = {}, {}
        for name, model in (("published", weights), ("quick", run)):
            out = work / f"seed{seed}_{args.tag if name == 'quick' else name}.json"
            if not (out.is_file() and (name == "published" or args.reuse)):
                cli("evaluate", "--model", str(model), "--project", str(project), "--set", "heldout",
                    "--split", "V1", "--windows", str(args.windows), "--gpus", "none", "--out", str(out),
                    "--progress", "none")
            report = json.loads(out.read_text())
            reports[name], rings[name] = rows_of(report), ring_false_positives(report)
        row = {"seed": seed, "published": reports["published"]["network"], "quick": reports["quick"]["network"],
               "index": reports["published"]["index (best on training)"],
               **{k: reports["published"][k] for k in ("ndvi", "ndbi", "sar")}, "ring": rings,
               "seconds": {"prepare": t_prep, "train": t_train, "total": time.time() - t0}}
        results.append(row)
        print(f"seed {seed}: {row['published']['tiles']} held-out tiles, {row['seconds']['total']:.0f} s "
              f"(fine-tune {row['seconds']['train'] / 60:.1f} min wall clock); held-out F1 at the training-fitted cut / AUC: "
              + ", ".join(f"{k} {row[k]['f1_at_fitted'] or 0.0:.3f} / {row[k]['auc'] or 0.0:.3f}"
                          for k in ("published", "quick", "index"))
              + "; ring false positives at 0.5: " + ", ".join(f"{k} {fp}/{n}" for k, (fp, n) in rings.items()))
        for scorer in ("published", "quick", "index", "ndvi", "ndbi", "sar"):
            r = row[scorer]
            fmt = lambda v: "  -  " if v is None else f"{v:.3f}"  # noqa: E731
            print(f"  {scorer:10s} AUC {fmt(r['auc'])}  AP {fmt(r['ap'])}  F1@0.5 {fmt(r['f1_at_0_5'])}  "
                  f"F1@fitted {fmt(r['f1_at_fitted'])}  ({r['scorer']})")
    mean = lambda key, field: float(np.mean([r[key][field] or 0.0 for r in results]))  # noqa: E731
    ring_share = float(np.mean([r["ring"]["quick"][0] / r["ring"]["quick"][1] for r in results]))
    fine, index, pub = mean("quick", "f1_at_fitted"), mean("index", "f1_at_fitted"), mean("published", "f1_at_fitted")
    print(f"finetuned_f1={fine:.3f} index_f1={index:.3f} ratio={fine / index if index else float('nan'):.3f} "
          f"published_f1={pub:.3f} finetuned_auc={mean('quick', 'auc'):.3f} index_auc={mean('index', 'auc'):.3f} "
          f"published_auc={mean('published', 'auc'):.3f} finetuned_ring_fp={ring_share:.3f} seeds={len(results)}")


if __name__ == "__main__":
    main()
