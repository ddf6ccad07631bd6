"""Which devices a run uses and how its replicas are organised.

The authors scaled out with Horovod, one process per GPU. We use TensorFlow's own strategies so
the same training loop runs everywhere:

* one node, any number of GPUs: ``MirroredStrategy`` (one replica per visible GPU);
* several nodes: ``MultiWorkerMirroredStrategy``, configured from SLURM (one task per node,
  ``SlurmClusterResolver``) or from ``TF_CONFIG``;
* no GPU: the very same ``MirroredStrategy`` code with one CPU replica (what the tests run).

The learning rate is scaled by the number of replicas and the global batch is the per-replica
batch times replicas, as in the paper. Device selection must happen before TensorFlow touches
the GPUs, hence :func:`select_devices` works through ``CUDA_VISIBLE_DEVICES`` and is called first.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from typing import Any

from ercnn_napari.core.errors import ErcnnError


@dataclass
class ReplicaLayout:
    """What the training loop needs to know about the strategy it runs under."""

    kind: str                    #: "mirrored" or "multi_worker"
    replicas: int                #: replicas in sync across all workers
    workers: int = 1
    worker_index: int = 0
    local_replicas: int = 1
    devices: list[str] = field(default_factory=list)
    cluster_source: str = "local"  #: "local", "slurm" or "tf_config"

    @property
    def is_chief(self) -> bool:
        """Only the chief writes the run folder and emits events."""
        return self.worker_index == 0

    def to_dict(self) -> dict[str, Any]:
        return {
            "kind": self.kind, "replicas": self.replicas, "workers": self.workers,
            "worker_index": self.worker_index, "local_replicas": self.local_replicas,
            "devices": list(self.devices), "cluster_source": self.cluster_source,
        }


def parse_gpu_spec(spec: str | None) -> list[int] | None:
    """``all``/None -> None (whatever is visible), ``none`` -> [], ``0,1`` -> [0, 1]."""
    if spec is None or spec.strip().lower() in ("", "all"):
        return None
    if spec.strip().lower() in ("none", "cpu", "-1"):
        return []
    try:
        ids = [int(part) for part in spec.split(",") if part.strip()]
    except ValueError:
        raise ErcnnError(f"--gpus must be 'all', 'none' or a list of GPU numbers like 0,1; got {spec!r}") from None
    if not ids or any(i < 0 for i in ids) or len(set(ids)) != len(ids):
        raise ErcnnError(f"--gpus must list distinct GPU numbers >= 0; got {spec!r}")
    return ids


def select_devices(spec: str | None) -> None:
    """Restrict the GPUs TensorFlow will see. Call before TensorFlow initialises its devices.

    Uses ``CUDA_VISIBLE_DEVICES`` because that is honoured by every CUDA library in the process;
    ``tf.config.set_visible_devices`` would come too late once anything listed the devices.
    """
    ids = parse_gpu_spec(spec)
    if ids is None:
        return
    os.environ["CUDA_VISIBLE_DEVICES"] = ",".join(str(i) for i in ids) if ids else "-1"


def cluster_source() -> str:
    """Where a multi-worker cluster is described: "slurm", "tf_config" or "local"."""
    tf_config = os.environ.get("TF_CONFIG")
    if tf_config:
        try:
            cluster = json.loads(tf_config).get("cluster", {})
        except (json.JSONDecodeError, AttributeError):
            raise ErcnnError("TF_CONFIG is set but is not a JSON object with a 'cluster'") from None
        if sum(len(v) for k, v in cluster.items() if k in ("worker", "chief")) > 1:
            return "tf_config"
    if int(os.environ.get("SLURM_NTASKS", "1") or 1) > 1 and "SLURM_PROCID" in os.environ:
        return "slurm"
    return "local"


def task_position() -> tuple[int, int]:
    """``(this worker's index, number of workers)`` from TF_CONFIG or SLURM, without TensorFlow.

    Needed before the strategy exists: a run must know whether it is the chief before it creates
    (or leaves alone) the run folder. A TF_CONFIG cluster with a ``chief`` task counts the chief
    as worker 0 and ``worker`` i as i + 1, so that worker 0 is always the one that writes.
    """
    source = cluster_source()
    if source == "tf_config":
        spec = json.loads(os.environ["TF_CONFIG"])
        cluster, task = spec.get("cluster", {}), spec.get("task", {}) or {}
        chiefs = len(cluster.get("chief", []))
        count = chiefs + len(cluster.get("worker", []))
        kind, index = task.get("type", "worker"), int(task.get("index", 0) or 0)
        if kind not in ("chief", "worker"):
            raise ErcnnError(f"TF_CONFIG task type {kind!r} cannot train; use 'worker' (or 'chief')")
        return (index if kind == "chief" else chiefs + index), count
    if source == "slurm":
        return int(os.environ["SLURM_PROCID"]), int(os.environ["SLURM_NTASKS"])
    return 0, 1


def make_strategy(tf: Any | None = None) -> tuple[Any, ReplicaLayout]:
    """Build the strategy for this process and describe its replica layout.

    ``tf`` may be passed to avoid a second import in callers that already have it.
    """
    if tf is None:
        import tensorflow as tf
    source = cluster_source()
    if source == "local":
        gpus = tf.config.list_logical_devices("GPU")
        devices = [d.name for d in gpus] or ["/cpu:0"]
        strategy = tf.distribute.MirroredStrategy(devices=devices)
        layout = ReplicaLayout(kind="mirrored", replicas=strategy.num_replicas_in_sync,
                               local_replicas=strategy.num_replicas_in_sync, devices=devices)
        return strategy, layout
    if source == "slurm":
        gpus_per_node = _slurm_gpus_per_node()
        resolver = tf.distribute.cluster_resolver.SlurmClusterResolver(
            port_base=int(os.environ.get("ERCNN_NAPARI_PORT_BASE", "8888")),
            gpus_per_node=gpus_per_node, gpus_per_task=gpus_per_node, auto_set_gpu=gpus_per_node > 0,
        )
    else:
        resolver = tf.distribute.cluster_resolver.TFConfigClusterResolver()
    strategy = tf.distribute.MultiWorkerMirroredStrategy(cluster_resolver=resolver)
    task_id, workers = task_position()
    local = max(1, strategy.num_replicas_in_sync // workers)
    devices = [d.name for d in tf.config.list_logical_devices("GPU")] or ["/cpu:0"]
    layout = ReplicaLayout(kind="multi_worker", replicas=strategy.num_replicas_in_sync, workers=workers,
                           worker_index=task_id, local_replicas=local, devices=devices,
                           cluster_source=source)
    return strategy, layout


def make_stop_agreement(strategy: Any, workers: int, tf: Any) -> Any:
    """``agree(flag: bool) -> bool``: True on every worker as soon as one of them wants to stop.

    SIGTERM reaches the workers of a cluster job at slightly different moments; a worker that
    stopped alone would leave the others blocked in the next step's all-reduce for ever. Every
    worker therefore calls this at the same points of the loop (one tiny all-reduce) and all
    stop after the same step. One worker (no cluster) needs no agreement.
    """
    if workers <= 1:
        return bool

    @tf.function
    def votes(flag: Any) -> Any:  # ReduceOp has no MAX: count the workers that want to stop
        per_replica = strategy.run(lambda: tf.identity(flag))
        return strategy.reduce(tf.distribute.ReduceOp.SUM, per_replica, axis=None)

    return lambda flag: bool(votes(tf.constant(1.0 if flag else 0.0)).numpy() > 0.0)


def make_statistics_sync(strategy: Any, variables: list[Any], tf: Any) -> Any:
    """``sync()``: replace every replica's copy of ``variables`` by their mean over all replicas.

    For the non-trainable floating-point variables, i.e. the batch-norm moving statistics: Keras
    keeps one copy per replica (aggregation "none") and each replica updates its copy from its own
    part of the batch, so the copies drift apart (seen on the first real two-worker run: the
    trainable weights were equal to the bit, the moving variances differed by up to 7e-3).
    Validation, which runs on every replica, would then score a different model on each, and
    the chief would save its own statistics only. Averaging once per epoch, before validation
    (as timm's ``distribute_bn`` does), makes every replica hold the same model. One replica:
    nothing to do.
    """
    stats = [v for v in variables if "float" in str(v.dtype)]  # Keras 3 dtypes are strings
    if strategy.num_replicas_in_sync <= 1 or not stats:
        return lambda: None

    @tf.function
    def sync() -> None:
        local = strategy.run(lambda: [tf.identity(v) for v in stats])  # each replica's own copy
        for variable, copies in zip(stats, local, strict=True):  # one by one: a multi-worker reduce
            mean = strategy.reduce(tf.distribute.ReduceOp.MEAN, copies, axis=None)  # packs lists
            variable.assign(mean)  # cross-replica assign: every local copy

    return sync


def worker_weight_spread(strategy: Any, variables: list[Any], tf: Any) -> float:
    """Largest difference of any weight between the workers' copies (0.0 = all in sync).

    Data parallelism keeps one copy of the model per replica and relies on every replica
    applying the same all-reduced update. This checks it at the end of a run by gathering every
    floating-point variable from all replicas (an all-gather; there is no max/min all-reduce)
    and comparing the copies element by element; the chief records
    the result, so a desynchronised cluster shows in the run folder rather than going unnoticed.
    """
    floats = [v for v in variables if "float" in str(v.dtype)]  # Keras 3 dtypes are strings
    if not floats:
        return 0.0

    @tf.function
    def spread() -> Any:
        local = strategy.run(lambda: [tf.reshape(tf.cast(v, tf.float64), [1, -1]) for v in floats])
        copies = [strategy.gather(v, axis=0) for v in local]  # [replicas, size] each
        return tf.reduce_max(tf.stack([tf.reduce_max(tf.reduce_max(c, 0) - tf.reduce_min(c, 0)) for c in copies]))

    return float(spread().numpy())


def _slurm_gpus_per_node() -> int:
    """GPUs SLURM gave each node (0 if none), from the variables srun/sbatch set."""
    for name in ("SLURM_GPUS_ON_NODE", "SLURM_GPUS_PER_NODE", "SLURM_GPUS_PER_TASK"):
        value = os.environ.get(name, "")
        digits = value.split(":")[-1].split("(")[0]
        if digits.isdigit():
            return int(digits)
    visible = os.environ.get("CUDA_VISIBLE_DEVICES", "")
    if visible and visible != "-1":
        return len([v for v in visible.split(",") if v.strip()])
    return 0


def scaled_learning_rate(base: float, replicas: int) -> float:
    """The paper's rule: lr = 0.001 x number of workers (here: replicas in sync)."""
    return base * max(1, replicas)


def environment_info(tf: Any, layout: ReplicaLayout) -> dict[str, Any]:
    """What environment.json records: versions, devices and the cluster, for reproducibility."""
    import platform

    import keras
    import numpy as np

    build = {}
    try:
        build = {k: str(v) for k, v in tf.sysconfig.get_build_info().items()
                 if k in ("cuda_version", "cudnn_version", "is_cuda_build")}
    except Exception:  # noqa: BLE001 - build info is informative only
        build = {}
    return {
        "python": platform.python_version(),
        "platform": platform.platform(),
        "tensorflow": tf.__version__,
        "keras": keras.__version__,
        "numpy": np.__version__,
        "build": build,
        "physical_devices": [d.name for d in tf.config.list_physical_devices()],
        "cuda_visible_devices": os.environ.get("CUDA_VISIBLE_DEVICES"),
        "cpu_count": os.cpu_count(),
        "strategy": layout.to_dict(),
        "slurm_job_id": os.environ.get("SLURM_JOB_ID"),
    }
