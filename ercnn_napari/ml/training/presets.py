"""Training configurations: the paper's recipe and two smaller presets, as one resolved dataclass.

The run folder stores the *resolved* configuration (``config.json``), so a run can be repeated or
resumed without knowing which preset and flags produced it. This module does not import
TensorFlow: the command line resolves and validates the configuration before paying for TF.

Presets
-------
``paper``  the transfer recipe of Zitzlsberger et al. (2023): 10 windows per sample (first at
           index 20, then every 45-55 windows), 16 augmentations per tile and epoch, SGD
           lr 0.001 x replicas with momentum 0.8, batch 8 per replica, validation repeated 3x,
           500 epochs, nothing frozen, best validation loss kept.
``quick``  a CPU run of minutes (on two cores about 5-8 for 8 training tiles and 15 for the sample's
           22, the before/after evaluation included): the input blocks' batch-norm statistics
           re-estimated on the run's windows (``--adapt-bn``, ml.training.adapt_bn), then both input
           branches frozen and their features cached (ml.frozen_backbone), the head trained on them
           with Adam (lr 0.001), batch 8, the 10 evenly spaced windows of each tile, rotations/flips
           of the cached maps (codes 0-7), 40 epochs, the LAST epoch kept (no selection: with 2-4
           validation tiles the epoch with the best validation F1 was close to random and often
           epoch 1; held-out AUC on the sample 0.64 kept vs 0.80 last). The head compares every
           window with the tile's first (``reference``, ml.model.network), starts fresh after its
           first convolution (``head_start="fresh"``) and is trained on the whole tile
           (``loss_border=0``: a fresh head's ring, which the recipe's loss leaves out, would
           otherwise light up on tiles predicted alone). Held-out F1 on sample seeds 7-11: 0.633,
           0.631, 0.421, 0.548 and 0.293 (mean 0.505) against the index baseline's mean 0.502, with
           0-4 of 992 ring pixels flagged; without the three options 0.240 (docs/training.md, "The
           quick preset with the comparison, measured through the CLI"). On three AoIs generated
           afterwards (seeds 12-14) it loses to the index: the eight-AoI mean is 0.492 against 0.571
           (docs/training.md, "Two more AoIs: below the index on the mean"). Why not the full
           network: on two CPU cores a full step costs ~1 s per window, and neither 24-48 such steps
           (the old quick preset) nor 4 epochs of the SAR branch moved the sample's held-out scores.
``tiny``   the tiny test network built from scratch, 2 windows, 1 epoch of 2 steps: a smoke
           test of the whole worker (GUI tests), well under a minute on a CPU. Straightforward
           gradients by default: memory does not matter there, and their graph traces in about
           half the time of the lean one (``--gradients lean`` to test that path).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

from ercnn_napari.core.errors import ErcnnError

#: All 16 augmentation codes: 2 mask x 2 horizontal flip x 4 rotations (see ml.augment).
ALL_AUGMENT_CODES: tuple[int, ...] = tuple(range(16))

PRESET_NAMES = ("paper", "quick", "tiny")
FREEZE_CHOICES = ("none", "sar", "optical", "both")
REMAINDER_CHOICES = ("drop", "pad")
OPTIMIZER_CHOICES = ("sgd", "adam")
#: "val_loss" = the paper's rule; "val_f1" = the epoch with the best validation F1 at the
#: threshold (ties: lower validation loss). With few labelled tiles, some without any change,
#: the per-sample Tanimoto loss of a change-free tile only drops when every pixel is ~0, so the
#: lowest validation loss can be a model that predicts no change anywhere.
#: "last" = no selection, the last epoch is kept: with a handful of validation tiles the
#: kept epoch is close to random (their F1 does not predict held-out F1), so a fixed budget of
#: epochs is the more honest rule.
SELECT_CHOICES = ("val_loss", "val_f1", "last")
HEAD_START_CHOICES = ("baseline", "fresh")


@dataclass
class TrainConfig:
    """Everything that decides what a training run computes.

    Fields that only affect *where* things go (output folder, devices, progress mode) are not
    here, so two runs with equal configs and seeds compute the same weights.
    """

    preset: str = "paper"
    split: str = "V1"
    seed: int = 123
    epochs: int = 500
    #: None = one full pass over train tiles x augmentations; a number caps (or cycles) it.
    steps_per_epoch: int | None = None
    batch_size: int = 8                      #: per replica, as in the paper
    learning_rate: float = 0.001             #: per replica; scaled by the number of replicas
    momentum: float = 0.8
    windows_per_sample: int = 10
    first_window: int = 20
    #: Gap between consecutive windows (inclusive range). None = the paper's 45-55 scaled to
    #: the number of windows, so that any K windows span the same part of the period as 10 do.
    window_gap: tuple[int, int] | None = None
    augment_codes: tuple[int, ...] = ALL_AUGMENT_CODES
    val_augment_codes: tuple[int, ...] = ALL_AUGMENT_CODES
    val_repeats: int = 3
    #: what to do with the samples that do not fill the last global batch of an epoch
    remainder: str = "drop"
    freeze: str = "none"
    lean_gradients: bool = True
    #: train only the head on cached features of the frozen branches (needs freeze="both")
    cache_features: bool = False
    #: re-estimate the input blocks' batch-norm statistics on the run's training and validation
    #: windows before training (ml.adapt_bn); the paper lets training move them instead
    adapt_bn: bool = False
    #: give the model a reference input (ml.model.network): the head also reads each window's
    #: change since the tile's first window. A baseline that has one keeps it either way.
    reference: bool = False
    #: the head's weights at the start: "baseline" (all of them), or "fresh": the first
    #: convolution's kernel and bias from the baseline, its batch norm and the later layers from
    #: Keras' seeded initialisers (ml.training.train_setup.refresh_head)
    head_start: str = "baseline"
    optimizer: str = "sgd"
    select_by: str = "val_loss"
    #: None = the baseline's architecture; a dict (ModelConfig.to_dict()) = build from scratch
    model: dict[str, Any] | None = None
    threshold: float = 0.5
    #: pixels ignored at each tile edge in validation metrics and evaluation: 1 = the inner 30x30
    #: the recipe's loss is computed on (the outer ring sees the convolutions' padding)
    border: int = 1
    #: pixels left out at each tile edge by the training loss: None = the recipe (1 pixel; 0 with a
    #: context halo); 0 = the whole tile, so that a head trained from fresh weights also learns the
    #: ring, where the convolutions see zero padding (ml.training.train_steps.loss_border)
    loss_border: int | None = None
    #: evenly spaced windows per tile for the before/after evaluation (0 = all windows)
    eval_windows: int = 20
    evaluate: bool = True
    baseline: str | None = None
    #: context halo in pixels (``train --context N``): the network sees the tile with N pixels of
    #: its neighbours' series on every side, the loss is computed on the whole labelled centre
    #: (no border ring: it no longer sees zero padding). 0 = the paper (each tile alone).
    context: int = 0
    extra: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        data = dataclasses.asdict(self)
        data["augment_codes"] = list(self.augment_codes)
        data["val_augment_codes"] = list(self.val_augment_codes)
        data["window_gap"] = None if self.window_gap is None else list(self.window_gap)
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TrainConfig:
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - names)
        if unknown:
            raise ErcnnError(f"unknown training configuration keys {unknown}")
        values = dict(data)
        for key in ("augment_codes", "val_augment_codes"):
            if key in values:
                values[key] = tuple(int(c) for c in values[key])
        if values.get("window_gap") is not None:
            values["window_gap"] = tuple(int(g) for g in values["window_gap"])
        config = cls(**values)
        config.validate()
        return config

    def resolved_window_gap(self) -> tuple[int, int]:
        """The gap range actually used: explicit, or the paper's 45-55 scaled to K windows."""
        if self.window_gap is not None:
            return self.window_gap
        if self.windows_per_sample <= 1:
            return (45, 55)
        scale = 9.0 / (self.windows_per_sample - 1)
        return (max(1, round(45 * scale)), max(1, round(55 * scale)))

    def validate(self) -> None:
        """Refuse settings that cannot run, with a sentence that says which one."""
        problems = []
        if self.preset not in PRESET_NAMES:
            problems.append(f"preset must be one of {PRESET_NAMES}, not {self.preset!r}")
        if self.epochs < 1:
            problems.append("epochs must be at least 1")
        if self.steps_per_epoch is not None and self.steps_per_epoch < 1:
            problems.append("steps per epoch must be at least 1")
        if self.batch_size < 1:
            problems.append("batch size must be at least 1")
        if self.windows_per_sample < 1:
            problems.append("windows per sample must be at least 1")
        if self.first_window < 0:
            problems.append("first window index must not be negative")
        gap = self.resolved_window_gap()
        if gap[0] < 1 or gap[1] < gap[0]:
            problems.append(f"window gap must be a range 1 <= min <= max, not {gap}")
        if not self.augment_codes or any(c not in ALL_AUGMENT_CODES for c in self.augment_codes):
            problems.append("augmentation codes must be a non-empty subset of 0..15")
        if not self.val_augment_codes or any(c not in ALL_AUGMENT_CODES for c in self.val_augment_codes):
            problems.append("validation augmentation codes must be a non-empty subset of 0..15")
        if self.val_repeats < 1:
            problems.append("validation repeats must be at least 1")
        if self.remainder not in REMAINDER_CHOICES:
            problems.append(f"remainder must be one of {REMAINDER_CHOICES}")
        if self.freeze not in FREEZE_CHOICES:
            problems.append(f"freeze must be one of {FREEZE_CHOICES}")
        if self.optimizer not in OPTIMIZER_CHOICES:
            problems.append(f"optimizer must be one of {OPTIMIZER_CHOICES}")
        if self.head_start not in HEAD_START_CHOICES:
            problems.append(f"head start must be one of {HEAD_START_CHOICES}")
        if self.select_by not in SELECT_CHOICES:
            problems.append(f"select-by must be one of {SELECT_CHOICES}")
        if self.cache_features:
            if self.freeze != "both":
                problems.append("cached features need both branches frozen (freeze both)")
            if any(c >= 8 for c in (*self.augment_codes, *self.val_augment_codes)):
                problems.append("cached features take augmentation codes 0-7 only (no frozen columns)")
        if not 0.0 < self.threshold < 1.0:
            problems.append("threshold must be between 0 and 1")
        if self.learning_rate <= 0 or not 0.0 <= self.momentum < 1.0:
            problems.append("learning rate must be positive and momentum in [0, 1)")
        if not 0 <= self.border < 16:
            problems.append("border must be between 0 and 15 pixels")
        if self.loss_border is not None and not 0 <= self.loss_border < 16:
            problems.append("loss border must be between 0 and 15 pixels")
        if not 0 <= self.context <= 32 or self.context % 2:
            problems.append("context must be an even number of pixels from 0 to 32 (even, so that the "
                            "frozen-columns augmentation's stripes fall on the label's odd columns)")
        if self.eval_windows < 0:
            problems.append("evaluation windows must not be negative")
        if problems:
            raise ErcnnError("invalid training configuration: " + "; ".join(problems))


