"""``python -m ercnn_napari`` is the same as the ``ercnn-napari`` command."""

import sys

from ercnn_napari.cli.main import main

sys.exit(main())
