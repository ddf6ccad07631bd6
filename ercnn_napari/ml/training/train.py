"""The fine-tuning worker: start (or resume) a run, train, validate, checkpoint, evaluate.

Contract with the viewer (and any script): the run's progress is a stream of
``core.messages`` events, on stdout with ``--progress json`` and always in the run folder's
``events.jsonl``; results are files in the run folder (ml.run_folder). How a run ends:

* completed: ``finished`` with status ``completed``, exit code 0;
* cancelled by SIGTERM/SIGINT: the current step finishes, a resumable checkpoint is written,
  ``finished`` with status ``cancelled``, exit code :data:`EXIT_CANCELLED` (0: an orderly stop
  the user asked for is not a failure; the status field tells it apart from completion);
* failed (bad input, out of memory): ``error`` naming the file, exit code 2 (cli.main).

Resuming continues from the last checkpoint with the same result as an uninterrupted run: model,
optimizer and dropout-generator states are checkpointed, and the data of every step is a pure
function of (seed, epoch, step) (ml.training_data).
"""

from __future__ import annotations

import shutil
import signal
from pathlib import Path
from typing import Any

import numpy as np

from ercnn_napari.core.atomic import atomic_path
from ercnn_napari.core.errors import ErcnnError, ResourceError
from ercnn_napari.core.messages import Error, Message, MessageWriter
from ercnn_napari.core.metrics import Confusion, confusion, scores
from ercnn_napari.ml.training.presets import TrainConfig
from ercnn_napari.ml.training.run_folder import RunFolder

EXIT_CANCELLED = 0


class StopRequest:
    """Turns SIGTERM/SIGINT into a flag the loop polls between steps (never mid-step)."""

    def __init__(self) -> None:
        self.signal_name: str | None = None
        self._previous: dict[int, Any] = {}

    def install(self) -> StopRequest:
        """Install (again: idempotent, the first previous handlers are the ones restored)."""
        for sig in (signal.SIGTERM, signal.SIGINT):
            self._previous.setdefault(sig, signal.signal(sig, self._handle))
        return self

    def _handle(self, signum: int, frame: Any) -> None:
        self.signal_name = signal.Signals(signum).name

    def __call__(self) -> bool:
        return self.signal_name is not None

    def uninstall(self) -> None:
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)


class EventSink:
    """Every event goes to the progress writer (if this is the chief) and to events.jsonl."""

    def __init__(self, writer: MessageWriter, chief: bool = True) -> None:
        self.writer = writer
        self.chief = chief
        self.run: RunFolder | None = None

    def emit(self, message: Message, to_stream: bool = True) -> None:
        if not message.job:
            message.job = "train"
        if not self.chief:
            return
        if to_stream:
            self.writer.emit(message)
        if self.run is not None:
            self.run.append_event(message)


def run_training(project: str | None, config: TrainConfig | None, *, out: str | None = None,
                 resume: str | None = None, gpus: str | None = None, progress: str = "text",
                 check_memory: bool = True, epochs_override: int | None = None) -> int:
    """Run (or resume) one training run; returns the process exit code. See module docstring."""
    from ercnn_napari.ml.training.distribute import select_devices

    select_devices(gpus)  # before TensorFlow initialises its devices
    stop = StopRequest().install()
    sink = EventSink(MessageWriter(progress, job="train"))
    try:
        return _run(project, config, out, resume, sink, stop, check_memory, epochs_override)
    except ErcnnError as exc:
        # cli.main prints it and emits it on stdout; the run folder must record it too
        sink.emit(Error(message=str(exc), kind=exc.kind, path=exc.path), to_stream=False)
        raise
    except Exception as exc:
        sink.emit(Error(message=f"training failed unexpectedly: {type(exc).__name__}: {exc}", kind="internal"))
        raise
    finally:
        stop.uninstall()


