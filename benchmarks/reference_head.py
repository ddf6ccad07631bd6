"""Does the head learn more when it compares each window with the period's first window?

The measurement that chose the quick preset's head (docs/training.md, "A head that compares
with the first window"; in the product as ``train --reference --head-start fresh``, the quick
preset's default with ``--loss-border 0``). The quick preset used to train the head on each
window's frozen features alone, then take the maximum over the windows. A 6-month window says little about a
change that the index baseline sees by comparing the first year with the last. This script keeps
everything else as the quick preset has it and changes only what the head reads:

- ``window``: the features of window k (36 channels), as the quick preset did;
- ``window+diff``: the features of window k and their difference to window 0's (72 channels);
- ``window+diff-published``: the same input, every layer starting as the published head (zeros
  on the difference's part of the first kernel), so that the model starts as the published network.

All heads have the same layers (two 3x3 conv blocks of 8 filters and the 1x1 sigmoid). The first
kernel starts as the published head's on the window's channels and as zeros on the difference's;
in ``window`` and ``window+diff`` the other layers start from Keras' initialisers, identically
seeded, so that the only difference between those two rows is the input. Training: Adam 1e-3,
batch 8, rotations and flips (codes 0-7), the Tanimoto loss with complement on the maximum over
the windows, 40 epochs, the last one kept (the quick preset's recipe). Scores: held-out tiles of the answer key, inner
30x30, F1 at the cut fitted on the training tiles, beside the index baseline's row of the same
tiles.

Input: a ``benchmarks/finetune_quality.py`` work folder (``--work``), whose quick runs hold the
batch-norm statistics re-estimated on each seed's windows (``seedN_<tag>/model.ercnn.h5``), and its
published-weights reports (``seedN_published.json``) with the index rows. The backbone's features
of every tile are cached in ``seedN_<tag>_features.npz``. About 2 min per seed for the features and
1-3 min per head on two cores. The last line::

    window_f1=<mean> reference_f1=<mean> reference_published_f1=<mean> index_f1=<mean>
    ratio=<variant / index> ratio_of=<variant> seeds=<n>

``ratio`` is that of ``window+diff`` when it ran (the head the five-seed measurement recommends,
docs/training.md), else of the first variant given.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
from finetune_quality import rows_of
from reference_data import published_weights

#: the quick preset's head recipe
EPOCHS, BATCH, LEARNING_RATE, CODES, WINDOWS = 40, 8, 1e-3, tuple(range(8)), 10
#: variant -> (what the head reads, how it starts); see build_head
VARIANTS = {"window": ("window", "keras"), "window+diff": ("window+diff", "keras"),
            "window+diff-published": ("window+diff", "published")}
#: the last line's key of each variant
KEYS = {"window": "window", "window+diff": "reference", "window+diff-published": "reference_published"}


def features(work: Path, seed: int, tag: str) -> tuple[dict, dict, dict]:
    """``(groups, features, labels)``: the adapted backbone's output per tile, cached on disk.

    groups: ``{"train": [...], "held": [...]}`` (validation tiles play no part: nothing is
    selected); labels: the training labels for training tiles, the answer key for held-out tiles.
    """
    cache = work / f"seed{seed}_{tag}_features.npz"
    if not cache.is_file():
        from ercnn_napari.core.answer_key import held_out_tiles, read_answer_key
        from ercnn_napari.core.project import Project
        from ercnn_napari.ml.data.observations import open_observations
        from ercnn_napari.ml.inference.evaluate import evenly_spaced, tile_windows
        from ercnn_napari.ml.model.weights import load_model
        from ercnn_napari.ml.training.frozen_backbone import split_model

        project = Project.open(work / f"seed{seed}")
        source = open_observations(project)
        model, config = load_model(work / f"seed{seed}_{tag}" / "model.ercnn.h5")
        backbone, _ = split_model(model)
        split, available = project.split("V1"), set(source.tiles())
        groups = {"train": [t for t in split.train if t in available],
                  "held": [t for t in held_out_tiles(project.root, [split]) if t in available]}
        arrays = {"groups": np.array(json.dumps({k: [list(t) for t in v] for k, v in groups.items()}))}
        for group, tiles in groups.items():
            for tile in tiles:
                table = source.window_table(tile)
                windows = tile_windows(source, tile, table, evenly_spaced(len(table), WINDOWS), config.time_steps)
                maps = [np.asarray(backbone(windows[a:a + 5], training=False)) for a in range(0, len(windows), 5)]
                arrays[f"f_{tile[0]}_{tile[1]}"] = np.concatenate(maps).astype(np.float32)
                label = read_answer_key(project.root, tile) if group == "held" else project.labels.read(tile) > 0
                arrays[f"y_{tile[0]}_{tile[1]}"] = np.asarray(label, np.float32)
        np.savez(cache, **arrays)
    data = np.load(cache)
    groups = {k: [tuple(t) for t in json.loads(str(data["groups"]))[k]] for k in ("train", "held")}
    tiles = [t for v in groups.values() for t in v]
    return groups, {t: data[f"f_{t[0]}_{t[1]}"] for t in tiles}, {t: data[f"y_{t[0]}_{t[1]}"] for t in tiles}


def published_head_weights() -> list[list[np.ndarray]]:
    """The published head's weights per layer (conv block 1, conv block 2, output), for :func:`build_head`."""
    from ercnn_napari.ml.model.weights import load_model

    published, _ = load_model(published_weights())
    return [[w.numpy() for w in published.get_layer(n).weights] for n in ("head_conv_1", "head_conv_2", "head_out")]


