"""`pip install .` installs the top-level pipeline/ and cli/ as scenegrep.pipeline and scenegrep.cli."""

import subprocess
import sys
import zipfile
from pathlib import Path

from conftest import REPO


def test_wheel_maps_folders_to_scenegrep_packages(tmp_path):
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(tmp_path), str(REPO)],
        check=True, capture_output=True, timeout=300,
    )
    (wheel,) = tmp_path.glob("scenegrep-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    for module in (Path(REPO, "pipeline").glob("*.py")):
        assert f"scenegrep/pipeline/{module.name}" in names
    for module in (Path(REPO, "cli").glob("*.py")):
        assert f"scenegrep/cli/{module.name}" in names
    for module in (Path(REPO, "serve").glob("*.py")):
        assert f"scenegrep/serve/{module.name}" in names
    for page in ("index.html", "app.js", "style.css"):  # `scenegrep serve`'s page ships as package data
        assert f"scenegrep/serve/static/{page}" in names
    # Nothing lands at top level where it could collide with other packages.
    assert not [n for n in names if not n.startswith(("scenegrep/", "scenegrep-"))]
    entry_points = next(n for n in names if n.endswith("entry_points.txt"))
    assert "scenegrep = scenegrep.cli.main:main" in zipfile.ZipFile(wheel).read(entry_points).decode()