def _run(project_arg: str | None, config: TrainConfig | None, out: str | None, resume: str | None,
         sink: EventSink, stop: StopRequest, check_memory: bool, epochs_override: int | None) -> int:
    from ercnn_napari.core.model_files import default_baseline, resolve_model_path
    from ercnn_napari.core.project import Project
    from ercnn_napari.ml.training.distribute import task_position

    is_chief = task_position()[0] == 0
    sink.chief = is_chief  # only worker 0 of a cluster reports, from the first event on

    if resume:
        run = RunFolder.open_for_resume(resume)
        saved = run.read_json(run.config_json)
        config = TrainConfig.from_dict(saved["train"])
        project_root = Path(saved["project"])
        if project_arg and Path(project_arg).resolve() != project_root.resolve():
            raise ErcnnError(f"this run was trained on the project {project_root}, not {project_arg}", run.root)
        if epochs_override is not None and epochs_override != config.epochs:
            config.epochs = int(epochs_override)
            config.validate()
            if is_chief:  # a later resume sees it; other workers of a cluster only read the run folder
                run.write_json(run.config_json, {**saved, "train": config.to_dict()})
    else:
        if not project_arg or config is None:
            raise ErcnnError("a project folder is needed to start a run (or --resume RUNDIR)")
        project_root = Path(project_arg).resolve()
        run = None
    project = Project.open(project_root)
    if config.baseline is None and config.model is None and not resume:
        found = default_baseline()
        if found is None:
            raise ErcnnError("no baseline model: pass --baseline FILE, or set ERCNN_NAPARI_BASELINE or "
                             "ERCNN_PUBLISHED_WEIGHTS (the demo baseline is not installed)")
        config.baseline = str(found)
    if config.baseline is not None:
        from ercnn_napari.ml.model.weights import read_config

        config.baseline = str(resolve_model_path(config.baseline))
        read_config(config.baseline)  # a foreign or broken file fails here, before a run folder exists

    from ercnn_napari.ml.training.distribute import make_strategy

    # Before any TensorFlow op runs: a multi-worker strategy configures TensorFlow's collective
    # ops, which is refused once the runtime has started ("Collective ops must be configured at
    # program startup"), and reading the observations below starts it.
    distribution = make_strategy()
    # A multi-worker strategy starts TensorFlow's coordination service, whose preemption notifier
    # takes over SIGTERM in C++: without this, SIGTERM to a worker was silently swallowed (found
    # on the first real two-worker run) and the run went on to the end.
    stop.install()

    from ercnn_napari.ml.data.observations import open_observations
    from ercnn_napari.ml.training.train_setup import collect_inputs

    source = open_observations(project)
    inputs = collect_inputs(project, config.split, source, min_windows=config.windows_per_sample)

    from ercnn_napari.ml.training.train_loop import TrainingLoop

    created = run is None and is_chief
    if run is None:
        # Only the chief (worker 0 of a cluster) creates and writes the run folder. The others are
        # given the same --out by a cluster job; they must neither create it (a default path has
        # their own time stamp: a stray empty run) nor refuse it once the chief wrote config.json.
        path = out or RunFolder.default_path(project.root, config.split, config.preset)
        run = RunFolder.create(path) if is_chief else RunFolder(path)
    try:
        loop = TrainingLoop(run, project, source, inputs, config, sink, stop, resuming=bool(resume),
                            distribution=distribution)
        return loop.execute(check_memory)
    except ErcnnError as exc:
        if created and exc.kind in BAD_INPUT_KINDS and not run.resume_state_json.exists():
            discard_run_folder(run, sink)
        raise


#: Errors about the analyst's input: a run that stops on one before its first checkpoint holds
#: nothing worth keeping, so its folder is removed (the error is still printed and emitted).
BAD_INPUT_KINDS = ("bad_input", "bad_label", "bad_project", "bad_weights")


def discard_run_folder(run: RunFolder, sink: EventSink) -> None:
    """Remove a run folder this process created and that holds no checkpoint (no partial runs)."""
    sink.run = None  # the error event goes to the stream only
    shutil.rmtree(run.root, ignore_errors=True)


def confusion_of_batch(maps: np.ndarray, labels: np.ndarray, weights: np.ndarray, threshold: float,
                       border: int) -> Confusion:
    """Pooled confusion of the real (weight > 0) samples of a validation batch."""
    total = Confusion()
    for m, lab, w in zip(maps, labels, weights, strict=True):
        if w > 0:
            total = total + confusion(m, lab, threshold=threshold, border=border)
    return total


def validation_summary(loss_sum: float, weight_sum: float, counts: Confusion) -> tuple[float, dict[str, float]]:
    loss = loss_sum / weight_sum if weight_sum else float("nan")
    return loss, {k: float(v) for k, v in scores(counts).items()}


def make_optimizer(config: TrainConfig, learning_rate: float) -> Any:
    """The run's optimizer: the paper's SGD with momentum, or Adam (the quick preset's head)."""
    import keras

    if config.optimizer == "adam":
        return keras.optimizers.Adam(learning_rate=learning_rate)
    return keras.optimizers.SGD(learning_rate=learning_rate, momentum=config.momentum)


def is_better(select_by: str, val_loss: float | None, metrics: dict[str, float], state: dict[str, Any]) -> bool:
    """Whether this epoch becomes the kept ("best") model under the run's selection rule.

    ``val_loss``: lower validation loss (the paper). ``val_f1``: higher validation F1, a tie (or
    an F1 that cannot be computed on both) decided by the lower loss. ``last``: every epoch is
    "best", so the last one is kept (as without validation tiles).
    """
    if select_by == "last":
        return True
    best_loss = state.get("best_val_loss")
    if val_loss is None or best_loss is None:
        return True
    loss_better = val_loss < best_loss
    if select_by != "val_f1":
        return loss_better
    f1, best_f1 = metrics.get("f1"), state.get("best_val_f1")
    if f1 is None or best_f1 is None or not np.isfinite(f1) or not np.isfinite(best_f1):
        return (f1 is not None and np.isfinite(f1)) or loss_better
    return f1 > best_f1 or (f1 == best_f1 and loss_better)


def copy_model_file(source: Path, target: Path) -> None:
    """Copy a finished model file atomically (the final model = the best checkpoint)."""
    with atomic_path(target) as tmp:
        shutil.copyfile(source, tmp)


def out_of_memory(exc: BaseException, run: RunFolder) -> ResourceError:
    return ResourceError(f"ran out of memory during training ({type(exc).__name__}); lower --batch-size or "
                         f"--windows-per-sample, or use lean gradients", run.root)

