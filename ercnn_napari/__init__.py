"""ercnn-napari: label urban change and fine-tune ERCNN-DRS inside napari.

The package is split so that the viewer never loads TensorFlow:

* ``ercnn_napari.core``   – Qt-free and TensorFlow-free: project/AoI model, geometry, labels,
  window tables, metrics and the typed progress messages shared by workers and viewer.
* ``ercnn_napari.ml``     – everything that imports TensorFlow/Keras: model, weights, TFRecords,
  tf.data pipelines, training, prediction, evaluation. Only command-line workers import it.
* ``ercnn_napari.sample`` – the synthetic Liège sample AoI generator.
* ``ercnn_napari.cli``    – the ``ercnn-napari`` command line (sub-commands import lazily).
* ``ercnn_napari.napari_plugin`` – the thin napari layer (manifest commands, docks).
"""

__version__ = "0.1.0"
