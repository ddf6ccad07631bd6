"""Synthetic, deterministic sample AoI inside the authors' Liège AoI.

``prepare_sample_project()`` gives a writable copy (with observations generated on demand);
``generate_sample()`` builds one from a seed. Importing this package never imports TensorFlow.
"""

from ercnn_napari.sample.prepare import default_sample_dir, generate_sample, prepare_sample_project

__all__ = ["default_sample_dir", "generate_sample", "prepare_sample_project"]
