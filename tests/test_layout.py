"""One import name: every module loads as signoff.*, once, and the wheel lists every package."""

from __future__ import annotations

import re
import subprocess
import sys
import tomllib
from pathlib import Path

ROOT = Path(__file__).parents[1]
FOLDERS = {
    "signoff": "signoff",
    "signoff.engine": "engine",
    "signoff.machines": "machines",
    "signoff.api": "api",
}


def test_every_package_folder_is_listed_for_the_wheel() -> None:
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    assert config["package-dir"] == FOLDERS
    on_disk = set()
    for name, folder in FOLDERS.items():
        for init in (ROOT / folder).rglob("__init__.py"):
            parts = init.parent.relative_to(ROOT / folder).parts
            on_disk.add(".".join((name, *parts)) if parts else name)
    assert set(config["packages"]) == on_disk


def test_importing_everything_loads_no_module_under_a_folder_name() -> None:
    script = (
        "import pkgutil, sys, signoff\n"
        "import signoff.engine, signoff.api, signoff.machines\n"
        "for pkg in (signoff, signoff.engine, signoff.api, signoff.machines):\n"
        "    for m in pkgutil.walk_packages(pkg.__path__, pkg.__name__ + '.'):\n"
        "        if not m.name.endswith('__main__'):\n"
        "            __import__(m.name)\n"
        "folders = {'engine', 'api', 'machines'}\n"
        "twice = sorted(m for m in sys.modules if m.split('.')[0] in folders)\n"
        "print(len([m for m in sys.modules if m.startswith('signoff.')]), twice)\n"
    )
    # From another directory, so the checkout's folders are not importable by accident.
    out = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, cwd="/", check=True
    ).stdout.split(maxsplit=1)
    assert int(out[0]) > 40
    assert out[1].strip() == "[]"


def test_the_public_face_is_importable_and_documented() -> None:
    import signoff

    readme = (ROOT / "README.md").read_text()
    section = readme.split("## Signoff as a library", 1)[1].split("\n## ", 1)[0]
    for name in signoff.__all__:
        assert getattr(signoff, name) is not None
        assert f"`{name}`" in section, f"{name} is in signoff.__all__ but not in the README"


# The engine's layers, lowest first: a module imports only from its own layer and those below.
LAYERS = [
    "errors", "ids", "observer", "tracing", "views", "model", "audit", "stats", "charts", "tasks",
    "storage",
    "webhooks",
    "dispatch",
    "feed", "jobs", "documents", "settings", "runtime", "__init__",
]  # fmt: skip


def test_imports_inside_the_engine_run_only_downwards() -> None:
    rank = {name: i for i, name in enumerate(LAYERS)}
    upward = []
    for path in (ROOT / "engine").rglob("*.py"):
        if "migrations" in path.parts:
            continue
        here = path.relative_to(ROOT / "engine").parts[0].removesuffix(".py")
        text = path.read_text()
        for module in re.findall(r"^\s*(?:from|import) (signoff\.engine[\w.]*)", text, re.M):
            parts = module.split(".")
            there = parts[2] if len(parts) > 2 else "__init__"
            if there != here and rank[there] > rank[here]:
                upward.append(f"{path.relative_to(ROOT)} imports {module}")
    assert upward == []
