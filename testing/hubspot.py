"""A fake HubSpot API on 127.0.0.1, for driving the connector through ``hubspot-api-client`` over HTTP.

Written from HubSpot's public API documentation and the URLs/payloads of hubspot-api-client 12. It
implements the subset the connector uses and enforces the limits that shape a real integration:

* CRM objects v3 (companies, contacts, deals, tasks, leads; also by id ``0-2``, ``0-1``...):
  list ``GET /crm/v3/objects/{t}`` (``limit`` <= 100, ``after`` paging, ``properties``),
  search ``POST /crm/v3/objects/{t}/search`` (``limit`` <= 200, <= 5 filter groups of <= 6 filters,
  one sort, and the 10,000-result cap: ``after`` >= 10,000 is a 400), batch update / create / read
  (<= 100 inputs; unknown ids -> 207 ``OBJECT_NOT_FOUND`` with ``context.ids``; an invalid value of an
  existing property -> 400 ``VALIDATION_ERROR`` for the whole batch, as HubSpot does, or a 207 per-input
  error with ``enum_errors="multi_status"``; an unknown property -> 400 ``PROPERTY_DOESNT_EXIST``).
  Every update bumps ``hs_lastmodifieddate``.
* Properties and property groups v3 (read, create with 409 on duplicates, update options).
* Associations v4 batch read (<= 1,000 inputs; records without associations -> 207 errors).
* Pipelines v3 (deal stages with ``metadata.isClosed`` / ``metadata.probability`` strings).
* OAuth ``POST /oauth/v1/token`` (refresh-token grant); access tokens expire on the fake's clock.
* Rate limits: a rolling window of ``requests_per_10s`` per 10 seconds and ``search_per_second`` for
  search, answered with HubSpot's 429 body (``errorType: RATE_LIMIT``, ``policyName``) and the
  ``X-HubSpot-RateLimit-*`` and ``Retry-After`` headers; a daily allowance (``policyName: DAILY``).
* Injectable faults (``inject``): 5xx, a dropped connection, an expired token, rolling or DAILY 429s,
  delays; ``latency`` (seconds) holds back every answer, as a real round trip would.
* Counting: ``calls[kind]`` and ``calls[f"{kind}:{object}"]`` for accepted requests, ``rejected[...]``
  for 429s, ``statuses`` by HTTP status.

State lives in memory: ids ascend, so the list endpoint pages by bisecting the id list; search keeps an
index of ``(hs_lastmodifieddate, id)`` rebuilt lazily after writes, and a range filter on the stamp is
answered by bisection: 100,000+ records stay fast. A seeding API (``seed``, ``associate``, ``modify``)
bypasses HTTP and validation.
"""

from __future__ import annotations

import bisect
import contextlib
import itertools
import json
import threading
import time
import uuid
from collections import Counter, deque
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

OBJECT_ALIASES = {
    "0-1": "contacts",
    "0-2": "companies",
    "0-3": "deals",
    "0-27": "tasks",
    "0-136": "leads",
    "contact": "contacts",
    "company": "companies",
    "deal": "deals",
    "task": "tasks",
    "lead": "leads",
}
OBJECTS = ("companies", "contacts", "deals", "tasks", "leads")
SEARCH_CAP = 10_000
READ_ONLY = ("hs_object_id", "createdate", "hs_lastmodifieddate")

LIFECYCLE = [
    "subscriber",
    "lead",
    "marketingqualifiedlead",
    "salesqualifiedlead",
    "opportunity",
    "customer",
    "evangelist",
    "other",
]
LEAD_STATUS = [
    "NEW",
    "OPEN",
    "IN_PROGRESS",
    "OPEN_DEAL",
    "UNQUALIFIED",
    "ATTEMPTED_TO_CONTACT",
    "CONNECTED",
    "BAD_TIMING",
]
#: Some of the options of HubSpot's standard ``industry`` enumeration (value, label).
INDUSTRY_OPTIONS = [
    ("COMPUTER_SOFTWARE", "Computer Software"),
    ("INFORMATION_TECHNOLOGY_AND_SERVICES", "Information Technology and Services"),
    ("INTERNET", "Internet"),
    ("COMPUTER_HARDWARE", "Computer Hardware"),
    ("FINANCIAL_SERVICES", "Financial Services"),
    ("HOSPITAL_HEALTH_CARE", "Hospital & Health Care"),
    ("MARKETING_AND_ADVERTISING", "Marketing and Advertising"),
    ("MANAGEMENT_CONSULTING", "Management Consulting"),
    ("RETAIL", "Retail"),
    ("TELECOMMUNICATIONS", "Telecommunications"),
]
DEAL_STAGES = [
    ("appointmentscheduled", "Appointment Scheduled", "false", "0.2"),
    ("qualifiedtobuy", "Qualified To Buy", "false", "0.4"),
    ("presentationscheduled", "Presentation Scheduled", "false", "0.6"),
    ("decisionmakerboughtin", "Decision Maker Bought-In", "false", "0.8"),
    ("contractsent", "Contract Sent", "false", "0.9"),
    ("closedwon", "Closed Won", "true", "1.0"),
    ("closedlost", "Closed Lost", "true", "0.0"),
]


class FakeClock:
    """A clock shared by the fake and the connector under test: ``sleep`` advances it, instantly."""

    def __init__(self, start: float = 1_767_225_600.0) -> None:  # 2026-01-01T00:00:00Z
        self._now = start
        self._lock = threading.Lock()
        self.slept = 0.0

    def time(self) -> float:
        with self._lock:
            return self._now

    monotonic = time

    def sleep(self, seconds: float) -> None:
        if seconds > 0:
            with self._lock:
                self._now += seconds
                self.slept += seconds

    advance = sleep

    def utcnow(self) -> datetime:
        return datetime.fromtimestamp(self.time(), tz=UTC)


