"""The Qt platform check that ``demo`` runs before it generates anything, and the README's apt lists.

Everything Qt runs in child processes, so these tests belong to the TensorFlow-side pytest run.
The failures are real: a platform name Qt does not have, a broken copy of one of the xcb
plugin's libraries put first on ``LD_LIBRARY_PATH`` (the dynamic loader then refuses it, as it
refuses a missing one), and no display at all.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from ercnn_napari.cli.qt_platform import (
    PACKAGES,
    QtPlatformError,
    check_qt_platform,
    debian_package,
    missing_libraries,
    plugin_path,
)

REPO = Path(__file__).resolve().parents[1]
XCB = plugin_path("xcb")
needs_xcb = pytest.mark.skipif(XCB is None, reason="no Qt binding with an xcb platform plugin installed "
                               "(install the test extra: pip install -e '.[test]')")
BROKEN = "libxkbcommon-x11.so.0"   # the first of the xcb plugin's own libraries the loader looks for


def _env(tmp_path: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("DISPLAY", "WAYLAND_DISPLAY", "QT_QPA_PLATFORM")}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")]))
    env["ERCNN_NAPARI_CACHE"] = str(tmp_path / "cache")
    env.update(extra)
    return env


def _broken_library(tmp_path: Path) -> Path:
    folder = tmp_path / "broken"
    folder.mkdir()
    (folder / BROKEN).write_bytes(b"")       # "file too short" to the dynamic loader
    return folder


@needs_xcb
def test_unknown_platform_is_named_with_the_ones_there_are(tmp_path: Path) -> None:
    with pytest.raises(QtPlatformError) as error:
        check_qt_platform(_env(tmp_path, QT_QPA_PLATFORM="nosuchplatform"))
    text = str(error.value)
    assert 'the Qt platform plugin "nosuchplatform" does not exist' in text
    assert "offscreen" in text and "xcb" in text


@needs_xcb
def test_offscreen_platform_loads(tmp_path: Path) -> None:
    assert check_qt_platform(_env(tmp_path, QT_QPA_PLATFORM="offscreen")) == "offscreen"


@needs_xcb
def test_broken_library_is_named_with_its_package(tmp_path: Path) -> None:
    env = _env(tmp_path, QT_QPA_PLATFORM="xcb", LD_LIBRARY_PATH=str(_broken_library(tmp_path)))
    with pytest.raises(QtPlatformError) as error:
        check_qt_platform(env)
    text = str(error.value)
    assert text.startswith(f"{XCB}: the Qt platform plugin \"xcb\" cannot load ")
    assert f"{tmp_path / 'broken' / BROKEN}: file too short" in text
    assert "package libxkbcommon-x11-0" in text
    assert "\n" not in text


@needs_xcb
def test_without_display_the_sentence_says_what_to_do(tmp_path: Path) -> None:
    """No display: say so and how to get one; where libraries are missing, name all of them first."""
    with pytest.raises(QtPlatformError) as error:
        check_qt_platform(_env(tmp_path, QT_QPA_PLATFORM="xcb"))
    text = str(error.value)
    missing = missing_libraries(XCB)
    if missing:          # this machine lacks some of the plugin's libraries: the real first-run case
        assert "cannot load because" in text and all(name in text for name in missing)
        assert "sudo apt-get install -y " + " ".join(sorted({debian_package(m) for m in missing})) in text
    else:
        assert "there is no display to open a window on (DISPLAY is not set)" in text
        assert "xvfb-run -a ercnn-napari demo --screenshot" in text


@needs_xcb
def test_demo_stops_with_one_sentence_before_generating_anything(tmp_path: Path) -> None:
    env = _env(tmp_path, QT_QPA_PLATFORM="xcb", LD_LIBRARY_PATH=str(_broken_library(tmp_path)))
    result = subprocess.run([sys.executable, "-m", "ercnn_napari", "demo"], capture_output=True, text=True,
                            env=env, cwd=tmp_path, timeout=120, check=False)
    lines = result.stderr.strip().splitlines()
    assert result.returncode == 2, result.stderr[-2000:]
    assert len(lines) == 1 and lines[0].startswith("ercnn-napari: error: ") and BROKEN in lines[0]
    assert not (tmp_path / "cache").exists()       # the sample was neither copied nor generated


def test_debian_package_names() -> None:
    assert debian_package("libxcb-icccm.so.4") == "libxcb-icccm4"
    assert debian_package("libxcb-keysyms.so.1") == "libxcb-keysyms1"
    assert debian_package("libdbus-1.so.3") == "libdbus-1-3"
    assert debian_package("libxcb-xinput.so.0") == "libxcb-xinput0"
    assert debian_package("libfoo2.so.1") == "libfoo2-1"        # Debian's rule for names ending in a digit
    assert debian_package("libbar.so.7.1") == "libbar7"


@needs_xcb
@pytest.mark.skipif(shutil.which("dpkg") is None or shutil.which("ldd") is None, reason="needs dpkg and ldd")
def test_package_table_agrees_with_dpkg() -> None:
    """Every library of the xcb plugin that the table names is really in that package here."""
    libraries: dict[str, set[str]] = {}
    for line in subprocess.run(["ldd", XCB], capture_output=True, text=True, check=True).stdout.splitlines():
        name, _, where = line.strip().partition(" => ")
        path = where.split(" (")[0].strip()
        if name in PACKAGES and path.startswith("/"):
            real = os.path.realpath(path)   # dpkg knows a file under one of its /lib or /usr/lib names
            libraries[name] = {path, real, real.replace("/usr/lib/", "/lib/", 1), real.replace("/lib/", "/usr/lib/", 1)}
    paths = sorted(set().union(*libraries.values())) if libraries else []
    owners: dict[str, set[str]] = {}
    for line in subprocess.run(["dpkg", "-S", *paths], capture_output=True, text=True, check=False).stdout.splitlines():
        packages, _, path = line.partition(": ")
        owners[path.strip()] = {part.split(":")[0].strip() for part in packages.split(",")}
    checked = 0
    for name, candidates in libraries.items():
        found = set().union(*(owners.get(c, set()) for c in candidates))
        if found:                               # else not from a package (a custom build): nothing to compare
            assert PACKAGES[name] in found, (name, candidates, found)
            checked += 1
    assert checked >= 10


def _apt_packages(command: str) -> list[str]:
    match = re.search(r"apt-get install -y (?:-qq )?(.*?)(?:>|&&|$)", command)
    assert match, command
    return match.group(1).split()


def _readme_commands() -> tuple[str, str]:
    text = (REPO / "README.md").read_text(encoding="utf-8")
    blocks = [b.replace("\\\n", " ") for b in re.findall(r"```bash\n(.*?)```", text, flags=re.DOTALL)]
    demo = next(b for b in blocks if "apt-get install" in b and "ercnn-napari demo" in b)
    tests = next(b for b in blocks if "apt-get install" in b and "pytest" in b)
    return " ".join(demo.split()), " ".join(tests.split())


@needs_xcb
@pytest.mark.skipif(shutil.which("ldd") is None, reason="needs ldd")
def test_readme_apt_lists_cover_the_xcb_plugin_and_ci_runs_the_readme_command() -> None:
    demo, tests = _readme_commands()
    listing = subprocess.run(["ldd", XCB], capture_output=True, text=True, check=True).stdout
    needed = {line.strip().split(" => ")[0] for line in listing.splitlines() if " => " in line}
    families = ("libxcb", "libxkbcommon", "libX11", "libGL.so", "libEGL", "libdbus", "libfontconfig", "libglib")
    wanted = {debian_package(n) for n in needed if n.startswith(families) and "/PyQt" not in n}
    assert "libxcb-icccm4" in wanted and "libxcb-keysyms1" in wanted
    for command in (demo, tests):
        missing = wanted - set(_apt_packages(command))
        assert not missing, f"README apt list lacks {sorted(missing)}: {command}"
    assert "xvfb" in _apt_packages(tests) and "python3-venv" in _apt_packages(demo)
    ci = (REPO / ".ci" / "run").read_text(encoding="utf-8").replace("\\\n", " ")
    ci_apt = next(line for line in ci.splitlines() if "apt-get install" in line)
    assert _apt_packages(ci_apt) == _apt_packages(tests)
    after_apt = tests.split("&& python3 -m venv", 1)[1]
    assert "python3 -m venv" + after_apt in " ".join(ci.split())
