"""Does the published network recognise the sample's dated changes? Held-out AUC before and after.

The published ERCNN-DRS weights were trained on real Sentinel data; a synthetic sample is only a
useful test bed if they respond to its changes. For each seed this script generates the sample
with two versions of the generator -- ``--before-ref`` (a git ref of this repository, exported
with ``git archive``; default ``main``) and the current checkout -- with observations for the same
``--held-tiles`` tiles that no split trains or validates on (half of them changed). The scene
(town, events, splits, answer key) does not depend on the observation synthesis, so both versions
are scored against the same answer key. The published weights then predict ``--windows`` evenly
spaced windows per tile; the per-pixel maximum over the windows is scored on the inner 30x30 as
``evaluate --set heldout`` does: pooled AUC, false positives and hits at 0.5, and the false-positive
rates on the tile ring (all 32x32) versus inside, whose ratio is the seam measure.

    python benchmarks/sample_recognition.py [--seeds 7,11] [--held-tiles 6] [--windows 10] [--work DIR]

Published weights: ``$ERCNN_PUBLISHED_WEIGHTS`` or ``$ERCNN_SHARED_DIR/models``; ``--model FILE``
scores another model (e.g. the demo baseline) on the same generated tiles. Last line::

    published_auc_before=<mean over seeds> published_auc_after=<mean> ... seeds=<n>
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tarfile
import time
from pathlib import Path

import numpy as np
from reference_data import published_weights

REPO = Path(__file__).resolve().parents[1]

#: Run inside a subprocess whose PYTHONPATH is the generator version: project + chosen observations.
_GENERATE = """
import sys, json
from pathlib import Path
import numpy as np
from ercnn_napari.sample.prepare import _add_observations, generate_sample, read_spec
from ercnn_napari.core.project import Project
from ercnn_napari.core.answer_key import held_out_tiles
dest, seed, n_held = Path(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
if not (dest / "answer_key" / "sample.json").is_file():
    generate_sample(dest, seed=seed, with_observations=False)
project = Project.open(dest)
held = held_out_tiles(dest, project.splits().values())
rng = np.random.default_rng(seed)
held = [held[i] for i in rng.permutation(len(held))]
changed = [t for t in held if np.load(dest / "answer_key" / f"{t[0]}_{t[1]}.npy").any()]
quiet = [t for t in held if t not in changed]
tiles = sorted(changed[:(n_held + 1) // 2] + quiet[:n_held // 2])
_add_observations(dest, read_spec(dest), None, tiles, 2, None)
import ercnn_napari
print(json.dumps({"tiles": [list(t) for t in tiles], "package": ercnn_napari.__file__}))
"""


def export_ref(ref: str, dest: Path) -> Path:
    """The ``ercnn_napari`` package of git ``ref`` unpacked under ``dest`` (once)."""
    if not (dest / "ercnn_napari" / "__init__.py").is_file():
        dest.mkdir(parents=True, exist_ok=True)
        archive = dest / "src.tar"
        subprocess.run(["git", "-C", str(REPO), "archive", "-o", str(archive), ref, "ercnn_napari"], check=True)
        with tarfile.open(archive) as tar:
            tar.extractall(dest, filter="data")
        archive.unlink()
    return dest


def generate(source_root: Path, dest: Path, seed: int, n_held: int) -> tuple[list[tuple[int, int]], float]:
    """Generate with the generator under ``source_root``; (tiles with observations, seconds)."""
    env = dict(os.environ, PYTHONPATH=str(source_root), TF_CPP_MIN_LOG_LEVEL="2")
    started = time.perf_counter()
    result = subprocess.run([sys.executable, "-c", _GENERATE, str(dest), str(seed), str(n_held)],
                            capture_output=True, text=True, env=env, cwd=source_root)  # -c puts the cwd first
    if result.returncode != 0:
        raise SystemExit(f"generation failed for {dest}:\n{result.stderr[-3000:]}")
    answer = json.loads(result.stdout.strip().splitlines()[-1])
    if not Path(answer["package"]).resolve().is_relative_to(source_root.resolve()):
        raise SystemExit(f"the generator ran from {answer['package']}, not from {source_root}")
    return [tuple(t) for t in answer["tiles"]], time.perf_counter() - started


def score(project_root: Path, tiles: list[tuple[int, int]], model, steps: int, windows: int) -> dict:
    """Pooled AUC / hits / false positives (inner 30x30) and ring vs inside false-positive rates."""
    from ercnn_napari.core.answer_key import read_answer_key
    from ercnn_napari.core.project import Project
    from ercnn_napari.core.ranking import roc_auc
    from ercnn_napari.ml.data.observations import open_observations
    from ercnn_napari.ml.inference.evaluate import predict_window_maps

    source = open_observations(Project.open(project_root))
    inner_scores, inner_truth = [], []
    ring_fp = ring_neg = in_fp = in_neg = 0
    for tile in tiles:
        maps = predict_window_maps(model, steps, source, tile, windows)[0].max(axis=0)
        truth = read_answer_key(project_root, tile) > 0
        inner_scores.append(maps[1:-1, 1:-1].ravel())
        inner_truth.append(truth[1:-1, 1:-1].ravel())
        ring = np.zeros(truth.shape, bool)
        ring[0, :] = ring[-1, :] = ring[:, 0] = ring[:, -1] = True
        flagged, quiet = maps >= 0.5, ~truth
        ring_fp += int((flagged & quiet & ring).sum())
        ring_neg += int((quiet & ring).sum())
        in_fp += int((flagged & quiet & ~ring).sum())
        in_neg += int((quiet & ~ring).sum())
    s, t = np.concatenate(inner_scores), np.concatenate(inner_truth)
    return {"auc": roc_auc(s, t), "changed": int(t.sum()), "hits": int(((s >= 0.5) & t).sum()),
            "false_pos": int(((s >= 0.5) & ~t).sum()), "mean_changed": float(s[t].mean()) if t.any() else None,
            "mean_unchanged": float(s[~t].mean()), "ring_fp_rate": ring_fp / max(ring_neg, 1),
            "inside_fp_rate": in_fp / max(in_neg, 1)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", default="7,11")
    parser.add_argument("--held-tiles", type=int, default=6)
    parser.add_argument("--windows", type=int, default=10)
    parser.add_argument("--before-ref", default="main", help="git ref of the 'before' generator ('' = skip)")
    parser.add_argument("--only", choices=("before", "after"), help="measure one version only")
    parser.add_argument("--model", help="score this model instead of the published weights (e.g. the demo baseline)")
    parser.add_argument("--work", default="/tmp/ercnn_sample_recognition")
    args = parser.parse_args()

    from ercnn_napari.ml.model.weights import load_model

    model, config = load_model(args.model or published_weights())
    work = Path(args.work)
    versions = {"after": REPO}
    if args.before_ref:
        versions = {"before": export_ref(args.before_ref, work / "before_src"), **versions}
    if args.only:
        versions = {args.only: versions[args.only]}
    results: dict[str, list[dict]] = {name: [] for name in versions}
    for seed in [int(s) for s in args.seeds.split(",")]:
        for name, root in versions.items():
            dest = work / f"{name}_seed{seed}"
            tiles, seconds = generate(root, dest, seed, args.held_tiles)
            row = score(dest, tiles, model, config.time_steps, args.windows)
            row.update(seed=seed, tiles=len(tiles), generate_s=seconds)
            results[name].append(row)
            print(f"seed {seed} {name:6s}: {len(tiles)} tiles, {row['changed']} changed px, AUC {row['auc']:.3f}, "
                  f"hits {row['hits']}, FP {row['false_pos']}, mean p changed {row['mean_changed']:.3f} / "
                  f"unchanged {row['mean_unchanged']:.3f}, ring FP {row['ring_fp_rate']:.4f} inside "
                  f"{row['inside_fp_rate']:.4f} (generated in {seconds:.0f} s)", flush=True)
    parts = []
    for name, rows in results.items():
        parts.append(f"{'model' if args.model else 'published'}_auc_{name}={np.mean([r['auc'] for r in rows]):.3f}")
    for name, rows in results.items():
        ring, inside = np.mean([r["ring_fp_rate"] for r in rows]), np.mean([r["inside_fp_rate"] for r in rows])
        parts.append(f"hits_{name}={sum(r['hits'] for r in rows)} false_pos_{name}={sum(r['false_pos'] for r in rows)} "
                     f"ring_fp_{name}={ring:.4f} inside_fp_{name}={inside:.4f}")
    print(" ".join(parts) + f" seeds={len(args.seeds.split(','))}")


if __name__ == "__main__":
    main()
