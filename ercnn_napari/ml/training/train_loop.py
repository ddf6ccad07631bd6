"""The epoch/step loop of a training run, with checkpoints, cancellation and the final evaluation.

ml.train prepares the inputs and decides how the process ends; this class owns the TensorFlow
objects (strategy, model, optimizer, checkpoint) for the life of one run. State that must survive
a cancel is in two places: the ``tf.train.Checkpoint`` (model incl. batch-norm statistics and
dropout seed state, optimizer incl. momentum and iteration count) and ``state.json`` (epoch, step,
partial epoch loss, best validation loss, metrics rows), written after the checkpoint.
"""

from __future__ import annotations

import shutil
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import tensorflow as tf

from ercnn_napari.core.errors import ErcnnError, ProjectError
from ercnn_napari.core.messages import Checkpoint, Epoch, Finished, Progress, Stage, Started, Step, Validation
from ercnn_napari.core.metrics import Confusion
from ercnn_napari.core.tiles import format_tile_id
from ercnn_napari.ml.inference.evaluate import evenly_spaced
from ercnn_napari.ml.model.network import ModelConfig, random_state_variables
from ercnn_napari.ml.model.weights import read_config, save_model
from ercnn_napari.ml.training import train as train_module
from ercnn_napari.ml.training.aggregation import WindowSelection, select_window_indices
from ercnn_napari.ml.training.augment import augment
from ercnn_napari.ml.training.distribute import (
    environment_info,
    make_statistics_sync,
    make_stop_agreement,
    make_strategy,
    scaled_learning_rate,
    worker_weight_spread,
)
from ercnn_napari.ml.training.frozen_backbone import FeatureCache, feature_augment, split_model
from ercnn_napari.ml.training.run_folder import strict_json
from ercnn_napari.ml.training.train_setup import (
    apply_freeze,
    build_start_model,
    preflight,
    refresh_head,
    refuse_if_too_big,
)
from ercnn_napari.ml.training.train_steps import make_train_step, make_validation_step
from ercnn_napari.ml.training.training_data import SamplingPlan, WindowReader, make_dataset, replica_order


