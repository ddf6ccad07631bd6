"""Bringing Sentinel-1/2 observations into a project: sources -> the stacked series of every tile.

One-way imports: ``ingest`` uses ``core`` (project, grid, errors, messages) and never ``ml``,
``napari_plugin`` or TensorFlow. Every source (a local folder with a manifest, a STAC catalogue,
Sentinel Hub) yields :class:`~ercnn_napari.ingest.scene.Scene` objects; the same reprojection, unit
conversion, cloud masking and the authors' stacking rule then apply to all of them.
"""
