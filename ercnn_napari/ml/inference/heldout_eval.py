"""A model (or V1-V3's models) against the answer key on held-out tiles, beside the index baseline.

The evaluation a reviewer trusts (issue "fine-tuning that earns its keep"):

- tiles: every answer-key tile that no training or validation list names (labelled or not), so
  neither training nor model selection has seen them;
- each model's threshold is fitted on *its* split's training tiles (their labels), then applied
  to the held-out tiles beside 0.5; AUC and AP do not depend on any threshold;
- the index baseline is fitted on the same training tiles and scored on the same held-out tiles;
- with several models (one per split): pooled cross-validation (each model on the tiles held out
  from its split, counts summed at each model's own threshold) and the ensemble (mean map) on the
  tiles held out from every split, at the mean of the fitted thresholds;
- for every dated event in a held-out tile, whether the window of maximum mean probability over
  the event's pixels overlaps the event.

TensorFlow is used only through the model calls; every score comes from ``core.heldout``.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from ercnn_napari.core.answer_key import held_out_tiles, read_answer_key, read_events
from ercnn_napari.core.heldout import ensemble, event_timing, fit_threshold, map_report, pooled_counts
from ercnn_napari.core.tiles import TileId, format_tile_id
from ercnn_napari.ml.inference.evaluate import make_halo_reader, predict_window_maps

OnTile = Callable[[str, TileId], None]


def predict_tiles(model: Any, time_steps: int, source: Any, tiles: Sequence[TileId], windows: int,
                  batch_size: int = 8, on_tile: OnTile | None = None, what: str = "",
                  halo: int = 0) -> dict[TileId, tuple]:
    """``{tile: (window maps [k, H, W], starts, ends)}`` for the tiles; ``halo`` = the model's
    training context (``train --context``), so it is scored as it was trained and will be mapped."""
    out = {}
    reader = make_halo_reader(source, halo)
    for tile in tiles:
        out[tile] = predict_window_maps(model, time_steps, source, tile, windows, batch_size, reader)
        if on_tile is not None:
            on_tile(what, tile)
    return out


def _index_rows(project: Any, train: list[TileId], held: list[TileId], labels: dict, truth: dict,
                border: int, cache: dict) -> dict[str, Any]:
    """The index baseline of one fold; ``cache`` keeps tiles' index scores across folds."""
    from ercnn_napari.baseline.run import fit_indices, score_tiles

    missing = sorted((set(train) | set(held)) - set(cache))
    cache.update(score_tiles(project, missing))
    scores = cache
    fitted = fit_indices({t: scores[t] for t in train}, labels, border)
    rows = {name: map_report({t: scores[t][name] for t in held}, truth,
                             fitted_threshold=fitted["indices"][name]["threshold"], border=border)
            for name in fitted["indices"]}
    return {"best_on_training": fitted["best"], "indices": rows,
            "maps": {t: scores[t] for t in held}, "thresholds": fitted["indices"]}


