"""Check, in a throw-away process, that Qt can open its platform plugin before ``demo`` does work.

Why a separate process: when Qt cannot load its platform plugin it aborts the whole process
(``qFatal``, exit 134) with a message that often blames the wrong library (PyQt6 6.11 names
``libxcb-cursor0`` even when ``libxcb-icccm4`` is what is missing). ``demo`` used to find out only
after minutes of sample generation. The probe below costs a fraction of a second: it creates a
``QGuiApplication`` with ``QT_DEBUG_PLUGINS=1`` (the plugin, the platform and the dynamic
loader's real complaint are then printed), and on failure :func:`explain` turns that output into
one sentence naming the library and the Debian package that provides it. ``ldd`` on the plugin
then lists every other library it lacks, so one ``apt-get install`` fixes all of them at once.

No Qt is imported here: the caller may be a process that must stay free of it.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass

from ercnn_napari.core.errors import ErcnnError

#: What the probe runs: the same binding selection (qtpy) and the same platform choice as napari.
PROBE = ("import sys\n"
         "from qtpy.QtGui import QGuiApplication\n"
         "app = QGuiApplication(sys.argv[:1])\n"
         "print('ercnn-qt-platform=' + app.platformName(), flush=True)\n")

#: Shared libraries Qt's platform plugins and the viewer need -> the Debian/Ubuntu package.
#: Anything else falls back to Debian's naming rule (see :func:`debian_package`).
PACKAGES = {
    "libGL.so.1": "libgl1", "libEGL.so.1": "libegl1", "libGLX.so.0": "libglx0",
    "libOpenGL.so.0": "libopengl0", "libGLdispatch.so.0": "libglvnd0",
    "libdbus-1.so.3": "libdbus-1-3", "libfontconfig.so.1": "libfontconfig1",
    "libfreetype.so.6": "libfreetype6", "libglib-2.0.so.0": "libglib2.0-0",
    "libgthread-2.0.so.0": "libglib2.0-0", "libX11.so.6": "libx11-6", "libX11-xcb.so.1": "libx11-xcb1",
    "libxkbcommon.so.0": "libxkbcommon0", "libxkbcommon-x11.so.0": "libxkbcommon-x11-0",
    "libxcb.so.1": "libxcb1", "libxcb-cursor.so.0": "libxcb-cursor0", "libxcb-icccm.so.4": "libxcb-icccm4",
    "libxcb-image.so.0": "libxcb-image0", "libxcb-keysyms.so.1": "libxcb-keysyms1",
    "libxcb-randr.so.0": "libxcb-randr0", "libxcb-render.so.0": "libxcb-render0",
    "libxcb-render-util.so.0": "libxcb-render-util0", "libxcb-shape.so.0": "libxcb-shape0",
    "libxcb-shm.so.0": "libxcb-shm0", "libxcb-sync.so.1": "libxcb-sync1", "libxcb-util.so.1": "libxcb-util1",
    "libxcb-xfixes.so.0": "libxcb-xfixes0", "libxcb-xinerama.so.0": "libxcb-xinerama0",
    "libxcb-xkb.so.1": "libxcb-xkb1", "libxcb-xinput.so.0": "libxcb-xinput0",
    "libwayland-client.so.0": "libwayland-client0", "libwayland-cursor.so.0": "libwayland-cursor0",
    "libwayland-egl.so.1": "libwayland-egl1", "libz.so.1": "zlib1g", "libzstd.so.1": "libzstd1",
}

_CANNOT_LOAD = re.compile(r"Cannot load library (?P<plugin>\S+?\.so): \(?(?P<lib>[^\s:()\"]+): (?P<why>[^)\"\n]+)")
_SHARED_OBJECT = re.compile(r"(?P<lib>[\w.+/-]+\.so[\w.]*): cannot open shared object file")
_NOT_FOUND_PLUGIN = re.compile(r'Could not find the Qt platform plugin "(?P<name>[^"]+)"')
_NOT_LOADED_PLUGIN = re.compile(r'Could not load the Qt platform plugin "(?P<name>[^"]+)"')
_AVAILABLE = re.compile(r"Available platform plugins are: (?P<names>[^\n]*?)\.?\s*$", re.MULTILINE)


class QtPlatformError(ErcnnError):
    """Qt cannot open a window here: a missing library, no display, or no Qt binding."""

    kind = "qt_platform"


@dataclass
class ProbeResult:
    """What the probe process did: ``platform`` is set when Qt started."""

    ok: bool
    platform: str
    returncode: int
    output: str


class QtProbe:
    """The probe, started now and asked later, so it runs while the caller imports napari.

    ``demo`` starts it first and calls :meth:`check` before it generates anything or creates
    the viewer: on two cores the probe's half second then hides behind napari's imports.
    """

    def __init__(self, env: dict[str, str] | None = None, timeout: float = 60.0) -> None:
        self.env = dict(os.environ if env is None else env)
        self.timeout = timeout
        self.started = time.monotonic()
        child_env = {**self.env, "QT_DEBUG_PLUGINS": "1"}   # the loader's real message, not Qt's guess
        self.process = subprocess.Popen([sys.executable, "-c", PROBE], env=child_env, stdout=subprocess.PIPE,
                                        stderr=subprocess.PIPE, text=True)

    def result(self) -> ProbeResult:
        """Wait for the probe (never raises)."""
        left = max(0.1, self.timeout - (time.monotonic() - self.started))
        try:
            stdout, stderr = self.process.communicate(timeout=left)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.communicate()
            return ProbeResult(False, "", -1, f"Qt did not start within {self.timeout:.0f} s")
        match = re.search(r"^ercnn-qt-platform=(\S*)", stdout or "", re.MULTILINE)
        ok = self.process.returncode == 0 and match is not None
        return ProbeResult(ok, match.group(1) if match else "", self.process.returncode, (stdout or "") + (stderr or ""))

    def check(self) -> str:
        """The platform Qt uses; raises :class:`QtPlatformError` with one sentence if there is none."""
        result = self.result()
        if result.ok:
            return result.platform
        message, path = explain(result.output, self.env)
        raise QtPlatformError(message, path)


def probe(env: dict[str, str] | None = None, timeout: float = 60.0) -> ProbeResult:
    """Start Qt's GUI application in a child process and report how it went (never raises)."""
    return QtProbe(env, timeout).result()


