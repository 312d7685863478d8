"""Schemathesis against /schema/openapi.json on a real server: no 5xx, no schema violations."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

import pytest

from tests.helpers import LiveServer

pytestmark = pytest.mark.slow  # ~30 s of generated requests per database

CONFIG = Path(__file__).with_name("schemathesis.toml")
ST = Path(sys.executable).with_name("st")


async def test_fuzzing_the_api_finds_nothing(live_server: LiveServer) -> None:
    proc = await asyncio.create_subprocess_exec(
        str(ST),
        "--config-file",
        str(CONFIG),
        "run",
        f"{live_server.url}/schema/openapi.json",
        "--checks",
        "all",
        # Litestar answers OPTIONS itself; its Allow header names one method per path.
        "--exclude-checks",
        "allow_header_conformance",
        "--exclude-path-regex",
        ".*/stream$",  # infinite responses; covered in test_feed.py
        "--max-examples",
        "25",
        "--max-time",
        "30",
        "--seed",
        "20261122",
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    output = (await proc.communicate())[0].decode(errors="replace")
    assert proc.returncode == 0, output[-6000:]
    assert "generated" in output and " passed" in output
