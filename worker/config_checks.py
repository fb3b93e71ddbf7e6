"""The checks of a connections file beyond its shape: each CRM's options (with a did-you-mean for a
misspelled key), schedules, attribute kinds and secrets written inline. Every problem comes back as a
``(loc, message)`` pair; ``worker.config`` turns the locations into ``file:line`` and reports them all.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

from pydantic import BaseModel, ValidationError

Loc = tuple[str | int, ...]
Problem = tuple[Loc, str]

#: Keys that hold a secret: never accepted in the connections file (compared casefolded, ``-`` as ``_``).
SECRET_KEYS = frozenset(
    {
        "password",
        "passwd",
        "secret",
        "token",
        "access_token",
        "refresh_token",
        "security_token",
        "session_id",
        "api_key",
        "apikey",
        "private_key",
        "client_secret",
        "consumer_secret",
    }
)

#: Per CRM: option-like key → the environment variable (after the connection's ``env_prefix``) it belongs in.
ENV_NAMES: dict[str, dict[str, str]] = {
    "salesforce": {
        "username": "SF_USERNAME",
        "password": "SF_PASSWORD",
        "security_token": "SF_SECURITY_TOKEN",
        "consumer_key": "SF_CONSUMER_KEY",
        "client_id": "SF_CONSUMER_KEY",
        "private_key": "SF_PRIVATE_KEY",
        "private_key_file": "SF_PRIVATE_KEY_FILE",
        "session_id": "SF_SESSION_ID",
        "access_token": "SF_SESSION_ID",
    },
    "hubspot": {
        "access_token": "HUBSPOT_ACCESS_TOKEN",
        "token": "HUBSPOT_ACCESS_TOKEN",
        "api_key": "HUBSPOT_ACCESS_TOKEN",
        "client_id": "HUBSPOT_CLIENT_ID",
        "client_secret": "HUBSPOT_CLIENT_SECRET",
        "refresh_token": "HUBSPOT_REFRESH_TOKEN",
    },
}


def options_model(crm: str) -> type[BaseModel] | None:
    """The pydantic model of a CRM's ``options`` (imported only for the CRMs a file uses)."""
    if crm == "files":
        from connectors.files.config import FilesConfig

        return FilesConfig
    if crm == "salesforce":
        from connectors.salesforce.options import SalesforceOptions

        return SalesforceOptions
    if crm == "hubspot":
        from connectors.hubspot.options import HubSpotOptions

        return HubSpotOptions
    return None


def _key(text: Any) -> str:
    return str(text).strip().casefold().replace("-", "_")


def walk(node: Any, loc: Loc = ()) -> Iterator[tuple[Loc, Any, Any]]:
    """Every (location, key, value) of the mappings in ``node``, depth first."""
    if isinstance(node, Mapping):
        for key, value in node.items():
            yield (*loc, key), key, value
            yield from walk(value, (*loc, key))
    elif isinstance(node, list):
        for i, item in enumerate(node):
            yield from walk(item, (*loc, i))


#: Mappings whose keys are the CRM's or the file's names (columns, fields, values), not options.
_NAME_MAPS = frozenset(
    {"columns", "fields", "properties", "industry_synonyms", "attribute_kinds", "files", "field_names",
     "owned_fields", "owned_properties", "reengage", "schedule"}
)  # fmt: skip


def secret_problems(conn: Mapping[str, Any], base: Loc, env_prefix: str) -> list[Problem]:
    """Secrets (and credentials) written into a connection instead of the environment."""
    crm = str(conn.get("crm", ""))
    names = ENV_NAMES.get(crm, {})
    problems: list[Problem] = []
    for loc, key, value in walk(conn):
        k = _key(key)
        if k not in SECRET_KEYS and k not in names:
            continue
        if any(part in _NAME_MAPS for part in loc[:-1]) or isinstance(value, Mapping | list):
            continue
        var = names.get(k)
        where = (
            f"set {env_prefix}{var} in the environment instead"
            if var
            else ("put it in an environment variable (see .env.example)")
        )
        kind = "a secret" if k in SECRET_KEYS else "a credential"
        problems.append(
            ((*base, *loc), f"{kind} is never written in the connections file: remove it and {where}")
        )
    return problems


def _fields_at(model: type[BaseModel], loc: Sequence[str | int]) -> list[str] | None:
    """The field names of the (nested) model at ``loc`` inside ``model``, when it is a model."""
    current: Any = model
    for part in loc:
        fields = getattr(current, "model_fields", None)
        if fields is None or part not in fields:
            return None
        current = fields[part].annotation
    fields = getattr(current, "model_fields", None)
    return list(fields) if fields is not None else None


def did_you_mean(word: str, known: Sequence[str]) -> str:
    close = difflib.get_close_matches(str(word), list(known), n=1, cutoff=0.6)
    return f"; did you mean {close[0]!r}?" if close else ""


def option_problems(crm: str, options: Any, base: Loc, secret_locs: set[Loc]) -> list[Problem]:
    """Every problem the CRM's options model finds, with a did-you-mean for unknown keys."""
    model = options_model(crm)
    if model is None or not isinstance(options, Mapping):
        return []
    try:
        model.model_validate(dict(options))
    except ValidationError as exc:
        problems: list[Problem] = []
        for err in exc.errors():
            loc = tuple(p for p in err["loc"] if not (isinstance(p, str) and p.startswith("function-")))
            full = (*base, *loc)
            if full in secret_locs:
                continue
            message = err["msg"].removeprefix("Value error, ")
            if err["type"] == "extra_forbidden" and loc:
                known = _fields_at(model, loc[:-1]) or []
                message = f"unknown {crm} option {loc[-1]!r}{did_you_mean(str(loc[-1]), known)}"
                if known and not did_you_mean(str(loc[-1]), known):
                    message += f" (known: {', '.join(sorted(known))})"
            problems.append((full, message))
        return problems
    return []


def schedule_problems(conn: Mapping[str, Any], base: Loc) -> list[Problem]:
    """A cron expression that does not parse (the time zone is checked by the model)."""
    schedule = conn.get("schedule")
    if not isinstance(schedule, Mapping) or not isinstance(schedule.get("cron"), str):
        return []
    from worker.schedule import CronError, parse_cron

    try:
        parse_cron(schedule["cron"])
    except CronError as exc:
        return [((*base, "schedule", "cron"), f"invalid cron {schedule['cron']!r}: {exc}")]
    return []


def kind_problems(conn: Mapping[str, Any], base: Loc) -> list[Problem]:
    """``attribute_kinds`` values that are not kinds."""
    from worker.normalize import KINDS

    kinds = conn.get("attribute_kinds")
    if not isinstance(kinds, Mapping):
        return []
    problems: list[Problem] = []
    for name, kind in kinds.items():
        if kind not in KINDS:
            hint = did_you_mean(str(kind), sorted(KINDS))
            problems.append(
                ((*base, "attribute_kinds", name),
                 f"unknown kind {kind!r}{hint} (kinds: {', '.join(sorted(KINDS))})")
            )  # fmt: skip
    return problems


def connection_problems(conn: Any, base: Loc, env_prefix: str) -> list[Problem]:
    """Everything beyond the shape that is wrong with one connection entry."""
    if not isinstance(conn, Mapping):
        return []
    secrets = secret_problems(conn, base, env_prefix)
    locs = {loc for loc, _ in secrets}
    problems = list(secrets)
    crm = conn.get("crm")
    if isinstance(crm, str):
        problems += option_problems(crm, conn.get("options") or {}, (*base, "options"), locs)
    problems += schedule_problems(conn, base)
    problems += kind_problems(conn, base)
    return problems
