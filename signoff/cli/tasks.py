"""`signoff tasks [list|claim|release|reassign|delegate|decide|why]`: the caller's inbox on a
running server, and acting on its tasks.

`signoff tasks` lists what the token's person may decide now (soonest due first); `decide
approve RUN…` sends one decision to several runs, each on its own, and prints each result;
`why RUN` prints every event of a run with whether they may send it and why not.
"""

from __future__ import annotations

import argparse
from typing import Any

from rich.console import Console
from rich.table import Table

from signoff.client import SignoffClient
from signoff.engine import TaskCounts, TaskPage

ACTIONS = ("claim", "release", "reassign", "delegate")


def add_commands(commands: Any, connection: argparse.ArgumentParser) -> None:
    parser = commands.add_parser(
        "tasks", parents=[connection], help="what you may decide now, and acting on it"
    )
    _filters(parser)
    actions = parser.add_subparsers(dest="action")
    _filters(actions.add_parser("list", parents=[connection], help="your inbox (the default)"))
    for action in ACTIONS:
        sub = actions.add_parser(action, parents=[connection], help=f"{action} a run's task")
        sub.add_argument("run_id")
        sub.add_argument("--slot", help="the wait state (or region) when the run has several")
        if action in ("reassign", "delegate"):
            sub.add_argument("to", help="whom the task goes to")
    decide = actions.add_parser(
        "decide", parents=[connection], help="one decision for several runs"
    )
    decide.add_argument("event", help="approve, reject, …")
    decide.add_argument("run_ids", nargs="+")
    decide.add_argument("--reason")
    why = actions.add_parser("why", parents=[connection], help="what you may send to a run")
    why.add_argument("run_id")


def _filters(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--definition")
    parser.add_argument("--ref-id")
    parser.add_argument("--sort", choices=("due", "age"), default="due")
    parser.add_argument("--limit", type=int, default=50)


async def run(client: SignoffClient, args: argparse.Namespace, console: Console) -> int:
    action = args.action or "list"
    if action == "list":
        page = await client.tasks(
            definition=args.definition, ref_id=args.ref_id, sort=args.sort, limit=args.limit
        )
        console.print(_table(page))
        console.print(_summary(page.counts))
        return 0
    if action == "decide":
        outcome = await client.decide_many(args.event, args.run_ids, reason=args.reason)
        for r in outcome.results:
            detail = f"now version {r.version}" if r.problem is None else r.problem["detail"]
            print(f"{r.run_id}\t{r.status}\t{detail}")
        print(f"{outcome.decided} decided, {outcome.refused} refused")
        return 0 if outcome.refused == 0 else 1
    if action == "why":
        for p in (await client.permissions(args.run_id)).events:
            where = p.region or p.slot or ""
            said = "; ".join(r.message for r in p.reasons) or (p.needs_data or "")
            print(
                f"{p.event}{'@' + where if where else ''}\t{'yes' if p.allowed else 'no'}\t{said}"
            )
        return 0
    to = str(getattr(args, "to", ""))
    if action == "claim":
        view = await client.claim(args.run_id, args.slot)
    elif action == "release":
        view = await client.release(args.run_id, args.slot)
    elif action == "reassign":
        view = await client.reassign(args.run_id, to, args.slot)
    else:
        view = await client.delegate(args.run_id, to, args.slot)
    for task in view.tasks:
        holder = task.assignee or "unclaimed"
        print(f"{view.id}\t{task.slot}\t{holder}")
    return 0


def _summary(counts: TaskCounts) -> str:
    """The counts' line: past the server's count limit "1000+ task(s) await you", and
    "1000+ overdue" when every task counted was overdue."""
    more = "" if counts.exact else "+"
    late = more if counts.overdue == counts.total else ""
    return f"{counts.total}{more} task(s) await you, {counts.overdue}{late} overdue"


def _table(page: TaskPage) -> Table:
    table = Table(box=None)
    for column in ("run", "definition", "state", "ref", "due", "assignee"):
        table.add_column(column, no_wrap=column == "run")
    for t in page.items:
        due = t.due_at.strftime("%Y-%m-%d %H:%M") if t.due_at else ""
        ref = f"{t.ref_type or ''}:{t.ref_id}" if t.ref_id else ""
        late = " (overdue)" if t.overdue else ""
        table.add_row(t.run_id, t.definition, t.state, ref, due + late, t.assignee or "")
    return table
