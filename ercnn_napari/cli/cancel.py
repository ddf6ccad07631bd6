"""The viewer's Cancel for a long command: SIGTERM ends the run like Ctrl+C, with a ``cancelled`` event.

The viewer cancels a worker by sending SIGTERM. Turning it into ``KeyboardInterrupt`` lets the
command's own ``finally`` blocks run (temp files removed, a Dask cluster closed, finished work kept),
and the ``cancelled`` event tells the viewer the run ended on request, not by a failure.
``cli.main`` turns the interrupt into exit code 130.
"""

from __future__ import annotations

import signal
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any


def _interrupt(signum: int, frame: Any) -> None:
    raise KeyboardInterrupt


@contextmanager
def cancellable(writer: Any, out: str) -> Iterator[None]:
    """Run the body with SIGTERM as KeyboardInterrupt; emit ``Finished(cancelled, out)`` if interrupted."""
    from ercnn_napari.core.messages import Finished

    previous = signal.signal(signal.SIGTERM, _interrupt)
    try:
        yield
    except KeyboardInterrupt:
        writer.emit(Finished(status="cancelled", out=out))
        raise
    finally:
        signal.signal(signal.SIGTERM, previous)