def evaluate_heldout(project: Any, source: Any, models: Sequence[tuple[str, Any, int]], split_names: Sequence[str],
                     *, windows: int = 10, border: int = 1, batch_size: int = 8, index_baseline: bool = True,
                     on_tile: OnTile | None = None, contexts: Sequence[int] | None = None) -> dict[str, Any]:
    """The full report; ``models`` = [(name, keras model, time steps)], one per split name;
    ``contexts``: each model's training context halo (``train --context``; default 0)."""
    contexts = list(contexts) if contexts is not None else [0] * len(models)
    root = project.root
    available = set(source.tiles())
    splits = [project.split(name) for name in split_names]
    events = read_events(root)
    folds: dict[str, Any] = {}
    cv_maps: dict[Any, np.ndarray] = {}
    cv_truth: dict[Any, np.ndarray] = {}
    cv_index: dict[str, dict[Any, np.ndarray]] = {}
    network_maps = []
    thresholds = []
    index_cache: dict = {}
    for (name, model, steps), split, halo in zip(models, splits, contexts, strict=True):
        held_all = held_out_tiles(root, [split])
        held = [t for t in held_all if t in available]
        train = [t for t in split.train if t in available and project.labels.read(t) is not None]
        labels = {t: (project.labels.read(t) > 0).astype(np.float32) for t in train}
        truth = {t: read_answer_key(root, t) for t in held}
        train_pred = predict_tiles(model, steps, source, train, windows, batch_size, on_tile, f"{split.name} train",
                                   halo)
        fitted = fit_threshold({t: p[0].max(axis=0) for t, p in train_pred.items()}, labels, border)
        held_pred = predict_tiles(model, steps, source, held, windows, batch_size, on_tile, f"{split.name} held-out",
                                  halo)
        maps = {t: p[0].max(axis=0) for t, p in held_pred.items()}
        fold = {"model": name, "context": halo, "train_tiles": [format_tile_id(t) for t in train],
                "skipped_no_observations": [format_tile_id(t) for t in held_all if t not in available],
                "fitted": fitted,
                "network": map_report(maps, truth, fitted_threshold=fitted["threshold"], border=border),
                "events": event_timing({t: p[0] for t, p in held_pred.items()},
                                       {t: p[1] for t, p in held_pred.items()},
                                       {t: p[2] for t, p in held_pred.items()}, events, project.grid, truth)}
        if index_baseline:
            index = _index_rows(project, train, held, labels, truth, border, index_cache)
            fold["index_baseline"] = {k: v for k, v in index.items() if k != "maps"}
            for iname in index["thresholds"]:
                cv_index.setdefault(iname, {}).update({(split.name, t): m[iname] for t, m in index["maps"].items()})
        folds[split.name] = fold
        cv_maps.update({(split.name, t): m for t, m in maps.items()})
        cv_truth.update({(split.name, t): truth[t] for t in held})
        network_maps.append(maps)
        thresholds.append(fitted["threshold"])
    result: dict[str, Any] = {"mode": "held-out answer key", "border": border, "windows_per_tile": windows,
                              "folds": folds, "table": _table(folds)}
    if len(models) > 1:
        result["cross_validation"] = _pooled(folds, cv_maps, cv_truth, cv_index, border)
        common = ensemble(network_maps)
        mean_threshold = float(np.nanmean(thresholds)) if not all(math.isnan(t) for t in thresholds) else math.nan
        truth = {t: read_answer_key(root, t) for t in common}
        result["ensemble"] = map_report(common, truth, fitted_threshold=mean_threshold, border=border)
    return result


def _pooled(folds: dict, maps: dict, truth: dict, index: dict, border: int) -> dict[str, Any]:
    """Pooled CV: AUC/AP over all folds' pixels; F1 from counts summed at each fold's own threshold."""
    def pool(name_maps: dict, reports: list) -> dict[str, Any]:
        inner = map_report(name_maps, truth, fitted_threshold=math.nan, border=border)["inner"]
        return {"auc": inner.get("auc"), "ap": inner.get("ap"), "at_0_5": inner.get("at_0_5"),
                "at_fitted": pooled_counts(reports), "tiles": len(name_maps)}

    out = {"network": pool(maps, [f["network"] for f in folds.values()])}
    for iname, imaps in index.items():
        out[f"index_{iname}"] = pool(imaps, [f["index_baseline"]["indices"][iname] for f in folds.values()])
    return out


def _table(folds: dict) -> list[dict[str, Any]]:
    """One row per (fold, scorer): the before/after table's figures, index baseline included."""
    rows = []
    for split, fold in folds.items():
        scorers = [("network " + str(fold["model"]), fold["network"], True)]
        if "index_baseline" in fold:
            best = fold["index_baseline"]["best_on_training"]
            scorers += [(f"index {n}" + (" (best on training)" if n == best else ""), r, False)
                        for n, r in fold["index_baseline"]["indices"].items()]
        for label, report, probability in scorers:
            inner, ring = report["inner"], report["ring"]
            rows.append({"split": split, "scorer": label, "tiles": len(report["tiles"]),
                         "auc": inner.get("auc"), "ap": inner.get("ap"),
                         # 0.5 means nothing for an index difference: only its fitted cut counts
                         "f1_at_0_5": inner.get("at_0_5", {}).get("f1") if probability else None,
                         "f1_at_fitted": inner.get("at_fitted", {}).get("f1"),
                         "fitted_threshold": report["fitted_threshold"],
                         "ring_f1_at_fitted": ring.get("at_fitted", {}).get("f1") if ring.get("pixels") else None})
    return rows

