"""Make the shipped demo baseline: ERCNN-DRS pre-trained on synthetic per-window labels.

Why: fine-tuning needs a starting model. The authors' published weights are the right one, but
they are not ours to redistribute inside the package, so the plugin also ships a small baseline
made by our own code with the authors' pre-training idea (Zitzlsberger et al. 2021): a label per
6-month window derived from the signals themselves, SAR change x change of an optical built-up
index between the PREVIOUS and the NEXT window, clipped to [0, 1].

The loss is the Tanimoto coefficient with complement pooled over the batch, as in the authors'
pre-training (the transfer step computes it per sample).

It is trained on a different synthetic area than the sample AoI (another seed and location of
the sample generator), so fine-tuning on the sample is a real transfer. It is a demonstration
model: minutes of CPU training, not the authors' 500 epochs on Rotterdam and Limassol.

Labels (our formulation of the idea; the authors used SAR omnibus change maps and ENDISI):
    sar_change  = mean over the 4 SAR channels of |10*log10(mean_next / mean_prev)| / 3 dB
    built_up    = (B11 - B08) / (B11 + B08)       (an NDBI-type index, higher = more built up)
    label       = clip(sar_change * |built_up_next - built_up_prev| * 10, 0, 1)

Usage: python scripts/make_demo_baseline.py [--out FILE] [--minutes 15] [--work DIR] [--border 0|1]
       [--start MODEL]  (continue from an earlier demo baseline instead of Keras' initialisers)
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

DEFAULT_OUT = Path(__file__).resolve().parents[1] / "ercnn_napari" / "resources" / "demo_baseline.ercnn.h5"
AREA_SEED = 4242                                 #: not the sample AoI's seed
AREA_ORIGIN = (672000.0, 5622000.0)              #: north-west of the sample AoI, no overlap
HALF_YEAR_S = 182 * 86400.0
SAR_SCALE_DB = 3.0
EPS = 1e-6


def built_up_index(mean_obs: np.ndarray) -> np.ndarray:
    """NDBI-type index from a window's mean observation [H, W, 17] (B08 = ch 11, B11 = ch 15)."""
    b08, b11 = mean_obs[..., 11], mean_obs[..., 15]
    return (b11 - b08) / (b11 + b08 + EPS)


def synthetic_label(prev_mean: np.ndarray, next_mean: np.ndarray) -> np.ndarray:
    """The per-window label from the previous and next windows' mean observations [H, W, 17]."""
    sar_prev = np.maximum(prev_mean[..., :4], EPS)
    sar_next = np.maximum(next_mean[..., :4], EPS)
    sar_change = np.mean(np.abs(10.0 * np.log10(sar_next / sar_prev)), axis=-1) / SAR_SCALE_DB
    optical_change = np.abs(built_up_index(next_mean) - built_up_index(prev_mean))
    return np.clip(sar_change * optical_change * 10.0, 0.0, 1.0).astype(np.float32)


