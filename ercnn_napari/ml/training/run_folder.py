"""The folder a training run writes, and the one place that knows its file names.

A run folder is the contract between the trainer, the viewer and a later ``--resume``: the
viewer tails ``events.jsonl`` and reads ``metrics.csv``/``evaluation.json`` with plain Python,
``predict``/``evaluate`` load ``model.ercnn.h5`` (via core.model_files), and ``--resume`` reads
``config.json`` plus ``checkpoints/resume/``. Every file a person may open is written atomically;
``events.jsonl`` is an append-only log (a torn last line is skipped by readers).

This module does not import TensorFlow.
"""

from __future__ import annotations

import csv
import io
import json
import math
import os
import time
from pathlib import Path
from typing import Any

from ercnn_napari.core.atomic import atomic_write_text
from ercnn_napari.core.errors import ErcnnError
from ercnn_napari.core.messages import Message, parse_message

METRICS_COLUMNS = (
    "epoch", "train_loss", "val_loss", "val_precision", "val_recall", "val_f1", "val_iou",
    "learning_rate", "seconds", "best",
)


class RunFolder:
    """Paths and small-file I/O of one training run."""

    def __init__(self, root: str | os.PathLike) -> None:
        self.root = Path(root)

    # ---- paths -----------------------------------------------------------------------------
    @property
    def config_json(self) -> Path:
        return self.root / "config.json"

    @property
    def inputs_json(self) -> Path:
        return self.root / "inputs.json"

    @property
    def environment_json(self) -> Path:
        return self.root / "environment.json"

    @property
    def metrics_csv(self) -> Path:
        return self.root / "metrics.csv"

    @property
    def events_jsonl(self) -> Path:
        return self.root / "events.jsonl"

    @property
    def tensorboard_dir(self) -> Path:
        return self.root / "tensorboard"

    @property
    def checkpoints_dir(self) -> Path:
        return self.root / "checkpoints"

    @property
    def best_model(self) -> Path:
        return self.checkpoints_dir / "best.ercnn.h5"

    @property
    def last_model(self) -> Path:
        return self.checkpoints_dir / "last.ercnn.h5"

    @property
    def baseline_model(self) -> Path:
        """The starting weights, kept so the before/after evaluation compares like with like."""
        return self.checkpoints_dir / "baseline.ercnn.h5"

    @property
    def resume_dir(self) -> Path:
        return self.checkpoints_dir / "resume"

    @property
    def resume_state_json(self) -> Path:
        """Loop counters that go with the newest resumable checkpoint (written after it)."""
        return self.resume_dir / "state.json"

    @property
    def final_model(self) -> Path:
        return self.root / "model.ercnn.h5"

    @property
    def evaluation_json(self) -> Path:
        return self.root / "evaluation.json"

    # ---- creation ----------------------------------------------------------------------------
    @classmethod
    def create(cls, root: str | os.PathLike) -> RunFolder:
        """Make a fresh run folder; refuse one that already holds a run (use --resume)."""
        run = cls(root)
        if run.config_json.exists():
            raise ErcnnError("this folder already holds a training run; pass it to --resume to "
                             "continue it, or choose another --out", run.root)
        run.root.mkdir(parents=True, exist_ok=True)
        run.checkpoints_dir.mkdir(exist_ok=True)
        run.tensorboard_dir.mkdir(exist_ok=True)
        return run

    @classmethod
    def open_for_resume(cls, root: str | os.PathLike) -> RunFolder:
        """An existing run that has a resumable checkpoint."""
        run = cls(root)
        if not run.config_json.is_file():
            raise ErcnnError("not a training run folder (config.json missing)", run.root)
        if not run.resume_state_json.is_file():
            raise ErcnnError("this run has no resumable checkpoint yet (checkpoints/resume/state.json "
                             "missing); start a new run instead", run.root)
        return run

    @staticmethod
    def default_path(project_root: str | os.PathLike, split: str, preset: str) -> Path:
        """``PROJECT/runs/<UTC time>_<split>_<preset>``: sortable, one folder per run."""
        stamp = time.strftime("%Y%m%d-%H%M%S", time.gmtime())
        return Path(project_root) / "runs" / f"{stamp}_{split}_{preset}"

    # ---- small files -------------------------------------------------------------------------
    def write_json(self, path: Path, data: Any) -> None:
        """Strict JSON (NaN, e.g. an undefined precision, becomes null) written atomically."""
        text = json.dumps(strict_json(data), indent=2, sort_keys=True, default=_json_default, allow_nan=False)
        atomic_write_text(path, text + "\n")

    def read_json(self, path: Path) -> Any:
        try:
            return json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise ErcnnError("file missing from the run folder", path) from None
        except json.JSONDecodeError as exc:
            raise ErcnnError(f"not valid JSON ({exc.msg} at line {exc.lineno})", path) from None

    def append_event(self, message: Message) -> None:
        """Append one event line; flushed at once so a crash keeps everything before it."""
        with open(self.events_jsonl, "a", encoding="utf-8") as fh:
            fh.write(message.to_json() + "\n")
            fh.flush()

    def read_events(self) -> list[Message]:
        if not self.events_jsonl.is_file():
            return []
        lines = self.events_jsonl.read_text(encoding="utf-8").splitlines()
        return [m for m in (parse_message(line) for line in lines) if m is not None]

    def read_metrics(self) -> list[dict[str, str]]:
        if not self.metrics_csv.is_file():
            return []
        with open(self.metrics_csv, newline="", encoding="utf-8") as fh:
            return list(csv.DictReader(fh))

    def write_metrics(self, rows: list[dict[str, Any]]) -> None:
        """Rewrite metrics.csv whole (atomic): a resumed run replaces rows it recomputes."""
        buffer = io.StringIO()
        writer = csv.DictWriter(buffer, fieldnames=METRICS_COLUMNS, extrasaction="ignore", lineterminator="\n")
        writer.writeheader()
        for row in rows:
            writer.writerow({k: _csv_value(row.get(k)) for k in METRICS_COLUMNS})
        atomic_write_text(self.metrics_csv, buffer.getvalue())


def strict_json(value: Any) -> Any:
    """Replace non-finite floats by None, recursively: JSON has no NaN, and readers in other
    languages reject it. An undefined score (precision with nothing predicted) is "no value"."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: strict_json(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [strict_json(v) for v in value]
    if hasattr(value, "item") and getattr(value, "ndim", 1) == 0:
        return strict_json(value.item())
    return value


def _csv_value(value: Any) -> Any:
    if value is None:
        return ""
    if isinstance(value, float):
        return f"{value:.6g}"
    return value


def _json_default(value: Any) -> Any:
    if hasattr(value, "item"):
        return value.item()
    if hasattr(value, "tolist"):
        return value.tolist()
    return str(value)
