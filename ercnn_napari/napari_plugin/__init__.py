"""The napari layer: manifest commands and dock widgets. Never imports TensorFlow."""
