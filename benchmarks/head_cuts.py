"""Would another threshold save the quick preset's head? Held-out F1 at cuts fitted on other tiles.

Where the index baseline beats the quick preset (docs/training.md, "Two more AoIs"), is the
head's ranking good and only its cut (fitted on the training tiles, which it has learnt) badly
placed? This script trains the quick preset's head exactly as ``benchmarks/reference_head.py``
does (``window+diff``: the frozen features and their change since the first window, same recipe,
two initialisations) and scores the held-out tiles (inner 30x30) at the cut fitted on:

- ``train``: the training tiles (what every report here uses);
- ``val``: the split's validation tiles, which the head never trained on;
- ``trainval``: both;
- ``half``: 0.5;
- ``oracle``: the held-out tiles themselves, the best F1 any cut could give (no real run can
  know it; it bounds what calibration could win).

Input: a ``benchmarks/finetune_quality.py`` work folder with a quick run per seed (``--tags``).
The validation tiles' features are computed here (about a minute per seed). The last line::

    train_f1=<mean> val_f1=<mean> trainval_f1=<mean> half_f1=<mean> oracle_f1=<mean> index_f1=<mean> seeds=<n>
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
from finetune_quality import rows_of
from reference_head import (
    WINDOWS,
    add_run_arguments,
    build_head,
    features,
    head_input,
    published_head_weights,
    seeds_and_tags,
    train_head,
)

CUTS = ("train", "val", "trainval", "half", "oracle")


def validation_tiles(work: Path, seed: int, tag: str) -> dict:
    """``{tile: (head input, training label)}`` for the split's validation tiles."""
    from ercnn_napari.core.project import Project
    from ercnn_napari.ml.data.observations import open_observations
    from ercnn_napari.ml.inference.evaluate import evenly_spaced, tile_windows
    from ercnn_napari.ml.model.weights import load_model
    from ercnn_napari.ml.training.frozen_backbone import split_model

    project = Project.open(work / f"seed{seed}")
    source = open_observations(project)
    backbone, _ = split_model(load_model(work / f"seed{seed}_{tag}" / "model.ercnn.h5")[0])
    out = {}
    for tile in [t for t in project.split("V1").val if t in set(source.tiles())]:
        table = source.window_table(tile)
        windows = tile_windows(source, tile, table, evenly_spaced(len(table), WINDOWS), 92)
        feats = np.concatenate([np.asarray(backbone(windows[a:a + 5], training=False)) for a in range(0, len(windows), 5)])
        out[tile] = (head_input(feats, "window+diff"), np.asarray(project.labels.read(tile) > 0, np.float32))
    return out


def f1_at_cuts(maps: dict, labels: dict, groups: dict) -> dict:
    """Held-out inner F1 at each cut of :data:`CUTS`."""
    from ercnn_napari.core.heldout import fit_threshold, map_report
    from ercnn_napari.core.ranking import best_f1_threshold

    def fitted(tiles: list) -> float:
        return fit_threshold({t: maps[t] for t in tiles}, {t: labels[t] for t in tiles}, 1)["threshold"]

    held = groups["held"]
    cuts = {"train": fitted(groups["train"]), "val": fitted(groups["val"]),
            "trainval": fitted(groups["train"] + groups["val"]), "half": 0.5}
    result = {name: map_report({t: maps[t] for t in held}, {t: labels[t] for t in held}, fitted_threshold=cut,
                               border=1)["inner"]["at_fitted"]["f1"] for name, cut in cuts.items()}
    scores = np.concatenate([maps[t][1:-1, 1:-1].ravel() for t in held])
    truth = np.concatenate([labels[t][1:-1, 1:-1].ravel() for t in held]) > 0.5
    result["oracle"] = best_f1_threshold(scores, truth)[1]
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_run_arguments(parser)
    args = parser.parse_args()
    runs_of = seeds_and_tags(args.seeds, args.tags)
    head_weights = published_head_weights()
    work, rows = Path(args.work), []
    for seed, tag in runs_of:
        groups, feats, labels = features(work, seed, tag)
        inputs = {t: head_input(f, "window+diff") for t, f in feats.items()}
        val = validation_tiles(work, seed, tag)
        groups = {**groups, "val": list(val)}
        inputs.update({t: x for t, (x, _) in val.items()})
        labels.update({t: y for t, (_, y) in val.items()})
        runs = []
        for init in [int(s) for s in args.init_seeds.split(",")]:
            head = build_head(next(iter(inputs.values())).shape[-1], head_weights, init, "keras")
            train_head(head, inputs, labels, groups["train"], init)
            maps = {t: np.asarray(head(x, training=False)).max(axis=0) for t, x in inputs.items()}
            runs.append(f1_at_cuts(maps, labels, groups))
        row = {cut: float(np.nanmean([r[cut] for r in runs])) for cut in CUTS}
        row["index"] = rows_of(json.loads((work / f"seed{seed}_published.json").read_text()))[
            "index (best on training)"]["f1_at_fitted"] or 0.0
        rows.append(row)
        print(f"seed {seed} ({len(groups['val'])} validation tiles): "
              + " ".join(f"{cut} {row[cut]:.3f}" for cut in CUTS) + f"  index {row['index']:.3f}", flush=True)
    print(" ".join(f"{key}_f1={np.mean([r[key] for r in rows]):.3f}" for key in (*CUTS, "index")) + f" seeds={len(rows)}")


if __name__ == "__main__":
    main()
