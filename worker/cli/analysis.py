"""``icp derive`` and ``icp backtest``: an ICP built on data, and measured before it is published.

Both read the snapshot store only (no CRM call, no fit needed: a store synced before any ICP was published
works): accounts with their attributes and closed opportunities.

- ``derive --connection NAME -o draft.yaml``: what predicts winning (with support counts, lift and
  intervals), leaving out outcome attributes (said, with why), and a draft ICP whose weights come from a
  regularised logistic regression and whose comments carry the evidence. With ``--split-date D`` it learns
  from deals closed before D and backtests the draft on the deals closed on or after D *before writing it*:
  when the draft is no better than chance or than the current ICP, it says so, writes nothing and exits 1
  (``--force`` writes it anyway, marked in its header). Without a split date the evidence is in-sample, and
  it says so.
- ``backtest FILE --connection NAME``: win rate per tier, lift, ROC AUC beside a statistical model's on the
  same attributes, calibration and sample sizes, as text or ``--json``; ``--split-date D`` judges only deals
  closed on or after D.

Exit codes: 0 done; 1 no reliable pattern or a failed verdict (derive); 2 a mistake to fix (unknown
connection, bad option, invalid ICP file, existing output file without ``--force``).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Annotated, Any, NoReturn

import typer
from sqlalchemy import select
from sqlalchemy.orm import Session

from worker.icp.backtest import MIN_DEALS, BacktestReport, backtest
from worker.icp.derive import MEASURES, DeriveReport, derive
from worker.icp.draft import draft_icp_yaml
from worker.icp.history import AccountOutcome
from worker.icp.model import IcpSpec
from worker.icp.verdict import Verdict, judge
from worker.icp.versions import latest_icp, spec_of
from worker.store.db import get_store
from worker.store.history import load_history
from worker.store.models import Connection

EXIT_NO_PATTERN = 1
EXIT_USAGE = 2


def _die(message: str, code: int = EXIT_USAGE) -> NoReturn:
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(code)


def _parse_date(text: str | None, option: str) -> date | None:
    if text is None:
        return None
    try:
        return date.fromisoformat(text.strip())
    except ValueError:
        _die(f"{option} must be a date as YYYY-MM-DD, not {text!r}")


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
    return conn


def _history(name: str) -> tuple[list[AccountOutcome], IcpSpec | None]:
    """The connection's history, and the published ICP if there is one (``None`` is fine)."""
    store = get_store()
    with store.session() as session:
        conn = _connection(session, name)
        history = load_history(session, conn.id)
        latest = latest_icp(session)
        current = spec_of(latest) if latest is not None else None
    return history, current


def _mapped_outcomes(name: str) -> dict[str, str]:
    """Account attributes the connection maps from the field it reads "customer" from (Salesforce's
    ``customer_field``): outcomes whatever they are called. Empty without a readable connections file."""
    try:
        from worker.cli.common import STATE

        cfg = STATE.config().get(name)
    except Exception:  # noqa: BLE001 - derive needs only the store; the file is a bonus
        return {}
    options = cfg.options
    field_name = options.get("customer_field")
    mapped = (options.get("fields") or {}).get("account") or {}
    if not isinstance(field_name, str) or not isinstance(mapped, dict):
        return {}
    return {
        str(canonical): f"mapped from {field_name}, the field the connection reads 'customer' from"
        for api, canonical in mapped.items()
        if canonical and str(api).casefold() == field_name.casefold()
    }


@dataclass
class _Run:
    """What one derive run says, to the terminal or as one JSON document."""

    as_json: bool
    #: Human text goes to stderr (the YAML, or the JSON, has stdout).
    to_err: bool
    document: dict[str, Any] = field(default_factory=dict)

    def say(self, text: str) -> None:
        typer.echo(text, err=self.to_err or self.as_json)

    def finish(self, code: int = 0) -> NoReturn:
        if self.as_json:
            typer.echo(json.dumps(self.document, indent=2))
        raise typer.Exit(code)


def _verdict(
    run: _Run, text: str, history: list[AccountOutcome], current: IcpSpec | None, split: date, connection: str
) -> Verdict:
    from worker.icp.spec import parse_icp

    source = f"connection {connection}"
    held_out = backtest(parse_icp(text, "draft.yaml"), history, split_date=split, source=source)
    now: BacktestReport | None = None
    if current is not None:
        now = backtest(current, history, split_date=split, source=source, with_model=False)
    verdict = judge(held_out, now, split)
    run.document.update(
        backtest=held_out.to_dict(),
        current_backtest=now.to_dict() if now else None,
        verdict={"ok": verdict.ok, "message": verdict.message},
    )
    if not run.as_json:
        run.say("\nThe draft on the deals it did not learn from:")
        run.say(held_out.render_text())
        if now is not None and now.auc is not None:
            run.say(f"The current ICP {now.icp_name!r} on the same deals: ROC AUC {now.auc:.3f}")
    run.say(f"Verdict: {verdict.message}")
    return verdict


