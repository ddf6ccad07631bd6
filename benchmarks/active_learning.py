"""A simulated labelling session: label tiles in ``suggest`` order versus random order.

On the synthetic Liège sample (its labels play the analyst), a pool of labelled tiles is treated as
unlabelled and revealed batch by batch. After each batch the model is fine-tuned on the tiles
revealed so far and scored on the same held-out test tiles for every order (pixel F1 of the
max-over-windows map, inner 30x30, at the threshold fitted on the revealed tiles). The suggested
order takes the next batch by MC-dropout uncertainty of the current fine-tune, spread over the AoI
(``core.suggestions.spread_ranking``, as ``ercnn-napari suggest``); the random order draws it with
a seeded generator (several seeds). Every order starts from the same random seed batch.

Why it is bounded, and what differs from running ``train``/``suggest``/``evaluate`` per round
(the first version did that: ~10 minutes a round on two cores, F1 0 at 2 and 4 tiles):

* the fine-tune is the quick preset's idea, the **head on frozen-backbone features** of the
  published weights (``ml.frozen_backbone``), trained for a fixed number of Adam steps with the
  authors' Tanimoto loss on the window maximum and rotations/flips, plus a **fitted threshold**
  (best F1 on the revealed tiles, ``core.ranking``), because at 0.5 a few-tile head often finds
  nothing. The backbone features of every (tile, window) are computed once, so a round costs
  seconds;
* the MC-dropout passes of the frozen backbone (recurrent dropout on, as ``suggest`` runs the
  network, batch normalisation in inference mode) are computed once per pool tile too; each round
  applies the current head to them. This is MC dropout of the fine-tuned model with the same
  dropout masks every round.

Printed: the tiles, the F1 of a head trained on the whole pool, the curve per round (suggested,
each random seed, random mean), then as the last line::

    tiles_to_reach_f1=<suggested> random=<mean over seeds> target_f1=<t> ... random_seeds=<a/b/..>

The target is ``--target-fraction`` (default 0.9) of the F1 that the whole pool reaches; a count is
the number of labelled tiles at which an order first reaches it, ``<pool>+`` if it never does.

Usage: ``python benchmarks/active_learning.py [--pool 12] [--batch 2] [--test 6] [--seeds 3]``.
Needs the published weights (``$ERCNN_PUBLISHED_WEIGHTS`` or ``$ERCNN_SHARED_DIR/models``).
The default run took 65 minutes on two cores shared with other jobs (load 10-28): 41 for the
observations and backbone passes (kept in ``--workdir`` for a rerun), 23 for 25 head fine-tunes.
"""

from __future__ import annotations

import argparse
import os
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from reference_data import published_weights


