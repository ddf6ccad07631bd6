"""TensorFlow/Keras side of ercnn-napari.

Importing anything below this package loads TensorFlow. It is used by the command line and by
worker processes only; the napari process must never import it (software OpenGL and TensorFlow's
LLVM symbols clash, see docs/architecture.md).
"""
