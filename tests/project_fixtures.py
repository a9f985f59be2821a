"""A throwaway project folder: seeds, labels and the model registry, as a user's checkout has them."""

import shutil
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def make_project(base: Path) -> Path:
    """Copy seeds/, labels/ and models/ into BASE/project and return it."""
    project = base / "project"
    project.mkdir()
    for name in ("seeds", "labels", "models"):
        if (ROOT / name).exists():
            shutil.copytree(ROOT / name, project / name)
    shutil.copy(ROOT / "rhetoric.toml", project / "rhetoric.toml")
    return project