def _write(run: _Run, text: str, output: Path | None, report: DeriveReport, next_command: str) -> None:
    if output is None:
        if run.as_json:
            run.document["draft"] = text
        else:
            typer.echo(text, nl=False)
        return
    output.write_text(text, encoding="utf-8")
    run.document["written"] = str(output)
    run.say(
        f"draft ICP written to {output} ({len(report.criteria)} criteria, {len(report.disqualifiers)} "
        f"suggested disqualifier(s)); review it, then `{next_command}`"
    )


def derive_command(
    connection: Annotated[str, typer.Option("--connection", help="Connection name (as synced).")],
    output: Annotated[
        Path | None, typer.Option("--output", "-o", help="Write the draft ICP here (default: stdout).")
    ] = None,
    measure: Annotated[
        str,
        typer.Option("--measure", help="What the evidence ranks by: " + ", ".join(MEASURES) + "."),
    ] = "win_rate",
    top: Annotated[
        float,
        typer.Option(
            "--top", help="With --measure won_amount/wins/tenure: share of customers that are 'best'."
        ),
    ] = 0.2,
    split_date: Annotated[
        str | None,
        typer.Option(
            "--split-date", help="Learn from deals closed before this date; judge the draft on the rest."
        ),
    ] = None,
    min_support: Annotated[
        int, typer.Option("--min-support", help="Fewest customers behind a criterion.")
    ] = 10,
    include: Annotated[
        list[str] | None,
        typer.Option(
            "--include", help="Analyse this attribute even if it looks like an outcome (repeatable)."
        ),
    ] = None,
    force: Annotated[
        bool,
        typer.Option("--force", help="Overwrite the output file; write the draft even against the verdict."),
    ] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON document instead of text.")] = False,
) -> None:
    """Derive a draft ICP from the won and lost deals in the snapshot store (no CRM call, never published)."""
    if measure not in MEASURES:
        _die(f"--measure must be one of {', '.join(MEASURES)}, not {measure!r}")
    if not 0 < top <= 1:
        _die(f"--top must be a share between 0 and 1 (0.2 = top 20%), not {top}")
    if min_support < 1:
        _die("--min-support must be at least 1")
    split = _parse_date(split_date, "--split-date")
    if output is not None and output.exists() and not force:
        _die(f"{output} exists; pass --force to overwrite it")
    history, current = _history(connection)
    report = derive(
        history, measure=measure, top=top, split_date=split, min_support=min_support, include=include or (),
        outcomes=_mapped_outcomes(connection), source=f"connection {connection}",
    )  # fmt: skip
    run = _Run(as_json, to_err=output is None, document={"report": report.to_dict()})
    if not as_json:
        run.say(report.render_text())
    if not report.reliable:
        run.say(
            "No reliable pattern: no draft ICP written. Collect more closed deals, or check that the "
            "accounts' attributes are filled in."
        )
        run.finish(EXIT_NO_PATTERN)
    next_command = f"icp-worker icp backtest {output or 'draft.yaml'} --connection {connection}"
    forced = None
    if split is None:
        run.say(
            "The evidence is in-sample: the draft was learnt from all the deals and not tested on any it "
            "did not see. Pass --split-date YYYY-MM-DD to judge it on later deals before trusting it."
        )
    else:
        next_command += f" --split-date {split.isoformat()}"
        verdict = _verdict(run, draft_icp_yaml(report), history, current, split, connection)
        if not verdict.ok and not force:
            run.say("No draft ICP written (--force writes it anyway).")
            run.finish(EXIT_NO_PATTERN)
        forced = None if verdict.ok else verdict.message
    run.document["next"] = next_command
    _write(run, draft_icp_yaml(report, forced=forced), output, report, next_command)
    run.finish(0)


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
    """Score the accounts behind closed deals with FILE: win rate per tier, lift, ROC AUC beside a
    statistical model's, calibration."""
    from worker.icp.spec import IcpValidationError, load_icp

    split = _parse_date(split_date, "--split-date")
    try:
        spec = load_icp(file)
    except IcpValidationError as exc:
        typer.echo("error: invalid ICP file", err=True)
        typer.echo(str(exc), err=True)
        raise typer.Exit(EXIT_USAGE) from None
    history, _ = _history(connection)
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