def check_qt_platform(env: dict[str, str] | None = None, timeout: float = 60.0) -> str:
    """The platform Qt will use (e.g. ``"xcb"``); raises :class:`QtPlatformError` with one sentence if none."""
    return QtProbe(env, timeout).check()


def explain(output: str, env: dict[str, str] | None = None) -> tuple[str, str | None]:
    """One sentence (and the file it is about) for a failed probe's output."""
    env = dict(os.environ if env is None else env)
    if "QtBindingsNotFoundError" in output or "No module named 'qtpy'" in output:
        return "no Qt binding is installed in this Python: install the viewer with `pip install -e \".[qt]\"`", None
    failed = _NOT_LOADED_PLUGIN.search(output)
    platform = failed.group("name") if failed else "xcb"
    for match in _CANNOT_LOAD.finditer(output):
        if platform_of(match.group("plugin")) != platform:
            continue          # Qt tried other plugins on the way; only the one it needed matters
        return _library_sentence(platform, match.group("plugin"), match.group("lib"), match.group("why")), \
            match.group("plugin")
    missing = _SHARED_OBJECT.search(output)   # Qt's own libraries failed while importing the binding
    if missing:
        lib = os.path.basename(missing.group("lib"))
        return (f"Qt cannot start because {lib} is missing: install it with "
                f"`sudo apt-get install -y {debian_package(lib)}`"), None
    unknown = _NOT_FOUND_PLUGIN.search(output)
    if unknown:
        available = _AVAILABLE.search(output)
        names = available.group("names").strip() if available else "see QT_DEBUG_PLUGINS=1"
        return (f"the Qt platform plugin \"{unknown.group('name')}\" does not exist (QT_QPA_PLATFORM="
                f"{env.get('QT_QPA_PLATFORM', '')!r}); available: {names}"), None
    if "could not connect to display" in output or "cannot open display" in output.lower():
        where = f"DISPLAY={env['DISPLAY']!r} does not answer" if env.get("DISPLAY") else "DISPLAY is not set"
        return (f"there is no display to open a window on ({where}): run it on a desktop, or under a virtual "
                f"one with `xvfb-run -a ercnn-napari demo --screenshot demo.png` (Debian package xvfb)"), None
    if output.startswith("Qt did not start"):
        return output.strip(), None
    lines = [line.strip() for line in output.splitlines() if line.strip() and not line.startswith(("qt.core", " "))]
    return f"Qt could not start: {lines[-1] if lines else 'no output'}", None


