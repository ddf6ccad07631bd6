"""The one message format between workers (train, predict, evaluate, sample) and the viewer.

A worker started with ``--progress json`` writes one JSON object per line on stdout, and nothing
else goes to stdout (logs go to stderr). Every object has ``"event"`` (its type, below), ``"job"``
(``train``, ``predict``, ``evaluate``, ...) and ``"time"`` (UNIX seconds). The viewer parses each
line with :func:`parse_message` into the dataclass of that event; unknown events or fields are
kept as :class:`Unknown` rather than crashing, so an older viewer survives a newer worker.

Events, in the order a run emits them:

``started``     the run began: devices, replicas, totals (for progress bars) and output folder.
``stage``       a phase of the run begins (building the model, caching features, training,
                evaluating): ``name``, its position ``index`` of ``count``; the viewer shows it.
``preflight``   the estimated peak memory of a step versus the memory available.
``step``        one optimisation step: epoch, step, loss, seconds, input wait.
``validation``  one validation pass: loss and metrics.
``epoch``       an epoch ended: train and validation loss, whether it is the best so far.
``checkpoint``  a checkpoint was written (``best``, ``last`` or ``resume``).
``progress``    generic progress of prediction/evaluation/generation: done of total.
``finished``    the run ended normally or was cancelled (``status``), with a summary.
``error``       the run failed; ``message`` is one human sentence naming the file if any.
``problem``     one input was skipped (e.g. a bad manifest row) and the run goes on without it.

This module is pure Python: the viewer imports it, so it must never import TensorFlow.
"""

from __future__ import annotations

import dataclasses
import json
import sys
import time
from dataclasses import dataclass, field
from typing import IO, Any, ClassVar


@dataclass
class Message:
    """Base of every event. Subclasses set ``event``."""

    event: ClassVar[str] = ""
    job: str = ""
    time: float = field(default_factory=time.time)

    def to_dict(self) -> dict[str, Any]:
        data = {"event": self.event}
        data.update(dataclasses.asdict(self))
        return data

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), separators=(",", ":"), default=_json_default)


@dataclass
class Started(Message):
    event: ClassVar[str] = "started"
    run_dir: str = ""
    devices: list[str] = field(default_factory=list)
    replicas: int = 1
    epochs: int = 0
    steps_per_epoch: int = 0
    total: int = 0
    config: dict[str, Any] = field(default_factory=dict)


@dataclass
class Stage(Message):
    event: ClassVar[str] = "stage"
    name: str = ""
    index: int = 0
    count: int = 0


@dataclass
class Preflight(Message):
    event: ClassVar[str] = "preflight"
    estimated_peak_bytes: int = 0
    available_bytes: int = 0
    fits: bool = True
    detail: str = ""


@dataclass
class Step(Message):
    event: ClassVar[str] = "step"
    epoch: int = 0
    step: int = 0
    steps_per_epoch: int = 0
    loss: float = 0.0
    seconds: float = 0.0
    input_wait_seconds: float = 0.0


@dataclass
class Validation(Message):
    event: ClassVar[str] = "validation"
    epoch: int = 0
    loss: float = 0.0
    metrics: dict[str, float] = field(default_factory=dict)


@dataclass
class Epoch(Message):
    event: ClassVar[str] = "epoch"
    epoch: int = 0
    epochs: int = 0
    train_loss: float = 0.0
    val_loss: float | None = None
    seconds: float = 0.0
    best: bool = False


@dataclass
class Checkpoint(Message):
    event: ClassVar[str] = "checkpoint"
    epoch: int = 0
    kind: str = "last"
    path: str = ""


@dataclass
class Progress(Message):
    event: ClassVar[str] = "progress"
    done: int = 0
    total: int = 0
    desc: str = ""
    unit: str = ""


@dataclass
class Finished(Message):
    event: ClassVar[str] = "finished"
    status: str = "completed"  # "completed" or "cancelled"
    out: str = ""
    summary: dict[str, Any] = field(default_factory=dict)


@dataclass
class Error(Message):
    event: ClassVar[str] = "error"
    message: str = ""
    kind: str = "error"
    path: str | None = None


@dataclass
class Problem(Message):
    event: ClassVar[str] = "problem"
    message: str = ""


