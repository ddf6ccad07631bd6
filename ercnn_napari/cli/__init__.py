"""The ``ercnn-napari`` command line. Each sub-command lives in ``cmd_<name>.py``."""
