"""Tile-border seams: false positives on the tile ring versus inside, per context halo, on a project.

For each halo (0 = every tile alone, as the authors' Liège maps), every listed tile is predicted
with :class:`ercnn_napari.ml.data.halo.HaloReader` + the shared-step predictor, the per-pixel maximum
over the windows is thresholded (change if >= 0.5, as ``evaluate``), and compared with the answer
key (``answer_key/{y}_{x}.npy``, the synthetic sample's exact change masks; else the project's
labels). A false positive is an unchanged pixel flagged as change. Rates are pooled over tiles
for the 1-pixel ring of each tile and for the inner 30x30, and their ratio is the seam measure
(1 = no seam). The same windows are used for every halo, so only the context differs.

The AoI's outer edge: ring pixels on a side of a tile without a neighbouring tile (the AoI's
edge, or a tile without observations) are counted apart as the "outer" ring, for each ``--edges``
mode of the halo there (``reflect``: the image mirrored; ``none``: no halo on that side, the
network's zero padding as for a tile alone). List edge tiles in ``--tiles`` to compare them.

    python benchmarks/seams.py PROJECT --model baseline.hdf5 [--halos 0,4,8] [--edges reflect,none]
        [--windows 12] [--tiles y:x,...]

Last line: ``ring_fp_rate=… inside_fp_rate=… ratio=… outer_fp_rate=…`` for the last halo and edge
mode listed (the default, 8 and reflect); ``outer_fp_rate`` is ``nan`` without edge tiles.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np


def ring_mask(size: int) -> np.ndarray:
    ring = np.zeros((size, size), bool)
    ring[0, :] = ring[-1, :] = ring[:, 0] = ring[:, -1] = True
    return ring


def outer_ring(available: set, tile, size: int) -> np.ndarray:
    """Ring pixels on the sides of ``tile`` that have no neighbouring tile with observations."""
    outer = np.zeros((size, size), bool)
    for (dy, dx), side in (((-1, 0), (0, slice(None))), ((1, 0), (-1, slice(None))),
                           ((0, -1), (slice(None), 0)), ((0, 1), (slice(None), -1))):
        if (tile[0] + dy, tile[1] + dx) not in available:
            outer[side] = True
    return outer


def near_change(project_root: Path, tile, size: int, distance: int) -> np.ndarray:
    """Pixels of ``tile`` within ``distance`` pixels of a true change, in the tile or its neighbours.

    The network blurs a change over a few pixels; with a halo, a change just across the tile border
    now reaches the tile's ring. Rates "far from change" exclude that spill so that what remains is
    the border artefact itself.
    """
    from scipy.ndimage import binary_dilation

    mosaic = np.zeros((3 * size, 3 * size), bool)
    for dy in (-1, 0, 1):
        for dx in (-1, 0, 1):
            key = project_root / "answer_key" / f"{tile[0] + dy}_{tile[1] + dx}.npy"
            if key.is_file():
                mosaic[(dy + 1) * size:(dy + 2) * size, (dx + 1) * size:(dx + 2) * size] = np.load(key) > 0
    grown = binary_dilation(mosaic, iterations=distance) if distance else mosaic
    return grown[size:2 * size, size:2 * size]


def truth(project_root: Path, project, tile) -> np.ndarray | None:
    key = project_root / "answer_key" / f"{tile[0]}_{tile[1]}.npy"
    if key.is_file():
        return np.load(key) > 0
    label = project.labels().read(tile) if hasattr(project, "labels") else None
    return None if label is None else np.asarray(label) > 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("project")
    parser.add_argument("--model", action="append", required=True)
    parser.add_argument("--halos", default="0,4,8")
    parser.add_argument("--edges", default="reflect", help="halo modes at the AoI's edge to compare: "
                        "reflect, none or both (reflect,none)")
    parser.add_argument("--windows", type=int, default=12, help="windows per tile, evenly spread over the period")
    parser.add_argument("--stride", type=int, default=5)
    parser.add_argument("--tiles", help="y:x,... (default: every tile with observations and an answer key)")
    parser.add_argument("--threshold", type=float, default=0.5)
    parser.add_argument("--far", type=int, default=3, help="'far from change' = at least this many pixels away")
    args = parser.parse_args(argv)

    from ercnn_napari.core.model_files import resolve_model_path
    from ercnn_napari.core.project import Project
    from ercnn_napari.core.tiles import parse_tile_id
    from ercnn_napari.ml.data.halo import HaloReader
    from ercnn_napari.ml.data.observations import open_observations
    from ercnn_napari.ml.inference.evaluate import evenly_spaced
    from ercnn_napari.ml.model.shared_steps import SharedStepModel, predict_series
    from ercnn_napari.ml.model.weights import load_model

    project = Project.open(args.project)
    root = Path(project.root)
    source = open_observations(project)
    tiles = ([parse_tile_id(t) for t in args.tiles.split(",")] if args.tiles
             else [t for t in source.tiles() if (root / "answer_key" / f"{t[0]}_{t[1]}.npy").is_file()])
    models = [SharedStepModel(load_model(resolve_model_path(m))[0]) for m in args.model]
    halos = [int(h) for h in args.halos.split(",")]
    edges = [e.strip() for e in args.edges.split(",") if e.strip()]
    ring = ring_mask(project.grid.tile_size)
    available = set(source.tiles())
    print(f"{len(tiles)} tiles, {args.windows} windows each (stride {args.stride}), halos {halos}, edges {edges}")
    line = ""
    for halo, edge in [(h, e) for h in halos for e in (edges if h else edges[-1:])]:
        reader = HaloReader(source, halo, edge, cache_tiles=24)
        keys = ("ring", "inside", "ring_far", "inside_far", "outer")
        fp = dict.fromkeys(keys, 0)
        negatives = dict.fromkeys(keys, 0)
        started = time.perf_counter()
        for tile in tiles:
            full = source.window_table(tile)
            table = full.select(full.every(args.stride))
            table = table.select(evenly_spaced(len(table), args.windows))
            block = reader.block(tile)
            probs = predict_series(models, block.series, table.start_index, table.n_obs, mask_region=block.centre,
                                   reference=(int(full.start_index[0]), int(full.n_obs[0])),
                                   )[:, block.centre[0], block.centre[1]]
            flagged = probs.max(axis=0) >= args.threshold
            unchanged = ~truth(root, project, tile)
            far = ~near_change(root, tile, project.grid.tile_size, args.far)
            outer = outer_ring(available, tile, project.grid.tile_size)
            for name, where in (("ring", ring), ("inside", ~ring), ("ring_far", ring & far),
                                ("inside_far", ~ring & far), ("outer", outer)):
                fp[name] += int((flagged & unchanged & where).sum())
                negatives[name] += int((unchanged & where).sum())
        ring_rate = fp["ring"] / max(negatives["ring"], 1)
        inside_rate = fp["inside"] / max(negatives["inside"], 1)
        ratio = ring_rate / inside_rate if inside_rate > 0 else (1.0 if ring_rate == 0 else float("inf"))
        print(f"halo {halo:2d} edge {edge if halo else '-':7s}: ring FP {fp['ring']}/{negatives['ring']} = {ring_rate:.4f}, inside FP "
              f"{fp['inside']}/{negatives['inside']} = {inside_rate:.4f}, ratio {ratio:.2f} "
              f"({time.perf_counter() - started:.1f} s)", flush=True)
        rf, inf_ = (fp[k] / max(negatives[k], 1) for k in ("ring_far", "inside_far"))
        print(f"         at least {args.far} px from any true change: ring FP {fp['ring_far']}/{negatives['ring_far']}"
              f" = {rf:.4f}, inside FP {fp['inside_far']}/{negatives['inside_far']} = {inf_:.4f}", flush=True)
        outer_rate = fp["outer"] / negatives["outer"] if negatives["outer"] else float("nan")
        if negatives["outer"]:
            print(f"         outer edge ring (sides without a neighbour): FP {fp['outer']}/{negatives['outer']}"
                  f" = {outer_rate:.4f}", flush=True)
        line = (f"ring_fp_rate={ring_rate:.4f} inside_fp_rate={inside_rate:.4f} ratio={ratio:.2f} "
                f"outer_fp_rate={outer_rate:.4f}")
    print(line)
    return 0


if __name__ == "__main__":
    sys.exit(main())
