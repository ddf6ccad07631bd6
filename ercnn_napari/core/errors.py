"""Errors that carry the file they are about.

Every problem with an analyst's input (a truncated TFRecord, a label GeoTIFF in the wrong CRS, a
foreign model file, NaNs) is raised as an :class:`ErcnnError`. The command line prints it as one
line and exits non-zero; workers send it as an ``error`` event; the viewer shows it as a
notification. Nothing below should ever reach a user as a traceback.
"""

from __future__ import annotations

import os


class ErcnnError(Exception):
    """A problem a user can act on, with the file it concerns.

    ``str(error)`` is ``"<path>: <message>"`` when a path is known, else just the message.
    ``kind`` is a short machine-readable category used by the progress messages.
    """

    kind = "error"

    def __init__(self, message: str, path: str | os.PathLike | None = None) -> None:
        self.message = message
        self.path = None if path is None else os.fspath(path)
        super().__init__(self.__str__())

    def __str__(self) -> str:
        return f"{self.path}: {self.message}" if self.path else self.message


class InputDataError(ErcnnError):
    """Observation data (TFRecords, windows) that cannot be used as they are."""

    kind = "bad_input"


class ModelFileError(ErcnnError):
    """A model/weights file that is missing, foreign, truncated or mismatched."""

    kind = "bad_weights"


class ProjectError(ErcnnError):
    """A project folder, project file, split list or tile id that is not usable."""

    kind = "bad_project"


class LabelError(ErcnnError):
    """A label file whose shape, CRS or grid position does not match its tile."""

    kind = "bad_label"


class ResourceError(ErcnnError):
    """A run that cannot fit in the memory or devices that are there."""

    kind = "out_of_memory"
