"""``electrostim sessions``: list, show and export recorded sessions; upgrade and recover a store.

``list``, ``show`` and ``export`` only read: they open the store read-only, so they
work on a read-only file or folder and on a full disk, and never migrate, mark
sessions interrupted or create a database. A session left ``running`` by a process
that has ended is shown as ``running (process ended)``; the next writing command
(``electrostim run``) marks it ``interrupted``.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.markup import escape
from rich.table import Table

from ._app import MAX_ROW_ID, _emit_json, _guard, app, out

if TYPE_CHECKING:  # the store is loaded by the commands that use it
    from ..store import SessionRecord, Store

sessions_app = typer.Typer(help="Recorded sessions: list, show, export (CSV or JSON); upgrade or recover the store.",
                           no_args_is_help=True)
app.add_typer(sessions_app, name="sessions")

DbOpt = Annotated[str | None, typer.Option("--db", help="database URL or SQLite file (default: the user data folder)")]
SessionArg = Annotated[int, typer.Argument(help="session id", min=1, max=MAX_ROW_ID)]
#: the most sessions ``list`` shows
MAX_LIST = 1_000_000


def _open(db: str | None) -> Store:
    """The store, for reading only (nothing is written, nothing is created)."""
    from ..store import Store

    return Store.open(db, readonly=True)


@sessions_app.command("list")
@_guard
def list_(db: DbOpt = None,
          limit: Annotated[int, typer.Option("--limit", min=1, max=MAX_LIST, help="show at most this many")] = 50,
          json_: Annotated[bool, typer.Option("--json")] = False) -> None:
    """Recorded sessions, newest first.

    The newest rows of the store (5 000 events, 1 000 rows of each other table) are compared with their checksums first: a store changed or damaged there is reported, with the command that recovers it.
    """
    with _open(db) as store:
        store.verify_checksums()
        rows = store.list_sessions(limit=limit)
        ended = {r.id for r in rows if store.process_ended(r)}
    if json_:
        _emit_json([{**r.model_dump(mode="json"), "process_ended": r.id in ended} for r in rows])
        return
    t = Table(title="Sessions", title_justify="left")
    # what a person types or reads to find a session (its id, start and program) is shown whole
    t.add_column("id", no_wrap=True)
    t.add_column("started", no_wrap=True, min_width=19)
    t.add_column("program", no_wrap=True, min_width=max([7, *(len(r.program_id) for r in rows)]))
    for col in ("patient", "verdict", "ended", "device"):
        t.add_column(col, overflow="fold")
    for r in rows:
        t.add_row(*map(escape, (str(r.id), r.started_at.isoformat()[:19], r.program_id, r.patient_id or "—",
                                verdict_cell(r.verdict, r.confirmed_by), end_cell(r, r.id in ended), r.device)))
    out.print(t)


def verdict_cell(verdict: str, confirmed_by: str | None) -> str:
    """A plan's verdict in words, with who confirmed it.

    Examples
    --------
    >>> verdict_cell("needs_confirmation", "Dr Lee"), verdict_cell("ok", None)
    ('needs confirmation, confirmed by Dr Lee', 'ok')
    """
    text = verdict.replace("_", " ")
    if confirmed_by:
        text += f", confirmed by {confirmed_by}" if verdict == "needs_confirmation" else f" (approved by {confirmed_by})"
    return text


def end_cell(record: SessionRecord, process_ended: bool = False) -> str:
    """How a session ended: its state, and the cause when it did not complete (``running`` while it runs)."""
    if record.state == "running":
        return "running (process ended)" if process_ended else "running"
    summary = record.summary or {}
    cause = summary.get("signal") and f"signal {summary['signal']}" or summary.get("reason") or summary.get("error")
    if record.state == "interrupted":
        cause = "the process that ran it ended without ending it"
    return record.state if record.state == "completed" or not cause else f"{record.state}: {cause}"


def _compact(payload: dict) -> str:
    """An event's payload as ``key=value`` pairs (floats shortened), for a table cell."""
    def fmt(v: Any) -> str:
        if isinstance(v, float):
            return f"{v:.6g}"
        if isinstance(v, dict):
            return "{" + ", ".join(f"{k}: {fmt(x)}" for k, x in v.items()) + "}"
        return str(v)

    return "  ".join(f"{k}={fmt(v)}" for k, v in payload.items() if k != "t_s")


