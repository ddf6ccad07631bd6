"""Qt-free, TensorFlow-free core: safe to import from the napari process."""
