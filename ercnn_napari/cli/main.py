"""Entry point of ``ercnn-napari``: finds the sub-commands and turns errors into one clear line.

A sub-command is a module ``ercnn_napari/cli/cmd_<name>.py`` that defines ``NAME``, ``HELP``,
``add_arguments(parser)`` and ``run(args) -> int``. Modules must stay cheap to import (no
TensorFlow at import time) so that ``--help`` is instant; heavy imports happen inside ``run``.

Errors a user can act on (:class:`~ercnn_napari.core.errors.ErcnnError`) are printed as
``ercnn-napari: error: <file>: <what is wrong>`` and exit with code 2; with ``--progress json``
the same sentence is also sent as an ``error`` event so the viewer can show it.
"""

from __future__ import annotations

import argparse
import importlib
import pkgutil
import sys
from collections.abc import Sequence
from types import ModuleType

from ercnn_napari import __version__
from ercnn_napari.core.errors import ErcnnError
from ercnn_napari.core.messages import Error, MessageWriter

EXIT_USER_ERROR = 2
EXIT_INTERRUPTED = 130


def _command_modules() -> list[ModuleType]:
    import ercnn_napari.cli as package

    names = sorted(m.name for m in pkgutil.iter_modules(package.__path__) if m.name.startswith("cmd_"))
    return [importlib.import_module(f"ercnn_napari.cli.{name}") for name in names]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="ercnn-napari",
        description="Label urban change and fine-tune the ERCNN-DRS change detector "
        "(napari plugin and headless command line).",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for module in _command_modules():
        cmd = sub.add_parser(module.NAME, help=module.HELP, description=module.HELP)
        module.add_arguments(cmd)
        cmd.set_defaults(_run=module.run)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args._run(args) or 0)
    except ErcnnError as exc:
        if getattr(args, "progress", None) == "json":
            MessageWriter("json", job=args.command).emit(Error(message=str(exc), kind=exc.kind, path=exc.path))
        print(f"ercnn-napari: error: {exc}", file=sys.stderr)
        return EXIT_USER_ERROR
    except KeyboardInterrupt:
        print("ercnn-napari: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED


if __name__ == "__main__":  # pragma: no cover - python -m ercnn_napari.cli.main
    sys.exit(main())
