"""``ercnn-napari train``: fine-tune ERCNN-DRS on a project's labelled tiles (a worker process).

Exit codes: 0 = completed, or cancelled by SIGTERM/SIGINT with a resumable checkpoint (the
``finished`` event's ``status`` says which); 2 = the run could not start or failed on an input,
a weights file or memory (an ``error`` event names the file); 1 = an unexpected failure.
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

NAME = "train"
HELP = ("Fine-tune ERCNN-DRS on the labelled tiles of a project split (the transfer recipe of "
        "Zitzlsberger et al. 2023), writing a run folder.")


def _positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("project", nargs="?", help="project folder (optional with --resume)")
    parser.add_argument("--split", default="V1", help="split to train on (training/<SPLIT>/ lists; default V1)")
    parser.add_argument("--preset", choices=("paper", "quick", "tiny"), default="paper",
                        help="paper = the published recipe; quick = minutes on a CPU (about 5-8 on two "
                             "cores for 8 training tiles, 15 for the sample's 22): the head trained on "
                             "cached features of the frozen branches; tiny = a smoke test with a tiny "
                             "network (default paper)")
    parser.add_argument("--baseline", help="model to start from (published .hdf5, *.ercnn.h5 or a run "
                        "folder); default: ERCNN_NAPARI_BASELINE, ERCNN_PUBLISHED_WEIGHTS or the demo baseline")
    parser.add_argument("--epochs", type=_positive)
    parser.add_argument("--steps-per-epoch", type=_positive,
                        help="cap (or extend) an epoch to this many steps; default: all samples once")
    parser.add_argument("--windows-per-sample", type=_positive, help="windows predicted per sample (paper: 10)")
    parser.add_argument("--batch-size", type=_positive, help="samples per replica and step (paper: 8)")
    parser.add_argument("--learning-rate", type=float, help="per replica; scaled by replicas (paper: 0.001)")
    parser.add_argument("--freeze", choices=("none", "sar", "optical", "both"),
                        help="keep the SAR and/or optical input path fixed (default none, as in the paper)")
    parser.add_argument("--remainder", choices=("drop", "pad"),
                        help="samples that do not fill the last batch of an epoch: drop them (default; a "
                             "different set each epoch) or fill the batch from the next shuffle")
    parser.add_argument("--gradients", choices=("lean", "straightforward"),
                        help="lean = one window on the gradient tape at a time (same result, far less "
                             "memory; default except for tiny); straightforward = all windows on one tape")
    parser.add_argument("--cache-features", action=argparse.BooleanOptionalAction, default=None,
                        help="with --freeze both: cache the frozen branches' features and train only the head "
                             "(the quick preset's CPU shortcut; --no-cache-features turns it off)")
    parser.add_argument("--adapt-bn", action=argparse.BooleanOptionalAction, default=None,
                        help="re-estimate the input blocks' batch-norm statistics on the run's windows before "
                             "training (quick: on; paper: off)")
    parser.add_argument("--reference", action=argparse.BooleanOptionalAction, default=None,
                        help="the head also reads each window's change since the tile's first window "
                             "(quick: on; paper: off, the authors' network; docs/training.md)")
    parser.add_argument("--head-start", choices=("baseline", "fresh"),
                        help="the head's weights at the start: the baseline's (paper), or fresh after its "
                             "first convolution (quick)")
    parser.add_argument("--optimizer", choices=("sgd", "adam"), help="sgd with momentum (paper) or adam (quick)")
    parser.add_argument("--select-by", choices=("val_loss", "val_f1", "last"),
                        help="which epoch's model is kept: lowest validation loss (paper), best "
                             "validation F1, or the last epoch")
    parser.add_argument("--augment", metavar="CODES",
                        help="augmentation codes per tile and epoch, e.g. 0-7 or 0,4 (paper: 0-15, see docs)")
    parser.add_argument("--no-evaluate", action="store_true", help="skip the before/after evaluation")
    parser.add_argument("--border", type=int,
                        help="pixels ignored at each tile edge in validation metrics and evaluation (default 1)")
    parser.add_argument("--loss-border", type=int, metavar="PX",
                        help="pixels the training loss leaves out at each tile edge (paper: 1, 0 with --context; "
                             "quick: 0, the ring too, which a fresh head needs)")
    parser.add_argument("--eval-windows", type=int, help="evenly spaced windows per tile in the evaluation (0 = all)")
    parser.add_argument("--context", type=int, metavar="PX",
                        help="train with PX pixels of the neighbouring tiles' observations around each tile "
                             "(even, up to 32; the label stays on the tile, the loss covers all of it); "
                             "recorded in the model, so predict, evaluate and map use the same halo "
                             "(default 0 = each tile alone, as the paper; stacked projects only)")
    parser.add_argument("--out", help="run folder to create (default PROJECT/runs/<time>_<split>_<preset>)")
    parser.add_argument("--resume", metavar="RUNDIR", help="continue a cancelled run from its last checkpoint")
    parser.add_argument("--gpus", default="all", help="'all' (default), 'none' or GPU numbers like 0,1")
    parser.add_argument("--seed", type=int, help="seed of the sample order, windows and initialisation (default 123)")
    parser.add_argument("--skip-memory-check", action="store_true",
                        help="start even if the memory estimate says a step will not fit")
    parser.add_argument("--progress", choices=("text", "json", "none"), default="text",
                        help="json = one event per line on stdout, for the viewer")


def parse_codes(text: str) -> list[int]:
    """``"0-7"``, ``"0,4"`` or ``"0-3,8"`` -> a sorted list of augmentation codes."""
    from ercnn_napari.core.errors import ErcnnError

    codes: set[int] = set()
    try:
        for part in (p.strip() for p in text.split(",") if p.strip()):
            low, _, high = part.partition("-")
            codes.update(range(int(low), int(high or low) + 1))
    except ValueError:
        raise ErcnnError(f"--augment takes codes like 0-7 or 0,4; got {text!r}") from None
    return sorted(codes)


def check_arguments(args: argparse.Namespace) -> None:
    """The common mistakes, answered before TensorFlow loads (run_training checks the rest)."""
    from ercnn_napari.cli import checks
    from ercnn_napari.core.errors import ErcnnError

    checks.gpus(args.gpus)
    if args.augment is not None:
        parse_codes(args.augment)
    if args.resume:
        from ercnn_napari.ml.training.run_folder import RunFolder

        RunFolder.open_for_resume(args.resume)
        if args.project:
            checks.project(args.project)
        return
    if not args.project:
        raise ErcnnError("give a PROJECT folder to train on, or --resume RUNDIR")
    if not Path(args.project).exists():
        checks.project(args.project)   # the message, without opening anything
    if args.baseline is not None:
        checks.model(args.baseline)
    elif args.preset != "tiny":       # tiny builds its own small network
        from ercnn_napari.core.model_files import default_baseline

        found = default_baseline()
        if found is not None:
            checks.model(found)
    checks.split(checks.project(args.project), args.split)
    from ercnn_napari.ml.training.distribute import task_position

    chief = task_position()[0] == 0   # other workers of a cluster job are given the chief's folder
    if chief and args.out and (Path(args.out) / "config.json").exists():
        raise ErcnnError("this folder already holds a training run; pass it to --resume to continue it, "
                         "or choose another --out", args.out)


def run(args: argparse.Namespace) -> int:
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "1")
    check_arguments(args)
    from ercnn_napari.core.errors import ErcnnError
    from ercnn_napari.ml.training.train import run_training

    if args.resume:
        return run_training(args.project, None, resume=args.resume, gpus=args.gpus, progress=args.progress,
                            check_memory=not args.skip_memory_check, epochs_override=args.epochs)
    if not args.project:
        raise ErcnnError("give a PROJECT folder to train on, or --resume RUNDIR")
    from ercnn_napari.ml.training.presets import resolve_config

    overrides = {
        "split": args.split, "baseline": args.baseline, "epochs": args.epochs,
        "steps_per_epoch": args.steps_per_epoch, "windows_per_sample": args.windows_per_sample,
        "batch_size": args.batch_size, "learning_rate": args.learning_rate, "freeze": args.freeze,
        "remainder": args.remainder, "seed": args.seed, "eval_windows": args.eval_windows, "border": args.border,
        "lean_gradients": None if args.gradients is None else args.gradients == "lean",
        "evaluate": False if args.no_evaluate else None,
        "cache_features": args.cache_features, "optimizer": args.optimizer, "select_by": args.select_by,
        "adapt_bn": args.adapt_bn, "reference": args.reference, "head_start": args.head_start,
        "augment_codes": None if args.augment is None else parse_codes(args.augment),
        "context": args.context, "loss_border": args.loss_border,
    }
    config = resolve_config(args.preset, overrides)
    _warn_about_fidelity(args.project)
    if args.baseline is not None:
        config.model = None  # an explicit baseline decides the architecture, also for the tiny preset
    return run_training(args.project, config, out=args.out, gpus=args.gpus, progress=args.progress,
                        check_memory=not args.skip_memory_check)


def _warn_about_fidelity(project_dir: str) -> None:
    """Observations that differ from what the published weights saw (L2A, RTC...): say so on stderr."""
    import sys

    from ercnn_napari.core.errors import ErcnnError
    from ercnn_napari.core.fidelity import project_fidelity_warnings
    from ercnn_napari.core.project import Project

    try:
        warnings = project_fidelity_warnings(Project.open(project_dir))
    except ErcnnError:
        return  # run_training reports an unusable project properly
    for warning in warnings:
        print(f"ercnn-napari: warning: {warning}", file=sys.stderr)
