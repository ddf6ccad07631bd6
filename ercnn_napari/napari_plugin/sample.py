"""npe2 sample data: the synthetic Liège AoI (reference pair, tile grid and labels).

The sample is copied into a writable cache folder first (the installed package may be read-only),
so the analyst can paint on it straight away. Observations are not generated here: that needs
TensorFlow, which the viewer process never loads; the docks start ``ercnn-napari sample`` in a
worker process when a fine-tune or prediction needs them.
"""

from __future__ import annotations

from typing import Any


def sample_liege() -> list[tuple[Any, dict[str, Any], str]]:
    """Layers of the sample AoI project (see :func:`ercnn_napari.sample.prepare_sample_project`)."""
    from ercnn_napari.core.project import Project
    from ercnn_napari.napari_plugin.project_layers import project_layer_data
    from ercnn_napari.sample import prepare_sample_project

    root = prepare_sample_project(with_observations=False)
    return project_layer_data(Project.open(root))
