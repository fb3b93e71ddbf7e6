"""``icp-worker console`` (the web console) and ``icp-worker users ...`` (who may sign in to it)."""

from __future__ import annotations

import sys

import typer
from rich.table import Table

from worker.cli.common import STATE, UserError, handle_errors, out, print_json
from worker.console import auth

users_app = typer.Typer(help="Accounts of the web console (viewer, editor, approver).", no_args_is_help=True)

ROLE_HELP = (
    "viewer: reads every page; editor: also uploads, previews and publishes ICP drafts "
    "(a publish may be held); approver: also approves, rejects and rolls back."
)


def _read_password(from_stdin: bool, name: str) -> str:
    if from_stdin:
        line = sys.stdin.readline()
        password = line.rstrip("\r\n")
        if not password:
            raise UserError("--password-stdin: no password on standard input")
        return password
    if not sys.stdin.isatty():
        raise UserError("no terminal to ask for the password: pipe it in with --password-stdin")
    return typer.prompt(f"password for {name}", hide_input=True, confirmation_prompt=True)


@users_app.command("add")
@handle_errors
def users_add(
    name: str = typer.Argument(..., help="User name to sign in with."),
    role: str = typer.Option(..., "--role", help=ROLE_HELP),
    password_stdin: bool = typer.Option(
        False, "--password-stdin", help="Read the password from the first line of standard input."
    ),
) -> None:
    """Add a console user (the password is asked twice, or read with --password-stdin)."""
    if role not in auth.ROLES:
        raise UserError(f"unknown role {role!r}: use one of {', '.join(auth.ROLES)}")
    password = _read_password(password_stdin, name)
    try:
        with STATE.store().session() as s:
            auth.add_user(s, name, role, password)
    except auth.AccountError as exc:
        raise UserError(str(exc)) from None
    out.print(f"added console user {name} ({role})", highlight=False)


@users_app.command("list")
@handle_errors
def users_list(as_json: bool = typer.Option(False, "--json", help="Print JSON instead of a table.")) -> None:
    """Console users with their role (never a password or its hash)."""
    with STATE.store().session() as s:
        rows = [(u.name, u.role, u.created_at, u.password_changed_at) for u in auth.list_users(s)]
    if as_json:
        print_json([{"name": n, "role": r, "created_at": c, "password_changed_at": p} for n, r, c, p in rows])
        return
    table = Table("name", "role", "added", "password changed")
    for n, r, c, p in rows:
        table.add_row(n, r, c.strftime("%Y-%m-%d %H:%M"), p.strftime("%Y-%m-%d %H:%M"))
    out.print(table)
    if not rows:
        out.print("no console users: icp-worker users add NAME --role approver")


@users_app.command("remove")
@handle_errors
def users_remove(name: str = typer.Argument(..., help="User to remove (their sessions end).")) -> None:
    """Remove a console user; they are signed out at once."""
    try:
        with STATE.store().session() as s:
            auth.remove_user(s, name)
    except auth.AccountError as exc:
        raise UserError(str(exc)) from None
    out.print(f"removed console user {name}", highlight=False)


@users_app.command("passwd")
@handle_errors
def users_passwd(
    name: str = typer.Argument(..., help="User whose password to set (their sessions end)."),
    password_stdin: bool = typer.Option(
        False, "--password-stdin", help="Read the password from the first line of standard input."
    ),
) -> None:
    """Set a console user's password; their sessions end and they sign in again."""
    password = _read_password(password_stdin, name)
    try:
        with STATE.store().session() as s:
            auth.set_password(s, name, password)
    except auth.AccountError as exc:
        raise UserError(str(exc)) from None
    out.print(f"password of {name} changed; their sessions ended", highlight=False)


@handle_errors
def console(
    host: str = typer.Option("127.0.0.1", "--host", help="Address to listen on (0.0.0.0: every interface)."),
    port: int = typer.Option(8080, "--port", help="TCP port to listen on."),
) -> None:
    """Start the web console: ICP drafts, previews, approvals, runs, records and re-engagement."""
    import uvicorn

    from worker.console.web import create_app

    store = STATE.store()
    with store.session() as s:
        if not auth.list_users(s):
            out.print(
                "[yellow]no console user yet:[/] add one with "
                "icp-worker users add NAME --role approver (then sign in)",
                highlight=False,
            )
    app = create_app(store, STATE.config)
    out.print(f"ICP console on http://{host}:{port}/ (Ctrl+C stops it)", highlight=False)
    uvicorn.run(app, host=host, port=port, log_level="warning", server_header=False, proxy_headers=True)
