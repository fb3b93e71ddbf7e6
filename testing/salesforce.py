"""A fake Salesforce org over real HTTP, for tests and benchmarks.

``FakeSalesforce`` runs an ``http.server.ThreadingHTTPServer`` on 127.0.0.1 (port 0) in a thread and
implements the subset of the REST API the connector uses, as Salesforce documents it:

* login: OAuth 2.0 token endpoint (``/services/oauth2/token``, JWT bearer with RS256 signatures checked
  against a trusted public key) and the SOAP ``login()`` (``/services/Soap/u/XX.X``), on the
  production (``login``), sandbox (``test``) or My Domain host; ``/services/oauth2/userinfo``;
* ``GET sobjects/{T}/describe`` (fields hidden by field-level security are left out, as in Salesforce);
* ``query`` / ``queryAll`` with SOQL parsed enough for the connector (``SELECT f, ... FROM T [WHERE
  ...] [ORDER BY ...] [LIMIT n]``, AND/OR/NOT, comparisons, ``IN``, ``LIKE``), result batches of at
  most 2,000 (``Sforce-Query-Options: batchSize``) through ``nextRecordsUrl``, snapshots per query,
  at most ten open cursors per user (the oldest is dropped: ``INVALID_QUERY_LOCATOR``);
* sObject Collections ``POST``/``PATCH composite/sobjects`` (max 200 records, ``allOrNone``, a
  SaveResult per record: ``UNABLE_TO_LOCK_ROW``, ``ENTITY_IS_DELETED``, ``INVALID_FIELD``,
  ``STRING_TOO_LONG`` ...), single-record ``POST sobjects/{T}``;
* Tooling API ``query`` and ``POST sobjects/CustomField``; PermissionSet, FieldPermissions and
  PermissionSetAssignment decide which custom fields the integration user can see and edit;
* Bulk API 2.0 query and ingest jobs (``testing.salesforce_bulk``);
* ``Sforce-Limit-Info: api-usage=used/max`` on every REST response; ``403 REQUEST_LIMIT_EXCEEDED`` once
  the daily allocation is used; ``401 INVALID_SESSION_ID`` for an unknown or expired session.

Error bodies are Salesforce's: ``[{"message": ..., "errorCode": ...}]``. Faults are injectable (5xx,
dropped connections, slow responses, session expiry, lock errors, validation errors, daily usage), a
``latency`` holds back every answer, and every request is counted by kind. Rows are kept sorted by
``(SystemModstamp, Id)`` so the connector's incremental query is a bisection, and stored as tuples, so
100,000+ accounts are cheap.

Usage::

    with FakeSalesforce() as fake:
        fake.insert("Account", [{"Name": "Acme", "Industry": "Software"}])
        connector = fake.connector(auth="password")
"""

from __future__ import annotations

import bisect
import html
import itertools
import json
import re
import secrets
import threading
import time
import xml.etree.ElementTree as ET
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit, urlunsplit

import jwt
import requests
from requests.adapters import HTTPAdapter
from requests.structures import CaseInsensitiveDict

from testing.salesforce_bulk import BulkApi

API_VERSIONS = tuple(f"{v}.0" for v in range(20, 63))
MAX_BATCH = 2000
MIN_BATCH = 200
COLLECTION_LIMIT = 200
MAX_OPEN_CURSORS = 10

_B62 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
_SUFFIX = "ABCDEFGHIJKLMNOPQRSTUVWXYZ012345"


def _salesforce_id(prefix: str, number: int) -> str:
    """An 18-character id: 3-char key prefix, pod, base-62 counter, case-safe suffix. Ids of one
    object sort (as strings) in creation order."""
    digits = []
    for _ in range(9):
        number, rem = divmod(number, 62)
        digits.append(_B62[rem])
    base = prefix + "5g0" + "".join(reversed(digits))
    suffix = ""
    for chunk in range(3):
        bits = 0
        for i, ch in enumerate(base[chunk * 5 : chunk * 5 + 5]):
            if "A" <= ch <= "Z":
                bits |= 1 << i
        suffix += _SUFFIX[bits]
    return base + suffix


def sf_datetime(value: datetime) -> str:
    """``2026-11-23T02:00:00.000+0000``: how the REST API writes a date-time (and how rows store it,
    so that strings sort as times)."""
    value = value.astimezone(UTC) if value.tzinfo else value.replace(tzinfo=UTC)
    return value.strftime("%Y-%m-%dT%H:%M:%S.") + f"{value.microsecond // 1000:03d}+0000"


def parse_sf_datetime(text: str) -> datetime:
    text = text.strip()
    if text.endswith("Z"):
        text = text[:-1] + "+00:00"
    elif re.search(r"[+-]\d{4}$", text):
        text = text[:-2] + ":" + text[-2:]
    value = datetime.fromisoformat(text)
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


# ------------------------------------------------------------------------------------------- schema


@dataclass
class FieldDef:
    name: str
    type: str
    length: int = 0
    updateable: bool = True
    createable: bool = True
    custom: bool = False
    filterable: bool = True
    label: str = ""
    reference_to: tuple[str, ...] = ()
    precision: int = 0
    scale: int = 0
    #: Hidden from the integration user by field-level security (``describe`` leaves it out).
    hidden: bool = False
    #: Created through the Tooling API: visible only through a permission set granting read.
    needs_grant: bool = False
    default: Any = None

    def describe(self, editable: bool) -> dict[str, Any]:
        soap = {
            "id": "tns:ID",
            "reference": "tns:ID",
            "boolean": "xsd:boolean",
            "int": "xsd:int",
            "double": "xsd:double",
            "currency": "xsd:double",
            "percent": "xsd:double",
            "date": "xsd:date",
            "datetime": "xsd:dateTime",
        }.get(self.type, "xsd:string")
        return {
            "name": self.name,
            "label": self.label or self.name,
            "type": self.type,
            "soapType": soap,
            "length": self.length,
            "precision": self.precision,
            "scale": self.scale,
            "custom": self.custom,
            "updateable": editable,
            "createable": self.createable and editable,
            "nillable": True,
            "filterable": self.filterable,
            "sortable": self.filterable,
            "referenceTo": list(self.reference_to),
            "calculated": False,
            "deprecatedAndHidden": False,
            "externalId": False,
            "unique": False,
            "picklistValues": [],
            "defaultValue": self.default,
        }


_NUMERIC = {"int", "double", "currency", "percent"}
_TEXT = {"string", "textarea", "picklist", "multipicklist", "combobox", "url", "email", "phone"}


def _f(name: str, type_: str, length: int = 0, **kw: Any) -> FieldDef:
    return FieldDef(name, type_, length, **kw)


def _system_fields() -> list[FieldDef]:
    ro = {"updateable": False, "createable": False}
    return [
        _f("Id", "id", 18, **ro),
        _f("IsDeleted", "boolean", **ro),
        _f("CreatedDate", "datetime", **ro),
        _f("LastModifiedDate", "datetime", **ro),
        _f("SystemModstamp", "datetime", **ro),
    ]


def _standard_schemas() -> dict[str, tuple[str, list[FieldDef]]]:
    ro = {"updateable": False, "createable": False}
    owner = _f("OwnerId", "reference", 18, reference_to=("User",))
    return {
        "Account": (
            "001",
            [
                *_system_fields(),
                _f("Name", "string", 255),
                _f("Type", "picklist", 255),
                _f("Industry", "picklist", 255),
                _f("NumberOfEmployees", "int", precision=8),
                _f("AnnualRevenue", "currency", precision=18, scale=0),
                _f("BillingCountry", "string", 80),
                _f("BillingState", "string", 80),
                _f("BillingCity", "string", 40),
                _f("Website", "url", 255),
                _f("Description", "textarea", 32000, filterable=False),
                owner,
                _f("LastActivityDate", "date", **ro),
            ],
        ),
        "Opportunity": (
            "006",
            [
                *_system_fields(),
                _f("Name", "string", 120),
                _f("AccountId", "reference", 18, reference_to=("Account",)),
                _f("StageName", "picklist", 255),
                _f("IsClosed", "boolean", **ro),
                _f("IsWon", "boolean", **ro),
                _f("Amount", "currency", precision=18, scale=2),
                _f("CloseDate", "date"),
                _f("Type", "picklist", 255),
                owner,
                _f("LastActivityDate", "date", **ro),
            ],
        ),
        "Lead": (
            "00Q",
            [
                *_system_fields(),
                _f("FirstName", "string", 40),
                _f("LastName", "string", 80),
                _f("Name", "string", 121, **ro),
                _f("Company", "string", 255),
                _f("Title", "string", 128),
                _f("Email", "email", 80),
                _f("Status", "picklist", 255),
                _f("IsConverted", "boolean", **ro),
                _f("Industry", "picklist", 255),
                _f("NumberOfEmployees", "int", precision=8),
                _f("AnnualRevenue", "currency", precision=18, scale=0),
                _f("Country", "string", 80),
                _f("State", "string", 80),
                owner,
                _f("LastActivityDate", "date", **ro),
            ],
        ),
        "Task": (
            "00T",
            [
                *_system_fields(),
                _f("Subject", "combobox", 255),
                _f("Description", "textarea", 32000, filterable=False),
                _f("WhoId", "reference", 18, reference_to=("Contact", "Lead")),
                _f("WhatId", "reference", 18, reference_to=("Account", "Opportunity")),
                owner,
                _f("ActivityDate", "date"),
                _f("Status", "picklist", 255, default="Not Started"),
                _f("Priority", "picklist", 40, default="Normal"),
            ],
        ),
        "User": (
            "005",
            [
                *_system_fields(),
                _f("Username", "string", 80),
                _f("Name", "string", 121),
                _f("IsActive", "boolean"),
            ],
        ),
        "PermissionSet": (
            "0PS",
            [
                *_system_fields(),
                _f("Name", "string", 80),
                _f("Label", "string", 80),
                _f("Description", "string", 255),
            ],
        ),
        "FieldPermissions": (
            "01k",
            [
                *_system_fields(),
                _f("ParentId", "reference", 18, reference_to=("PermissionSet",)),
                _f("SobjectType", "picklist", 255),
                _f("Field", "string", 255),
                _f("PermissionsRead", "boolean"),
                _f("PermissionsEdit", "boolean"),
            ],
        ),
        "PermissionSetAssignment": (
            "0Pa",
            [
                *_system_fields(),
                _f("PermissionSetId", "reference", 18, reference_to=("PermissionSet",)),
                _f("AssigneeId", "reference", 18, reference_to=("User",)),
            ],
        ),
    }