@sessions_app.command("show")
@_guard
def show(session_id: SessionArg, db: DbOpt = None,
         tail: Annotated[int | None, typer.Option("--tail", min=0, max=MAX_ROW_ID, help="show only the last N events")] = None,
         json_: Annotated[bool, typer.Option("--json")] = False) -> None:
    """One session: what was delivered, how it ended, and its events in order."""
    from ..session import intensity_timeline

    with _open(db) as store:
        detail = store.get_session(session_id)
        ended = store.process_ended(detail)
    d = detail.model_dump(mode="json")
    timeline = intensity_timeline(detail.events)
    if json_:
        _emit_json({**d, "process_ended": ended,
                    "intensity": {k: [[t, ma] for t, ma in v] for k, v in timeline.items()}})
        return
    head = Table.grid(padding=(0, 2))
    head.add_column(style="bold")
    head.add_column()
    summary = d.get("summary") or {}
    plan = detail.plan
    rows = [("session", str(d["id"])), ("program", str(d.get("program_id"))), ("patient", detail.patient_id or "—"),
            ("verdict", verdict_cell(plan.verdict, plan.confirmed_by))]
    for reason in plan.reasons:
        rows.append(("precaution", f"[{reason.get('rule')}] {str(reason.get('message', '')).removeprefix('precaution: ')}"))
    rows += [("device", str(d.get("device"))), ("state", end_cell(detail, ended)), ("started", str(d.get("started_at"))),
             ("ended", str(d.get("ended_at") or "—"))]
    if summary:
        rows.append(("delivered", f"{summary.get('run_s', summary.get('session_s', 0)):.1f} s delivered "
                                  f"({summary.get('session_s', 0):.1f} s of session time), "
                                  f"{summary.get('pulses_delivered', 0)} pulses"))
        charge = summary.get("charge_delivered_uc") or {}
        if charge:
            rows.append(("charge", ", ".join(f"{k} {v:.0f} µC" for k, v in charge.items())))
        marks = {k: v for k, v in (summary.get("thresholds_ma") or {}).items() if v}
        if marks:
            rows.append(("thresholds", "; ".join(f"{k}: " + ", ".join(f"{kind} {ma:g} mA" for kind, ma in v.items())
                                                 for k, v in marks.items())))
        if summary.get("error"):
            rows.append(("error", str(summary["error"])))
    for label, points in timeline.items():
        rows.append((f"intensity {label}", intensity_text(points)))
    for k, v in rows:
        head.add_row(escape(k), escape(v))
    out.print(head)
    events = d.get("events", [])
    shown = events if tail is None else events[len(events) - tail:] if tail else []
    t = Table(title=f"{len(events)} events" + (f", the last {len(shown)}" if len(shown) < len(events) else ""),
              title_justify="left")
    for col in ("seq", "session s", "wall s", "kind", "output", "details"):
        t.add_column(col)
    for e in shown:
        payload = e.get("payload") or {}
        t_s = payload.get("t_s")
        t.add_row(str(e.get("seq")), "" if not isinstance(t_s, (int, float)) else f"{t_s:.2f}", f"{e.get('elapsed_s', 0):.2f}",
                  str(e.get("kind")), escape(str(e.get("output") or "")), escape(_compact(payload)))
    out.print(t)


def intensity_text(points: list[tuple[float, float]]) -> str:
    """An output's intensity over a session, from :func:`~electrostim.session.intensity_timeline`, in words:
    each corner as ``time s: mA`` (linear between them; two at one time are a jump).

    Examples
    --------
    >>> intensity_text([(0.0, 0.0), (0.0, 15.0), (597.0, 15.0), (600.0, 0.0)])
    '0 s: 0 mA → 0 s: 15 mA → 597 s: 15 mA → 600 s: 0 mA'
    """
    return " → ".join(f"{t:.2f}".rstrip("0").rstrip(".") + f" s: {ma:.2f}".rstrip("0").rstrip(".") + " mA"
                      for t, ma in points)


@sessions_app.command("export")
@_guard
def export(session_id: SessionArg,
           output: Annotated[Path, typer.Option("-o", "--output", help="file (.csv or .json) in an existing folder")],
           fmt: Annotated[str | None, typer.Option("--format", help="csv or json (default: from the suffix)")] = None,
           db: DbOpt = None) -> None:
    """Write a session and its events to CSV or JSON; the file appears only when complete, and no folder is created."""
    from ..errors import check_output_file

    check_output_file("--output", output)  # before the store is opened: nothing is read, nothing is created
    with _open(db) as store:
        path = store.export_session(session_id, output, fmt)
    out.print(f"wrote {path}")


@sessions_app.command("upgrade")
@_guard
def upgrade(db: DbOpt = None) -> None:
    """Bring the store's schema to the newest revision (what every writing command does first); creates no store."""
    from ..store import Store, StoreNotFoundError, resolve_url

    url = resolve_url(db)
    if url.get_backend_name() == "sqlite" and not Path(url.database or "").exists():
        raise StoreNotFoundError(f"No database at {url.database} to upgrade; nothing was created.")
    with Store.open(db) as store:
        revision = store.schema_revision()
        where = store.url
    out.print(f"{where} is at schema revision {revision}")


@sessions_app.command("recover")
@_guard
def recover(source: Annotated[str, typer.Argument(metavar="SOURCE_DB", help="the damaged store (SQLite file)")],
            to: Annotated[str, typer.Option("--to", metavar="NEW_DB", help="the new store to write (must not exist)")],
            json_: Annotated[bool, typer.Option("--json")] = False) -> None:
    """Copy every row of a damaged store that can still be read into a new store; SOURCE_DB is never written."""
    from ..store import Store

    report = Store.recover(source, to)
    if json_:
        _emit_json({"source": source, "to": to, "tables": report})
        return
    t = Table(title=f"Recovered into {to}", title_justify="left")
    for col in ("table", "recovered", "lost", "unreadable", "damaged", "orphaned"):
        t.add_column(col, justify="left" if col == "table" else "right")
    for table, counts in report.items():
        t.add_row(table, *("unknown" if counts[k] is None else str(counts[k])
                           for k in ("recovered", "lost", "unreadable", "damaged", "orphaned")))
    out.print(t)
    lost = sum(c["lost"] or 0 for c in report.values())
    unknown = any(c["lost"] is None for c in report.values())
    out.print(f"{source} was not changed. " + ("Every row was recovered." if not lost and not unknown else
              "Rows were lost: unreadable (SQLite could not read them), damaged (checksum or constraint), "
              "orphaned (their session or plan was lost). Each event lost from a recovered session is replaced "
              "by an 'error' event that says so, so that its events still run 1, 2, 3, …"))