def choose_tiles(root: Path, n_pool: int, n_test: int, seed: int) -> tuple[list, list, dict]:
    """Pool and test tiles among the sample's labelled tiles; half the test tiles have change."""
    from ercnn_napari.core.project import Project

    project = Project.open(root)
    labelled = sorted(project.tiles_with_labels())
    random.Random(seed).shuffle(labelled)
    labels = {t: (project.labels.read(t) > 0).astype(np.float32) for t in labelled}
    changed = [t for t in labelled if labels[t].any()]
    calm = [t for t in labelled if not labels[t].any()]
    n_changed = min(len(changed) // 3, (n_test + 1) // 2)
    test = changed[:n_changed] + calm[:n_test - n_changed]
    pool = [t for t in labelled if t not in test][:n_pool]
    return pool, test, labels


class Cache:
    """Backbone features [W, H, W, C] per tile and MC-dropout features [P, W, H, W, C] per pool tile."""

    def __init__(self, weights: Path, root: Path, tiles: list, pool: list, windows: int, passes: int) -> None:
        import tensorflow as tf

        from ercnn_napari.core.project import Project
        from ercnn_napari.ml.data.observations import open_observations
        from ercnn_napari.ml.inference.evaluate import evenly_spaced, fit_time_steps
        from ercnn_napari.ml.inference.suggest import dropout_only
        from ercnn_napari.ml.model.weights import load_model
        from ercnn_napari.ml.training.frozen_backbone import split_model

        model, config = load_model(weights)
        backbone, self.head = split_model(model)
        dropout_only(backbone)  # MC passes: dropout on, batch norm as trained (and never updated)
        self.start_weights = [w.copy() for w in self.head.get_weights()]
        source = open_observations(Project.open(root))
        plain = tf.function(lambda x: backbone(x, training=False), reduce_retracing=True)
        dropout = tf.function(lambda x: backbone(x, training=True), reduce_retracing=True)
        self.features: dict = {}
        self.mc: dict = {}
        for done, tile in enumerate(tiles, start=1):
            table = source.window_table(tile)
            raw = np.asarray(source.windows(tile, evenly_spaced(len(table), windows)), np.float32)
            x = tf.constant(fit_time_steps(raw, config.time_steps))
            self.features[tile] = np.asarray(plain(x))
            if tile in pool:
                self.mc[tile] = np.stack([np.asarray(dropout(x)) for _ in range(passes)])
            print(f"  backbone {done}/{len(tiles)}", end="\r", flush=True)
        print()


def head_max_map(head, features: np.ndarray) -> np.ndarray:
    """Window-maximum change map [..., H, W] of the head on features [..., K, H, W, C]."""
    lead = features.shape[:-4]
    flat = features.reshape((-1,) + features.shape[-3:])
    maps = np.asarray(head(flat, training=False))
    return maps.reshape(lead + (features.shape[-4],) + maps.shape[-2:]).max(axis=-3)


def fine_tune(cache: Cache, labels: dict, tiles: list, steps: int, seed: int) -> float:
    """Train the head from the published weights on ``tiles``; returns the fitted threshold."""
    import keras
    import tensorflow as tf

    from ercnn_napari.core.ranking import best_f1_threshold
    from ercnn_napari.ml.training.loss import tanimoto_complement_loss

    head = cache.head
    head.set_weights(cache.start_weights)
    keras.utils.set_random_seed(seed)
    optimizer = keras.optimizers.Adam(0.001)
    feats = np.stack([cache.features[t] for t in tiles])          # [N, K, H, W, C]
    labs = np.stack([labels[t] for t in tiles])                    # [N, H, W]
    rng = np.random.default_rng(seed)
    batch = min(8, len(tiles))

    @tf.function(reduce_retracing=True)
    def step(x, y):
        with tf.GradientTape() as tape:
            n, k = tf.shape(x)[0], tf.shape(x)[1]
            maps = head(tf.reshape(x, tf.concat([[n * k], tf.shape(x)[2:]], 0)), training=True)
            maps = tf.reduce_max(tf.reshape(maps, tf.concat([[n, k], tf.shape(maps)[1:]], 0)), axis=1)
            loss = tanimoto_complement_loss(y, maps)
        grads = tape.gradient(loss, head.trainable_variables)
        optimizer.apply_gradients(zip(grads, head.trainable_variables, strict=True))
        return loss

    for _ in range(steps):
        pick = rng.choice(len(tiles), batch, replace=False)
        rot, flip = int(rng.integers(4)), bool(rng.integers(2))
        x = np.rot90(feats[pick], rot, axes=(2, 3))
        y = np.rot90(labs[pick], rot, axes=(1, 2))
        if flip:
            x, y = x[:, :, :, ::-1], y[:, :, ::-1]
        step(tf.constant(np.ascontiguousarray(x)), tf.constant(np.ascontiguousarray(y)))
    fitted = head_max_map(head, feats)[:, 1:-1, 1:-1]
    threshold, _f1 = best_f1_threshold(fitted, labs[:, 1:-1, 1:-1])
    return 0.5 if not np.isfinite(threshold) else threshold


def test_f1(cache: Cache, labels: dict, test: list, threshold: float) -> float:
    from ercnn_napari.core.metrics import score_maps

    maps = head_max_map(cache.head, np.stack([cache.features[t] for t in test]))
    f1 = score_maps(maps, np.stack([labels[t] for t in test]), threshold=threshold, border=1)["f1"]
    return 0.0 if f1 is None or not np.isfinite(f1) else float(f1)


def suggest(cache: Cache, rest: list, n: int, min_distance: int) -> list:
    """The ``n`` most MC-dropout-uncertain tiles of ``rest`` (as ``suggest`` scores and spreads them)."""
    from ercnn_napari.core.suggestions import spread_ranking

    scores = {}
    for tile in rest:
        passes = head_max_map(cache.head, cache.mc[tile])         # [P, H, W]
        scores[tile] = float(passes.std(axis=0)[1:-1, 1:-1].mean())
    return spread_ranking(scores, n, min_distance)


def session(cache: Cache, labels: dict, pool: list, test: list, seed_batch: list, batch: int, order: str,
            rng: random.Random | None, steps: int, min_distance: int) -> list[tuple[int, float]]:
    labelled = list(seed_batch)
    threshold = fine_tune(cache, labels, labelled, steps, seed=len(labelled))
    curve = [(len(labelled), test_f1(cache, labels, test, threshold))]
    while len(labelled) < len(pool):
        rest = [t for t in pool if t not in labelled]
        n = min(batch, len(rest))
        labelled += rng.sample(rest, n) if order == "random" else suggest(cache, rest, n, min_distance)
        threshold = fine_tune(cache, labels, labelled, steps, seed=len(labelled))
        curve.append((len(labelled), test_f1(cache, labels, test, threshold)))
        print(f"  {order:9s} {len(labelled):3d} tiles: F1 {curve[-1][1]:.3f}", flush=True)
    return curve


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pool", type=int, default=12)
    parser.add_argument("--batch", type=int, default=2)
    parser.add_argument("--test", type=int, default=6)
    parser.add_argument("--windows", type=int, default=6, help="evenly spaced windows per tile")
    parser.add_argument("--passes", type=int, default=4, help="MC-dropout passes per pool tile")
    parser.add_argument("--steps", type=int, default=150, help="Adam steps of each head fine-tune")
    parser.add_argument("--seeds", type=int, default=3, help="random orders (seeds)")
    parser.add_argument("--min-distance", type=int, default=2, help="as suggest --min-distance")
    parser.add_argument("--target-fraction", type=float, default=0.9)
    parser.add_argument("--seed", type=int, default=5)
    parser.add_argument("--workdir", help="keep the project here (default: a temporary folder)")
    args = parser.parse_args()
    work = Path(args.workdir or tempfile.mkdtemp(prefix="al_bench_"))
    work.mkdir(parents=True, exist_ok=True)
    root = work / "liege"
    started = time.time()
    weights = published_weights()

    from ercnn_napari.core.tiles import format_tile_id
    from ercnn_napari.sample import prepare_sample_project

    if not root.exists():
        prepare_sample_project(root, with_observations=False)
    pool, test, labels = choose_tiles(root, args.pool, args.test, args.seed)
    tiles = pool + test
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3")
    subprocess.run([sys.executable, "-m", "ercnn_napari", "sample", str(root), "--tiles",
                    ",".join(format_tile_id(t) for t in tiles), "--workers", "2", "--progress", "none"],
                   check=True, env=env)
    ids = lambda ts: " ".join(format_tile_id(t) for t in ts)  # noqa: E731
    print(f"pool ({len(pool)}): {ids(pool)}\ntest ({len(test)}, {sum(labels[t].any() for t in test)} with "
          f"change, {int(sum(labels[t][1:-1, 1:-1].sum() for t in test))} change pixels): {ids(test)}", flush=True)
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    cache = Cache(weights, root, tiles, pool, args.windows, args.passes)
    prepared = time.time() - started

    full = test_f1(cache, labels, test, fine_tune(cache, labels, pool, args.steps, seed=len(pool)))
    target = args.target_fraction * full
    seed_batch = random.Random(args.seed).sample(pool, args.batch)
    curves = {"suggested": session(cache, labels, pool, test, seed_batch, args.batch, "suggested", None,
                                   args.steps, args.min_distance)}
    for s in range(args.seeds):
        curves[f"random{s}"] = session(cache, labels, pool, test, seed_batch, args.batch, "random",
                                       random.Random(1000 + s), args.steps, args.min_distance)
    randoms = [k for k in curves if k.startswith("random")]
    mean = [(n, float(np.mean([curves[k][i][1] for k in randoms]))) for i, (n, _f) in
            enumerate(curves["suggested"])]

    print(f"\nwhole pool ({len(pool)} tiles): held-out F1 {full:.3f}; target {target:.3f} "
          f"({args.target_fraction:.0%} of it)")
    print("labelled | suggested | " + " | ".join(randoms) + " | random mean")
    for i, (n, fs) in enumerate(curves["suggested"]):
        print(f"{n:8d} | {fs:9.3f} | " + " | ".join(f"{curves[k][i][1]:7.3f}" for k in randoms)
              + f" | {mean[i][1]:11.3f}")

    def reach(curve: list[tuple[int, float]]) -> int | None:
        return next((n for n, f in curve if f >= target and full > 0), None)

    per_seed = [reach(curves[k]) for k in randoms]
    text = lambda r: f"{len(pool)}+" if r is None else str(r)  # noqa: E731
    random_mean = (f"{np.mean([len(pool) if r is None else r for r in per_seed]):.1f}"
                   + ("+" if None in per_seed else ""))
    print(f"({time.time() - started:.0f} s, {prepared:.0f} s of it observations and backbone passes; "
          f"work folder {work})")
    print(f"tiles_to_reach_f1={text(reach(curves['suggested']))} random={random_mean} target_f1={target:.3f} "
          f"pool_f1={full:.3f} pool={len(pool)} batch={args.batch} test={len(test)} "
          f"random_seeds={'/'.join(text(r) for r in per_seed)}")


if __name__ == "__main__":
    main()