class Table:
    """One sObject's rows, as tuples in column order, indexed by ``(SystemModstamp, Id)``."""

    def __init__(self, name: str, prefix: str, fields: Iterable[FieldDef]) -> None:
        self.name, self.prefix = name, prefix
        self.fields: dict[str, FieldDef] = {}
        self.columns: list[str] = []
        self.col: dict[str, int] = {}
        for f in fields:
            self.add_field(f)
        self.rows: dict[str, tuple[Any, ...]] = {}
        self.order: list[tuple[str, str]] = []
        self.sorted = True
        self.stale = 0
        self.counter = itertools.count(1)

    def add_field(self, f: FieldDef) -> None:
        self.fields[f.name.lower()] = f
        self.col[f.name.lower()] = len(self.columns)
        self.columns.append(f.name)

    def get(self, row: tuple[Any, ...], name: str) -> Any:
        i = self.col[name.lower()]
        return row[i] if i < len(row) else None

    def as_dict(self, row: tuple[Any, ...]) -> dict[str, Any]:
        return {name: (row[i] if i < len(row) else None) for i, name in enumerate(self.columns)}

    def make_row(self, values: Mapping[str, Any]) -> tuple[Any, ...]:
        out: list[Any] = [None] * len(self.columns)
        for key, value in values.items():
            out[self.col[key.lower()]] = value
        return tuple(out)

    def put(self, row: tuple[Any, ...]) -> None:
        """Store ``row`` (insert or replace) and index it by its stamp."""
        record_id, stamp = row[0], row[self.col["systemmodstamp"]]
        if record_id in self.rows:
            self.stale += 1
        self.rows[record_id] = row
        key = (stamp, record_id)
        if self.sorted and self.order and key < self.order[-1]:
            self.sorted = False
        self.order.append(key)

    def index(self) -> list[tuple[str, str]]:
        if self.stale > max(1000, len(self.rows)):
            ms = self.col["systemmodstamp"]
            self.order = [k for k in self.order if self.rows[k[1]][ms] == k[0]]
            self.stale = 0
        if not self.sorted:
            self.order.sort()
            self.sorted = True
        return self.order

    def is_live(self, key: tuple[str, str]) -> tuple[Any, ...] | None:
        row = self.rows.get(key[1])
        if row is None or row[self.col["systemmodstamp"]] != key[0]:
            return None
        return row


# ---------------------------------------------------------------------------------------------- SOQL


class SoqlError(Exception):
    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code, self.message = code, message


_TOKEN = re.compile(
    r"""
    \s*(?:
      (?P<str>'(?:[^'\\]|\\.)*')
    | (?P<dt>\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(?:\.\d+)?(?:Z|[+-]\d{2}:?\d{2}))
    | (?P<date>\d{4}-\d{2}-\d{2})
    | (?P<num>-?\d+(?:\.\d+)?)
    | (?P<op><=|>=|!=|<>|=|<|>)
    | (?P<punct>[(),])
    | (?P<ident>[A-Za-z_][A-Za-z0-9_.]*)
    )""",
    re.VERBOSE,
)
_KEYWORDS = {
    "select",
    "from",
    "where",
    "and",
    "or",
    "not",
    "like",
    "in",
    "order",
    "by",
    "asc",
    "desc",
    "nulls",
    "first",
    "last",
    "limit",
    "offset",
    "true",
    "false",
    "null",
    "includes",
    "excludes",
}
_ESCAPES = {"n": "\n", "r": "\r", "t": "\t", "b": "\b", "f": "\f", "'": "'", '"': '"', "\\": "\\"}


def _unquote(text: str) -> str:
    body = text[1:-1]
    return re.sub(r"\\(.)", lambda m: _ESCAPES.get(m.group(1), "\\" + m.group(1)), body)


@dataclass
class Query:
    fields: list[str]
    sobject: str
    where: Any = None
    order: list[tuple[str, bool, bool]] = field(default_factory=list)  # (field, descending, nulls_last)
    limit: int | None = None
    offset: int = 0


class _Parser:
    def __init__(self, text: str) -> None:
        self.text = text
        self.tokens: list[tuple[str, str]] = []
        pos = 0
        while pos < len(text):
            if text[pos:].strip() == "":
                break
            m = _TOKEN.match(text, pos)
            if not m or m.end() == pos:
                raise SoqlError("MALFORMED_QUERY", f"unexpected token: '{text[pos:].split()[0]}'")
            kind = m.lastgroup or ""
            value = m.group(kind)
            if kind == "ident" and value.lower() in _KEYWORDS:
                kind = "kw"
            self.tokens.append((kind, value))
            pos = m.end()
        self.i = 0

    def peek(self) -> tuple[str, str]:
        return self.tokens[self.i] if self.i < len(self.tokens) else ("eof", "")

    def next(self) -> tuple[str, str]:
        tok = self.peek()
        self.i += 1
        return tok

    def kw(self, *words: str) -> bool:
        kind, value = self.peek()
        if kind == "kw" and value.lower() in words:
            self.i += 1
            return True
        return False

    def expect_kw(self, word: str) -> None:
        if not self.kw(word):
            raise SoqlError(
                "MALFORMED_QUERY", f"unexpected token: '{self.peek()[1] or 'EOF'}', expected {word.upper()}"
            )

    def ident(self) -> str:
        kind, value = self.next()
        if kind != "ident":
            raise SoqlError("MALFORMED_QUERY", f"unexpected token: '{value or 'EOF'}'")
        return value

    def parse(self) -> Query:
        self.expect_kw("select")
        fields = [self.ident()]
        while self.peek() == ("punct", ","):
            self.next()
            fields.append(self.ident())
        self.expect_kw("from")
        q = Query(fields, self.ident())
        if self.kw("where"):
            q.where = self.cond()
        if self.kw("order"):
            self.expect_kw("by")
            while True:
                name = self.ident()
                desc = self.kw("desc") or (self.kw("asc") and False)
                nulls_last = desc
                if self.kw("nulls"):
                    nulls_last = self.kw("last") or not self.kw("first")
                q.order.append((name, desc, nulls_last))
                if self.peek() != ("punct", ","):
                    break
                self.next()
        if self.kw("limit"):
            q.limit = int(self.number())
        if self.kw("offset"):
            q.offset = int(self.number())
        if self.peek()[0] != "eof":
            raise SoqlError("MALFORMED_QUERY", f"unexpected token: '{self.peek()[1]}'")
        return q

    def number(self) -> float:
        kind, value = self.next()
        if kind != "num":
            raise SoqlError("MALFORMED_QUERY", f"unexpected token: '{value}'")
        return float(value)

    def cond(self) -> Any:
        terms = [self.conj()]
        while self.kw("or"):
            terms.append(self.conj())
        return terms[0] if len(terms) == 1 else ("or", terms)

    def conj(self) -> Any:
        terms = [self.factor()]
        while self.kw("and"):
            terms.append(self.factor())
        return terms[0] if len(terms) == 1 else ("and", terms)

    def factor(self) -> Any:
        if self.kw("not"):
            return ("not", self.factor())
        if self.peek() == ("punct", "("):
            self.next()
            inner = self.cond()
            if self.next() != ("punct", ")"):
                raise SoqlError("MALFORMED_QUERY", "expecting a right parentheses, found EOF")
            return inner
        name = self.ident()
        kind, value = self.peek()
        if kind == "op":
            self.next()
            return ("cmp", name, "!=" if value == "<>" else value, self.literal())
        if self.kw("like"):
            return ("like", name, self.literal())
        negate = self.kw("not")
        if self.kw("in"):
            if self.next() != ("punct", "("):
                raise SoqlError("MALFORMED_QUERY", "expecting '(' after IN")
            values = [self.literal()]
            while self.peek() == ("punct", ","):
                self.next()
                values.append(self.literal())
            if self.next() != ("punct", ")"):
                raise SoqlError("MALFORMED_QUERY", "expecting ')'")
            return ("in", name, values, negate)
        raise SoqlError("MALFORMED_QUERY", f"unexpected token: '{value or 'EOF'}'")

    def literal(self) -> tuple[str, Any]:
        kind, value = self.next()
        if kind == "str":
            return ("str", _unquote(value))
        if kind == "dt":
            return ("dt", sf_datetime(parse_sf_datetime(value)))
        if kind == "date":
            return ("date", value)
        if kind == "num":
            return ("num", float(value))
        if kind == "kw" and value.lower() in ("true", "false"):
            return ("bool", value.lower() == "true")
        if kind == "kw" and value.lower() == "null":
            return ("null", None)
        raise SoqlError("MALFORMED_QUERY", f"unexpected token: '{value or 'EOF'}'")