class TrainingLoop:
    """One run: ``execute()`` trains from the start or from the resume state to the end."""

    def __init__(self, run: Any, project: Any, source: Any, inputs: Any, config: Any, sink: Any,
                 stop: Any, resuming: bool, distribution: tuple[Any, Any] | None = None) -> None:
        """``distribution``: ``make_strategy()``'s result, made by the caller before TensorFlow ran
        anything (a multi-worker strategy cannot be made later); None makes it here."""
        self.run, self.project, self.source, self.inputs = run, project, source, inputs
        self.distribution = distribution
        self.config, self.sink, self.stop, self.resuming = config, sink, stop, resuming
        self.state: dict[str, Any] = {"epoch": 0, "step": 0, "epoch_loss_sum": 0.0, "epoch_steps": 0,
                                      "epoch_seconds": 0.0, "best_val_loss": None, "best_epoch": None,
                                      "metrics": []}
        self.scratch: Path | None = None  #: a non-chief worker's private checkpoint folder
        #: the phases this run announces with ``stage`` events (set when the run starts)
        self.stages: list[str] = []

    # ---- setup -------------------------------------------------------------------------------
    def _model_config(self) -> ModelConfig:
        """The architecture: the baseline's (or ``model``'s), with a reference input if asked for."""
        config = (ModelConfig.from_dict(self.config.model) if self.config.model is not None
                  else read_config(self.config.baseline))
        if self.config.reference and not config.reference:
            config = ModelConfig.from_dict({**config.to_dict(), "reference": True})
        return config

    def _plan(self) -> None:
        """Strategy, model configuration and batch plan: what the ``started`` event announces."""
        cfg = self.config
        self.strategy, self.layout = self.distribution or make_strategy(tf)
        self.sink.chief = self.layout.is_chief
        self.sink.run = self.run if self.layout.is_chief else None
        self.agree = make_stop_agreement(self.strategy, self.layout.workers, tf)
        self.model_config = self._model_config()
        gap = cfg.resolved_window_gap()
        self.selection = WindowSelection(first=cfg.first_window, step_low=gap[0], step_high=gap[1] + 1,
                                         count=cfg.windows_per_sample)
        self.plan = SamplingPlan(
            self.inputs.train_tiles, self.inputs.val_tiles, self.inputs.n_windows, self._choose_windows,
            seed=cfg.seed, global_batch=cfg.batch_size * self.layout.replicas, augment_codes=cfg.augment_codes,
            val_augment_codes=cfg.val_augment_codes, val_repeats=cfg.val_repeats,
            steps_per_epoch=cfg.steps_per_epoch, remainder=cfg.remainder)
        if self.resuming:
            self.state.update(self.run.read_json(self.run.resume_state_json))

    def _build(self, check_memory: bool) -> None:
        """Memory check, then model, optimizer, checkpoint, data reader and compiled steps."""
        cfg, run = self.config, self.run
        if cfg.context > self.project.grid.tile_size:
            raise ProjectError(f"--context {cfg.context} is larger than a tile ({self.project.grid.tile_size} "
                             "pixels); the halo comes from the neighbouring tiles only", self.project.root)
        message = preflight(self.model_config, cfg, self.layout,
                            tile_size=self.project.grid.tile_size + 2 * cfg.context,
                            tiles=len(set(self.inputs.train_tiles) | set(self.inputs.val_tiles)))
        self.sink.emit(message)
        if check_memory:
            refuse_if_too_big(message, run.root)
        self._stage(self.stages, "building the model")
        self.learning_rate = scaled_learning_rate(cfg.learning_rate, self.layout.replicas)
        with self.strategy.scope():
            baseline = None if cfg.model is not None else Path(cfg.baseline)
            self.model = build_start_model(tf, self.model_config, baseline, cfg.seed)
            self.frozen = apply_freeze(self.model, cfg.freeze)
            self.trained = self.model
            if cfg.cache_features:  # the frozen branches' output is cached; the head is trained
                self.backbone, self.trained = split_model(self.model)
            self.optimizer = train_module.make_optimizer(cfg, self.learning_rate)
            self.optimizer.build(self.trained.trainable_variables)
        self.checkpoint = tf.train.Checkpoint(model=self.model, optimizer=self.optimizer,
                                              rng=random_state_variables(self.model))
        if not self.layout.is_chief:
            # Every worker saves at the same points (as TensorFlow's multi-worker guide has it), but
            # only the chief's copy is kept: the others write to a private temporary folder (in
            # their TMPDIR, node-local on a cluster), removed when the run ends.
            self.scratch = Path(tempfile.mkdtemp(prefix=f"ercnn-worker{self.layout.worker_index}-"))
        resume_dir = run.resume_dir if self.scratch is None else self.scratch
        self.manager = tf.train.CheckpointManager(self.checkpoint, str(resume_dir), max_to_keep=2)
        # cached features need each tile's series once, to fill the cache: not held for the whole run
        self.reader = WindowReader(self.source, self.inputs.train_tiles + self.inputs.val_tiles,
                                   self.model_config.time_steps, preload=not cfg.cache_features,
                                   context=cfg.context, reference=self.model_config.reference)
        if self.resuming:
            self._restore()
        else:
            if self.layout.is_chief:
                self._write_run_description()  # the baseline saved there is the "before": as given
            if cfg.head_start == "fresh":  # every worker alike (seeded); a resumed run has it restored
                refresh_head(self.model, cfg.seed)
        self.cache = None
        if cfg.cache_features:
            self.cache = FeatureCache(self.backbone, self.reader.observations, reference=self.model_config.reference)

        lean = cfg.lean_gradients and not cfg.cache_features
        self.train_step = make_train_step(self.strategy, self.trained, self.optimizer, lean, cfg.context,
                                          cfg.loss_border)
        self.val_step = make_validation_step(self.strategy, self.trained, cfg.context, cfg.loss_border)
        self.sync_statistics = make_statistics_sync(self.strategy, self.model.non_trainable_variables, tf)

    def _adapt_batch_norm(self) -> None:
        """Re-estimate the input blocks' batch-norm statistics on this run's windows (ml.training.adapt_bn)."""
        from ercnn_napari.ml.training.adapt_bn import adapt_run_batch_norm

        adapt_run_batch_norm(self)

    def _choose_windows(self, n_windows: int, rng: np.random.Generator) -> np.ndarray:
        if self.config.cache_features:  # a fixed set per tile, so that its features can be cached
            return evenly_spaced(n_windows, self.config.windows_per_sample)
        return select_window_indices(n_windows, rng, self.selection, path=str(self.project.observations_path()))

    def _write_run_description(self) -> None:
        run, cfg = self.run, self.config
        run.write_json(run.config_json, {
            "train": cfg.to_dict(), "model_config": self.model_config.to_dict(), "project": str(self.project.root),
            "replicas": self.layout.replicas, "global_batch": self.plan.global_batch,
            "learning_rate_scaled": self.learning_rate, "steps_per_epoch": self.plan.steps_per_epoch,
            "plan": self.plan.describe(), "frozen_layers": self.frozen,
            "window_selection": vars(self.selection) | {"step_high_exclusive": True},
        })
        run.write_json(run.inputs_json, self.inputs.to_dict(self.project.root, cfg.split))
        run.write_json(run.environment_json, environment_info(tf, self.layout))
        save_model(self.model, self.model_config, run.baseline_model, self._metadata("baseline", None, None))

    def _restore(self) -> None:
        prefix = self.run.resume_dir / self.state.pop("checkpoint")
        status = self.checkpoint.read(str(prefix))
        status.assert_existing_objects_matched()
        del status

    def _metadata(self, kind: str, epoch: int | None, val_loss: float | None) -> dict[str, Any]:
        return {"kind": kind, "epoch": epoch, "val_loss": val_loss, "split": self.config.split,
                "context": 0 if kind == "baseline" else self.config.context,  # the halo predict/map use
                "preset": self.config.preset, "baseline": self.config.baseline, "run": str(self.run.root),
                "train_tiles": [format_tile_id(t) for t in self.inputs.train_tiles]}

    # ---- data --------------------------------------------------------------------------------
    def _load(self, sample: Any) -> tuple[np.ndarray, np.ndarray]:
        if self.cache is not None:
            return self.cache.features(sample.tile, sample.windows), self.inputs.labels[sample.tile]
        return self.reader.windows(sample.tile, sample.windows), self.inputs.labels[sample.tile]

    def _fill_cache(self) -> bool:
        """Compute the frozen backbone's features of every tile's windows; False if stopped."""
        n = self.config.windows_per_sample
        wanted = {tile: [int(i) for i in evenly_spaced(self.inputs.n_windows[tile], n)]
                  for tile in dict.fromkeys(self.inputs.train_tiles + self.inputs.val_tiles)}
        started = time.perf_counter()

        def on_tile(done: int, total: int, tile: Any) -> bool:
            self.sink.emit(Progress(done=done, total=total, unit="tiles",
                                    desc=f"frozen-branch features of tile {format_tile_id(tile)}"))
            return not self._stop_requested()

        if not self.cache.fill(wanted, on_tile):
            return False
        total = len(wanted)
        self.sink.emit(Progress(done=total, total=total, unit="tiles", desc=(
            f"cached {len(self.cache)} window features ({self.cache.nbytes / 2**20:.0f} MiB) "
            f"in {time.perf_counter() - started:.0f} s")))
        return True

    def _distributed(self, batches: list, with_augment: bool = True) -> Any:
        cfg, layout = self.config, self.layout
        samples = replica_order(batches, cfg.batch_size, layout.worker_index, layout.local_replicas)
        tile = self.project.grid.tile_size
        seen = tile + 2 * cfg.context  # what the network sees: the tile and its context halo
        if self.cache is not None:
            shape = (cfg.windows_per_sample, seen, seen, int(self.trained.input_shape[-1]))
            augmenter = feature_augment
        else:
            shape = (cfg.windows_per_sample, self.model_config.time_steps, seen, seen, self.model_config.input_channels)
            augmenter = augment

        def dataset_fn(context: Any) -> Any:
            return make_dataset(samples, self._load, cfg.batch_size, shape, augmenter if with_augment else None,
                                label_shape=(tile, tile))

        return self.strategy.distribute_datasets_from_function(dataset_fn)

    # ---- the loop ----------------------------------------------------------------------------
    def _stage(self, stages: list[str], name: str) -> None:
        """Tell the viewer which phase begins (start-up and caching can take minutes on a CPU)."""
        index = stages.index(name) + 1 if name in stages else 0
        self.sink.emit(Stage(name=name, index=index, count=len(stages)))

    def _stop_requested(self) -> bool:
        """A stop (SIGTERM/SIGINT) asked of any worker stops all of them at this same point."""
        return self.agree(self.stop())

    def execute(self, check_memory: bool) -> int:
        try:
            self._plan()
            cfg, plan, st = self.config, self.plan, self.state
            resumed_at = {"epoch": st["epoch"] + 1, "step": st["step"] + 1} if self.resuming else None
            self.sink.emit(Started(run_dir=str(self.run.root), devices=self.layout.devices,
                                   replicas=self.layout.replicas, epochs=cfg.epochs,
                                   steps_per_epoch=plan.steps_per_epoch, total=cfg.epochs * plan.steps_per_epoch,
                                   config=cfg.to_dict() | {"plan": plan.describe(), "resumed_at": resumed_at}))
            self.stages = stages = (["building the model"]
                                    + (["adapting batch-norm statistics"] if cfg.adapt_bn and not self.resuming else [])
                                    + (["caching frozen-branch features"] if cfg.cache_features else [])
                                    + ["training"] + (["evaluating before/after"] if cfg.evaluate else []))
            self._build(check_memory)  # announces its stage after the memory pre-flight
            if cfg.adapt_bn and not self.resuming:
                self._stage(stages, "adapting batch-norm statistics")
                self._adapt_batch_norm()
            if self.cache is not None:
                self._stage(stages, "caching frozen-branch features")
                if not self._fill_cache():
                    return self._cancelled()
            self.writers = self._tensorboard()
            self._stage(stages, "training")
            while st["epoch"] < cfg.epochs:
                if not self._train_epoch() or not self._end_epoch():
                    return self._cancelled()
            return self._finish()
        except (tf.errors.ResourceExhaustedError, MemoryError) as exc:
            raise train_module.out_of_memory(exc, self.run) from exc
        finally:
            if self.scratch is not None:
                shutil.rmtree(self.scratch, ignore_errors=True)

    def _tensorboard(self) -> dict[str, Any]:
        if not self.layout.is_chief:
            return {}
        return {name: tf.summary.create_file_writer(str(self.run.tensorboard_dir / name)) for name in ("train", "val")}

    def _scalar(self, writer: str, name: str, value: float, step: int) -> None:
        if writer in self.writers:
            with self.writers[writer].as_default():
                tf.summary.scalar(name, value, step=step)

    def _train_epoch(self) -> bool:
        """Train the remaining steps of the current epoch; False if a stop was requested."""
        st, steps = self.state, self.plan.steps_per_epoch
        if st["step"] >= steps:
            return True
        epoch = st["epoch"]
        iterator = iter(self._distributed(self.plan.train_steps(epoch, st["step"], steps)))
        for step in range(st["step"], steps):
            started = time.perf_counter()
            batch = next(iterator)
            wait = time.perf_counter() - started
            loss = float(self.train_step(batch))
            seconds = time.perf_counter() - started
            if not np.isfinite(loss):
                raise ErcnnError(f"training diverged at epoch {epoch + 1} step {step + 1} (loss {loss}); "
                                 f"lower the learning rate", self.run.root)
            st["epoch_loss_sum"] += loss
            st["epoch_steps"] += 1
            st["epoch_seconds"] += seconds
            st["step"] = step + 1
            self.sink.emit(Step(epoch=epoch + 1, step=step + 1, steps_per_epoch=steps, loss=loss,
                                seconds=seconds, input_wait_seconds=wait))
            self._scalar("train", "loss_step", loss, epoch * steps + step + 1)
            if self._stop_requested():
                return False
        return True

    def _validate(self) -> tuple[float, dict[str, float]] | None:
        """Loss and metrics over all validation batches; None if a stop was requested."""
        loss_sum = weight_sum = 0.0
        counts = Confusion()
        for batch in self._distributed(self.plan.validation_batches()):
            losses, weights, maps, labels = (np.asarray(t) for t in self.val_step(batch))
            loss_sum += float(np.sum(losses * weights))
            weight_sum += float(np.sum(weights))
            counts = counts + train_module.confusion_of_batch(maps, labels, weights, self.config.threshold,
                                                              self.config.border)
            if self._stop_requested():
                return None
        return train_module.validation_summary(loss_sum, weight_sum, counts)

    def _end_epoch(self) -> bool:
        """Validate, checkpoint and log the epoch that just finished; False if stopped."""
        st, cfg, run = self.state, self.config, self.run
        epoch = st["epoch"]
        train_loss = st["epoch_loss_sum"] / max(1, st["epoch_steps"])
        self.sync_statistics()  # every replica validates and saves the same model
        val_loss, metrics = None, {}
        if self.plan.val_tiles:
            result = self._validate()
            if result is None:
                return False
            val_loss, metrics = result
            self.sink.emit(Validation(epoch=epoch + 1, loss=val_loss, metrics=strict_json(metrics)))
            self._scalar("val", "loss", val_loss, epoch + 1)
        self._scalar("train", "loss", train_loss, epoch + 1)
        is_best = train_module.is_better(cfg.select_by, val_loss, metrics, st)
        if self.layout.is_chief:
            save_model(self.model, self.model_config, run.last_model, self._metadata("last", epoch + 1, val_loss))
            self.sink.emit(Checkpoint(epoch=epoch + 1, kind="last", path=str(run.last_model)))
            if is_best:
                save_model(self.model, self.model_config, run.best_model, self._metadata("best", epoch + 1, val_loss))
                self.sink.emit(Checkpoint(epoch=epoch + 1, kind="best", path=str(run.best_model)))
        if is_best:
            st["best_val_loss"], st["best_epoch"] = val_loss, epoch + 1
            st["best_val_f1"] = metrics.get("f1")
        st["metrics"] = [r for r in st["metrics"] if int(r["epoch"]) <= epoch] + [{
            "epoch": epoch + 1, "train_loss": train_loss, "val_loss": val_loss,
            **{f"val_{k}": v for k, v in metrics.items()}, "learning_rate": self.learning_rate,
            "seconds": st["epoch_seconds"], "best": int(is_best)}]
        if self.layout.is_chief:
            run.write_metrics(st["metrics"])
        self.sink.emit(Epoch(epoch=epoch + 1, epochs=cfg.epochs, train_loss=train_loss, val_loss=val_loss,
                             seconds=st["epoch_seconds"], best=is_best))
        st.update(epoch=epoch + 1, step=0, epoch_loss_sum=0.0, epoch_steps=0, epoch_seconds=0.0)
        self._save_resume()
        return not self._stop_requested()

    def _save_resume(self) -> None:
        self._saved_at = (self.state["epoch"], self.state["step"])
        path = Path(self.manager.save())
        if self.layout.is_chief:
            self.run.write_json(self.run.resume_state_json, {**self.state, "checkpoint": path.name})
            self.sink.emit(Checkpoint(epoch=self.state["epoch"], kind="resume", path=str(self.run.resume_dir)))

    def _cancelled(self) -> int:
        st = self.state
        if getattr(self, "_saved_at", None) != (st["epoch"], st["step"]):
            self._save_resume()
        self.sink.emit(Finished(status="cancelled", out=str(self.run.root), summary={
            "signal": self.stop.signal_name, "epoch": st["epoch"], "step": st["step"],
            "resume": f"ercnn-napari train --resume {self.run.root}"}))
        return train_module.EXIT_CANCELLED

    # ---- the end -----------------------------------------------------------------------------
    def _finish(self) -> int:
        run, st = self.run, self.state
        spread = None
        if self.layout.workers > 1:  # collective: every worker takes part before any leaves
            spread = worker_weight_spread(self.strategy, self.model.weights, tf)
        if not self.layout.is_chief:
            return 0
        train_module.copy_model_file(run.best_model, run.final_model)
        summary: dict[str, Any] = {"best_epoch": st["best_epoch"], "best_val_loss": st["best_val_loss"],
                                   "model": str(run.final_model)}
        if spread is not None:
            summary["worker_weight_spread"] = spread
        if self.config.evaluate:
            self._stage(self.stages, "evaluating before/after")
            evaluation = self._evaluate()
            if evaluation is None:
                return self._cancelled()
            index = evaluation.get("index_baseline", {}).get("sets", {})
            summary["evaluation"] = {name: {"before_f1": s["before"]["overall"]["f1"],
                                            "after_f1": s["after"]["overall"]["f1"],
                                            "index_f1": index.get(name, {}).get("overall", {}).get("f1")}
                                     for name, s in evaluation["sets"].items()}
        self.sink.emit(Finished(status="completed", out=str(run.root), summary=strict_json(summary)))
        return 0

    def _evaluate(self) -> dict[str, Any] | None:
        """Baseline vs final model on the validation and test tiles -> evaluation.json (ml.training.run_evaluation)."""
        from ercnn_napari.ml.training.run_evaluation import evaluate_run

        return evaluate_run(self)