def _library_sentence(platform: str, plugin: str, lib: str, why: str) -> str:
    """Missing libraries -> all of them (from ldd) and their packages; a broken one -> that file."""
    name = os.path.basename(lib)
    if "cannot open shared object file" not in why:
        return (f"the Qt platform plugin \"{platform}\" cannot load {lib}: {why.strip()} (a broken copy on "
                f"LD_LIBRARY_PATH? the system's file comes from the package {debian_package(name)})")
    missing = missing_libraries(plugin) or [name]
    if name not in missing:
        missing.insert(0, name)
    packages = sorted({debian_package(m) for m in missing})
    verb = "is" if len(missing) == 1 else "are"
    return (f"the Qt platform plugin \"{platform}\" cannot load because {_join(missing)} {verb} missing: "
            f"install {'it' if len(missing) == 1 else 'them'} with `sudo apt-get install -y {' '.join(packages)}`")


def missing_libraries(path: str) -> list[str]:
    """Libraries ``ldd`` cannot find for ``path`` (empty if ldd is not there)."""
    ldd = shutil.which("ldd")
    if ldd is None:
        return []
    try:
        result = subprocess.run([ldd, path], capture_output=True, text=True, timeout=30, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return []
    found: list[str] = []
    for line in result.stdout.splitlines():
        name, _, where = line.strip().partition(" => ")
        if where.strip() == "not found" and name not in found:
            found.append(name)
    return found


def plugin_path(platform: str = "xcb") -> str | None:
    """Where the installed Qt binding keeps a platform plugin (found without importing Qt)."""
    import importlib.util

    for binding, qt_dir in (("PyQt6", "Qt6"), ("PySide6", "Qt"), ("PyQt5", "Qt5")):
        spec = importlib.util.find_spec(binding)
        for folder in (spec.submodule_search_locations or []) if spec else []:
            candidate = os.path.join(folder, qt_dir, "plugins", "platforms", f"libq{platform}.so")
            if not os.path.isfile(candidate):
                candidate = os.path.join(folder, "plugins", "platforms", f"libq{platform}.so")
            if os.path.isfile(candidate):
                return candidate
    return None


def platform_of(plugin_path: str) -> str:
    """``.../platforms/libqxcb.so`` -> ``"xcb"``."""
    base = os.path.basename(plugin_path)
    return base[4:-3] if base.startswith("libq") and base.endswith(".so") else base


def debian_package(soname: str) -> str:
    """The Debian/Ubuntu package of a shared library, e.g. ``libxcb-icccm.so.4`` -> ``libxcb-icccm4``.

    Known names come from :data:`PACKAGES`; otherwise Debian's policy: the soname's name and
    version joined, with a hyphen when the name ends in a digit (``libfoo2.so.1`` -> ``libfoo2-1``).
    """
    if soname in PACKAGES:
        return PACKAGES[soname]
    match = re.fullmatch(r"(?P<name>.+?)\.so\.(?P<version>[\d.]+)", soname)
    if not match:
        return soname
    name, version = match.group("name").lower(), match.group("version").split(".")[0]
    return f"{name}-{version}" if name[-1].isdigit() else f"{name}{version}"


def _join(items: list[str]) -> str:
    return items[0] if len(items) == 1 else ", ".join(items[:-1]) + " and " + items[-1]