def parse_soql(text: str) -> Query:
    return _Parser(text).parse()


def _like_regex(pattern: str) -> re.Pattern[str]:
    out, i = [], 0
    while i < len(pattern):
        ch = pattern[i]
        if ch == "\\" and i + 1 < len(pattern):
            out.append(re.escape(pattern[i + 1]))
            i += 2
            continue
        out.append(".*" if ch == "%" else "." if ch == "_" else re.escape(ch))
        i += 1
    return re.compile("".join(out), re.IGNORECASE | re.DOTALL)


# ---------------------------------------------------------------------------------------------- faults


@dataclass
class Fault:
    """Applies ``action`` to the next ``count`` matching requests after skipping ``after`` of them."""

    action: str  # status | drop | drop_response | delay | expire | exhaust
    count: int = 1
    after: int = 0
    status: int = 503
    seconds: float = 0.0
    path: str | None = None
    method: str | None = None
    include_auth: bool = False

    def matches(self, method: str, path: str, is_auth: bool) -> bool:
        if is_auth and not self.include_auth:
            return False
        if self.method and self.method.upper() != method:
            return False
        return not self.path or self.path in path


@dataclass
class Response:
    status: int = 200
    body: Any = None
    headers: dict[str, str] = field(default_factory=dict)
    raw: bytes | None = None
    drop: bool = False
    delay: float = 0.0

    def payload(self) -> bytes:
        if self.raw is not None:
            return self.raw
        if self.body is None:
            return b""
        return json.dumps(self.body, separators=(",", ":")).encode()


@dataclass
class RequestRecord:
    method: str
    path: str
    host: str
    kind: str
    status: int
    records: int = 0
    soql: str | None = None


def _error(status: int, code: str, message: str) -> Response:
    return Response(status, [{"message": message, "errorCode": code}])


def _save_error(code: str, message: str, fields: Sequence[str] = ()) -> dict[str, Any]:
    return {"success": False, "errors": [{"statusCode": code, "message": message, "fields": list(fields)}]}


@dataclass
class _Cursor:
    rows: list[tuple[Any, ...]]
    table: Table
    fields: list[str]
    all_rows: bool
    batch: int


# ------------------------------------------------------------------------------------------- the org


