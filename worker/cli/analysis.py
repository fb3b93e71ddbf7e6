"""``icp derive`` and ``icp backtest``: an ICP built on data, and measured before it is published.

Both read the snapshot store only (no CRM call): accounts with their attributes and closed opportunities.

- ``derive --connection NAME -o draft.yaml``: who the best customers are, what they have in common (with
  support counts, lift and intervals), and a draft ICP whose comments carry the evidence. When no attribute
  value is reliably over-represented among the best customers, the report says "no reliable pattern", **no
  file is written** and the exit code is 1: a draft that encodes noise would be worse than none. With
  ``--split-date D`` it learns from deals closed before D and backtests the draft on the deals closed on or
  after D, so over-fitting shows at once.
- ``backtest FILE --connection NAME``: win rate per tier, lift, ROC AUC, calibration and sample sizes, as
  text or ``--json``; ``--split-date D`` judges only deals closed on or after D.

Exit codes: 0 done; 1 no reliable pattern (derive); 2 a mistake to fix (unknown connection, bad option,
invalid ICP file, existing output file without ``--force``).
"""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path
from typing import Annotated

import typer
from sqlalchemy import select
from sqlalchemy.orm import Session

from worker.icp.backtest import MIN_DEALS, backtest
from worker.icp.derive import MEASURES, derive, draft_icp_yaml
from worker.icp.outcomes import AccountOutcome, load_history
from worker.store.db import get_store
from worker.store.models import Connection

EXIT_NO_PATTERN = 1
EXIT_USAGE = 2


def _die(message: str, code: int = EXIT_USAGE) -> None:
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(code)


def _parse_date(text: str | None, option: str) -> date | None:
    if text is None:
        return None
    try:
        return date.fromisoformat(text.strip())
    except ValueError:
        _die(f"{option} must be a date as YYYY-MM-DD, not {text!r}")
    return None  # pragma: no cover


def _connection(session: Session, name: str) -> Connection:
    conn = session.scalar(select(Connection).where(Connection.name == name))
    if conn is None:
        known = session.scalars(select(Connection.name).order_by(Connection.name)).all()
        hint = (
            f"known connections: {', '.join(known)}"
            if known
            else "the store has no connection yet (sync one)"
        )
        _die(f"unknown connection {name!r}; {hint}")
    return conn  # type: ignore[return-value]


def _history(name: str) -> list[AccountOutcome]:
    store = get_store()
    with store.session() as session:
        conn = _connection(session, name)
        return load_history(session, conn.id)


def derive_command(
    connection: Annotated[str, typer.Option("--connection", help="Connection name (as synced).")],
    output: Annotated[
        Path | None, typer.Option("--output", "-o", help="Write the draft ICP here (default: stdout).")
    ] = None,
    measure: Annotated[
        str, typer.Option("--measure", help="Rank best customers by: " + ", ".join(MEASURES))
    ] = "won_amount",
    top: Annotated[
        float, typer.Option("--top", help="Share of customers that are 'best' (0.2 = top 20%).")
    ] = 0.2,
    split_date: Annotated[
        str | None,
        typer.Option("--split-date", help="Learn from deals closed before this date; backtest on the rest."),
    ] = None,
    min_support: Annotated[
        int, typer.Option("--min-support", help="Fewest best customers behind a criterion.")
    ] = 10,
    force: Annotated[bool, typer.Option("--force", help="Overwrite the output file.")] = False,
    as_json: Annotated[
        bool, typer.Option("--json", help="Print the evidence as JSON instead of text.")
    ] = False,
) -> None:
    """Derive a draft ICP from the best customers in the snapshot store (no CRM call, never published)."""
    if measure not in MEASURES:
        _die(f"--measure must be one of {', '.join(MEASURES)}, not {measure!r}")
    if not 0 < top <= 1:
        _die(f"--top must be a share between 0 and 1 (0.2 = top 20%), not {top}")
    if min_support < 1:
        _die("--min-support must be at least 1")
    split = _parse_date(split_date, "--split-date")
    if output is not None and output.exists() and not force:
        _die(f"{output} exists; pass --force to overwrite it")
    history = _history(connection)
    report = derive(
        history, measure=measure, top=top, split_date=split, min_support=min_support,
        source=f"connection {connection}",
    )  # fmt: skip
    # The YAML goes to stdout when there is no -o: the report then goes to stderr.
    to_err = output is None
    typer.echo(report.to_json() if as_json else report.render_text(), err=to_err)
    if not report.reliable:
        typer.echo(
            "No reliable pattern: no draft ICP written. Collect more closed deals, widen --top, or check "
            "that the accounts' attributes are filled in.",
            err=True,
        )
        raise typer.Exit(EXIT_NO_PATTERN)
    text = draft_icp_yaml(report)
    if output is None:
        typer.echo(text, nl=False)
    else:
        output.write_text(text, encoding="utf-8")
        typer.echo(f"draft ICP written to {output} ({len(report.criteria)} criteria, "
                   f"{len(report.disqualifiers)} suggested disqualifier(s)); review it, then "
                   f"`icp-worker icp backtest {output} --connection {connection}`", err=to_err)  # fmt: skip
    if split is not None:
        from worker.icp.spec import parse_icp

        spec = parse_icp(text, str(output or "draft.yaml"))
        held_out = backtest(spec, history, split_date=split, source=f"connection {connection}")
        typer.echo("\nThe draft on the deals it did not learn from:", err=to_err)
        typer.echo(held_out.to_json() if as_json else held_out.render_text(), err=to_err)


def backtest_command(
    file: Annotated[Path, typer.Argument(help="ICP YAML file.", exists=True, dir_okay=False)],
    connection: Annotated[str, typer.Option("--connection", help="Connection name (as synced).")],
    as_json: Annotated[bool, typer.Option("--json", help="Print the report as JSON.")] = False,
    split_date: Annotated[
        str | None, typer.Option("--split-date", help="Judge only deals closed on or after this date.")
    ] = None,
    min_deals: Annotated[
        int, typer.Option("--min-deals", help="Warn where a figure rests on fewer deals.")
    ] = MIN_DEALS,
) -> None:
    """Score the accounts behind closed deals with FILE: win rate per tier, lift, ROC AUC, calibration."""
    from worker.icp.spec import IcpValidationError, load_icp

    split = _parse_date(split_date, "--split-date")
    try:
        spec = load_icp(file)
    except IcpValidationError as exc:
        typer.echo("error: invalid ICP file", err=True)
        typer.echo(str(exc), err=True)
        raise typer.Exit(EXIT_USAGE) from None
    history = _history(connection)
    report = backtest(spec, history, split_date=split, min_deals=min_deals, source=f"connection {connection}")
    if as_json:
        typer.echo(json.dumps(report.to_dict(), indent=2))
    else:
        typer.echo(report.render_text(), nl=False)


def register(icp_app: typer.Typer) -> None:
    """Add ``derive`` and ``backtest`` to the ``icp`` command group."""
    icp_app.command("derive")(derive_command)
    icp_app.command("backtest")(backtest_command)


__all__ = ["backtest_command", "derive_command", "register"]
