"""Synthetic, deterministic sample AoI inside the authors' Liège AoI.

``prepare_sample_project()`` gives a writable copy (with observations generated on demand);
``generate_sample()`` builds one from a seed. Importing this package never imports TensorFlow,
and it imports the generator (scipy, rasterio: seconds on a busy machine) only when one of these
names is used, so ``sample.site`` alone stays cheap for the command line's argument checks.
"""

from typing import Any

__all__ = ["default_sample_dir", "generate_sample", "prepare_sample_project"]


def __getattr__(name: str) -> Any:
    if name in __all__:
        from ercnn_napari.sample import prepare

        return getattr(prepare, name)
    raise AttributeError(f"module 'ercnn_napari.sample' has no attribute {name!r}")