def add_run_arguments(parser: argparse.ArgumentParser) -> None:
    """``--work``, ``--seeds``, ``--tags``, ``--init-seeds``: what the scripts that reuse this one's cache take."""
    parser.add_argument("--work", default="/tmp/ercnn_finetune_quality", help="a finetune_quality.py work folder")
    parser.add_argument("--seeds", default="7,8", help="sample seeds run there, comma-separated")
    parser.add_argument("--tags", default="quick", help="each seed's quick run tag (one, or one per seed)")
    parser.add_argument("--init-seeds", default="123,1", help="head initialisation/order seeds, averaged")


def seeds_and_tags(seeds: str, tags: str) -> list[tuple[int, str]]:
    """``--seeds 7,8 --tags quick`` (one tag for every seed) or one tag per seed -> [(seed, tag), ...]."""
    numbers = [int(s) for s in seeds.split(",")]
    names = tags.split(",")
    names = names * len(numbers) if len(names) == 1 else names
    if len(names) != len(numbers):
        raise SystemExit("give one tag, or one per seed")
    return list(zip(numbers, names, strict=True))


def head_input(feats: np.ndarray, variant: str) -> np.ndarray:
    """What the head reads per window: [K, H, W, 36] or, with the difference, [K, H, W, 72]."""
    if variant == "window":
        return feats
    return np.concatenate([feats, feats - feats[:1]], axis=-1)


def build_head(channels: int, published: list[list[np.ndarray]], seed: int, start: str):
    """The head: two 3x3 conv blocks (8 filters, batch norm, ReLU) and the 1x1 sigmoid.

    ``published``: the published head's weights per layer (conv block 1, conv block 2, output).
    ``start="keras"``: the first kernel is the published one on the window's channels, zeros on the
    difference's; the other layers start from Keras' initialisers (seeded). ``start="published"``:
    every layer starts as the published head, the difference's kernel at zero, so that the model
    starts exactly as the published network.
    """
    import keras

    keras.utils.set_random_seed(seed)
    inputs = keras.Input((None, None, channels))
    x = inputs
    blocks = []
    for _ in range(2):
        conv, norm = keras.layers.Conv2D(8, 3, padding="same"), keras.layers.BatchNormalization()
        blocks.append((conv, norm))
        x = keras.layers.ReLU()(norm(conv(x)))
    out = keras.layers.Conv2D(1, 1, activation="sigmoid")
    head = keras.Model(inputs, keras.ops.squeeze(out(x), -1))
    kernel, bias, *norm_weights = published[0]
    first = np.zeros((3, 3, channels, kernel.shape[-1]), np.float32)
    first[:, :, :kernel.shape[2]] = kernel
    blocks[0][0].set_weights([first, bias])
    if start == "published":
        blocks[0][1].set_weights(norm_weights)
        blocks[1][0].set_weights(published[1][:2])
        blocks[1][1].set_weights(published[1][2:])
        out.set_weights(published[2])
    return head


def train_head(head, inputs: dict, labels: dict, tiles: list, seed: int) -> None:
    import tensorflow as tf

    from ercnn_napari.ml.training.aggregation import max_over_windows
    from ercnn_napari.ml.training.augment import augment
    from ercnn_napari.ml.training.loss import tanimoto_complement_loss

    optimizer = tf.keras.optimizers.Adam(LEARNING_RATE)
    variables = head.trainable_variables

    @tf.function(reduce_retracing=True)
    def step(x: tf.Tensor, y: tf.Tensor) -> tf.Tensor:
        with tf.GradientTape() as tape:
            per_window = tf.stack([head(x[:, k], training=True) for k in range(x.shape[1])], axis=1)
            loss = tanimoto_complement_loss(y, max_over_windows(per_window))
        optimizer.apply_gradients(zip(tape.gradient(loss, variables), variables, strict=True))
        return loss

    rng = np.random.default_rng(seed)
    samples = [(t, c) for t in tiles for c in CODES]
    for _ in range(EPOCHS):
        order = rng.permutation(len(samples))
        for start in range(0, len(order) - BATCH + 1, BATCH):
            pairs = [augment(inputs[samples[i][0]], labels[samples[i][0]], samples[i][1]) for i in order[start:start + BATCH]]
            step(tf.stack([p[0] for p in pairs]), tf.stack([p[1] for p in pairs]))


