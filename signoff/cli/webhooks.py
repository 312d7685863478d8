"""`signoff webhooks add|list|deliveries|redeliver|remove`: webhook subscriptions on a running
server (an admin token: `--token`, SIGNOFF_TOKEN).

`add URL` prints the subscription's id and its signing secret, which the server shows only
then. `deliveries ID` prints the delivery log, newest first, one delivery a line (tab-separated:
id, status, type, attempts, message id, last error); `redeliver ID DELIVERY` sends one again,
`redeliver ID --dead` every dead one.
"""

from __future__ import annotations

import argparse
from typing import Any

from signoff.client import SignoffClient
from signoff.engine.webhooks.types import NOTIFICATION_TYPES

STATUSES = ("ready", "running", "done", "dead")


def add_commands(commands: Any, connection: argparse.ArgumentParser) -> None:
    parser = commands.add_parser("webhooks", help="webhook subscriptions and their deliveries")
    actions = parser.add_subparsers(dest="action", required=True)
    add = actions.add_parser("add", parents=[connection], help="subscribe a URL")
    add.add_argument("target", metavar="URL", help="where to POST notifications")
    add.add_argument(
        "--event",
        action="append",
        default=[],
        choices=NOTIFICATION_TYPES,
        metavar="TYPE",
        help=f"a notification type to send (repeat; default: all): {', '.join(NOTIFICATION_TYPES)}",
    )
    add.add_argument(
        "--definition", action="append", default=[], help="only this definition's (repeat)"
    )
    add.add_argument("--description", default="")
    add.add_argument("--max-attempts", type=int, default=8, help="before it is dead (default 8)")
    add.add_argument("--inactive", action="store_true", help="create it paused")
    actions.add_parser("list", parents=[connection], help="every subscription")
    log = actions.add_parser("deliveries", parents=[connection], help="a delivery log")
    log.add_argument("webhook_id")
    log.add_argument("--status", choices=STATUSES)
    log.add_argument("--limit", type=int, default=50, help="at most this many (default 50)")
    again = actions.add_parser(
        "redeliver", parents=[connection], help="send a dead or done delivery again"
    )
    again.add_argument("webhook_id")
    which = again.add_mutually_exclusive_group(required=True)
    which.add_argument("delivery_id", nargs="?", type=int)
    which.add_argument("--dead", action="store_true", help="every dead delivery")
    remove = actions.add_parser(
        "remove", parents=[connection], help="delete a subscription and its log"
    )
    remove.add_argument("webhook_id")


async def run(client: SignoffClient, args: argparse.Namespace) -> int:
    if args.action == "add":
        created = await client.add_webhook(
            args.target,
            events=args.event,
            definitions=args.definition,
            description=args.description,
            max_attempts=args.max_attempts,
            active=not args.inactive,
        )
        print(f"{created.id}\t{created.url}")
        print(f"secret (shown once): {created.secret}")
        return 0
    if args.action == "list":
        for hook in await client.webhooks():
            events = ",".join(hook.events) or "all events"
            definitions = ",".join(hook.definitions) or "all definitions"
            state = "active" if hook.active else "inactive"
            print(f"{hook.id}\t{hook.url}\t{events}\t{definitions}\t{state}")
        return 0
    if args.action == "deliveries":
        page = await client.deliveries(args.webhook_id, status=args.status, limit=args.limit)
        for d in page.items:
            error = " ".join((d.last_error or "").split())
            print(
                f"{d.id}\t{d.status}\t{d.type}\t{d.attempts}/{d.max_attempts}\t{d.message_id}\t{error}"
            )
        return 0
    if args.action == "redeliver":
        count = await client.redeliver(args.webhook_id, None if args.dead else args.delivery_id)
        print(f"{count} deliver{'y' if count == 1 else 'ies'} queued again")
        return 0
    await client.remove_webhook(args.webhook_id)
    print(f"{args.webhook_id} removed")
    return 0
