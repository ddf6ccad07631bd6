"""Whole-AoI change maps: plan, Dask tasks, mosaic outputs (the driver side imports no TensorFlow)."""
