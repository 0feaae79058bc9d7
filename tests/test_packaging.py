"""`pip install .` installs the top-level pipeline/ and cli/ as scenegrep.pipeline and scenegrep.cli."""

import os
import subprocess
import sys
import zipfile
from pathlib import Path

from conftest import REPO


def test_wheel_maps_folders_to_scenegrep_packages(tmp_path):
    # Offline, like the rest of the suite: the setuptools the dev install put in this
    # environment builds the wheel (no isolated build environment to download), and
    # pip is told there is no index, so a missing build requirement fails here at once.
    built = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-build-isolation", "--no-deps", "--no-index", "--no-cache-dir",
         "-q", "-w", str(tmp_path), str(REPO)],
        capture_output=True, text=True, timeout=300, env={**os.environ, "PIP_NO_INDEX": "1"},
    )
    assert built.returncode == 0, built.stderr + "\n(the build needs setuptools: pip install -e '.[dev]')"
    (wheel,) = tmp_path.glob("scenegrep-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    for folder in ("pipeline", "cli", "serve"):
        modules = [m.relative_to(REPO).as_posix() for m in Path(REPO, folder).rglob("*.py")]
        assert modules and all(f"scenegrep/{module}" in names for module in modules)
    for page in ("index.html", "app.js", "style.css"):  # `scenegrep serve`'s page ships as package data
        assert f"scenegrep/serve/static/{page}" in names
    # Nothing lands at top level where it could collide with other packages.
    assert not [n for n in names if not n.startswith(("scenegrep/", "scenegrep-"))]
    entry_points = next(n for n in names if n.endswith("entry_points.txt"))
    assert "scenegrep = scenegrep.cli.main:main" in zipfile.ZipFile(wheel).read(entry_points).decode()
