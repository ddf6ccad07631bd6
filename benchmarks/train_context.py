"""``train --context``: held-out scores and tile-border false positives with and without context.

Each case is a model and the halo it is predicted with (``NAME=MODEL@HALO``), e.g. a run trained
without context predicted alone (the paper) and with the map's halo, and a run trained with
``--context 8`` predicted with its halo. Every case predicts the same evenly spaced stride-5
windows of the split's held-out tiles (answer-key tiles in no training or validation list, with
observations) through the map's path (:class:`ercnn_napari.ml.data.halo.HaloReader` + shared steps,
the tile's own corner deciding the "quirk" mask), takes the per-pixel maximum and scores it
against the answer key with the held-out report's code (:func:`ercnn_napari.core.heldout.map_report`):
AUC and F1 at 0.5 over the whole tile, and the false-positive rate at 0.5 of unchanged pixels on
each tile's 1-pixel ring and inside it (the seam measure of ``benchmarks/seams.py``).

    python benchmarks/train_context.py PROJECT --split V1 --case paper=runs/c0@0 \\
        --case paper_halo8=runs/c0@8 --case context8=runs/c8@8 [--windows 4] [--tiles y:x,...]

Last line: ``f1_without=… f1_with=… auc_without=… auc_with=… ring_fp_without=… ring_fp_with=…
inside_fp_without=… inside_fp_with=…`` for the first and the last case.
"""

from __future__ import annotations

import argparse
import sys
import time

import numpy as np


def parse_case(text: str) -> tuple[str, str, int]:
    name, _, rest = text.partition("=")
    model, _, halo = rest.rpartition("@")
    if not name or not model or not halo.isdigit():
        raise argparse.ArgumentTypeError(f"a case is NAME=MODEL@HALO, not {text!r}")
    return name, model, int(halo)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("project")
    parser.add_argument("--split", default="V1")
    parser.add_argument("--case", action="append", type=parse_case, required=True)
    parser.add_argument("--windows", type=int, default=4, help="evenly spaced stride-5 windows per tile")
    parser.add_argument("--tiles", help="y:x,... a subset of the held-out tiles (default: all of them)")
    args = parser.parse_args(argv)

    from ercnn_napari.core.answer_key import held_out_tiles, read_answer_key
    from ercnn_napari.core.heldout import map_report, region_report
    from ercnn_napari.core.metrics import Confusion, scores
    from ercnn_napari.core.project import Project
    from ercnn_napari.core.tiles import format_tile_id, parse_tile_id
    from ercnn_napari.ml.data.halo import HaloReader
    from ercnn_napari.ml.data.observations import open_observations
    from ercnn_napari.ml.inference.evaluate import evenly_spaced
    from ercnn_napari.ml.model.shared_steps import SharedStepModel, predict_series
    from ercnn_napari.ml.model.weights import load_model

    project = Project.open(args.project)
    source = open_observations(project)
    available = set(source.tiles())
    tiles = [t for t in held_out_tiles(project.root, [project.split(args.split)]) if t in available]
    if args.tiles:
        wanted = {parse_tile_id(t.strip()) for t in args.tiles.split(",") if t.strip()}
        if not wanted <= set(tiles):
            parser.error(f"not held-out tiles with observations: {sorted(wanted - set(tiles))}")
        tiles = [t for t in tiles if t in wanted]
    truth = {t: read_answer_key(project.root, t) for t in tiles}
    print(f"{len(tiles)} held-out tiles ({', '.join(map(format_tile_id, tiles))}), {args.windows} windows each "
          f"(stride 5), threshold 0.5; ring = each tile's 1-pixel ring, inside = its inner 30x30", flush=True)
    rows = {}
    for name, model_path, halo in args.case:
        started = time.perf_counter()
        model = SharedStepModel(load_model(model_path)[0])
        reader = HaloReader(source, halo, "reflect", cache_tiles=24)
        maps = {}
        for tile in tiles:
            full = source.window_table(tile)
            table = full.select(full.every(5))
            table = table.select(evenly_spaced(len(table), args.windows))
            block = reader.block(tile)
            probs = predict_series([model], block.series, table.start_index, table.n_obs, mask_region=block.centre,
                                   reference=(int(full.start_index[0]), int(full.n_obs[0])),
                                   )[:, block.centre[0], block.centre[1]]
            maps[tile] = probs.max(axis=0)
        report = map_report(maps, truth, fitted_threshold=float("nan"), border=1)
        ring, inner = report["ring"]["at_0_5"], report["inner"]["at_0_5"]
        whole = Confusion(**{k: ring[k] + inner[k] for k in ("tp", "fp", "fn", "tn")})
        s = np.concatenate([maps[t].ravel() for t in tiles])
        t = np.concatenate([(truth[t] > 0).ravel() for t in tiles])
        row = {"f1": scores(whole)["f1"], "auc": region_report(s, t, float("nan"))["auc"],
               "ring_fp": ring["fp"] / max(ring["fp"] + ring["tn"], 1),
               "inside_fp": inner["fp"] / max(inner["fp"] + inner["tn"], 1)}
        rows[name] = row
        print(f"{name:14s} (model {model_path}, halo {halo}): F1 {row['f1']:.3f}  AUC {row['auc']:.3f}  "
              f"ring FP {ring['fp']}/{ring['fp'] + ring['tn']} = {row['ring_fp']:.4f}  inside FP "
              f"{inner['fp']}/{inner['fp'] + inner['tn']} = {row['inside_fp']:.4f}  "
              f"({time.perf_counter() - started:.0f} s)", flush=True)
    first, last = rows[args.case[0][0]], rows[args.case[-1][0]]
    print(" ".join(f"{k}_without={first[k]:.4f} {k}_with={last[k]:.4f}" for k in ("f1", "auc", "ring_fp", "inside_fp")))
    return 0


if __name__ == "__main__":
    sys.exit(main())
