"""Peak memory and step time of the straightforward versus the lean transfer step (full network).

Each variant runs in its own child process so that one's allocations cannot hide in the other's
peak. A child builds the full ERCNN-DRS (T=92, 32x32, published architecture) with fixed seeds,
builds the step's graph (``tf.function`` tracing), records its resident memory as the baseline
(model + graph), then computes the gradients of ``--steps`` transfer
steps (after one untimed warm-up step) on windows fed from a
prefetching ``tf.data`` pipeline of synthetic, realistically padded observations. It reports:

- peak resident memory above the baseline (``ru_maxrss`` minus the RSS after model and graph build);
- mean step time and mean input wait (time blocked on the pipeline) per step;
- the loss and gradients of every step, which the parent compares across the two variants.

The last line printed is exactly::

    peak_memory_ratio=<lean/straightforward> step_time_ratio=<lean/straightforward> max_grad_diff=<...>

Usage: ``python benchmarks/finetune_memory.py [--windows 10] [--batch 1] [--steps 2] [--allocator bfc]``.
One straightforward step of 1 tile x 10 windows needs ~5-6 GB and ~12 s on 2 CPU cores.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

VARIANTS = ("straightforward", "lean")


def _rss_bytes() -> int:
    import psutil

    return int(psutil.Process().memory_info().rss)


def _peak_rss_bytes() -> int:
    return int(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss) * 1024  # Linux reports KiB


def _synthetic_batches(batch: int, windows: int, time_steps: int, size: int, seed: int):
    """Random observations with 35..92 valid steps per window (then -1 padding) and sparse labels."""
    rng = np.random.default_rng(seed)
    while True:
        x = rng.standard_normal(size=(batch, windows, time_steps, size, size, 17), dtype=np.float32)
        n_obs = rng.integers(35, time_steps + 1, size=(batch, windows))
        for b in range(batch):
            for k in range(windows):
                x[b, k, n_obs[b, k]:] = -1.0
        labels = (rng.random((batch, size, size)) > 0.9).astype(np.float32)
        yield x, labels
        del x, labels  # do not hold the previous batch while the next one is generated


def run_child(variant: str, args: argparse.Namespace) -> dict:
    """Measure one variant in this process (called in a fresh child)."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import keras
    import tensorflow as tf

    from ercnn_napari.ml.model.network import ModelConfig, build_model
    from ercnn_napari.ml.training.lean_gradients import compiled_step

    keras.utils.set_random_seed(args.seed)
    config = ModelConfig()
    model = build_model(config, seed=args.seed)
    weights_checksum = float(sum(float(np.sum(np.abs(np.asarray(v)))) for v in model.weights))

    spec = (
        tf.TensorSpec((args.batch, args.windows, config.time_steps, args.size, args.size, 17), tf.float32),
        tf.TensorSpec((args.batch, args.size, args.size), tf.float32),
    )
    dataset = tf.data.Dataset.from_generator(
        lambda: _synthetic_batches(args.batch, args.windows, config.time_steps, args.size, args.seed),
        output_signature=spec,
    ).prefetch(2)
    batches = iter(dataset)
    step = compiled_step(model, lean=(variant == "lean"))
    model_rss = _rss_bytes()
    started = time.perf_counter()
    step.get_concrete_function(*spec)  # build the graph now: its memory is not the step's
    trace_seconds = time.perf_counter() - started
    baseline = _rss_bytes()

    windows, labels = next(batches)
    started = time.perf_counter()
    warm = step(windows, labels)
    float(warm.loss)
    warmup_seconds = time.perf_counter() - started

    losses, gradients, step_seconds, waits = [float(warm.loss)], [[g.numpy() for g in warm.gradients]], [], []
    del warm, windows, labels  # a training loop does not keep the previous batch alive either
    cpu_seconds: list[float] = []
    for _ in range(args.steps):
        started = time.perf_counter()
        windows, labels = next(batches)
        got_input = time.perf_counter()
        cpu_started = time.process_time()
        result = step(windows, labels)
        grads = [g.numpy() for g in result.gradients]
        finished = time.perf_counter()
        cpu_seconds.append(time.process_time() - cpu_started)
        waits.append(got_input - started)
        step_seconds.append(finished - got_input)
        losses.append(float(result.loss))
        gradients.append(grads)
        del result, windows, labels

    grads_file = Path(args.out).with_suffix(".npz")
    np.savez(grads_file, *[g for step_grads in gradients for g in step_grads])
    return {
        "variant": variant,
        "windows": args.windows,
        "batch": args.batch,
        "model_rss_bytes": model_rss,
        "baseline_rss_bytes": baseline,
        "trace_seconds": trace_seconds,
        "peak_rss_bytes": _peak_rss_bytes(),
        "peak_above_baseline_bytes": _peak_rss_bytes() - baseline,
        "warmup_seconds": warmup_seconds,
        "step_seconds": step_seconds,
        "input_wait_seconds": waits,
        "cpu_seconds": cpu_seconds,
        "losses": losses,
        "n_variables": len(model.trainable_variables),
        "weights_checksum": weights_checksum,
        "gradients_file": str(grads_file),
    }