def iso_ms(ms: int) -> str:
    moment = datetime.fromtimestamp(ms / 1000.0, tz=UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{ms % 1000:03d}Z"


def to_ms(value: Any) -> int | None:
    """HubSpot accepts epoch milliseconds or ISO 8601 for datetimes."""
    if value is None or value == "":
        return None
    text = str(value).strip()
    if text.lstrip("-").isdigit():
        return int(text)
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return round(moment.timestamp() * 1000)


def _prop(
    name: str,
    type_: str = "string",
    field_type: str = "text",
    group: str = "",
    *,
    options: Iterable[str] | Iterable[tuple[str, str]] = (),
    read_only: bool = False,
) -> dict[str, Any]:
    opts = []
    for i, o in enumerate(options):
        value, label = (o, o.replace("_", " ").title()) if isinstance(o, str) else o
        opts.append({"label": label, "value": value, "displayOrder": i, "hidden": False})
    return {
        "name": name,
        "label": name.replace("_", " ").title(),
        "type": type_,
        "fieldType": field_type,
        "groupName": group,
        "options": opts,
        "hubspotDefined": True,
        "modificationMetadata": {"archivable": False, "readOnlyDefinition": True, "readOnlyValue": read_only},
    }


def default_schema() -> dict[str, dict[str, dict[str, Any]]]:
    """The standard properties the connector reads, per object (a small part of a real portal)."""
    common = [
        _prop("hs_object_id", "number", "number", read_only=True),
        _prop("createdate", "datetime", "date", read_only=True),
        _prop("hs_lastmodifieddate", "datetime", "date", read_only=True),
        _prop("hubspot_owner_id", "enumeration", "select"),
    ]
    activity = [
        _prop("notes_last_updated", "datetime", "date", read_only=True),
        _prop("hs_last_sales_activity_timestamp", "datetime", "date", read_only=True),
    ]
    industry = _prop("industry", "enumeration", "select", options=INDUSTRY_OPTIONS)
    firmo = [industry, _prop("annualrevenue", "number", "number"), _prop("country"), _prop("state")]
    schema = {
        "companies": [
            *common,
            *activity,
            *firmo,
            _prop("name"),
            _prop("domain"),
            _prop("city"),
            _prop("numberofemployees", "number", "number"),
            _prop("founded_year"),
            _prop(
                "web_technologies",
                "enumeration",
                "checkbox",
                options=["salesforce", "hubspot", "okta", "slack", "zendesk", "google_analytics"],
            ),
            _prop("lifecyclestage", "enumeration", "radio", options=LIFECYCLE),
            _prop(
                "hs_ideal_customer_profile",
                "enumeration",
                "radio",
                options=[("tier_1", "Tier 1"), ("tier_2", "Tier 2"), ("tier_3", "Tier 3")],
            ),
        ],
        "contacts": [
            *common,
            *activity,
            *firmo,
            _prop("firstname"),
            _prop("lastname"),
            _prop("email"),
            _prop("company"),
            _prop("jobtitle"),
            _prop("numemployees"),
            _prop("hs_lead_status", "enumeration", "radio", options=LEAD_STATUS),
            _prop("lifecyclestage", "enumeration", "radio", options=LIFECYCLE),
        ],
        "deals": [
            *common,
            _prop("notes_last_updated", "datetime", "date", read_only=True),
            _prop("dealname"),
            _prop("amount", "number", "number"),
            _prop("closedate", "datetime", "date"),
            _prop("dealstage", "enumeration", "radio", options=[s[0] for s in DEAL_STAGES]),
            _prop("pipeline", "enumeration", "select", options=["default"]),
            _prop("dealtype", "enumeration", "radio", options=["newbusiness", "existingbusiness"]),
        ],
        "tasks": [
            *common,
            _prop("hs_task_subject"),
            _prop("hs_task_body", "string", "textarea"),
            _prop("hs_timestamp", "datetime", "date"),
            _prop(
                "hs_task_status",
                "enumeration",
                "select",
                options=["NOT_STARTED", "IN_PROGRESS", "WAITING", "COMPLETED", "DEFERRED"],
            ),
            _prop("hs_task_type", "enumeration", "select", options=["TODO", "CALL", "EMAIL"]),
            _prop("hs_task_priority", "enumeration", "select", options=["LOW", "MEDIUM", "HIGH"]),
        ],
        "leads": [*common, _prop("hs_lead_name"), _prop("hs_pipeline"), _prop("hs_pipeline_stage")],
    }
    out: dict[str, dict[str, dict[str, Any]]] = {}
    for obj, props in schema.items():
        group = {
            "companies": "companyinformation",
            "contacts": "contactinformation",
            "deals": "dealinformation",
            "tasks": "taskinformation",
            "leads": "leadinformation",
        }[obj]
        out[obj] = {p["name"]: {**p, "groupName": p["groupName"] or group} for p in props}
    return out


@dataclass(slots=True)
class Record:
    id: int
    props: dict[str, str]
    stamp: int
    created: int
    archived: bool = False


@dataclass
class ObjectStore:
    name: str
    records: dict[int, Record] = field(default_factory=dict)
    ids: list[int] = field(default_factory=list)  # ascending: ids are handed out in order
    _index: list[tuple[int, int]] | None = None

    def add(self, rec: Record) -> None:
        self.records[rec.id] = rec
        self.ids.append(rec.id)
        self._index = None

    def touched(self) -> None:
        self._index = None

    def index(self) -> list[tuple[int, int]]:
        if self._index is None:
            self._index = sorted((r.stamp, r.id) for r in self.records.values() if not r.archived)
        return self._index


@dataclass
class Fault:
    kind: str
    path: str | None
    method: str | None
    times: int
    args: dict[str, Any]

    def matches(self, method: str, path: str) -> bool:
        return (self.method is None or self.method == method) and (self.path is None or self.path in path)


class ApiError(Exception):
    def __init__(self, status: int, body: dict[str, Any], headers: Mapping[str, str] | None = None) -> None:
        super().__init__(body.get("message"))
        self.status = status
        self.body = body
        self.headers = dict(headers or {})


def _error(status: int, message: str, category: str = "VALIDATION_ERROR", **extra: Any) -> ApiError:
    return ApiError(
        status,
        {
            "status": "error",
            "message": message,
            "correlationId": str(uuid.uuid4()),
            "category": category,
            **extra,
        },
    )


class FakeHubSpot:
    """The fake portal and its HTTP server (``with FakeHubSpot() as fake: fake.url``)."""

    def __init__(
        self,
        *,
        clock: FakeClock | Callable[[], float] | None = None,
        requests_per_10s: int = 100,
        search_per_second: int = 5,
        daily_limit: int = 500_000,
        enforce_rate_limits: bool = True,
        access_token: str = "pat-na1-fake-private-app-token",
        client_id: str = "fake-client-id",
        client_secret: str = "fake-client-secret",
        refresh_token: str = "fake-refresh-token",
        token_ttl: int = 1800,
        enum_errors: str = "batch_400",
    ) -> None:
        self._time: Callable[[], float] = clock.time if isinstance(clock, FakeClock) else clock or time.time
        self.requests_per_10s = requests_per_10s
        self.search_per_second = search_per_second
        self.daily_limit = daily_limit
        self.enforce_rate_limits = enforce_rate_limits
        self.private_token = access_token
        self.client_id, self.client_secret, self.refresh_token = client_id, client_secret, refresh_token
        self.token_ttl = token_ttl
        self.enum_errors = enum_errors
        #: Seconds every answer is held back (network round trip and server time), in real time.
        self.latency = 0.0
        #: Requests being served right now, and the most seen at once.
        self.in_flight = 0
        self.max_in_flight = 0
        self.lock = threading.RLock()
        self.stores = {name: ObjectStore(name) for name in OBJECTS}
        self.schema = default_schema()
        self.groups: dict[str, dict[str, dict[str, Any]]] = {
            obj: {
                g: {"name": g, "label": g.title(), "displayOrder": 0, "archived": False}
                for g in {p["groupName"] for p in props.values()}
            }
            for obj, props in self.schema.items()
        }
        self.pipelines = {
            "deals": [
                {
                    "id": "default",
                    "label": "Sales Pipeline",
                    "displayOrder": 0,
                    "archived": False,
                    "stages": [
                        {
                            "id": sid,
                            "label": label,
                            "displayOrder": i,
                            "archived": False,
                            "metadata": {"isClosed": closed, "probability": prob},
                        }
                        for i, (sid, label, closed, prob) in enumerate(DEAL_STAGES)
                    ],
                }
            ]
        }
        # (from_object, from_id) -> {(to_object, to_id): {type ids}}
        self.associations: dict[tuple[str, int], dict[tuple[str, int], set[int]]] = {}
        self.oauth_tokens: dict[str, float] = {}
        self._token_seq = itertools.count(1)
        self._id_seq = itertools.count(1001)
        self.faults: list[Fault] = []
        self.calls: Counter[str] = Counter()
        self.rejected: Counter[str] = Counter()
        self.statuses: Counter[int] = Counter()
        self.log: deque[tuple[str, str, int]] = deque(maxlen=2000)
        self.seen_auth_headers: set[str] = set()
        self._window: deque[float] = deque()
        self._search_window: deque[float] = deque()
        self.daily_used = 0
        self.max_in_window = 0
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # -- lifecycle ----------------------------------------------------------------------------------

    def start(self) -> FakeHubSpot:
        fake = self

        class Handler(_Handler):
            owner = fake

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(
            target=self._server.serve_forever, args=(0.05,), name="fake-hubspot", daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def __enter__(self) -> FakeHubSpot:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def url(self) -> str:
        assert self._server, "start() the fake first"
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def now_ms(self) -> int:
        return round(self._time() * 1000)

    # -- seeding and inspection (no HTTP, no validation) --------------------------------------------

    @staticmethod
    def object_name(name: str) -> str:
        name = OBJECT_ALIASES.get(name, name)
        if name not in OBJECTS:
            raise _error(400, f"Unable to infer object type from: {name}", "VALIDATION_ERROR")
        return name

    def seed(
        self, obj: str, rows: Iterable[Mapping[str, Any]], stamps: Iterable[int] | None = None
    ) -> list[str]:
        """Bulk insert; ``stamps`` (epoch ms) default to now. Returns the new ids."""
        store = self.stores[self.object_name(obj)]
        now = self.now_ms()
        stamp_iter = iter(stamps) if stamps is not None else None
        ids = []
        with self.lock:
            for row in rows:
                stamp = next(stamp_iter) if stamp_iter is not None else now
                rid = next(self._id_seq)
                props = {k: ("" if v is None else str(v)) for k, v in row.items()}
                store.records[rid] = Record(rid, props, stamp, min(stamp, now))
                store.ids.append(rid)
                ids.append(str(rid))
            store.touched()
        return ids

    def associate(
        self,
        from_obj: str,
        from_id: str | int,
        to_obj: str,
        to_id: str | int,
        type_ids: Iterable[int],
        reverse_type_ids: Iterable[int] = (),
    ) -> None:
        f, t = self.object_name(from_obj), self.object_name(to_obj)
        with self.lock:
            self.associations.setdefault((f, int(from_id)), {}).setdefault((t, int(to_id)), set()).update(
                type_ids
            )
            back = self.associations.setdefault((t, int(to_id)), {}).setdefault((f, int(from_id)), set())
            back.update(reverse_type_ids)

    def modify(
        self, obj: str, record_id: str | int, props: Mapping[str, Any], stamp: int | None = None
    ) -> None:
        """Change a record as a user would: new values and a new ``hs_lastmodifieddate``."""
        store = self.stores[self.object_name(obj)]
        with self.lock:
            rec = store.records[int(record_id)]
            rec.props.update({k: ("" if v is None else str(v)) for k, v in props.items()})
            rec.stamp = self.now_ms() if stamp is None else stamp
            store.touched()

    def get(self, obj: str, record_id: str | int) -> dict[str, str]:
        rec = self.stores[self.object_name(obj)].records[int(record_id)]
        return {**rec.props, "hs_lastmodifieddate": iso_ms(rec.stamp), "hs_object_id": str(rec.id)}

    def records(self, obj: str) -> list[dict[str, str]]:
        store = self.stores[self.object_name(obj)]
        return [self.get(obj, i) for i in store.ids if not store.records[i].archived]

    def count(self, obj: str) -> int:
        return len(self.stores[self.object_name(obj)].records)

    def add_property(self, obj: str, definition: Mapping[str, Any]) -> None:
        self.schema[self.object_name(obj)][definition["name"]] = {"options": [], **definition}

    def remove_property(self, obj: str, name: str) -> None:
        self.schema[self.object_name(obj)].pop(name, None)

    def inject(
        self, kind: str, *, path: str | None = None, method: str | None = None, times: int = 1, **args: Any
    ) -> None:
        """Fail the next ``times`` matching requests. Kinds: ``status`` (``status=503``), ``drop`` (close
        the connection unanswered), ``expire_token``, ``rolling_429``, ``secondly_429``, ``daily_429``,
        ``delay`` (``seconds=`` real time before answering), ``drop_after`` (carry the request out, then
        close the connection unanswered: "created, but the client never heard")."""
        with self.lock:
            self.faults.append(Fault(kind, path, method, times, args))

    def expire_tokens(self) -> None:
        with self.lock:
            now = self._time()
            for token in self.oauth_tokens:
                self.oauth_tokens[token] = now - 1

    # -- request plumbing ---------------------------------------------------------------------------

    def _take_fault(self, method: str, path: str) -> Fault | None:
        for fault in self.faults:
            if fault.times > 0 and fault.matches(method, path):
                fault.times -= 1
                return fault
        return None

    def _rate_headers(self) -> dict[str, str]:
        return {
            "X-HubSpot-RateLimit-Max": str(self.requests_per_10s),
            "X-HubSpot-RateLimit-Remaining": str(max(0, self.requests_per_10s - len(self._window))),
            "X-HubSpot-RateLimit-Interval-Milliseconds": "10000",
            "X-HubSpot-RateLimit-Daily": str(self.daily_limit),
            "X-HubSpot-RateLimit-Daily-Remaining": str(max(0, self.daily_limit - self.daily_used)),
        }

    def _limit_error(self, policy: str, retry_after: float, headers: dict[str, str]) -> ApiError:
        names = {"TEN_SECONDLY_ROLLING": "ten_secondly_rolling", "SECONDLY": "secondly", "DAILY": "daily"}
        body = {
            "status": "error",
            "message": f"You have reached your {names[policy]} limit.",
            "errorType": "RATE_LIMIT",
            "correlationId": str(uuid.uuid4()),
            "policyName": policy,
            "groupName": "api-calls" if policy != "SECONDLY" else "search-api",
        }
        if policy == "TEN_SECONDLY_ROLLING":
            headers = {**headers, "Retry-After": str(max(1, int(retry_after + 0.999)))}
        # A SECONDLY (search) 429 has no Retry-After; its interval header is the 10-second window's.
        return ApiError(429, body, headers)

    def _admit(self, kind: str) -> dict[str, str]:
        """Rate limiting: raise a 429 or count the request in the windows."""
        now = self._time()
        while self._window and self._window[0] <= now - 10.0:
            self._window.popleft()
        while self._search_window and self._search_window[0] <= now - 1.0:
            self._search_window.popleft()
        headers = self._rate_headers()
        if self.enforce_rate_limits:
            if self.daily_used >= self.daily_limit:
                self.rejected["DAILY"] += 1
                raise self._limit_error("DAILY", 0, headers)
            if len(self._window) >= self.requests_per_10s:
                self.rejected["TEN_SECONDLY_ROLLING"] += 1
                raise self._limit_error("TEN_SECONDLY_ROLLING", self._window[0] + 10.0 - now, headers)
            if kind == "search" and len(self._search_window) >= self.search_per_second:
                self.rejected["SECONDLY"] += 1
                raise self._limit_error("SECONDLY", self._search_window[0] + 1.0 - now, headers)
        self._window.append(now)
        if kind == "search":
            self._search_window.append(now)
        self.daily_used += 1
        self.max_in_window = max(self.max_in_window, len(self._window))
        return self._rate_headers()

    def _authenticate(self, header: str | None) -> None:
        if header:
            self.seen_auth_headers.add(header)
        token = header[7:] if header and header.startswith("Bearer ") else None
        if token and token == self.private_token:
            return
        if token and token in self.oauth_tokens:
            expires = self.oauth_tokens[token]
            if self._time() < expires:
                return
            ago = int(self._time() - expires) + 1
            raise _error(
                401,
                f"The OAuth token used to make this call expired {ago} second(s) ago.",
                "EXPIRED_AUTHENTICATION",
            )
        raise _error(
            401,
            "Authentication credentials not found. This API supports OAuth 2.0 authentication.",
            "INVALID_AUTHENTICATION",
        )

    def handle(
        self, method: str, raw_path: str, headers: Mapping[str, str], raw_body: bytes
    ) -> tuple[int, dict[str, str], Any] | None:
        """One request -> (status, headers, JSON body); ``None`` drops the connection."""
        parts = urlsplit(raw_path)
        path, query = parts.path, parse_qs(parts.query)
        with self.lock:
            fault = self._take_fault(method, path)
        if fault and fault.kind == "delay":
            time.sleep(float(fault.args.get("seconds", 1.0)))
            fault = None
        if fault and fault.kind == "drop":
            self.calls["dropped"] += 1
            return None
        with self.lock:
            try:
                kind, obj = self._kind(method, path)
                if fault and fault.kind != "drop_after":
                    self._apply_fault(fault, kind)
                if kind == "oauth":
                    self.calls["oauth"] += 1
                    return 200, {}, self._oauth(raw_body)
                self._authenticate(headers.get("Authorization"))
                rate_headers = self._admit(kind)
                body = json.loads(raw_body) if raw_body else None
                status, answer = self._route(method, path, query, body)
                self.calls[kind] += 1
                if obj:
                    self.calls[f"{kind}:{obj}"] += 1
                self.log.append((method, path, status))
                self.statuses[status] += 1
                if fault and fault.kind == "drop_after":
                    self.calls["dropped"] += 1
                    return None  # done, but the answer never reaches the client
                return status, rate_headers, answer
            except ApiError as exc:
                self.log.append((method, path, exc.status))
                self.statuses[exc.status] += 1
                return exc.status, exc.headers, exc.body

    def _apply_fault(self, fault: Fault, kind: str) -> None:
        headers = self._rate_headers()
        if fault.kind == "status":
            status = int(fault.args.get("status", 503))
            raise _error(
                status, fault.args.get("message", "internal error"), fault.args.get("category", "ERROR")
            )
        if fault.kind == "expire_token":
            self.expire_tokens()
        elif fault.kind == "rolling_429":
            self.rejected["TEN_SECONDLY_ROLLING"] += 1
            raise self._limit_error("TEN_SECONDLY_ROLLING", float(fault.args.get("retry_after", 2)), headers)
        elif fault.kind == "secondly_429":
            self.rejected["SECONDLY"] += 1
            raise self._limit_error("SECONDLY", 1.0, headers)
        elif fault.kind == "daily_429":
            self.rejected["DAILY"] += 1
            raise self._limit_error("DAILY", 0, headers)

    @staticmethod
    def _kind(method: str, path: str) -> tuple[str, str | None]:
        seg = [s for s in path.split("/") if s]
        if seg[:3] == ["oauth", "v1", "token"]:
            return "oauth", None
        if seg[:3] == ["crm", "v3", "objects"] and len(seg) >= 4:
            obj = OBJECT_ALIASES.get(seg[3], seg[3])
            if len(seg) == 4:
                return ("list" if method == "GET" else "create"), obj
            if seg[4] == "search":
                return "search", obj
            if seg[4] == "batch" and len(seg) == 6:
                return f"batch_{seg[5]}", obj
            return ("get" if method == "GET" else "update"), obj
        if seg[:3] == ["crm", "v3", "properties"] and len(seg) >= 4:
            obj = OBJECT_ALIASES.get(seg[3], seg[3])
            group = len(seg) >= 5 and seg[4] == "groups"
            base = "groups" if group else "properties"
            return (base if method == "GET" else f"{base}_write"), obj
        if seg[:3] == ["crm", "v4", "associations"]:
            return "associations", OBJECT_ALIASES.get(seg[3], seg[3]) if len(seg) > 3 else None
        if seg[:3] == ["crm", "v3", "pipelines"]:
            return "pipelines", seg[3] if len(seg) > 3 else None
        return "other", None

    # -- routes -------------------------------------------------------------------------------------

    def _route(self, method: str, path: str, query: dict[str, list[str]], body: Any) -> tuple[int, Any]:
        seg = [s for s in path.split("/") if s]
        if seg[:3] == ["crm", "v3", "objects"] and len(seg) >= 4:
            obj = self.object_name(seg[3])
            if len(seg) == 4 and method == "GET":
                return 200, self._list(obj, query)
            if len(seg) == 4 and method == "POST":
                return 201, self._create_batch(obj, [body or {}])["results"][0]
            if len(seg) == 5 and seg[4] == "search" and method == "POST":
                return 200, self._search(obj, body or {})
            if len(seg) == 6 and seg[4] == "batch" and method == "POST":
                inputs = (body or {}).get("inputs")
                if not isinstance(inputs, list):
                    raise _error(400, "Invalid input JSON: inputs is required")
                if len(inputs) > 100:
                    raise _error(400, f"Batch input size {len(inputs)} exceeds the limit of 100")
                if seg[5] == "update":
                    return self._update_batch(obj, inputs)
                if seg[5] == "create":
                    return 201, self._create_batch(obj, inputs)
                if seg[5] == "read":
                    return self._read_batch(obj, inputs, body.get("properties") or [])
            if len(seg) == 5 and method == "GET":
                rec = self.stores[obj].records.get(int(seg[4])) if seg[4].isdigit() else None
                if rec is None or rec.archived:
                    raise _error(404, "Object not found.  objectId are usually numeric.", "OBJECT_NOT_FOUND")
                return 200, self._render(rec, query.get("properties") or [])
        if seg[:3] == ["crm", "v3", "properties"] and len(seg) >= 4:
            return self._properties(method, self.object_name(seg[3]), seg[4:], body)
        if seg[:3] == ["crm", "v4", "associations"] and len(seg) == 7 and seg[5:] == ["batch", "read"]:
            return self._associations(self.object_name(seg[3]), self.object_name(seg[4]), body or {})
        if seg[:3] == ["crm", "v3", "pipelines"] and len(seg) == 4 and method == "GET":
            return 200, {"results": self.pipelines.get(self.object_name(seg[3]), [])}
        raise _error(404, f"No route for {method} {path}", "OBJECT_NOT_FOUND")

    def _render(self, rec: Record, properties: Iterable[str]) -> dict[str, Any]:
        wanted = list(properties) or ["createdate", "hs_lastmodifieddate", "hs_object_id"]
        values = {
            **rec.props,
            "hs_object_id": str(rec.id),
            "hs_lastmodifieddate": iso_ms(rec.stamp),
            "createdate": iso_ms(rec.created),
        }
        return {
            "id": str(rec.id),
            "properties": {p: values.get(p) or None for p in wanted},
            "createdAt": iso_ms(rec.created),
            "updatedAt": iso_ms(rec.stamp),
            "archived": rec.archived,
        }

    def _list(self, obj: str, query: dict[str, list[str]]) -> dict[str, Any]:
        limit = int((query.get("limit") or ["10"])[0])
        if limit > 100 or limit < 1:
            raise _error(400, f"limit must be between 1 and 100 (got {limit})")
        after = int((query.get("after") or ["0"])[0] or 0)
        props = [p for value in query.get("properties") or [] for p in value.split(",") if p]
        store = self.stores[obj]
        start = bisect.bisect_left(store.ids, after)
        page: list[Record] = []
        pos = start
        while pos < len(store.ids) and len(page) < limit:
            rec = store.records[store.ids[pos]]
            pos += 1
            if not rec.archived:
                page.append(rec)
        answer: dict[str, Any] = {"results": [self._render(r, props) for r in page]}
        while pos < len(store.ids) and store.records[store.ids[pos]].archived:
            pos += 1
        if pos < len(store.ids):
            answer["paging"] = {
                "next": {"after": str(store.ids[pos]), "link": "?after=" + str(store.ids[pos])}
            }
        return answer

    # search

    def _value(self, rec: Record, name: str) -> Any:
        if name == "hs_lastmodifieddate":
            return rec.stamp
        if name == "hs_object_id":
            return rec.id
        if name == "createdate":
            return rec.created
        return rec.props.get(name)

    def _matches(self, rec: Record, flt: Mapping[str, Any], obj: str) -> bool:
        name, op = flt.get("propertyName"), flt.get("operator", "EQ")
        value = self._value(rec, name)
        definition = self.schema[obj].get(name, {})
        numeric = definition.get("type") in ("number", "datetime", "date") or name in READ_ONLY

        def conv(v: Any) -> Any:
            if v is None or v == "":
                return None
            if numeric:
                return to_ms(v) if definition.get("type") in ("datetime", "date") else float(v)
            return str(v).casefold()

        if op == "HAS_PROPERTY":
            return value not in (None, "")
        if op == "NOT_HAS_PROPERTY":
            return value in (None, "")
        have = conv(value)
        if op in ("IN", "NOT_IN"):
            inside = have in {conv(v) for v in flt.get("values") or ()}
            return inside if op == "IN" else not inside
        want = conv(flt.get("value"))
        if op == "CONTAINS_TOKEN":
            return have is not None and str(want).strip("*") in str(have)
        if have is None or want is None:
            return op == "NEQ" and have != want
        return {
            "EQ": have == want,
            "NEQ": have != want,
            "GT": have > want,
            "GTE": have >= want,
            "LT": have < want,
            "LTE": have <= want,
        }.get(op, False)

    def _stamp_range(self, filters: list[Mapping[str, Any]]) -> tuple[int, int] | None:
        """The stamp range of a filter group made only of ``hs_lastmodifieddate`` bounds, else None."""
        lo, hi = -(2**62), 2**62
        for flt in filters:
            if flt.get("propertyName") != "hs_lastmodifieddate":
                return None
            value = to_ms(flt.get("value"))
            op = flt.get("operator")
            if value is None or op not in ("GT", "GTE", "LT", "LTE", "EQ"):
                return None
            if op in ("GT", "GTE", "EQ"):
                lo = max(lo, value + (1 if op == "GT" else 0))
            if op in ("LT", "LTE", "EQ"):
                hi = min(hi, value - (1 if op == "LT" else 0))
        return lo, hi

    def _search(self, obj: str, body: Mapping[str, Any]) -> dict[str, Any]:
        limit = int(body.get("limit") or 10)
        if limit > 200 or limit < 1:
            raise _error(400, f"limit must be between 1 and 200 (got {limit})")
        if "after" not in body:  # required by the OpenAPI spec of PublicObjectSearchRequest
            raise _error(400, "Invalid input JSON on line 1: missing required field 'after'")
        after = int(body.get("after") or 0)
        if after >= SEARCH_CAP:
            raise _error(
                400,
                f"The search endpoints return at most {SEARCH_CAP} results: 'after' {after} "
                "is past the end of the result window",
                "VALIDATION_ERROR",
            )
        groups = [g.get("filters") or [] for g in body.get("filterGroups") or []]
        if len(groups) > 5 or any(len(g) > 6 for g in groups) or sum(len(g) for g in groups) > 18:
            raise _error(400, "Too many filters: at most 5 filterGroups of 6 filters, 18 filters in all")
        sorts = body.get("sorts") or []
        if len(sorts) > 1:
            raise _error(400, "Only one sort is supported")
        sort = sorts[0] if sorts else {"propertyName": "hs_object_id", "direction": "ASCENDING"}
        if isinstance(sort, str):
            sort = {
                "propertyName": sort.lstrip("-"),
                "direction": "DESCENDING" if sort.startswith("-") else "ASCENDING",
            }
        store = self.stores[obj]
        index = store.index()
        by_stamp = sort.get("propertyName") == "hs_lastmodifieddate"
        descending = sort.get("direction") == "DESCENDING"
        ranges = [self._stamp_range(g) for g in groups] if groups else [(-(2**62), 2**62)]
        if by_stamp and not descending and len(ranges) == 1 and ranges[0] is not None:
            # A pure stamp range is a contiguous run of the index: bisect, slice.
            lo = bisect.bisect_left(index, (ranges[0][0], -1))
            hi = bisect.bisect_right(index, (ranges[0][1], 2**62))
            total = max(0, hi - lo)
            chosen = [store.records[i] for _, i in index[lo + after : min(hi, lo + after + limit)]]
        elif (span := self._id_range(groups, sort)) is not None:
            # Only hs_object_id bounds, sorted by id: a slice of the (ascending) id list.
            lo = bisect.bisect_left(store.ids, span[0])
            hi = bisect.bisect_right(store.ids, span[1])
            live = [i for i in store.ids[lo:hi] if not store.records[i].archived]
            if descending:
                live.reverse()
            total = len(live)
            chosen = [store.records[i] for i in live[after : after + limit]]
        elif (run := self._one_stamp_by_id(groups, sort)) is not None:
            # One stamp, ids above a bound, sorted by id: also a contiguous run of the (stamp, id) index.
            lo = bisect.bisect_right(index, (run[0], run[1]))
            hi = bisect.bisect_right(index, (run[0], 2**62))
            total = max(0, hi - lo)
            chosen = [store.records[i] for _, i in index[lo + after : min(hi, lo + after + limit)]]
        else:
            candidates: Iterable[Record]
            stamp_bounds = [self._stamp_bounds(g) for g in groups]
            if groups and all(b is not None for b in stamp_bounds):
                lo_v = min(b[0] for b in stamp_bounds)  # type: ignore[index]
                hi_v = max(b[1] for b in stamp_bounds)  # type: ignore[index]
                lo = bisect.bisect_left(index, (lo_v, -1))
                hi = bisect.bisect_right(index, (hi_v, 2**62))
                candidates = (store.records[i] for _, i in index[lo:hi])
            else:
                candidates = (r for r in store.records.values() if not r.archived)
            matched = [
                r
                for r in candidates
                if not groups or any(all(self._matches(r, f, obj) for f in g) for g in groups)
            ]
            name = sort.get("propertyName")
            numeric = name in READ_ONLY or self.schema[obj].get(name, {}).get("type") in (
                "number",
                "datetime",
            )

            def key(r: Record) -> tuple:
                v = self._value(r, name)
                if numeric:
                    v = to_ms(v) if isinstance(v, str) else v
                    return (v is None, v or 0, r.id)
                return (v is None, str(v or ""), r.id)

            matched.sort(key=key, reverse=descending)
            total = len(matched)
            chosen = matched[after : after + limit]
        props = body.get("properties") or []
        answer: dict[str, Any] = {"total": total, "results": [self._render(r, props) for r in chosen]}
        if after + limit < total:
            answer["paging"] = {"next": {"after": str(after + limit)}}
        return answer

    @staticmethod
    def _id_range(groups: list[list[Mapping[str, Any]]], sort: Mapping[str, Any]) -> tuple[int, int] | None:
        """(lowest, highest) id for at most one group of ``hs_object_id`` bounds sorted by id, else None."""
        if len(groups) > 1 or sort.get("propertyName") != "hs_object_id":
            return None
        lo, hi = -(2**62), 2**62
        for flt in groups[0] if groups else []:
            op = flt.get("operator")
            if flt.get("propertyName") != "hs_object_id" or op not in ("GT", "GTE", "LT", "LTE"):
                return None
            try:
                value = int(flt.get("value"))
            except (TypeError, ValueError):
                return None
            if op in ("GT", "GTE"):
                lo = max(lo, value + (op == "GT"))
            else:
                hi = min(hi, value - (op == "LT"))
        return lo, hi

    @staticmethod
    def _one_stamp_by_id(
        groups: list[list[Mapping[str, Any]]], sort: Mapping[str, Any]
    ) -> tuple[int, int] | None:
        """(stamp, id) for ``stamp EQ s AND hs_object_id GT id`` sorted by id ascending, else None."""
        if len(groups) != 1 or len(groups[0]) != 2 or sort.get("propertyName") != "hs_object_id":
            return None
        if sort.get("direction") == "DESCENDING":
            return None
        by_name = {f.get("propertyName"): f for f in groups[0]}
        stamp_f, id_f = by_name.get("hs_lastmodifieddate"), by_name.get("hs_object_id")
        if not stamp_f or not id_f or stamp_f.get("operator") != "EQ" or id_f.get("operator") != "GT":
            return None
        stamp = to_ms(stamp_f.get("value"))
        try:
            above = int(id_f.get("value"))
        except (TypeError, ValueError):
            return None
        return None if stamp is None else (stamp, above)

    def _stamp_bounds(self, filters: list[Mapping[str, Any]]) -> tuple[int, int] | None:
        """Stamp bounds implied by a group's ``hs_lastmodifieddate`` filters (other filters allowed)."""
        lo, hi, found = -(2**62), 2**62, False
        for flt in filters:
            if flt.get("propertyName") != "hs_lastmodifieddate":
                continue
            value, op = to_ms(flt.get("value")), flt.get("operator")
            if value is None:
                continue
            if op in ("GT", "GTE", "EQ"):
                lo, found = max(lo, value), True
            if op in ("LT", "LTE", "EQ"):
                hi, found = min(hi, value), True
        return (lo, hi) if found else None

    # writes

    def _invalid(self, obj: str, name: str, value: Any) -> dict[str, Any] | None:
        """HubSpot's property-validation record for a bad value, or None when the value is fine."""
        definition = self.schema[obj].get(name)
        base = {"isValid": False, "name": name}
        if definition is None:
            return {**base, "error": "PROPERTY_DOESNT_EXIST", "message": f'Property "{name}" does not exist'}
        if definition.get("modificationMetadata", {}).get("readOnlyValue"):
            return {**base, "error": "READ_ONLY_VALUE", "message": f'"{name}" is a read only property'}
        text = "" if value is None else str(value)
        if text == "":
            return None
        kind = definition.get("type")
        if kind == "enumeration" and name != "hubspot_owner_id":
            allowed = {o["value"] for o in definition.get("options") or ()}
            values = text.split(";") if definition.get("fieldType") == "checkbox" else [text]
            bad = [v for v in values if v not in allowed]
            if bad:
                return {
                    **base,
                    "error": "INVALID_OPTION",
                    "message": f"{bad[0]} was not one of the allowed options: [{', '.join(sorted(allowed))}]",
                }
        elif kind == "number":
            try:
                float(text)
            except ValueError:
                return {
                    **base,
                    "error": "INVALID_INTEGER" if text.isalpha() else "INVALID_NUMBER",
                    "message": f"{text} is not a valid number",
                }
        elif kind == "bool" and text not in ("true", "false"):
            return {**base, "error": "INVALID_BOOLEAN", "message": f"{text} is not a valid boolean"}
        elif kind in ("datetime", "date") and to_ms(text) is None:
            return {**base, "error": "INVALID_DATE", "message": f"{text} is not a valid date"}
        return None

    def _validation_400(self, problems: list[dict[str, Any]]) -> ApiError:
        return _error(400, f"Property values were not valid: {json.dumps(problems)}", "VALIDATION_ERROR")

    def _update_batch(self, obj: str, inputs: list[Mapping[str, Any]]) -> tuple[int, dict[str, Any]]:
        store = self.stores[obj]
        ids = [str(i.get("id")) for i in inputs]
        if len(set(ids)) != len(ids):
            raise _error(400, "Duplicate IDs found in batch input: the same id may appear once")
        problems, per_input = [], {}
        for item in inputs:
            for name, value in (item.get("properties") or {}).items():
                problem = self._invalid(obj, name, value)
                if problem is None:
                    continue
                if problem["error"] == "INVALID_OPTION" and self.enum_errors == "multi_status":
                    per_input.setdefault(str(item.get("id")), problem)
                else:
                    problems.append(problem)
        if problems:
            raise self._validation_400(problems)
        now = self.now_ms()
        results, missing = [], []
        for item in inputs:
            rid = str(item.get("id"))
            rec = store.records.get(int(rid)) if rid.isdigit() else None
            if rec is None or rec.archived:
                missing.append(rid)
                continue
            if rid in per_input:
                continue
            rec.props.update(
                {k: ("" if v is None else str(v)) for k, v in (item.get("properties") or {}).items()}
            )
            rec.stamp = now
            results.append(self._render(rec, list((item.get("properties") or {}).keys())))
        store.touched()
        errors = []
        if missing:
            errors.append(
                {
                    "status": "error",
                    "category": "OBJECT_NOT_FOUND",
                    "message": f"Could not get some {obj.upper()} objects, they may be deleted or not "
                    "exist. Check that ids are valid.",
                    "context": {"ids": missing},
                }
            )
        for rid, problem in per_input.items():
            errors.append(
                {
                    "status": "error",
                    "category": "VALIDATION_ERROR",
                    "message": f"Property values were not valid: {json.dumps([problem])}",
                    "context": {"ids": [rid]},
                }
            )
        stamp = iso_ms(now)
        answer: dict[str, Any] = {
            "status": "COMPLETE",
            "results": results,
            "startedAt": stamp,
            "completedAt": stamp,
        }
        if errors:
            answer.update(numErrors=len(errors), errors=errors)
            return 207, answer
        return 200, answer

    def _create_batch(self, obj: str, inputs: list[Mapping[str, Any]]) -> dict[str, Any]:
        problems = [
            p
            for item in inputs
            for name, value in (item.get("properties") or {}).items()
            if (p := self._invalid(obj, name, value))
        ]
        if problems:
            raise self._validation_400(problems)
        for item in inputs:
            for assoc in item.get("associations") or ():
                target = str((assoc.get("to") or {}).get("id"))
                types = assoc.get("types") or []
                if not types or not any(
                    self._association_target(int(t.get("associationTypeId", -1))) for t in types
                ):
                    raise _error(400, "Invalid association type", "VALIDATION_ERROR")
                to_obj = self._association_target(int(types[0]["associationTypeId"]))
                rec = self.stores[to_obj].records.get(int(target)) if target.isdigit() else None
                if rec is None:
                    raise _error(
                        400, f"Could not find {to_obj} with id {target} to associate", "VALIDATION_ERROR"
                    )
        store, now, results = self.stores[obj], self.now_ms(), []
        for item in inputs:
            rid = next(self._id_seq)
            props = {k: ("" if v is None else str(v)) for k, v in (item.get("properties") or {}).items()}
            rec = Record(rid, props, now, now)
            store.add(rec)
            for assoc in item.get("associations") or ():
                type_id = int(assoc["types"][0]["associationTypeId"])
                self.associate(obj, rid, self._association_target(type_id), assoc["to"]["id"], [type_id])
            results.append(self._render(rec, list(props)))
        stamp = iso_ms(now)
        return {"status": "COMPLETE", "results": results, "startedAt": stamp, "completedAt": stamp}

    @staticmethod
    def _association_target(type_id: int) -> str:
        """HUBSPOT_DEFINED association type ids the fake knows (task->record, deal->company)."""
        return {
            204: "contacts",
            192: "companies",
            216: "deals",
            5: "companies",
            341: "companies",
            280: "companies",
            279: "companies",
        }.get(type_id, "")

    def _read_batch(self, obj: str, inputs: list[Mapping[str, Any]], props: list[str]) -> tuple[int, Any]:
        store = self.stores[obj]
        found = [
            store.records[int(i["id"])]
            for i in inputs
            if str(i.get("id")).isdigit() and int(i["id"]) in store.records
        ]
        return 200, {"status": "COMPLETE", "results": [self._render(r, props) for r in found]}

    def _associations(self, from_obj: str, to_obj: str, body: Mapping[str, Any]) -> tuple[int, Any]:
        inputs = body.get("inputs") or []
        if len(inputs) > 1000:
            raise _error(400, f"Batch input size {len(inputs)} exceeds the limit of 1000")
        results, errors = [], []
        for item in inputs:
            rid = str(item.get("id"))
            links = self.associations.get((from_obj, int(rid)), {}) if rid.isdigit() else {}
            targets = [
                {
                    "toObjectId": to_id,
                    "associationTypes": [
                        {"category": "HUBSPOT_DEFINED", "typeId": t, "label": "Primary" if t == 5 else None}
                        for t in sorted(types)
                    ],
                }
                for (obj, to_id), types in sorted(links.items())
                if obj == to_obj
            ]
            if targets:
                results.append({"from": {"id": rid}, "to": targets})
            else:
                errors.append(
                    {
                        "status": "error",
                        "category": "OBJECT_NOT_FOUND",
                        "subCategory": "crm.associations.NO_ASSOCIATIONS_FOUND",
                        "message": f"No {to_obj} is associated with {from_obj} {rid}.",
                        "context": {"fromObjectId": [rid]},
                    }
                )
        answer: dict[str, Any] = {"status": "COMPLETE", "results": results}
        if errors:
            answer.update(numErrors=len(errors), errors=errors)
            return 207, answer
        return 200, answer

    def _properties(self, method: str, obj: str, rest: list[str], body: Any) -> tuple[int, Any]:
        if rest[:1] == ["groups"]:
            groups = self.groups.setdefault(obj, {})
            if method == "GET" and len(rest) == 1:
                return 200, {"results": list(groups.values())}
            if method == "GET" and len(rest) == 2:
                if rest[1] not in groups:
                    raise _error(404, f"Unable to find property group {rest[1]}", "OBJECT_NOT_FOUND")
                return 200, groups[rest[1]]
            if method == "POST" and len(rest) == 1:
                name = (body or {}).get("name")
                if not name or not (body or {}).get("label"):
                    raise _error(400, "A property group needs a name and a label")
                if name in groups:
                    raise _error(
                        409, f"A property group named '{name}' already exists.", "OBJECT_ALREADY_EXISTS"
                    )
                groups[name] = {"displayOrder": -1, "archived": False, **body}
                return 201, groups[name]
        schema = self.schema[obj]
        if method == "GET" and not rest:
            return 200, {"results": list(schema.values())}
        if method == "GET" and len(rest) == 1:
            if rest[0] not in schema:
                raise _error(404, f"Unable to find property {rest[0]}", "OBJECT_NOT_FOUND")
            return 200, schema[rest[0]]
        if method == "POST" and not rest:
            definition = dict(body or {})
            missing = [
                k for k in ("name", "label", "type", "fieldType", "groupName") if not definition.get(k)
            ]
            if missing:
                raise _error(400, f"Property definition is missing {', '.join(missing)}")
            if definition["name"] in schema:
                raise _error(
                    409, f"A property named '{definition['name']}' already exists.", "OBJECT_ALREADY_EXISTS"
                )
            if definition["groupName"] not in self.groups.get(obj, {}):
                raise _error(400, f"Property group {definition['groupName']} does not exist")
            if definition["type"] == "enumeration" and not definition.get("options"):
                raise _error(400, "An enumeration property needs options")
            definition.setdefault("options", [])
            definition.update(
                hubspotDefined=False,
                modificationMetadata={
                    "archivable": True,
                    "readOnlyDefinition": False,
                    "readOnlyValue": False,
                },
            )
            schema[definition["name"]] = definition
            return 201, definition
        if method == "PATCH" and len(rest) == 1:
            if rest[0] not in schema:
                raise _error(404, f"Unable to find property {rest[0]}", "OBJECT_NOT_FOUND")
            schema[rest[0]].update(body or {})
            return 200, schema[rest[0]]
        raise _error(404, "No such properties route", "OBJECT_NOT_FOUND")

    def _oauth(self, raw_body: bytes) -> dict[str, Any]:
        form = {k: v[0] for k, v in parse_qs(raw_body.decode()).items()}
        if form.get("grant_type") != "refresh_token":
            raise ApiError(400, {"status": "BAD_GRANT_TYPE", "message": "grant_type must be refresh_token"})
        if form.get("client_id") != self.client_id or form.get("client_secret") != self.client_secret:
            raise ApiError(400, {"status": "BAD_CLIENT_ID", "message": "missing or unknown client id/secret"})
        if form.get("refresh_token") != self.refresh_token:
            raise ApiError(
                400, {"status": "BAD_REFRESH_TOKEN", "message": "missing or unknown refresh token"}
            )
        token = f"oauth-access-{next(self._token_seq)}-{uuid.uuid4().hex[:8]}"
        self.oauth_tokens[token] = self._time() + self.token_ttl
        return {
            "token_type": "bearer",
            "refresh_token": self.refresh_token,
            "access_token": token,
            "expires_in": self.token_ttl,
        }


class _Handler(BaseHTTPRequestHandler):
    owner: FakeHubSpot
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True  # headers and body go out as two writes: no 40 ms delayed-ACK stalls

    def log_message(self, format: str, *args: Any) -> None:  # quiet
        return

    def _serve(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        owner = self.owner
        with owner.lock:
            owner.in_flight += 1
            owner.max_in_flight = max(owner.max_in_flight, owner.in_flight)
        try:
            if owner.latency > 0:
                time.sleep(owner.latency)
            outcome = owner.handle(self.command, self.path, self.headers, raw)
        finally:
            with owner.lock:
                owner.in_flight -= 1
        if outcome is None:
            self.close_connection = True
            with contextlib.suppress(OSError):
                self.connection.shutdown(2)
            return
        status, headers, body = outcome
        data = b"" if body is None else json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json;charset=utf-8")
        self.send_header("Content-Length", str(len(data)))
        for name, value in headers.items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(data)

    do_GET = do_POST = do_PATCH = do_PUT = do_DELETE = _serve


def connector_for(
    fake: FakeHubSpot,
    clock: FakeClock | None = None,
    *,
    env_prefix: str = "TEST_",
    oauth: bool = False,
    limiter: Any = None,
    **options: Any,
) -> Any:
    """A ``HubSpotConnector`` pointed at ``fake`` with its credentials (``clock`` as every time seam;
    ``limiter`` shared between connectors that stand for one portal's workers)."""
    from connectors.hubspot import HubSpotConnector

    env = (
        {
            f"{env_prefix}HUBSPOT_CLIENT_ID": fake.client_id,
            f"{env_prefix}HUBSPOT_CLIENT_SECRET": fake.client_secret,
            f"{env_prefix}HUBSPOT_REFRESH_TOKEN": fake.refresh_token,
        }
        if oauth
        else {f"{env_prefix}HUBSPOT_ACCESS_TOKEN": fake.private_token}
    )
    seams: dict[str, Any] = {}
    if clock is not None:
        seams = {"clock": clock.monotonic, "sleep": clock.sleep, "utcnow": clock.utcnow}
    if limiter is not None:
        seams["limiter"] = limiter
    opts = {"host": fake.url, **({"auth": "oauth"} if oauth else {}), **options}
    return HubSpotConnector.from_config(opts, env_prefix=env_prefix, env=env, **seams)
