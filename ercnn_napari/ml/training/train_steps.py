"""The compiled per-step functions of the trainer: one optimisation step and one validation batch.

Both run under a ``tf.distribute`` strategy: the replica function gets its per-replica batch,
and the cross-replica wrapper reduces or gathers the results. With one CPU replica this is the
same code path as with 8 GPUs, which is what makes the CPU tests meaningful for the GPU runs.

Gradient scaling: Keras' optimizer SUMS gradients over replicas, whereas the paper (Horovod)
averages them and scales the learning rate by the number of workers. Each replica therefore
differentiates its mean loss divided by the number of replicas, so the sum is the average.
"""

from __future__ import annotations

from typing import Any

import tensorflow as tf

from ercnn_napari.ml.training.aggregation import max_over_windows
from ercnn_napari.ml.training.lean_gradients import lean_step_gradients, straightforward_step_gradients
from ercnn_napari.ml.training.loss import BORDER, tanimoto_complement_loss, tanimoto_complement_per_sample


def centre(maps: tf.Tensor, context: int) -> tf.Tensor:
    """The labelled tile of maps [..., H + 2c, W + 2c] predicted with a ``context`` halo."""
    return maps if not context else maps[..., context:-context, context:-context]


def loss_border(context: int, chosen: int | None = None) -> int:
    """The ring of the labelled tile the loss leaves out.

    The paper's loss skips the 1-pixel ring, which sees zero padding: a head that starts from
    trained weights keeps whatever it did there. With a context halo the ring sees neighbours and
    is trained (0). ``chosen`` (``TrainConfig.loss_border``) overrides both: 0 trains the ring of a
    head that starts fresh, which would otherwise answer there with untrained weights.
    """
    if chosen is not None:
        return chosen
    return 0 if context else BORDER


def make_train_step(strategy: Any, model: Any, optimizer: Any, lean: bool, context: int = 0,
                    border: int | None = None) -> Any:
    """``step(distributed_batch) -> mean loss over the global batch`` (a tf.function).

    ``context`` > 0: the inputs carry a halo of that many pixels around the labelled tile; the loss
    is computed on the centre (the whole tile), where the label lives. ``border``: see
    ``loss_border``.
    """
    replicas = strategy.num_replicas_in_sync
    variables = list(model.trainable_variables)
    border = loss_border(context, border)

    def scaled_loss(labels: tf.Tensor, prediction: tf.Tensor) -> tf.Tensor:
        return tanimoto_complement_loss(labels, centre(prediction, context), border=border) / float(replicas)

    def replica_step(windows: tf.Tensor, labels: tf.Tensor, weights: tf.Tensor) -> tf.Tensor:
        del weights  # training batches never hold padding samples (see training_data)
        compute = lean_step_gradients if lean else straightforward_step_gradients
        result = compute(model, windows, labels, scaled_loss, variables=variables)
        optimizer.apply_gradients(zip(result.gradients, variables, strict=True))
        return result.loss * float(replicas)

    @tf.function(reduce_retracing=True)
    def step(batch: Any) -> tf.Tensor:
        per_replica = strategy.run(replica_step, args=batch)
        return strategy.reduce(tf.distribute.ReduceOp.MEAN, per_replica, axis=None)

    return step


def make_validation_step(strategy: Any, model: Any, context: int = 0, border: int | None = None) -> Any:
    """``step(distributed_batch) -> (losses [N], weights [N], max maps [N,H,W], labels [N,H,W])``.

    Inference mode (``training=False``), as the authors validate; per-sample losses so that the
    weight-0 padding samples can be left out exactly.
    """

    def replica_step(windows: tf.Tensor, labels: tf.Tensor, weights: tf.Tensor) -> tuple[tf.Tensor, ...]:
        count = windows.shape[1]
        predictions = tf.stack([model(windows[:, k], training=False) for k in range(count)], axis=1)
        maps = centre(max_over_windows(predictions), context)
        losses = tanimoto_complement_per_sample(labels, maps, border=loss_border(context, border))
        return losses, weights, maps, labels

    @tf.function(reduce_retracing=True)
    def step(batch: Any) -> tuple[tf.Tensor, ...]:
        outputs = strategy.run(replica_step, args=batch)
        return tuple(strategy.gather(o, axis=0) for o in outputs)

    return step