def preset_config(name: str) -> TrainConfig:
    """The configuration of a named preset (before command-line overrides)."""
    if name == "paper":
        return TrainConfig(preset="paper")
    if name == "quick":
        return TrainConfig(
            preset="quick", epochs=40, batch_size=8, windows_per_sample=10, freeze="both",
            cache_features=True, adapt_bn=True, optimizer="adam", learning_rate=0.001, lean_gradients=False,
            augment_codes=tuple(range(8)), val_augment_codes=(0,), val_repeats=1, eval_windows=10,
            select_by="last", reference=True, head_start="fresh", loss_border=0,
        )
    if name == "tiny":
        from ercnn_napari.ml.model.network import ModelConfig  # imports TF: only called inside a worker

        return TrainConfig(
            preset="tiny", epochs=1, steps_per_epoch=2, batch_size=2, windows_per_sample=2,
            first_window=0, val_augment_codes=(0,), val_repeats=1, eval_windows=2,
            model=ModelConfig.tiny().to_dict(), lean_gradients=False,
        )
    raise ErcnnError(f"unknown preset {name!r}; choose one of {', '.join(PRESET_NAMES)}")


def resolve_config(preset: str, overrides: dict[str, Any]) -> TrainConfig:
    """A preset with the given non-None overrides applied, validated."""
    config = preset_config(preset)
    values = config.to_dict()
    for key, value in overrides.items():
        if value is not None:
            if key not in values:
                raise ErcnnError(f"unknown training option {key!r}")
            values[key] = value
    return TrainConfig.from_dict(values)
