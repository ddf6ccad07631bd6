"""Does the head learn more when it reads each window's observation medians? (Tried, not adopted.)

The index difference ranks change from per-pixel medians of the observations; the quick preset's
head reads only the frozen branches' features. This script gives the head, per window, the
per-pixel medians of the window's observed values (padding and never-observed zeros left out, as
the index baseline's median does) as 19 channels: ``ln(S1 power) / 2`` (4), ``4 * S2 reflectance``
(13), NDVI and NDBI of the medians; and their change since the tile's first window. Heads:

- ``window+diff``: the quick preset's head (the features and their change), as in
  ``benchmarks/reference_head.py``;
- ``summary``: the medians and their change only (no network features at all);
- ``window+diff+summary``: both; the first kernel starts as the published head's on the
  window's features and as zeros elsewhere (what ``--head-start fresh`` would give);
- ``window+diff+summary-fresh``: both, the whole first kernel from Keras' seeded initialiser.

Everything else is ``benchmarks/reference_head.py``'s (same cached features, same recipe: Adam
1e-3, batch 8, codes 0-7, 40 epochs, last kept; F1 at the cut fitted on the training tiles, inner
30x30, beside the index baseline's row of the same tiles). Input: a ``benchmarks/finetune_quality.py``
work folder with a quick run per seed (``--tags``, one per seed, whose adapted backbone is used).
The medians of every tile are cached in ``seedN_obs_summary.npz``. About 1-1.5 min per head and
seed on two cores. The last line::

    window_diff_f1=<mean> summary_f1=<mean> ... index_f1=<mean> best=<variant> ratio=<best / index> seeds=<n>
"""

from __future__ import annotations

import argparse
import json
import time
import warnings
from pathlib import Path

import numpy as np
from finetune_quality import rows_of
from reference_head import (
    WINDOWS,
    add_run_arguments,
    build_head,
    features,
    published_head_weights,
    score,
    seeds_and_tags,
    train_head,
)

#: variant -> (the parts the head reads, whether the first kernel is all fresh)
VARIANTS = {"window+diff": (("f", "df"), False), "summary": (("s", "ds"), False),
            "window+diff+summary": (("f", "df", "s", "ds"), False),
            "window+diff+summary-fresh": (("f", "df", "s", "ds"), True)}
SAR, B04, B08, B11 = slice(0, 4), 7, 11, 15


def summarise(windows: np.ndarray) -> np.ndarray:
    """Windows [k, T, H, W, 17] -> [k, H, W, 19]: per-pixel medians of the observed values, scaled."""
    x = np.asarray(windows, np.float64)
    x = np.where((x == -1.0) | (x == 0.0), np.nan, x)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        median = np.nan_to_num(np.nanmedian(x, axis=1), nan=0.0)
    ndvi = (median[..., B08] - median[..., B04]) / np.maximum(median[..., B08] + median[..., B04], 1e-6)
    ndbi = (median[..., B11] - median[..., B08]) / np.maximum(median[..., B11] + median[..., B08], 1e-6)
    return np.concatenate([np.log(np.maximum(median[..., SAR], 1e-4)) / 2.0, median[..., 4:] * 4.0,
                           ndvi[..., None], ndbi[..., None]], -1).astype(np.float32)


def summaries(work: Path, seed: int, tiles: list) -> dict:
    """The medians of the 10 evenly spaced windows per tile (those whose features are cached)."""
    cache = work / f"seed{seed}_obs_summary.npz"
    if not cache.is_file():
        from ercnn_napari.core.project import Project
        from ercnn_napari.ml.data.observations import open_observations
        from ercnn_napari.ml.inference.evaluate import evenly_spaced, tile_windows

        source = open_observations(Project.open(work / f"seed{seed}"))
        arrays = {}
        for t in tiles:
            table = source.window_table(t)
            arrays[f"s_{t[0]}_{t[1]}"] = summarise(tile_windows(source, t, table, evenly_spaced(len(table), WINDOWS), 92))
        np.savez(cache, **arrays)
    data = np.load(cache)
    return {t: data[f"s_{t[0]}_{t[1]}"] for t in tiles}


def head_input(f: np.ndarray, s: np.ndarray, parts: tuple[str, ...]) -> np.ndarray:
    """The head's input per window from the features ``f`` and the medians ``s`` [K, H, W, C]."""
    named = {"f": f, "df": f - f[:1], "s": s, "ds": s - s[:1]}
    return np.concatenate([named[p] for p in parts], axis=-1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_run_arguments(parser)
    parser.add_argument("--variants", default=",".join(VARIANTS), help="which heads, comma-separated")
    args = parser.parse_args()
    import keras

    variants = [v for v in args.variants.split(",") if v]
    if set(variants) - set(VARIANTS):
        raise SystemExit(f"unknown variants {sorted(set(variants) - set(VARIANTS))}; choose from {', '.join(VARIANTS)}")
    runs_of = seeds_and_tags(args.seeds, args.tags)
    head_weights = published_head_weights()
    work, results = Path(args.work), []
    for seed, tag in runs_of:
        started = time.time()
        groups, feats, labels = features(work, seed, tag)
        medians = summaries(work, seed, list(feats))
        index_row = rows_of(json.loads((work / f"seed{seed}_published.json").read_text()))["index (best on training)"]
        row = {"seed": seed, "index": index_row["f1_at_fitted"] or 0.0, "index_auc": index_row["auc"]}
        for variant in variants:
            parts, fresh = VARIANTS[variant]
            inputs = {t: head_input(f[..., :36], medians[t], parts) for t, f in feats.items()}
            runs = []
            for init in [int(s) for s in args.init_seeds.split(",")]:
                head = build_head(next(iter(inputs.values())).shape[-1], head_weights, init, "keras")
                if fresh:
                    kernel = head.layers[1].kernel
                    kernel.assign(keras.initializers.GlorotUniform(seed=init)(kernel.shape))
                train_head(head, inputs, labels, groups["train"], init)
                runs.append(score(head, inputs, labels, groups))
            row[variant] = {k: float(np.mean([r[k] for r in runs])) for k in ("f1", "auc", "ap")}
            row[variant]["f1_each"] = [round(r["f1"], 3) for r in runs]
        results.append(row)
        print(f"seed {seed} ({len(groups['held'])} held-out tiles, {time.time() - started:.0f} s): index "
              f"({index_row['scorer']}) F1 {row['index']:.3f} AUC {row['index_auc']:.3f}", flush=True)
        for variant in variants:
            r = row[variant]
            print(f"  {variant:26s} F1 {r['f1']:.3f} {r['f1_each']}  AUC {r['auc']:.3f}  AP {r['ap']:.3f}", flush=True)
    means = {v: float(np.mean([r[v]["f1"] for r in results])) for v in variants}
    index = float(np.mean([r["index"] for r in results]))
    best = max(means, key=means.get)
    print(" ".join(f"{v.replace('+', '_').replace('-', '_')}_f1={m:.3f}" for v, m in means.items())
          + f" index_f1={index:.3f} best={best} ratio={means[best] / index if index else float('nan'):.3f}"
          f" seeds={len(results)}")


if __name__ == "__main__":
    main()