@dataclass
class Unknown(Message):
    """A line this version does not understand; kept, never fatal."""

    event: ClassVar[str] = "unknown"
    raw: dict[str, Any] = field(default_factory=dict)


MESSAGE_TYPES: dict[str, type[Message]] = {
    cls.event: cls
    for cls in (Started, Stage, Preflight, Step, Validation, Epoch, Checkpoint, Progress, Finished, Error,
                Problem)
}


def parse_message(line: str) -> Message | None:
    """Parse one line of worker output. Returns None for blank or non-JSON lines."""
    line = line.strip()
    if not line.startswith("{"):
        return None
    try:
        data = json.loads(line)
    except json.JSONDecodeError:
        return None
    if not isinstance(data, dict):
        return None
    cls = MESSAGE_TYPES.get(str(data.get("event")))
    if cls is None:
        return Unknown(job=str(data.get("job", "")), raw=data)
    names = {f.name for f in dataclasses.fields(cls)}
    try:
        return cls(**{k: v for k, v in data.items() if k in names})
    except TypeError:
        return Unknown(job=str(data.get("job", "")), raw=data)


class MessageWriter:
    """Writes messages to a stream as JSON lines (``--progress json``) or as short human lines.

    Workers call :meth:`emit` for every event; what reaches the terminal depends on the mode, so
    the same code serves the viewer and a person at a shell.
    """

    def __init__(self, mode: str = "text", stream: IO[str] | None = None, job: str = "") -> None:
        if mode not in ("text", "json", "none"):
            raise ValueError(f"unknown progress mode {mode!r}")
        self.mode = mode
        self.stream = stream if stream is not None else (sys.stdout if mode == "json" else sys.stderr)
        self.job = job

    def emit(self, message: Message) -> None:
        if not message.job:
            message.job = self.job
        if self.mode == "json":
            self.stream.write(message.to_json() + "\n")
            self.stream.flush()
        elif self.mode == "text":
            text = describe(message)
            if text:
                self.stream.write(text + "\n")
                self.stream.flush()


def describe(message: Message) -> str:
    """One human line for a message (used by the text mode and by the viewer's log)."""
    if isinstance(message, Started):
        if message.epochs == 0 and not message.devices:   # not a training run (sample, evaluate, ...)
            return f"[{message.job}] started" + (f": {message.run_dir}" if message.run_dir else "")
        return f"[{message.job}] started: {message.replicas} replica(s) on {', '.join(message.devices) or 'CPU'}"
    if isinstance(message, Stage):
        return f"[{message.job}] stage {message.index}/{message.count}: {message.name}"
    if isinstance(message, Preflight):
        return (f"[{message.job}] memory estimate {message.estimated_peak_bytes / 2**30:.2f} GiB of "
                f"{message.available_bytes / 2**30:.2f} GiB available" + ("" if message.fits else " - does not fit"))
    if isinstance(message, Step):
        return (f"[{message.job}] epoch {message.epoch} step {message.step}/{message.steps_per_epoch} "
                f"loss {message.loss:.4f} ({message.seconds:.2f} s)")
    if isinstance(message, Validation):
        extra = " ".join(f"{k} {v:.3f}" if v is not None else f"{k} n/a" for k, v in message.metrics.items())
        return f"[{message.job}] validation epoch {message.epoch}: loss {message.loss:.4f} {extra}".rstrip()
    if isinstance(message, Epoch):
        val = "" if message.val_loss is None else f" val {message.val_loss:.4f}"
        return (f"[{message.job}] epoch {message.epoch}/{message.epochs}: train {message.train_loss:.4f}{val}"
                + (" (best)" if message.best else ""))
    if isinstance(message, Checkpoint):
        return f"[{message.job}] {message.kind} checkpoint: {message.path}"
    if isinstance(message, Progress):
        return f"[{message.job}] {message.desc} {message.done}/{message.total} {message.unit}".rstrip()
    if isinstance(message, Finished):
        return f"[{message.job}] {message.status}: {message.out}"
    if isinstance(message, Error):
        return f"[{message.job}] error: {message.message}"
    if isinstance(message, Problem):
        return f"[{message.job}] skipped: {message.message}"
    return ""


def _json_default(value: Any) -> Any:
    # numpy scalars and paths turn up in summaries; keep the writer dependency-free
    if hasattr(value, "item"):
        return value.item()
    return str(value)
