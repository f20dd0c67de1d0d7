"""``electrostim sessions``: list, show and export recorded sessions."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from ._app import _emit_json, _guard, app, out

sessions_app = typer.Typer(help="Recorded sessions: list, show, export (CSV or JSON).", no_args_is_help=True)
app.add_typer(sessions_app, name="sessions")

DbOpt = Annotated[str | None, typer.Option("--db", help="database URL or SQLite file (default: the user data folder)")]


def _open(db):
    from ..store import Store

    store = Store.open(db)
    store.mark_interrupted()
    return store


@sessions_app.command("list")
@_guard
def list_(db: DbOpt = None, limit: Annotated[int, typer.Option("--limit")] = 50,
          json_: Annotated[bool, typer.Option("--json")] = False) -> None:
    """Recorded sessions, newest first."""
    with _open(db) as store:
        rows = store.list_sessions(limit=limit)
    if json_:
        _emit_json([r.model_dump(mode="json") for r in rows])
        return
    t = Table(title="Sessions", title_justify="left")
    for col in ("id", "started", "state", "device", "plan"):
        t.add_column(col)
    for r in rows:
        d = r.model_dump(mode="json")
        t.add_row(str(d.get("id")), str(d.get("started_at", ""))[:19], str(d.get("state")), str(d.get("device")), str(d.get("plan_id")))
    out.print(t)


@sessions_app.command("show")
@_guard
def show(session_id: Annotated[int, typer.Argument(help="session id")], db: DbOpt = None,
         json_: Annotated[bool, typer.Option("--json")] = False) -> None:
    """One session with its events."""
    with _open(db) as store:
        detail = store.get_session(session_id)
    d = detail.model_dump(mode="json")
    if json_:
        _emit_json(d)
        return
    events = d.get("events", [])
    out.print({k: v for k, v in d.items() if k != "events"})
    t = Table(title=f"{len(events)} events", title_justify="left")
    for col in ("seq", "elapsed s", "kind", "output", "payload"):
        t.add_column(col)
    for e in events:
        t.add_row(str(e.get("seq")), f"{e.get('elapsed_s', 0):.2f}", str(e.get("kind")), str(e.get("output") or ""), str(e.get("payload")))
    out.print(t)


@sessions_app.command("export")
@_guard
def export(session_id: Annotated[int, typer.Argument(help="session id")],
           output: Annotated[Path, typer.Option("-o", "--output", help="file (.csv or .json)")],
           fmt: Annotated[str | None, typer.Option("--format", help="csv or json (default: from the suffix)")] = None,
           db: DbOpt = None) -> None:
    """Write a session and its events to CSV or JSON."""
    with _open(db) as store:
        path = store.export_session(session_id, output, fmt)
    out.print(f"wrote {path}")
