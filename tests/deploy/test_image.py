"""The container image's build, as far as a machine without a container engine goes: what it
copies exists and is what the package is built from, and its install steps, run as written,
install from the lock file alone into an environment that loads the code location."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import tomllib
from pathlib import Path

import pytest

from tests.deploy.deployment import DEPLOY, PROJECT

pytestmark = pytest.mark.deploy
DOCKERFILE = DEPLOY / "Dockerfile"


def _instructions() -> list[tuple[str, str]]:
    """The Dockerfile's instructions, continuation lines joined, comments dropped."""
    text = re.sub(r"\\\n", " ", DOCKERFILE.read_text())
    found = []
    for line in text.splitlines():
        if line.strip() and not line.lstrip().startswith("#"):
            word, _, rest = line.strip().partition(" ")
            found.append((word.upper(), rest.strip()))
    return found


def _copied() -> list[str]:
    sources = []
    for word, rest in _instructions():
        if word == "COPY":
            sources += [p for p in rest.split()[:-1] if not p.startswith("--")]
    return sources


def test_what_the_image_copies_exists_and_holds_every_package_the_wheel_is_built_from() -> None:
    copied = _copied()
    assert all((PROJECT / source).exists() for source in copied), copied
    project = tomllib.loads((PROJECT / "pyproject.toml").read_text())
    packages = project["tool"]["hatch"]["build"]["targets"]["wheel"]["packages"]
    assert set(packages) <= set(copied)
    assert {"uv.lock", "pyproject.toml", "mappings", "deploy/dagster.yaml"} <= set(copied)


def test_the_images_install_steps_install_from_the_lock_and_load_the_code_location(
    tmp_path: Path,
) -> None:
    context = tmp_path / "opt"
    context.mkdir()
    for source in _copied():
        if source.startswith("deploy/"):
            continue  # the instance's files, not the project's
        target = context / source
        if (PROJECT / source).is_dir():
            shutil.copytree(PROJECT / source, target, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            shutil.copy(PROJECT / source, target)
    installs = [rest for word, rest in _instructions() if word == "RUN" and "uv sync" in rest]
    assert installs and all("--frozen" in step for step in installs)
    env = {
        **os.environ,
        "UV_PROJECT_ENVIRONMENT": str(context / ".venv"),
        "UV_LINK_MODE": "copy",
    }
    shell = shutil.which("bash")
    assert shell
    for step in installs:
        done = subprocess.run(
            [shell, "-c", step], cwd=context, env=env, capture_output=True, text=True, check=False
        )
        assert done.returncode == 0, done.stderr
    (tmp_path / "home").mkdir()
    loaded = subprocess.run(
        [str(context / ".venv" / "bin" / "dagster"), "definitions", "validate",
         "-m", "assets.definitions"],
        cwd=context, env={**env, "DAGSTER_HOME": str(tmp_path / "home")},
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert loaded.returncode == 0, loaded.stdout + loaded.stderr
    assert not (context / ".venv" / "lib" / "python3.11" / "site-packages" / "pytest").exists()
