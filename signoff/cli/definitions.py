"""`signoff definitions add|list|retire|delete`: chart documents on a running server.

`add FILE` deploys a YAML, JSON or SCXML document (its format from its extension, or
`--format`) as the next version of its name; it needs an admin token (`--token`,
SIGNOFF_TOKEN). A refused document prints every reason, one per line, and exits 1.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from pathlib import Path
from typing import Any

from signoff.client import ApiError, SignoffClient

FORMATS = {".yaml": "yaml", ".yml": "yaml", ".json": "json", ".scxml": "scxml", ".xml": "scxml"}


def add_commands(commands: Any, connection: argparse.ArgumentParser) -> None:
    parser = commands.add_parser("definitions", help="deploy and retire chart documents")
    actions = parser.add_subparsers(dest="action", required=True)
    add = actions.add_parser("add", parents=[connection], help="deploy a chart document")
    add.add_argument("file", type=Path)
    add.add_argument(
        "--format", choices=sorted(set(FORMATS.values())), help="default: by extension"
    )
    actions.add_parser("list", parents=[connection], help="the definitions the server runs")
    for action, text in (
        ("retire", "start no new runs on a version"),
        ("delete", "delete a retired version no run uses"),
    ):
        sub = actions.add_parser(action, parents=[connection], help=text)
        sub.add_argument("name")
        sub.add_argument("version", type=int)


async def run(client: SignoffClient, args: argparse.Namespace) -> int:
    if args.action == "list":
        for info in await client.definitions():
            retired = f", retired: {', '.join(map(str, info.retired))}" if info.retired else ""
            versions = ", ".join(map(str, info.versions))
            print(f"{info.name}\tv{info.version}\t{info.source}\t(versions {versions}{retired})")
        return 0
    if args.action == "retire":
        changed = await client.retire(args.name, args.version)
        print(f"{args.name} v{args.version} {'retired' if changed else 'was already retired'}")
        return 0
    if args.action == "delete":
        await client.delete_definition(args.name, args.version)
        print(f"{args.name} v{args.version} deleted")
        return 0
    path: Path = args.file
    fmt = args.format or FORMATS.get(path.suffix.lower())
    if fmt is None:
        raise ValueError(
            f"cannot tell the format of {path.name}: name it .yaml, .json or .scxml, or give "
            "--format"
        )
    try:
        text = await asyncio.to_thread(path.read_text)
    except OSError as exc:
        raise ValueError(f"cannot read {path}: {exc.strerror}") from None
    try:
        info, created = await client.deploy(text, fmt)
    except ApiError as exc:
        reasons = exc.problem.get("reasons")
        if exc.status != 422 or not isinstance(reasons, list):
            raise
        print(f"signoff: {path.name} was refused; nothing was stored:", file=sys.stderr)
        for reason in reasons:
            print(f"  - {reason}", file=sys.stderr)
        return 1
    what = "deployed as" if created else "unchanged: it is already"
    print(f"{info.name} {what} version {info.version}")
    return 0