def score(head, inputs: dict, labels: dict, groups: dict) -> dict:
    from ercnn_napari.core.heldout import fit_threshold, map_report

    maps = {t: np.asarray(head(inputs[t], training=False)).max(axis=0) for t in groups["train"] + groups["held"]}
    fitted = fit_threshold({t: maps[t] for t in groups["train"]}, {t: labels[t] for t in groups["train"]}, 1)
    inner = map_report({t: maps[t] for t in groups["held"]}, {t: labels[t] for t in groups["held"]},
                       fitted_threshold=fitted["threshold"], border=1)["inner"]
    return {"f1": inner["at_fitted"]["f1"], "auc": inner["auc"], "ap": inner["ap"], "cut": fitted["threshold"],
            "train_f1": fitted["train_f1"]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--work", default="/tmp/ercnn_finetune_quality", help="a finetune_quality.py work folder")
    parser.add_argument("--seeds", default="7,8,9", help="sample seeds run there, comma-separated")
    parser.add_argument("--tag", default="quick", help="the quick runs' tag there (their adapted backbone is used)")
    parser.add_argument("--variants", default=",".join(VARIANTS), help="which heads, comma-separated")
    parser.add_argument("--init-seeds", default="123,1", help="head initialisation/order seeds, averaged")
    args = parser.parse_args()
    head_weights = published_head_weights()
    variants = [v for v in args.variants.split(",") if v]
    unknown = sorted(set(variants) - set(VARIANTS))
    if unknown:
        raise SystemExit(f"unknown variants {unknown}; choose from {', '.join(VARIANTS)}")
    work, results = Path(args.work), []
    for seed in [int(s) for s in args.seeds.split(",")]:
        started = time.time()
        groups, feats, labels = features(work, seed, args.tag)
        index_row = rows_of(json.loads((work / f"seed{seed}_published.json").read_text()))["index (best on training)"]
        quick_report = work / f"seed{seed}_{args.tag}.json"   # finetune_quality.py's report of the quick run
        quick_row = rows_of(json.loads(quick_report.read_text()))["network"] if quick_report.is_file() else None
        row = {"seed": seed, "index": index_row["f1_at_fitted"] or 0.0,
               "quick": None if quick_row is None else quick_row["f1_at_fitted"] or 0.0}
        inputs_of = {reads: {t: head_input(f, reads) for t, f in feats.items()}
                     for reads in {VARIANTS[v][0] for v in variants}}
        for variant in variants:
            reads, start = VARIANTS[variant]
            inputs = inputs_of[reads]
            runs = []
            for init in [int(s) for s in args.init_seeds.split(",")]:
                head = build_head(next(iter(inputs.values())).shape[-1], head_weights, init, start)
                train_head(head, inputs, labels, groups["train"], init)
                runs.append(score(head, inputs, labels, groups))
            row[variant] = {k: float(np.mean([r[k] for r in runs])) for k in runs[0]}
            row[variant]["f1_each"] = [round(r["f1"], 3) for r in runs]
        results.append(row)
        print(f"seed {seed} ({len(groups['held'])} held-out tiles, {time.time() - started:.0f} s): "
              f"index ({index_row['scorer']}) F1 {row['index']:.3f}; the quick run itself (its own head) "
              + ("-" if row["quick"] is None else f"F1 {row['quick']:.3f}"), flush=True)
        for variant in variants:
            r = row[variant]
            print(f"  {variant:26s} F1 {r['f1']:.3f} {r['f1_each']}  AUC {r['auc']:.3f}  AP {r['ap']:.3f}  "
                  f"training F1 {r['train_f1']:.3f}", flush=True)
    mean = lambda key: float(np.mean([r[key]["f1"] if key != "index" else r[key] for r in results]))  # noqa: E731
    index = mean("index")
    headline = "window+diff" if "window+diff" in variants else variants[0]
    print(" ".join(f"{KEYS[v]}_f1={mean(v):.3f}" for v in variants)
          + f" index_f1={index:.3f} ratio={mean(headline) / index if index else float('nan'):.3f} ratio_of={KEYS[headline]}"
          f" seeds={len(results)}")


if __name__ == "__main__":
    main()