def window_samples(observations: np.ndarray, table: object, every: int) -> list[tuple[int, np.ndarray]]:
    """(window row, label) for every ``every``-th window that has a previous and a next window."""
    starts, ends = table.start_time, table.end_time
    samples = []
    for row in range(0, len(table), every):
        prev = np.flatnonzero(starts <= starts[row] - HALF_YEAR_S)
        nxt = np.flatnonzero(starts >= ends[row])
        if not len(prev) or not len(nxt):
            continue
        p, n = prev[-1], nxt[0]

        def window_mean(r: int) -> np.ndarray:
            s, c = int(table.start_index[r]), int(table.n_obs[r])
            return observations[s:s + c].mean(axis=0)

        samples.append((row, synthetic_label(window_mean(p), window_mean(n))))
    return samples


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    parser.add_argument("--minutes", type=float, default=15.0, help="training time budget")
    parser.add_argument("--rows", type=int, default=3, help="tile rows of the pre-training area")
    parser.add_argument("--cols", type=int, default=4, help="tile columns of the pre-training area")
    parser.add_argument("--batch-size", type=int, default=4)
    parser.add_argument("--learning-rate", type=float, default=1e-3)
    parser.add_argument("--every", type=int, default=6, help="use every N-th window of a tile")
    parser.add_argument("--work", type=Path, help="folder for the generated area (default: a temp folder)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--border", type=int, default=1,
                        help="pixels at each tile edge left out of the loss: 1 = the authors' recipe (the ring is "
                             "never trained); 0 = the whole tile")
    parser.add_argument("--start", type=Path,
                        help="continue from this *.ercnn.h5 (an earlier demo baseline) instead of starting anew")
    args = parser.parse_args(argv)

    import keras
    import tensorflow as tf

    from ercnn_napari.core.project import Project
    from ercnn_napari.ml.data.observations import open_observations
    from ercnn_napari.ml.model.network import ModelConfig, build_model
    from ercnn_napari.ml.model.weights import load_weights, save_model
    from ercnn_napari.ml.training.loss import tanimoto_complement_pooled
    from ercnn_napari.sample.prepare import generate_sample, prepare_sample_project
    from ercnn_napari.sample.site import SampleSpec

    started = time.time()
    work = args.work or Path(tempfile.mkdtemp(prefix="ercnn-pretrain-"))
    spec = SampleSpec(rows=args.rows, cols=args.cols, origin_x=AREA_ORIGIN[0], origin_y=AREA_ORIGIN[1],
                      seed=AREA_SEED)
    tiles = spec.tiles()
    area = work / "area"
    if not (area / "ercnn_project.json").is_file():
        generate_sample(area, spec=spec, with_observations=False)
    prepare_sample_project(area, tiles=tiles, workers=2)  # adds the observations that are missing
    source = open_observations(Project.open(area))

    windows, labels = [], []
    for tile in tiles:
        series, table = source.series(tile)
        for row, label in window_samples(series.observations, table, args.every):
            windows.append((tile, row))
            labels.append(label)
    labels_arr = np.stack(labels)
    print(f"{len(windows)} windows from {len(tiles)} tiles; label mean {labels_arr.mean():.3f}, "
          f"pixels > 0.5: {(labels_arr > 0.5).mean():.3%}", file=sys.stderr, flush=True)

    keras.utils.set_random_seed(args.seed)
    config = ModelConfig()
    model = build_model(config, seed=args.seed)
    started_from = None
    if args.start is not None:
        from ercnn_napari.core.model_files import describe_model_file

        load_weights(model, args.start)
        started_from = {"path": args.start.name, "metadata": describe_model_file(args.start).get("metadata")}
    optimizer = keras.optimizers.Adam(learning_rate=args.learning_rate)

    @tf.function(reduce_retracing=True)
    def train_step(x: tf.Tensor, y: tf.Tensor) -> tf.Tensor:
        with tf.GradientTape() as tape:
            loss = tanimoto_complement_pooled(y, model(x, training=True), border=args.border)
        variables = model.trainable_variables
        optimizer.apply_gradients(zip(tape.gradient(loss, variables), variables, strict=True))
        return loss

    rng = np.random.default_rng(args.seed)
    training_started = time.time()
    deadline = training_started + args.minutes * 60.0  # the budget is for training, not data generation
    step, losses = 0, []
    while time.time() < deadline:
        pick = rng.choice(len(windows), size=args.batch_size, replace=False)
        batch = np.concatenate([source.windows(windows[i][0], [windows[i][1]]) for i in pick])
        flip = rng.integers(0, 4)  # cheap geometric augmentation: rotations
        x = np.rot90(batch, flip, axes=(2, 3)).copy()
        y = np.rot90(labels_arr[pick], flip, axes=(1, 2)).copy()
        losses.append(float(train_step(x, y)))
        step += 1
        if step % 10 == 0:
            print(f"step {step}: loss {np.mean(losses[-10:]):.4f} ({time.time() - started:.0f} s)",
                  file=sys.stderr, flush=True)

    metadata = {
        "kind": "demo_baseline", "script": "scripts/make_demo_baseline.py",
        "pretraining_area": {"seed": AREA_SEED, "origin": AREA_ORIGIN, "tiles": [f"{y}:{x}" for y, x in tiles]},
        "labels": "clip(SAR dB change / 3 x |built-up index change| x 10, 0, 1), previous vs next window",
        "loss": "Tanimoto with complement pooled over the batch (the authors' pre-training loss)",
        "loss_border": args.border, "started_from": started_from,
        "steps": step, "batch_size": args.batch_size, "optimizer": f"Adam lr {args.learning_rate}",
        "final_loss": float(np.mean(losses[-10:])) if losses else None, "windows": len(windows),
        "training_minutes": round((time.time() - training_started) / 60.0, 1),
        "total_minutes": round((time.time() - started) / 60.0, 1),
    }
    save_model(model, config, args.out, metadata)
    print(json.dumps(metadata), file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