def _child_command(variant: str, args: argparse.Namespace, out: Path) -> list[str]:
    return [
        sys.executable, str(Path(__file__).resolve()), "--child", variant, "--out", str(out),
        "--windows", str(args.windows), "--batch", str(args.batch), "--steps", str(args.steps),
        "--size", str(args.size), "--seed", str(args.seed),
    ]


def _load_gradients(report: dict) -> list[np.ndarray]:
    with np.load(report["gradients_file"]) as data:
        return [data[f"arr_{i}"] for i in range(len(data.files))]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--windows", type=int, default=10, help="windows per tile-sample (K), default 10")
    parser.add_argument("--batch", type=int, default=1, help="tile-samples per step, default 1")
    parser.add_argument("--steps", type=int, default=2, help="timed steps after one warm-up step")
    parser.add_argument("--size", type=int, default=32, help="tile size in pixels")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--allocator", choices=("default", "bfc"), default="default",
                        help="TensorFlow's CPU allocator in both children (bfc: TF_CPU_ALLOCATOR_USE_BFC=true)")
    parser.add_argument("--child", choices=VARIANTS, help=argparse.SUPPRESS)
    parser.add_argument("--out", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)

    if args.child:
        report = run_child(args.child, args)
        Path(args.out).write_text(json.dumps(report))
        return 0

    reports = {}
    with tempfile.TemporaryDirectory(prefix="finetune_memory_") as tmp:
        for variant in VARIANTS:
            out = Path(tmp) / f"{variant}.json"
            print(f"running {variant} step: batch {args.batch} x {args.windows} windows, T=92, "
                  f"{args.size}x{args.size}, {args.steps} timed steps ...", flush=True)
            env = dict(os.environ)
            if args.allocator == "bfc":
                env["TF_CPU_ALLOCATOR_USE_BFC"] = "true"
            subprocess.run(_child_command(variant, args, out), check=True, env=env)
            reports[variant] = json.loads(out.read_text())
            reports[variant]["gradients"] = _load_gradients(reports[variant])

    straight, lean = reports["straightforward"], reports["lean"]
    if straight["weights_checksum"] != lean["weights_checksum"]:
        raise SystemExit("the two children built different initial weights; gradients are not comparable")
    gib = 2.0**30
    for report in (straight, lean):
        print(f"{report['variant']:>15}: peak above baseline {report['peak_above_baseline_bytes'] / gib:6.2f} GiB "
              f"(baseline {report['baseline_rss_bytes'] / gib:.2f} GiB, of which graph "
              f"{(report['baseline_rss_bytes'] - report['model_rss_bytes']) / gib:.2f} GiB), "
              f"step {np.mean(report['step_seconds']):6.2f} s (CPU {np.mean(report['cpu_seconds']):6.2f} s), input wait {np.mean(report['input_wait_seconds']):.3f} s, "
              f"tracing {report['trace_seconds']:.1f} s, warm-up {report['warmup_seconds']:.1f} s, losses {[round(v, 6) for v in report['losses']]}")
    max_grad_diff = max(float(np.max(np.abs(a - b))) for a, b in zip(straight["gradients"], lean["gradients"], strict=True))
    max_grad = max(float(np.max(np.abs(a))) for a in straight["gradients"])
    max_loss_diff = max(abs(a - b) for a, b in zip(straight["losses"], lean["losses"], strict=True))
    memory_ratio = lean["peak_above_baseline_bytes"] / straight["peak_above_baseline_bytes"]
    time_ratio = float(np.mean(lean["step_seconds"]) / np.mean(straight["step_seconds"]))
    cpu_ratio = float(np.mean(lean["cpu_seconds"]) / np.mean(straight["cpu_seconds"]))
    print(f"CPU-time ratio (lean/straightforward, robust to other load on the machine): {cpu_ratio:.3f}")
    print(f"per tile-sample: straightforward {straight['peak_above_baseline_bytes'] / args.batch / gib:.2f} GiB, "
          f"lean {lean['peak_above_baseline_bytes'] / args.batch / gib:.2f} GiB; "
          f"largest gradient {max_grad:.3e}, max loss difference {max_loss_diff:.3e}")
    print(f"peak_memory_ratio={memory_ratio:.3f} step_time_ratio={time_ratio:.3f} max_grad_diff={max_grad_diff:.3e}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
