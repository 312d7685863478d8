"""`signoff events send NAME --data JSON --ref-type T --ref-id R --id ID`: send an external
event to a running server; prints what became of it as JSON (exit 1 if a run refused it)."""

from __future__ import annotations

import argparse
import json
import sys
import uuid
from typing import Any

import msgspec

from signoff.client import SignoffClient


def add_commands(commands: Any, connection: argparse.ArgumentParser) -> None:
    parser = commands.add_parser("events", help="send external events")
    actions = parser.add_subparsers(dest="action", required=True)
    send = actions.add_parser(
        "send", parents=[connection], help="send one (its triggers start runs; it reaches runs)"
    )
    send.add_argument("name", help="the event's name, as definitions trigger on and receive it")
    send.add_argument("--data", default="{}", help="its data, a JSON object")
    send.add_argument("--ref-type", help="what it is about: runs with this ref receive it")
    send.add_argument("--ref-id")
    send.add_argument(
        "--id", help="its id: a repeat with it answers the first (default: a new random id)"
    )


async def run(client: SignoffClient, args: argparse.Namespace) -> int:
    try:
        data = json.loads(args.data)
    except json.JSONDecodeError as exc:
        raise ValueError(f"--data is not JSON: {exc}") from None
    if not isinstance(data, dict):
        raise ValueError("--data must be a JSON object")
    record = await client.send_event(
        args.name,
        id=args.id or str(uuid.uuid4()),
        data=data,
        ref_type=args.ref_type,
        ref_id=args.ref_id,
    )
    sys.stdout.write(msgspec.json.format(msgspec.json.encode(record)).decode() + "\n")
    outcomes = [s.outcome for s in record.started] + [d.outcome for d in record.delivered]
    return 1 if "refused" in outcomes else 0
