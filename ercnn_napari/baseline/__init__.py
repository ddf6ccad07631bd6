"""The index-difference baseline: what a remote-sensing reviewer compares a change detector with.

numpy only (no TensorFlow, no Qt): ``index_diff`` computes per-pixel change scores from a tile's
stacked observations, ``fit`` picks thresholds on training labels, ``stacked_reader`` reads the
stage-2 files without TensorFlow, ``run`` ties them to a project. Imports flow one way:
baseline -> core.
"""