class FakeSalesforce:
    """A fake Salesforce org. Start it with ``start()`` or ``with FakeSalesforce() as fake``."""

    def __init__(
        self,
        *,
        instance_host: str = "acme.my.salesforce.com",
        sandbox: bool = False,
        username: str = "integration@acme.example",
        password: str = "Pa55-w0rd!",
        security_token: str = "TOKENabc123",
        daily_limit: int = 5_000_000,
        clock: Callable[[], datetime] | None = None,
        login_host: str | None = None,
        jwt_audience: str | None = None,
    ) -> None:
        self.instance_host = instance_host
        #: A login server of any name (a proxy, a private endpoint), answering as the standard one.
        self.login_host = login_host
        #: The JWT audience the org accepts (default: the login or test server's URL).
        self.jwt_audience = jwt_audience
        self.sandbox = sandbox
        self.username, self.password, self.security_token = username, password, security_token
        self.daily_limit, self.daily_used = daily_limit, 0
        self.clock = clock or (lambda: datetime.now(UTC))
        #: Seconds every answer is held back (network round trip and server time), in real time.
        self.latency = 0.0
        self.lock = threading.RLock()
        self.tables: dict[str, Table] = {n: Table(n, p, f) for n, (p, f) in _standard_schemas().items()}
        self.tooling: dict[str, Table] = {
            "CustomField": Table(
                "CustomField",
                "00N",
                [
                    *_system_fields(),
                    _f("DeveloperName", "string", 40),
                    _f("TableEnumOrId", "string", 40),
                    _f("NamespacePrefix", "string", 15),
                    _f("FullName", "string", 255),
                ],
            )
        }
        self.org_id = _salesforce_id("00D", 1)
        self._last_stamp = ""
        self._sessions: dict[str, str] = {}  # token -> user id
        self._jwt_apps: dict[str, Any] = {}  # consumer key -> public key
        self._cursors: dict[str, _Cursor] = {}
        self._cursor_seq = itertools.count(1)
        self.faults: list[Fault] = []
        self.locks: dict[str, int] = {}
        self.rejects: dict[str, tuple[str, str, tuple[str, ...]]] = {}
        self.calls: Counter[str] = Counter()
        #: Successful saves per record id (a record written twice shows 2).
        self.saved: Counter[str] = Counter()
        #: Requests being handled now, and the most seen at once (answers held back count).
        self.in_flight = self.max_in_flight = 0
        self.log: list[RequestRecord] = []
        self.login_hosts: list[str] = []
        #: Bulk API 2.0 jobs and allocations (``testing.salesforce_bulk``).
        self.bulk = BulkApi(self)
        self.user_id = self.insert(
            "User", [{"Username": username, "Name": "Integration User", "IsActive": True}]
        )[0]
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # ------------------------------------------------------------------------------ lifecycle

    def start(self) -> FakeSalesforce:
        server = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
        server.daemon_threads = True
        server.fake = self  # type: ignore[attr-defined]
        self._server = server
        self._thread = threading.Thread(
            target=server.serve_forever, kwargs={"poll_interval": 0.05}, name="fake-salesforce", daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def __enter__(self) -> FakeSalesforce:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def port(self) -> int:
        assert self._server is not None, "start() the fake first"
        return self._server.server_address[1]

    @property
    def instance_url(self) -> str:
        return f"https://{self.instance_host}"

    def session(self) -> requests.Session:
        """A ``requests.Session`` whose https://*.salesforce.com traffic goes to this fake (and nothing
        else goes anywhere): the connector's injectable session."""
        s = requests.Session()
        s.trust_env = False  # no proxy from the environment
        adapter = _RouteToFake(self)
        s.mount("https://", adapter)
        s.mount("http://", adapter)
        return s

    # ------------------------------------------------------------------------------ credentials

    def trust_jwt_key(self, consumer_key: str, public_key_pem: str | bytes) -> None:
        """Register a connected app: JWT assertions issued by ``consumer_key`` must verify with this key."""
        self._jwt_apps[consumer_key] = public_key_pem

    def env(self, prefix: str, auth: str = "password", **extra: str) -> dict[str, str]:
        """Environment variables for ``auth`` against this org (``jwt`` needs ``SF_CONSUMER_KEY`` and
        ``SF_PRIVATE_KEY`` in ``extra``; ``session`` gets a fresh session id)."""
        if auth == "password":
            env = {
                "SF_USERNAME": self.username,
                "SF_PASSWORD": self.password,
                "SF_SECURITY_TOKEN": self.security_token,
            }
        elif auth == "session":
            env = {"SF_SESSION_ID": self.new_session()}
        else:
            env = {"SF_USERNAME": self.username}
        env.update(extra)
        return {prefix + k: v for k, v in env.items()}

    def new_session(self) -> str:
        token = f"{self.org_id[:15]}!AQ{secrets.token_urlsafe(24)}"
        with self.lock:
            self._sessions[token] = self.user_id
        return token

    def connector(
        self,
        auth: str = "password",
        *,
        env_prefix: str = "FAKE_",
        env: Mapping[str, str] | None = None,
        **options: Any,
    ) -> Any:
        """A ``SalesforceConnector`` wired to this fake (no backoff waits unless options say so)."""
        from connectors.salesforce import SalesforceConnector

        opts: dict[str, Any] = {
            "auth": auth,
            "retry_wait_initial": 0.0,
            "retry_wait_max": 0.0,
            "lock_retry_wait": 0.0,
            **options,
        }
        if auth == "session":
            opts.setdefault("instance_url", self.instance_url)
        return SalesforceConnector.from_config(
            opts,
            env_prefix=env_prefix,
            env=env if env is not None else self.env(env_prefix, auth),
            session=self.session(),
        )

    # ------------------------------------------------------------------------------ seeding and changes

    def stamp(self) -> str:
        """A new SystemModstamp: the clock's time, never earlier than the last one handed out."""
        value = sf_datetime(self.clock())
        if value < self._last_stamp:
            value = self._last_stamp
        self._last_stamp = value
        return value

    def table(self, sobject: str) -> Table:
        for name, table in self.tables.items():
            if name.lower() == sobject.lower():
                return table
        raise KeyError(sobject)

    def add_field(
        self,
        sobject: str,
        name: str,
        type_: str = "string",
        length: int = 255,
        *,
        hidden: bool = False,
        updateable: bool = True,
        filterable: bool | None = None,
    ) -> None:
        """Add a field visible to the integration user (``hidden``: blocked by field-level security)."""
        with self.lock:
            self.table(sobject).add_field(
                FieldDef(
                    name,
                    type_,
                    length if type_ in _TEXT else 0,
                    custom=name.endswith("__c"),
                    hidden=hidden,
                    updateable=updateable,
                    filterable=(type_ != "textarea" or length <= 255) if filterable is None else filterable,
                    precision=18 if type_ in _NUMERIC else 0,
                )
            )

    def hide_field(self, sobject: str, name: str) -> None:
        with self.lock:
            self.table(sobject).fields[name.lower()].hidden = True

    def add_owned_fields(
        self,
        sobjects: Iterable[str] = ("Account", "Opportunity", "Lead"),
        names: Mapping[str, str] | None = None,
    ) -> None:
        """The owned fields as if installed and granted (for tests that only write)."""
        from connectors.salesforce.fields import FIELD_METADATA
        from connectors.salesforce.options import DEFAULT_OWNED_FIELDS

        for sobject in sobjects:
            for canonical, api in (names or DEFAULT_OWNED_FIELDS).items():
                meta = FIELD_METADATA[canonical]
                with self.lock:
                    self.table(sobject).add_field(_field_from_metadata(api, meta, needs_grant=False))

    def insert(self, sobject: str, records: Iterable[Mapping[str, Any]]) -> list[str]:
        """Bulk-insert rows (any field may be given, including ``SystemModstamp`` as a ``datetime`` or
        string: seeded history); returns their ids. No validation, no API usage."""
        ids: list[str] = []
        with self.lock:
            table = self.table(sobject)
            default_stamp = None
            ms = table.col["systemmodstamp"]
            stamps = {
                i for i, name in enumerate(table.columns) if table.fields[name.lower()].type == "datetime"
            }
            for values in records:
                row = [None] * len(table.columns)
                for key, value in values.items():
                    i = table.col.get(key.lower())
                    if i is None:
                        raise KeyError(f"{table.name} has no field {key!r}")
                    if isinstance(value, datetime):
                        value = sf_datetime(value)
                    elif i in stamps and isinstance(value, str):
                        value = sf_datetime(parse_sf_datetime(value))
                    elif isinstance(value, date):
                        value = value.isoformat()
                    row[i] = value
                if row[ms] is None:
                    default_stamp = default_stamp or self.stamp()
                    row[ms] = default_stamp
                record_id = _salesforce_id(table.prefix, next(table.counter))
                row[0] = record_id
                row[table.col["isdeleted"]] = bool(row[table.col["isdeleted"]])
                for name in ("createddate", "lastmodifieddate"):
                    if row[table.col[name]] is None:
                        row[table.col[name]] = row[ms]
                if table.name == "Lead" and row[table.col["name"]] is None:
                    first, last = row[table.col["firstname"]], row[table.col["lastname"]]
                    row[table.col["name"]] = " ".join(p for p in (first, last) if p) or None
                if "ownerid" in table.col and row[table.col["ownerid"]] is None and table.name != "User":
                    row[table.col["ownerid"]] = getattr(self, "user_id", None)
                table.put(tuple(row))
                ids.append(record_id)
        return ids

    def modify(self, sobject: str, changes: Mapping[str, Mapping[str, Any]]) -> None:
        """Change records as a user would: new values and a new SystemModstamp (one for the batch)."""
        with self.lock:
            table = self.table(sobject)
            stamp = self.stamp()
            for record_id, values in changes.items():
                row = list(table.rows[record_id])
                row.extend([None] * (len(table.columns) - len(row)))
                for key, value in values.items():
                    row[table.col[key.lower()]] = sf_datetime(value) if isinstance(value, datetime) else value
                row[table.col["systemmodstamp"]] = row[table.col["lastmodifieddate"]] = stamp
                table.put(tuple(row))

    def delete(self, sobject: str, ids: Iterable[str]) -> None:
        self.modify(sobject, {i: {"IsDeleted": True} for i in ids})

    def ids(self, sobject: str, *, include_deleted: bool = False) -> list[str]:
        table = self.table(sobject)
        with self.lock:
            return [i for i, row in table.rows.items() if include_deleted or not table.get(row, "IsDeleted")]

    def record(self, sobject: str, record_id: str) -> dict[str, Any]:
        table = self.table(sobject)
        return table.as_dict(table.rows[record_id])

    def records(self, sobject: str) -> list[dict[str, Any]]:
        table = self.table(sobject)
        with self.lock:
            return [table.as_dict(row) for row in table.rows.values()]

    def count(self, sobject: str) -> int:
        return len(self.table(sobject).rows)

    # ------------------------------------------------------------------------------ faults

    def fail_next(
        self,
        count: int = 1,
        *,
        status: int = 503,
        after: int = 0,
        path: str | None = None,
        method: str | None = None,
        include_auth: bool = False,
    ) -> None:
        """The next ``count`` matching REST requests answer ``status`` (5xx: nothing is done)."""
        self.faults.append(
            Fault("status", count, after, status=status, path=path, method=method, include_auth=include_auth)
        )

    def drop_next(
        self, count: int = 1, *, after: int = 0, path: str | None = None, method: str | None = None
    ) -> None:
        """The next ``count`` matching requests have their connection closed without an answer."""
        self.faults.append(Fault("drop", count, after, path=path, method=method))

    def drop_response_next(
        self, count: int = 1, *, after: int = 0, path: str | None = None, method: str | None = None
    ) -> None:
        """The next ``count`` matching requests are carried out, then their connection is closed before the
        answer: the client cannot tell whether anything happened (a crash right after a create)."""
        self.faults.append(Fault("drop_response", count, after, path=path, method=method))

    def delay_next(
        self, count: int = 1, seconds: float = 1.0, *, after: int = 0, path: str | None = None
    ) -> None:
        """The next ``count`` matching requests are answered after ``seconds`` (client timeouts)."""
        self.faults.append(Fault("delay", count, after, seconds=seconds, path=path))

    def expire_sessions(self, *, after: int = 0) -> None:
        """Invalidate every session now, or after ``after`` more REST requests."""
        if after <= 0:
            with self.lock:
                self._sessions.clear()
        else:
            self.faults.append(Fault("expire", 1, after))

    def exhaust_daily_allocation(self, *, after: int = 0, path: str | None = None) -> None:
        """After ``after`` more matching REST requests, the org's other integrations have used the rest
        of the daily allocation: that request and every later one answers ``REQUEST_LIMIT_EXCEEDED``."""
        self.faults.append(Fault("exhaust", 1, after, path=path))

    def lock_records(self, ids: Iterable[str], times: int = 1) -> None:
        """Writes to these ids fail with ``UNABLE_TO_LOCK_ROW`` the next ``times`` times."""
        for i in ids:
            self.locks[i] = times

    def reject_records(self, errors: Mapping[str, tuple[str, str] | tuple[str, str, Sequence[str]]]) -> None:
        """Writes to these ids fail with ``(statusCode, message[, fields])`` (a validation rule, say)."""
        for i, err in errors.items():
            self.rejects[i] = (err[0], err[1], tuple(err[2]) if len(err) > 2 else ())  # type: ignore[misc]

    def set_daily_usage(self, used: int, limit: int | None = None) -> None:
        with self.lock:
            self.daily_used = used
            if limit is not None:
                self.daily_limit = limit

    def invalidate_query_locators(self) -> None:
        with self.lock:
            self._cursors.clear()

    def calls_of(self, kind: str, path: str | None = None) -> list[RequestRecord]:
        return [r for r in self.log if r.kind == kind and (path is None or path in r.path)]

    def reset_counts(self) -> None:
        with self.lock:
            self.calls.clear()
            self.log.clear()
            self.saved.clear()
            self.max_in_flight = self.in_flight

    # ------------------------------------------------------------------------------ dispatch

    def dispatch(self, method: str, target: str, headers: Mapping[str, str], body: bytes) -> Response:
        parts = urlsplit(target)
        path, params = parts.path, {k: v[0] for k, v in parse_qs(parts.query, keep_blank_values=True).items()}
        host = (headers.get("Host") or "").split(":")[0].lower()
        is_auth = path.startswith("/services/oauth2/token") or path.startswith("/services/Soap/u/")
        kind = _kind_of(method, path)
        with self.lock:
            fault = self._take_fault(method, path, is_auth)
        if fault is not None and fault.action == "drop":
            self._record(method, path, host, kind, 0)
            return Response(drop=True)
        delay = fault.seconds if fault is not None and fault.action == "delay" else 0.0
        with self.lock:
            if fault is not None and fault.action == "expire":
                self._sessions.clear()
            if fault is not None and fault.action == "exhaust":
                self.daily_used = max(self.daily_used, self.daily_limit)
            if fault is not None and fault.action == "status" and is_auth:
                # Login servers answer an outage with an HTML page, not a JSON or SOAP body.
                response = Response(
                    fault.status,
                    raw=b"<html><body>Service Unavailable</body></html>",
                    headers={"Content-Type": "text/html"},
                )
            elif fault is not None and fault.action == "status":
                response = _error(
                    fault.status,
                    "SERVER_UNAVAILABLE" if fault.status == 503 else "UNKNOWN_EXCEPTION",
                    "Server temporarily unavailable"
                    if fault.status == 503
                    else "An unexpected error occurred. Please include this ErrorId if you contact "
                    "support: 1234567890-12345 (-1234567890)",
                )
                if not is_auth:
                    response.headers["Sforce-Limit-Info"] = self._limit_info()
            elif is_auth:
                response = self._auth(method, path, host, headers, body)
            else:
                response = self._rest(method, path, params, host, headers, body)
            records = 0
            if kind == "write" and body:
                try:
                    records = len(json.loads(body).get("records") or [])
                except (ValueError, AttributeError):
                    records = 0
            self._record(method, path, host, kind, response.status, records, params.get("q"))
        if fault is not None and fault.action == "drop_response":
            return Response(drop=True)  # done, but the client never hears of it
        response.delay = delay
        return response

    def _record(
        self,
        method: str,
        path: str,
        host: str,
        kind: str,
        status: int,
        records: int = 0,
        soql: str | None = None,
    ) -> None:
        self.calls[kind] += 1
        self.log.append(RequestRecord(method, path, host, kind, status, records, soql))

    def _take_fault(self, method: str, path: str, is_auth: bool) -> Fault | None:
        chosen = None
        for fault in self.faults:  # every matching fault counts the request towards its ``after``
            if fault.count <= 0 or not fault.matches(method, path, is_auth):
                continue
            if fault.after > 0:
                fault.after -= 1
            elif chosen is None:
                fault.count -= 1
                chosen = fault
        self.faults = [f for f in self.faults if f.count > 0]
        return chosen

    def _limit_info(self) -> str:
        return f"api-usage={self.daily_used}/{self.daily_limit}"

    # ------------------------------------------------------------------------------ login

    def _login_hosts(self) -> set[str]:
        hosts = {"test.salesforce.com" if self.sandbox else "login.salesforce.com", self.instance_host}
        return hosts | ({self.login_host} if self.login_host else set())

    def _auth(self, method: str, path: str, host: str, headers: Mapping[str, str], body: bytes) -> Response:
        self.login_hosts.append(host)
        if method != "POST":
            return _error(405, "METHOD_NOT_ALLOWED", f"HTTP Method '{method}' not allowed. Allowed are POST")
        if path.startswith("/services/Soap/u/"):
            return self._soap_login(path, host, body)
        form = {k: v[0] for k, v in parse_qs(body.decode("utf-8", "replace")).items()}
        grant = form.get("grant_type")
        if grant != "urn:ietf:params:oauth:grant-type:jwt-bearer":
            return Response(
                400, {"error": "unsupported_grant_type", "error_description": "grant type not supported"}
            )
        if host not in self._login_hosts():
            return Response(400, {"error": "invalid_grant", "error_description": "authentication failure"})
        assertion = form.get("assertion", "")
        try:
            claims = jwt.decode(assertion, options={"verify_signature": False})
        except jwt.PyJWTError:
            return Response(400, {"error": "invalid_grant", "error_description": "invalid assertion"})
        key = self._jwt_apps.get(str(claims.get("iss")))
        if key is None:
            return Response(
                400, {"error": "invalid_client_id", "error_description": "client identifier invalid"}
            )
        audiences = ["https://test.salesforce.com"] if self.sandbox else ["https://login.salesforce.com"]
        if self.jwt_audience:
            audiences = [self.jwt_audience]
        try:
            # simple-salesforce sends ``exp`` as a string, which Salesforce accepts: check it by hand.
            claims = jwt.decode(
                assertion,
                key,
                algorithms=["RS256"],
                audience=audiences,
                options={"require": ["exp", "iss", "sub", "aud"], "verify_exp": False},
            )
            if int(float(claims["exp"])) < time.time():
                raise jwt.ExpiredSignatureError("expired")
        except jwt.InvalidAudienceError:
            return Response(400, {"error": "invalid_grant", "error_description": "audience is invalid"})
        except jwt.ExpiredSignatureError:
            return Response(
                400, {"error": "invalid_grant", "error_description": "expired authorization code"}
            )
        except (jwt.PyJWTError, ValueError):
            return Response(400, {"error": "invalid_grant", "error_description": "invalid assertion"})
        if claims.get("sub") != self.username:
            return Response(
                400, {"error": "invalid_grant", "error_description": "user hasn't approved this consumer"}
            )
        token = self.new_session()
        login = "test" if self.sandbox else "login"
        return Response(
            200,
            {
                "access_token": token,
                "scope": "api",
                "instance_url": self.instance_url,
                "id": f"https://{login}.salesforce.com/id/{self.org_id}/{self.user_id}",
                "token_type": "Bearer",
                "issued_at": str(int(time.time() * 1000)),
            },
        )

    def _soap_login(self, path: str, host: str, body: bytes) -> Response:
        version = path.rsplit("/", 1)[-1]
        try:
            root = ET.fromstring(body)
        except ET.ParseError:
            return self._soap_fault(
                "INVALID_LOGIN", "Invalid username, password, security token; or user locked out."
            )
        values = {el.tag.rsplit("}", 1)[-1]: (el.text or "") for el in root.iter()}
        ok = (
            host in self._login_hosts()
            and values.get("username") == self.username
            and values.get("password") in (self.password + self.security_token,)
        )
        if not ok:
            return self._soap_fault(
                "INVALID_LOGIN", "Invalid username, password, security token; or user locked out."
            )
        token = self.new_session()
        base = f"https://{self.instance_host}/services/Soap"
        xml = (
            '<?xml version="1.0" encoding="UTF-8"?><soapenv:Envelope '
            'xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/" xmlns="urn:partner.soap.sforce.com" '
            'xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance"><soapenv:Body><loginResponse><result>'
            f"<metadataServerUrl>{base}/m/{version}/{self.org_id}</metadataServerUrl>"
            "<passwordExpired>false</passwordExpired>"
            f"<sandbox>{str(self.sandbox).lower()}</sandbox>"
            f"<serverUrl>{base}/u/{version}/{self.org_id}</serverUrl>"
            f"<sessionId>{html.escape(token)}</sessionId><userId>{self.user_id}</userId>"
            f"<userInfo><organizationId>{self.org_id}</organizationId><userName>{html.escape(self.username)}"
            "</userName></userInfo></result></loginResponse></soapenv:Body></soapenv:Envelope>"
        )
        return Response(200, raw=xml.encode(), headers={"Content-Type": "text/xml;charset=UTF-8"})

    def _soap_fault(self, code: str, message: str) -> Response:
        xml = (
            '<?xml version="1.0" encoding="UTF-8"?><soapenv:Envelope '
            'xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/" '
            'xmlns:sf="urn:fault.partner.soap.sforce.com" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance">'
            f"<soapenv:Body><soapenv:Fault><faultcode>sf:{code}</faultcode><faultstring>{code}: {message}"
            f'</faultstring><detail><sf:LoginFault xsi:type="sf:LoginFault"><sf:exceptionCode>{code}'
            f"</sf:exceptionCode><sf:exceptionMessage>{message}</sf:exceptionMessage></sf:LoginFault></detail>"
            "</soapenv:Fault></soapenv:Body></soapenv:Envelope>"
        )
        return Response(500, raw=xml.encode(), headers={"Content-Type": "text/xml;charset=UTF-8"})

    # ------------------------------------------------------------------------------ REST

    def _rest(
        self,
        method: str,
        path: str,
        params: Mapping[str, str],
        host: str,
        headers: Mapping[str, str],
        body: bytes,
    ) -> Response:
        if host != self.instance_host:
            return _error(404, "NOT_FOUND", "The requested resource does not exist")
        auth = headers.get("Authorization") or ""
        token = auth.split(" ", 1)[1] if " " in auth else ""
        if token not in self._sessions:
            return _error(401, "INVALID_SESSION_ID", "Session expired or invalid")
        if path == "/services/oauth2/userinfo":
            return Response(
                200,
                {
                    "sub": f"https://login.salesforce.com/id/{self.org_id}/{self.user_id}",
                    "user_id": self.user_id,
                    "organization_id": self.org_id,
                    "preferred_username": self.username,
                },
            )
        if self.daily_used >= self.daily_limit:
            response = _error(403, "REQUEST_LIMIT_EXCEEDED", "TotalRequests Limit exceeded.")
            response.headers["Sforce-Limit-Info"] = self._limit_info()
            return response
        self.daily_used += 1
        m = re.match(r"^/services/data/v(\d+\.\d)(/.*)?$", path)
        if not m or m.group(1) not in API_VERSIONS:
            response = _error(404, "NOT_FOUND", "The requested resource does not exist")
        else:
            response = self._route(
                method, m.group(1), (m.group(2) or "/").rstrip("/") or "/", params, headers, body
            )
        response.headers["Sforce-Limit-Info"] = self._limit_info()
        return response

    def _route(
        self,
        method: str,
        version: str,
        rest: str,
        params: Mapping[str, str],
        headers: Mapping[str, str],
        body: bytes,
    ) -> Response:
        if rest.startswith("/jobs/"):  # Bulk API 2.0: CSV bodies, its own routes
            return self.bulk.route(method, version, rest, params, body)
        try:
            payload = json.loads(body) if body else None
        except ValueError:
            return _error(400, "JSON_PARSER_ERROR", "Unexpected character: was expecting a JSON value")
        tooling = rest.startswith("/tooling/")
        if tooling:
            rest = rest[len("/tooling") :]
        tables = self.tooling if tooling else self.tables
        if rest in ("/query", "/queryAll") and method == "GET":
            return self._query(version, params.get("q", ""), tables, rest == "/queryAll", headers)
        m = re.match(r"^/(query|queryAll)/(01g[0-9A-Za-z]+)-(\d+)$", rest)
        if m and method == "GET":
            return self._query_more(version, m.group(1), m.group(2), int(m.group(3)), headers)
        if rest == "/limits" and method == "GET":
            return Response(
                200,
                {
                    "DailyApiRequests": {
                        "Max": self.daily_limit,
                        "Remaining": max(0, self.daily_limit - self.daily_used),
                    },
                    **self.bulk.limits(),
                },
            )
        m = re.match(r"^/sobjects/(\w+)/describe$", rest)
        if m and method == "GET":
            return self._describe(m.group(1), tables)
        if rest == "/composite/sobjects" and method in ("PATCH", "POST"):
            return self._collection(method, version, payload, tables)
        if tooling and rest == "/sobjects/CustomField" and method == "POST":
            return self._create_custom_field(payload)
        m = re.match(r"^/sobjects/(\w+)$", rest)
        if m and method == "POST" and not tooling:
            records = [{**(payload or {}), "attributes": {"type": m.group(1)}}]
            result = self._save_all("POST", records, all_or_none=True)[0]
            if not result["success"]:
                err = result["errors"][0]
                return _error(400, err["statusCode"], err["message"])
            return Response(201, result)
        return _error(404, "NOT_FOUND", "The requested resource does not exist")

    # ------------------------------------------------------------------------------ describe

    def _access(self, table: Table) -> dict[str, tuple[bool, bool]]:
        """Field name (lower) -> (readable, editable) for the integration user."""
        grants: dict[str, tuple[bool, bool]] = {}
        if any(f.needs_grant for f in table.fields.values()):
            sets = {
                self.tables["PermissionSetAssignment"].get(r, "PermissionSetId")
                for r in self._live_rows(self.tables["PermissionSetAssignment"])
                if self.tables["PermissionSetAssignment"].get(r, "AssigneeId") == self.user_id
            }
            fp = self.tables["FieldPermissions"]
            for r in self._live_rows(fp):
                if fp.get(r, "ParentId") not in sets:
                    continue
                obj, _, name = str(fp.get(r, "Field") or "").partition(".")
                if obj.lower() != table.name.lower():
                    continue
                read, edit = grants.get(name.lower(), (False, False))
                grants[name.lower()] = (
                    read or bool(fp.get(r, "PermissionsRead")),
                    edit or bool(fp.get(r, "PermissionsEdit")),
                )
        out: dict[str, tuple[bool, bool]] = {}
        for key, f in table.fields.items():
            if f.hidden:
                continue
            if f.needs_grant:
                read, edit = grants.get(key, (False, False))
                if read:
                    out[key] = (True, edit and f.updateable)
            else:
                out[key] = (True, f.updateable)
        return out

    def _live_rows(self, table: Table) -> Iterable[tuple[Any, ...]]:
        deleted = table.col["isdeleted"]
        return (r for r in table.rows.values() if not r[deleted])

    def _describe(self, name: str, tables: Mapping[str, Table]) -> Response:
        table = next((t for n, t in tables.items() if n.lower() == name.lower()), None)
        if table is None:
            return _error(
                404,
                "NOT_FOUND",
                f"The requested resource does not exist: sObject type '{name}' is not supported.",
            )
        access = self._access(table)
        fields = [table.fields[k].describe(edit) for k, (_, edit) in access.items()]
        return Response(
            200,
            {
                "name": table.name,
                "label": table.name,
                "custom": False,
                "keyPrefix": table.prefix,
                "queryable": True,
                "createable": True,
                "updateable": True,
                "deletable": True,
                "fields": fields,
            },
        )

    # ------------------------------------------------------------------------------ query

    def _batch_size(self, headers: Mapping[str, str]) -> int:
        m = re.search(r"batchSize=(\d+)", headers.get("Sforce-Query-Options") or "")
        return min(MAX_BATCH, max(MIN_BATCH, int(m.group(1)))) if m else MAX_BATCH

    def _query(
        self, version: str, soql: str, tables: Mapping[str, Table], all_rows: bool, headers: Mapping[str, str]
    ) -> Response:
        try:
            q = parse_soql(soql)
            table = next((t for n, t in tables.items() if n.lower() == q.sobject.lower()), None)
            if table is None:
                raise SoqlError(
                    "INVALID_TYPE",
                    f"\n{soql[:80]}\n^\nERROR at Row:1:Column:1\nsObject type "
                    f"'{q.sobject}' is not supported. If you are attempting to use a "
                    "custom object, be sure to append the '__c' after the entity name.",
                )
            rows = self._execute(q, table, all_rows)
        except SoqlError as exc:
            return _error(400, exc.code, exc.message)
        fields = [table.fields[f.lower()].name for f in q.fields]
        cursor = _Cursor(rows, table, fields, all_rows, self._batch_size(headers))
        return self._page(version, cursor, 0, "queryAll" if all_rows else "query")

    def _query_more(
        self, version: str, endpoint: str, locator: str, offset: int, headers: Mapping[str, str]
    ) -> Response:
        cursor = self._cursors.get(locator)
        if cursor is None or offset > len(cursor.rows):
            return _error(400, "INVALID_QUERY_LOCATOR", "invalid query locator")
        return self._page(version, cursor, offset, endpoint, locator)

    def _page(
        self, version: str, cursor: _Cursor, offset: int, endpoint: str, locator: str | None = None
    ) -> Response:
        end = min(len(cursor.rows), offset + cursor.batch)
        table = cursor.table
        idx = [(name, table.col[name.lower()]) for name in cursor.fields]
        url = f"/services/data/v{version}/sobjects/{table.name}/"
        records = []
        for row in cursor.rows[offset:end]:
            n = len(row)
            rec: dict[str, Any] = {"attributes": {"type": table.name, "url": url + row[0]}}
            for name, i in idx:
                rec[name] = row[i] if i < n else None
            records.append(rec)
        body: dict[str, Any] = {
            "totalSize": len(cursor.rows),
            "done": end >= len(cursor.rows),
            "records": records,
        }
        if end < len(cursor.rows):
            if locator is None:
                locator = _salesforce_id("01g", next(self._cursor_seq))[:15]
                self._cursors[locator] = cursor
                while len(self._cursors) > MAX_OPEN_CURSORS:  # the oldest cursor of the user is released
                    del self._cursors[next(iter(self._cursors))]
            body["nextRecordsUrl"] = f"/services/data/v{version}/{endpoint}/{locator}-{end}"
        elif locator is not None:
            self._cursors.pop(locator, None)
        return Response(200, body)

    def _check_field(
        self, table: Table, access: Mapping[str, tuple[bool, bool]], name: str, *, filtering: bool = False
    ) -> FieldDef:
        f = table.fields.get(name.lower())
        if f is None or name.lower() not in access:
            raise SoqlError(
                "INVALID_FIELD",
                f"\nERROR at Row:1:Column:1\nNo such column '{name}' on entity "
                f"'{table.name}'. If you are attempting to use a custom field, be sure "
                "to append the '__c' after the custom field name. Please reference "
                "your WSDL or the describe call for the appropriate names.",
            )
        if filtering and not f.filterable:
            raise SoqlError("INVALID_FIELD", f"field '{f.name}' can not be filtered in a query call")
        return f

    def _execute(self, q: Query, table: Table, all_rows: bool) -> list[tuple[Any, ...]]:
        access = self._access(table)
        for name in q.fields:
            self._check_field(table, access, name)
        for name, _, _ in q.order:
            self._check_field(table, access, name)
        start_key: tuple[str, str] | None = None
        where = q.where
        conjuncts = where[1] if isinstance(where, tuple) and where[0] == "and" else [where] if where else []
        rest = []
        for c in conjuncts:
            if (
                start_key is None
                and c[0] == "cmp"
                and c[1].lower() == "systemmodstamp"
                and c[2] in (">=", ">")
                and c[3][0] == "dt"
            ):
                self._check_field(table, access, c[1], filtering=True)
                start_key = (c[3][1], "") if c[2] == ">=" else (c[3][1], "\x7f")
            else:
                rest.append(c)
        predicate = self._compile(("and", rest), table, access) if rest else None
        order = table.index()
        start = bisect.bisect_left(order, start_key) if start_key else 0
        deleted, ms = table.col["isdeleted"], table.col["systemmodstamp"]
        rows = table.rows
        out: list[tuple[Any, ...]] = []
        for key in order[start:] if start else order:
            row = rows.get(key[1])
            if row is None or row[ms] != key[0] or (row[deleted] and not all_rows):
                continue
            if predicate is None or predicate(row):
                out.append(row)
        natural = [("systemmodstamp", False), ("id", False)]
        wanted = [(name.lower(), desc) for name, desc, _ in q.order]
        if wanted and wanted != natural[: len(wanted)]:
            for name, desc, nulls_last in reversed(q.order):
                i = table.col[name.lower()]
                out.sort(key=_sort_key(i, desc, nulls_last), reverse=desc)
        if q.offset:
            out = out[q.offset :]
        if q.limit is not None:
            out = out[: q.limit]
        return out

    def _compile(
        self, node: Any, table: Table, access: Mapping[str, tuple[bool, bool]]
    ) -> Callable[[tuple], bool]:
        op = node[0]
        if op in ("and", "or"):
            parts = [self._compile(n, table, access) for n in node[1]]
            if op == "and":
                return lambda r: all(p(r) for p in parts)
            return lambda r: any(p(r) for p in parts)
        if op == "not":
            inner = self._compile(node[1], table, access)
            return lambda r: not inner(r)
        f = self._check_field(table, access, node[1], filtering=True)
        i = table.col[f.name.lower()]

        def get(r: tuple) -> Any:
            return r[i] if i < len(r) else None

        if op == "like":
            kind, pattern = node[2]
            if kind != "str" or f.type not in _TEXT | {"id", "reference"}:
                raise SoqlError("INVALID_FIELD", f"invalid operator on field '{f.name}' for LIKE")
            regex = _like_regex(pattern)
            return lambda r: (v := get(r)) is not None and regex.fullmatch(str(v)) is not None
        if op == "in":
            values = {_coerce(f, lit) for lit in node[2]}
            negate = node[3]
            return lambda r: (_norm(f, get(r)) in values) != negate
        _, _, cmp, lit = node
        value = _coerce(f, lit)
        if cmp in ("=", "!="):
            eq = cmp == "="
            return lambda r: (_norm(f, get(r)) == value) == eq
        if value is None:
            raise SoqlError("MALFORMED_QUERY", f"invalid operator on null for '{f.name}'")
        ops = {
            "<": lambda a, b: a < b,
            "<=": lambda a, b: a <= b,
            ">": lambda a, b: a > b,
            ">=": lambda a, b: a >= b,
        }
        fn = ops[cmp]
        return lambda r: (v := _norm(f, get(r))) is not None and fn(v, value)

    # ------------------------------------------------------------------------------ writes

    def _collection(self, method: str, version: str, payload: Any, tables: Mapping[str, Table]) -> Response:
        if not isinstance(payload, dict) or not isinstance(payload.get("records"), list):
            return _error(400, "JSON_PARSER_ERROR", "The request body must contain a records array")
        records = payload["records"]
        if len(records) > COLLECTION_LIMIT:
            return _error(
                400,
                "EXCEEDED_ID_LIMIT",
                "record limit reached. cannot submit more than 200 records into this call",
            )
        return Response(200, self._save_all(method, records, all_or_none=bool(payload.get("allOrNone"))))

    def _save_all(self, method: str, records: Sequence[Any], *, all_or_none: bool) -> list[dict[str, Any]]:
        stamp = self.stamp()
        results: list[dict[str, Any]] = []
        staged: list[tuple[Table, tuple[Any, ...]]] = []
        seen: set[str] = set()
        access_cache: dict[str, dict[str, tuple[bool, bool]]] = {}
        for record in records:
            result, row = self._save_one(method, record, stamp, seen, access_cache)
            results.append(result)
            if row is not None:
                staged.append(row)
        if all_or_none and any(not r["success"] for r in results):
            return [
                r
                if not r["success"]
                else _save_error(
                    "ALL_OR_NONE_OPERATION_ROLLED_BACK",
                    "Record rolled back because not all records were valid "
                    "and the request was using AllOrNone header",
                )
                for r in results
            ]
        for table, row in staged:
            table.put(row)
            self.saved[row[0]] += 1
        return results

    def _save_one(
        self,
        method: str,
        record: Any,
        stamp: str,
        seen: set[str],
        access_cache: dict[str, dict[str, tuple[bool, bool]]],
    ) -> tuple[dict[str, Any], Any]:
        if not isinstance(record, dict) or not isinstance(record.get("attributes"), dict):
            return _save_error(
                "INVALID_INPUT", "Each record must contain an attributes map with a type"
            ), None
        type_name = str(record["attributes"].get("type") or "")
        try:
            table = self.table(type_name)
        except KeyError:
            return _save_error("INVALID_TYPE", f"sObject type '{type_name}' is not supported."), None
        if table.name not in access_cache:
            access_cache[table.name] = self._access(table)
        access = access_cache[table.name]
        record_id = record.get("id") or record.get("Id")
        values = {k: v for k, v in record.items() if k not in ("attributes", "id", "Id")}
        if method == "PATCH":
            if not isinstance(record_id, str) or not re.fullmatch(
                r"[0-9A-Za-z]{15}([0-9A-Za-z]{3})?", record_id
            ):
                return _save_error("MALFORMED_ID", f"malformed id {record_id}", ["Id"]), None
            if record_id in seen:
                return _save_error("DUPLICATE_VALUE", f"Duplicate id in list: {record_id}", ["Id"]), None
            seen.add(record_id)
            current = table.rows.get(record_id)
            if current is None or not record_id.startswith(table.prefix):
                return _save_error("INVALID_CROSS_REFERENCE_KEY", "invalid cross reference id", ["Id"]), None
            if table.get(current, "IsDeleted"):
                return _save_error("ENTITY_IS_DELETED", "entity is deleted", []), None
            if self.locks.get(record_id, 0) > 0:
                self.locks[record_id] -= 1
                return _save_error(
                    "UNABLE_TO_LOCK_ROW",
                    f"unable to obtain exclusive access to this record or 1 records: {record_id}",
                ), None
            if record_id in self.rejects:
                code, message, fields = self.rejects[record_id]
                return _save_error(code, message, fields), None
        elif record_id is not None:
            return _save_error("INVALID_FIELD", "cannot specify Id in an insert call", ["Id"]), None
        problem = self._check_values(table, access, values, creating=method == "POST")
        if problem is not None:
            return problem, None
        if method == "PATCH":
            row = list(current)  # type: ignore[arg-type]
            row.extend([None] * (len(table.columns) - len(row)))
        else:
            row = [None] * len(table.columns)
            record_id = _salesforce_id(table.prefix, next(table.counter))
            row[0] = record_id
            row[table.col["isdeleted"]] = False
            row[table.col["createddate"]] = stamp
            for key, f in table.fields.items():
                if f.default is not None:
                    row[table.col[key]] = f.default
            if "ownerid" in table.col:
                row[table.col["ownerid"]] = self.user_id
        for key, value in values.items():
            row[table.col[key.lower()]] = value
        row[table.col["systemmodstamp"]] = row[table.col["lastmodifieddate"]] = stamp
        refused = self._check_relations(table, row)
        if refused is not None:
            return refused, None
        result = {"id": record_id, "success": True, "errors": []}
        if method == "POST":
            result["created"] = True
        return result, (table, tuple(row))

    def _check_values(
        self,
        table: Table,
        access: Mapping[str, tuple[bool, bool]],
        values: Mapping[str, Any],
        *,
        creating: bool,
    ) -> dict[str, Any] | None:
        for key, value in values.items():
            f = table.fields.get(key.lower())
            if f is None or key.lower() not in access:
                return _save_error(
                    "INVALID_FIELD", f"No such column '{key}' on sobject of type {table.name}", [key]
                )
            if not access[key.lower()][1] and not (creating and f.createable and not f.needs_grant):
                return _save_error(
                    "INVALID_FIELD_FOR_INSERT_UPDATE",
                    f"Unable to create/update fields: {f.name}. "
                    "Please check the security settings of this field and verify that it is Read/Write "
                    "for your profile or permission set.",
                    [f.name],
                )
            if value is None:
                continue
            bad = False
            if f.type in _NUMERIC:
                bad = isinstance(value, bool) or not isinstance(value, int | float)
                if not bad and f.precision and abs(value) >= 10 ** (f.precision - f.scale):
                    return _save_error(
                        "NUMBER_OUTSIDE_VALID_RANGE",
                        f"{f.label or f.name}: value outside of valid range on numeric field",
                        [f.name],
                    )
            elif f.type == "boolean":
                bad = not isinstance(value, bool)
            elif f.type == "datetime":
                try:
                    parse_sf_datetime(str(value))
                except ValueError:
                    bad = True
            elif f.type == "date":
                bad = not re.fullmatch(r"\d{4}-\d{2}-\d{2}", str(value))
            elif f.type in _TEXT:
                bad = not isinstance(value, str)
                if not bad and f.length and len(value) > f.length:
                    return _save_error(
                        "STRING_TOO_LONG",
                        f"{f.label or f.name}: data value too large: {value[:40]} (max length={f.length})",
                        [f.name],
                    )
            if bad:
                return _save_error(
                    "INVALID_TYPE_ON_FIELD_IN_RECORD",
                    f"{f.name}: value not of required type: {str(value)[:40]}",
                    [f.name],
                )
        return None

    def _check_relations(self, table: Table, row: list[Any]) -> dict[str, Any] | None:
        """The handful of cross-record rules the connector meets."""
        if table.name == "Task":
            who, what = row[table.col["whoid"]], row[table.col["whatid"]]
            if who and not str(who).startswith(("00Q", "003")):
                return _save_error(
                    "FIELD_INTEGRITY_EXCEPTION", "Name ID: id value of incorrect type: " + who, ["WhoId"]
                )
            if what and str(what).startswith(("00Q", "003")):
                return _save_error(
                    "FIELD_INTEGRITY_EXCEPTION",
                    "Related To ID: id value of incorrect type: " + what,
                    ["WhatId"],
                )
            if not row[table.col["subject"]]:
                row[table.col["subject"]] = None
        if table.name == "PermissionSet":
            name = str(row[table.col["name"]] or "")
            if not re.fullmatch(r"[A-Za-z][A-Za-z0-9_]*", name):
                return _save_error("FIELD_INTEGRITY_EXCEPTION", "The API name is invalid", ["Name"])
            for other in self._live_rows(table):
                if other[0] != row[0] and str(table.get(other, "Name")).lower() == name.lower():
                    return _save_error("DUPLICATE_DEVELOPER_NAME", "Duplicate Unique Name", ["Name"])
        if table.name == "FieldPermissions":
            field_name = str(row[table.col["field"]] or "")
            obj, _, fname = field_name.partition(".")
            try:
                target = self.table(obj)
            except KeyError:
                target = None
            if target is None or fname.lower() not in target.fields or obj != row[table.col["sobjecttype"]]:
                return _save_error("INVALID_FIELD", f"Invalid field: {field_name}", ["Field"])
            if row[table.col["permissionsedit"]] and not row[table.col["permissionsread"]]:
                return _save_error(
                    "FIELD_INTEGRITY_EXCEPTION", "Edit access requires read access", ["PermissionsRead"]
                )
            for other in self._live_rows(table):
                if (
                    other[0] != row[0]
                    and table.get(other, "ParentId") == row[table.col["parentid"]]
                    and str(table.get(other, "Field")).lower() == field_name.lower()
                ):
                    return _save_error(
                        "DUPLICATE_VALUE",
                        f"duplicate value found: Field duplicates value on record with id: {other[0]}",
                        ["Field"],
                    )
        if table.name == "PermissionSetAssignment":
            for other in self._live_rows(table):
                if (
                    other[0] != row[0]
                    and table.get(other, "PermissionSetId") == row[table.col["permissionsetid"]]
                    and table.get(other, "AssigneeId") == row[table.col["assigneeid"]]
                ):
                    return _save_error("DUPLICATE_VALUE", "Duplicate PermissionSetAssignment", ["AssigneeId"])
        return None

    # ------------------------------------------------------------------------------ Tooling API

    def _create_custom_field(self, payload: Any) -> Response:
        if not isinstance(payload, dict) or not isinstance(payload.get("Metadata"), dict):
            return _error(400, "JSON_PARSER_ERROR", "FullName and Metadata are required")
        full_name = str(payload.get("FullName") or "")
        obj, _, api = full_name.partition(".")
        try:
            table = self.table(obj)
        except KeyError:
            return _error(400, "INVALID_TYPE", f"Cannot find the entity {obj}")
        if not re.fullmatch(r"[A-Za-z][A-Za-z0-9_]{0,39}__c", api) or "__" in api[:-3]:
            return _error(
                400,
                "FIELD_INTEGRITY_EXCEPTION",
                "The Field Name field can only contain underscores and alphanumeric characters.",
            )
        if api.lower() in table.fields:
            return _error(
                400, "DUPLICATE_DEVELOPER_NAME", f"There is already a field named {api[:-3]} on {obj}."
            )
        meta = payload["Metadata"]
        problem = _metadata_problem(meta)
        if problem:
            return _error(400, "FIELD_INTEGRITY_EXCEPTION", problem)
        table.add_field(_field_from_metadata(api, meta, needs_grant=True))
        tool = self.tooling["CustomField"]
        row = tool.make_row(
            {
                "Id": _salesforce_id("00N", next(tool.counter)),
                "IsDeleted": False,
                "DeveloperName": api[:-3],
                "TableEnumOrId": table.name,
                "FullName": full_name,
                "SystemModstamp": self.stamp(),
            }
        )
        tool.put(row)
        return Response(201, {"id": row[0], "success": True, "errors": [], "warnings": [], "infos": []})


def _metadata_problem(meta: Mapping[str, Any]) -> str | None:
    kind = meta.get("type")
    if not meta.get("label"):
        return "Field label: You must enter a value"
    if kind == "Number":
        if not isinstance(meta.get("precision"), int) or not isinstance(meta.get("scale"), int):
            return "Length: You must enter a value (precision and scale)"
        if meta["precision"] > 18 or meta["scale"] > meta["precision"]:
            return "The sum of the length and decimal places must be an integer less than or equal to 18"
    elif kind == "Text":
        if not isinstance(meta.get("length"), int) or not 1 <= meta["length"] <= 255:
            return "Length: must be between 1 and 255"
    elif kind == "LongTextArea":
        if not isinstance(meta.get("length"), int) or not 256 <= meta["length"] <= 131072:
            return "Length: must be between 256 and 131,072"
        if not meta.get("visibleLines"):
            return "# Visible Lines: You must enter a value"
    elif kind == "Checkbox":
        if str(meta.get("defaultValue")).lower() not in ("true", "false"):
            return "Default Value: a checkbox needs true or false"
    elif kind in ("TextArea", "DateTime", "Date"):
        pass
    elif kind == "Picklist":
        if not meta.get("valueSet"):
            return "Values: You must enter at least one value"
    else:
        return f"Unsupported field type: {kind}"
    return None


def _field_from_metadata(api: str, meta: Mapping[str, Any], *, needs_grant: bool) -> FieldDef:
    kind = meta.get("type")
    mapping = {
        "Number": ("double", 0),
        "Text": ("string", int(meta.get("length") or 255)),
        "TextArea": ("textarea", 255),
        "LongTextArea": ("textarea", int(meta.get("length") or 32768)),
        "DateTime": ("datetime", 0),
        "Date": ("date", 0),
        "Checkbox": ("boolean", 0),
        "Picklist": ("picklist", 255),
    }
    type_, length = mapping[str(kind)]
    return FieldDef(
        api,
        type_,
        length,
        custom=True,
        label=str(meta.get("label") or api),
        needs_grant=needs_grant,
        filterable=kind != "LongTextArea",
        precision=int(meta.get("precision") or 0),
        scale=int(meta.get("scale") or 0),
        default=(str(meta.get("defaultValue")).lower() == "true") if kind == "Checkbox" else None,
    )


def _coerce(f: FieldDef, lit: tuple[str, Any]) -> Any:
    """A SOQL literal as the field's stored value, refusing the type mismatches Salesforce refuses."""
    kind, value = lit
    if kind == "null":
        return None
    expected = {"datetime": "dt", "date": "date", "boolean": "bool"}.get(
        f.type, "num" if f.type in _NUMERIC else "str"
    )
    if kind != expected:
        wanted = {"dt": "dateTime", "date": "date", "bool": "boolean", "num": "number", "str": "string"}[
            expected
        ]
        quoted = " and should not be enclosed in quotes" if kind == "str" else ""
        raise SoqlError(
            "INVALID_FIELD",
            f"value of filter criterion for field '{f.name}' must be of type {wanted}{quoted}",
        )
    if kind == "str" and f.type not in ("id", "reference"):
        return value.lower()
    return value


def _norm(f: FieldDef, value: Any) -> Any:
    if value is None:
        return None
    if f.type in _TEXT and isinstance(value, str):
        return value.lower()
    if f.type in _NUMERIC:
        return float(value)
    return value


def _sort_key(i: int, desc: bool, nulls_last: bool) -> Callable[[tuple], Any]:
    def key(row: tuple) -> Any:
        value = row[i] if i < len(row) else None
        is_null = value is None
        # With reverse=desc the null flag flips too; compensate so NULLS FIRST/LAST hold.
        null_rank = (1 if nulls_last else 0) if not desc else (0 if nulls_last else 1)
        rank = null_rank if is_null else 1 - null_rank
        value = value.lower() if isinstance(value, str) else value
        return (rank, 0 if is_null else value)

    return key


def _kind_of(method: str, path: str) -> str:
    if path.startswith("/services/oauth2/token") or path.startswith("/services/Soap/u/"):
        return "auth"
    if "/tooling/" in path:
        return "tooling"
    if "/jobs/query" in path:
        return "bulk_query"
    if "/jobs/ingest" in path:
        return "bulk_ingest"
    if re.search(r"/(query|queryAll)(/|$)", path):
        return "read"
    if path.endswith("/describe"):
        return "describe"
    if method in ("POST", "PATCH", "PUT", "DELETE") and ("/composite/" in path or "/sobjects/" in path):
        return "write"
    return "other"


# ------------------------------------------------------------------------------------------------ HTTP


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "FakeSalesforce/1.0"
    # Headers and body go out in two writes: with Nagle on, the body waits for the client's delayed
    # ACK (40 ms a request on Linux).
    disable_nagle_algorithm = True

    def _handle(self, method: str) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        fake: FakeSalesforce = self.server.fake  # type: ignore[attr-defined]
        headers = CaseInsensitiveDict(dict(self.headers.items()))
        with fake.lock:
            fake.in_flight += 1
            fake.max_in_flight = max(fake.max_in_flight, fake.in_flight)
        try:
            response = fake.dispatch(method, self.path, headers, body)
            if response.delay or fake.latency:
                time.sleep(response.delay + fake.latency)
        finally:
            with fake.lock:
                fake.in_flight -= 1
        if response.drop:
            self.close_connection = True
            return
        try:
            self._respond(method, response)
        except (BrokenPipeError, ConnectionResetError):  # the client gave up (a timeout test)
            self.close_connection = True

    def _respond(self, method: str, response: Response) -> None:
        payload = response.payload()
        self.send_response(response.status)
        content_type = response.headers.pop("Content-Type", "application/json;charset=UTF-8")
        if payload:
            self.send_header("Content-Type", content_type)
        for key, value in response.headers.items():
            self.send_header(key, value)
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        if payload and method != "HEAD":
            self.wfile.write(payload)

    def do_GET(self) -> None:  # noqa: N802 - http.server's naming
        self._handle("GET")

    def do_POST(self) -> None:  # noqa: N802
        self._handle("POST")

    def do_PATCH(self) -> None:  # noqa: N802
        self._handle("PATCH")

    def do_PUT(self) -> None:  # noqa: N802
        self._handle("PUT")

    def do_DELETE(self) -> None:  # noqa: N802
        self._handle("DELETE")

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - quiet
        return


class _RouteToFake(HTTPAdapter):
    """Sends https://*.salesforce.com requests (and those to the fake's ``login_host``) to the fake over
    plain HTTP, keeping the original host in
    the ``Host`` header (the fake checks which login host was used). Anything else is refused."""

    def __init__(self, fake: FakeSalesforce) -> None:
        super().__init__()
        self.fake = fake

    def send(self, request: requests.PreparedRequest, **kwargs: Any) -> requests.Response:  # type: ignore[override]
        parts = urlsplit(request.url or "")
        host = (parts.hostname or "").lower()
        if not host.endswith(".salesforce.com") and host != self.fake.login_host:
            raise requests.ConnectionError(f"fake Salesforce: refusing to contact {host!r}")
        request.url = urlunsplit(("http", f"127.0.0.1:{self.fake.port}", parts.path, parts.query, ""))
        request.headers["Host"] = host
        kwargs["proxies"] = {}
        return super().send(request, **kwargs)
