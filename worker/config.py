"""The connections file: which CRMs to sync, how their fields map, and the re-engagement rules.

Secrets never live here: each connection reads its credentials from environment variables under
its ``env_prefix`` (``ACME_SF_USERNAME`` ...). Errors name the file, the line and the field.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from connectors.base import OBJECT_TYPES, ObjectType
from connectors.registry import crm_entry
from worker.config_checks import connection_problems
from worker.yamlfile import YamlFileError, format_loc, line_of, load_yaml, read_text

CrmName = Literal["files", "salesforce", "hubspot"]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ScheduleConfig(_Strict):
    """When beat runs the incremental sync: a five-field cron expression in the connection's time zone."""

    #: Checked when the file is loaded (``worker.config_checks.schedule_problems``).
    cron: str = "0 2 * * *"
    timezone: str = "UTC"

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, v: str) -> str:
        try:
            ZoneInfo(v)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"unknown time zone {v!r} (use an IANA name such as Europe/Berlin)") from None
        return v


class ReengageConfig(_Strict):
    """Which records are stale or dismissed, and how flags and follow-up tasks are rationed."""

    #: Lead statuses meaning "dismissed". Unset: the CRM's defaults (``connectors.registry.CRMS``).
    dismissed_statuses: list[str] | None = None
    stale_days: int = Field(default=90, ge=1)
    #: No record is flagged twice within this many days.
    cooloff_days: int = Field(default=30, ge=0)
    create_tasks: bool = False
    task_due_days: int = Field(default=3, ge=0)
    #: On a connection's first sync, also flag stale or dismissed records that already fit a target
    #: tier (kind ``backlog``), under the same cool-off and per-owner cap.
    flag_backlog: bool = True
    #: At most this many follow-up tasks per owner per run (None: no cap).
    per_owner_cap: int | None = Field(default=None, ge=1)


class HoldConfig(_Strict):
    """When an ICP publish or rollback waits for approval, for this connection (unset: the settings
    ``ICP_HOLD_SHARE`` and ``ICP_HOLD_WRITES``)."""

    #: Hold when more than this share of the connection's scored records change tier.
    share: float | None = Field(default=None, ge=0.0, le=1.0)
    #: Hold when more than this many of its records would be written.
    writes: int | None = Field(default=None, ge=0)


class ConnectionConfig(_Strict):
    name: str
    crm: CrmName
    objects: list[ObjectType] = Field(default_factory=lambda: list(OBJECT_TYPES))
    #: Prefix of this connection's secret environment variables. Default: NAME in upper case + "_".
    env_prefix: str | None = None
    #: CRM-specific options, validated by the connector (login domain, field mapping, page sizes ...).
    options: dict[str, Any] = Field(default_factory=dict)
    #: Industry synonyms: the CRM's value -> the ICP's value ("Software" -> "Computer Software").
    industry_synonyms: dict[str, str] = Field(default_factory=dict)
    #: Kind of custom attributes: text, number, integer, set, country, boolean, date.
    attribute_kinds: dict[str, str] = Field(default_factory=dict)
    reengage: ReengageConfig = Field(default_factory=lambda: ReengageConfig.model_validate({}))
    schedule: ScheduleConfig = Field(default_factory=lambda: ScheduleConfig.model_validate({}))
    hold: HoldConfig = Field(default_factory=lambda: HoldConfig.model_validate({}))

    @field_validator("name")
    @classmethod
    def _slug(cls, v: str) -> str:
        if not re.fullmatch(r"[a-z0-9][a-z0-9_-]{0,62}", v):
            raise ValueError("must be lower-case letters, digits, '-' or '_' (up to 63 characters)")
        return v

    @model_validator(mode="after")
    def _defaults(self) -> ConnectionConfig:
        if self.env_prefix is None:
            self.env_prefix = re.sub(r"[^A-Z0-9]", "_", self.name.upper()) + "_"
        if self.reengage.dismissed_statuses is None:
            self.reengage.dismissed_statuses = list(crm_entry(self.crm).dismissed_statuses)
        return self

    @property
    def dismissed(self) -> frozenset[str]:
        return frozenset(s.casefold() for s in self.reengage.dismissed_statuses or ())


class WorkerConfig(_Strict):
    connections: list[ConnectionConfig] = Field(default_factory=list)

    @model_validator(mode="after")
    def _unique_names(self) -> WorkerConfig:
        seen: set[str] = set()
        for c in self.connections:
            if c.name in seen:
                raise ValueError(f"connection name {c.name!r} is used twice")
            seen.add(c.name)
        return self

    def get(self, name: str) -> ConnectionConfig:
        for c in self.connections:
            if c.name == name:
                return c
        known = ", ".join(c.name for c in self.connections) or "none"
        raise KeyError(f"no connection named {name!r} (configured: {known})")


def _env_prefix(conn: Any) -> str:
    """The env prefix a raw connection entry will get (its own, or its name in upper case plus ``_``)."""
    if not isinstance(conn, dict):
        return ""
    if isinstance(conn.get("env_prefix"), str):
        return str(conn["env_prefix"])
    return re.sub(r"[^A-Z0-9]", "_", str(conn.get("name", "")).upper()) + "_"


def parse_config(text: str, filename: str = "icp-worker.yaml", base_dir: Path | None = None) -> WorkerConfig:
    """Validate a connections file completely: its shape, each CRM's options, schedules, attribute kinds,
    and no secret written inline. Every problem is reported at once, as ``file:line field: message``.
    Relative paths of files connections resolve against ``base_dir`` (the file's folder)."""
    doc = load_yaml(text, filename)
    if doc is None:
        return WorkerConfig()
    found: dict[tuple[Any, ...], str] = {}
    entries = doc.get("connections") if isinstance(doc, dict) else None
    for i, conn in enumerate(entries if isinstance(entries, list) else []):
        for loc, message in connection_problems(conn, ("connections", i), _env_prefix(conn)):
            found.setdefault(loc, message)
    config: WorkerConfig | None = None
    try:
        config = WorkerConfig.model_validate(doc)
    except ValidationError as exc:
        for err in exc.errors():
            loc = tuple(p for p in err["loc"] if not (isinstance(p, str) and p.startswith("function-")))
            found.setdefault(loc, err["msg"].removeprefix("Value error, "))
    if found:
        ordered = sorted(found.items(), key=lambda item: line_of(doc, list(item[0])))
        raise YamlFileError(
            [
                f"{filename}:{line_of(doc, list(loc))} {format_loc(list(loc)) or '(top)'}: {msg}"
                for loc, msg in ordered
            ]
        )
    assert config is not None
    if base_dir is not None:
        for c in config.connections:
            _resolve_paths(c, base_dir)
    return config


#: Options of each CRM that are paths (resolved against the connections file's folder).
PATH_OPTIONS: dict[str, tuple[str, ...]] = {"files": ("path", "out")}


def _resolve_paths(conn: ConnectionConfig, base_dir: Path) -> None:
    for key in PATH_OPTIONS.get(conn.crm, ()):
        value = conn.options.get(key)
        if isinstance(value, str) and value and not Path(value).expanduser().is_absolute():
            conn.options[key] = str(base_dir / value)
        elif isinstance(value, str) and value.startswith("~"):
            conn.options[key] = str(Path(value).expanduser())


def load_config(path: Path) -> WorkerConfig:
    """Read and check a connections file (see ``parse_config``); relative paths in it are relative to it."""
    return parse_config(read_text(path), str(path), base_dir=path.expanduser().absolute().parent)
