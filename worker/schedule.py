"""When beat runs each connection's incremental sync: a cron expression in the connection's time zone.

Celery's ``crontab`` knows one time zone for the whole app, and a team in Berlin wants its nightly run
at 02:00 Berlin time in winter and in summer. ``ZonedCron`` is a Celery schedule that evaluates a
five-field cron expression in its own IANA zone, so every connection has its own.

Cron semantics (those of Vixie cron, documented because DST makes them matter):

- fields: minute, hour, day of month, month, day of week; ``*``, lists, ranges, steps (``*/15``,
  ``8-18/2``), month names (``jan``) and day names (``mon``); Sunday is 0 or 7;
- when both day of month and day of week are restricted, a day matching *either* runs;
- times are wall-clock times in the zone. A time that does not exist on the day the clocks go
  forward (02:30 in Europe/Berlin on the last Sunday of March) runs as soon as the clocks have
  jumped: 02:30 becomes 03:30 local, one hour later in absolute time; a time that occurs twice when the
  clocks go back runs once, at its first occurrence. So "0 2 * * *" runs exactly once every day.

A run missed while beat was down (its last run is older than the latest scheduled time) runs once when
beat is back; a connection added to the file is first run at its next scheduled time.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from celery.beat import PersistentScheduler
from celery.schedules import BaseSchedule, schedstate

from worker.config import ConnectionConfig, WorkerConfig
from worker.store.states import RunKind

_MONTHS = {
    name: i
    for i, name in enumerate(
        ("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"), start=1
    )
}
_DAYS = {name: i for i, name in enumerate(("sun", "mon", "tue", "wed", "thu", "fri", "sat"))}
#: A day-of-week/day-of-month pair can take years to recur (Friday the 29th of February): look this far.
_SEARCH_DAYS = 366 * 8
#: Scheduled sync messages older than this are dropped by the worker: the next run covers their work.
SYNC_EXPIRES_SECONDS = 6 * 3600


class CronError(ValueError):
    """An invalid cron expression."""


def _number(text: str, names: dict[str, int], field: str) -> int:
    key = text.strip().lower()
    if key in names:
        return names[key]
    if not key.isdigit():
        raise CronError(
            f"{field}: {text!r} is not a number" + (f" or a name ({', '.join(names)})" if names else "")
        )
    return int(key)


def _parse_field(
    text: str, lo: int, hi: int, field: str, names: dict[str, int] | None = None
) -> frozenset[int]:
    names = names or {}
    values: set[int] = set()
    for part in text.split(","):
        if not part:
            raise CronError(f"{field}: empty list item in {text!r}")
        base, _, step_text = part.partition("/")
        step = 1
        if step_text:
            if not step_text.isdigit() or int(step_text) == 0:
                raise CronError(f"{field}: step {step_text!r} must be a positive number")
            step = int(step_text)
        if base == "*":
            start, end = lo, hi
        elif "-" in base:
            a, b = base.split("-", 1)
            start, end = _number(a, names, field), _number(b, names, field)
        else:
            start = _number(base, names, field)
            end = hi if step_text else start
        # day of week: 7 is Sunday too
        top = 7 if field == "day of week" else hi
        for v in (start, end):
            if not lo <= v <= top:
                raise CronError(f"{field}: {v} is outside {lo}-{top}")
        if start > end:
            raise CronError(f"{field}: range {base!r} runs backwards")
        values.update(v % 7 if field == "day of week" else v for v in range(start, end + 1, step))
    return frozenset(values)


@dataclass(frozen=True)
class Cron:
    """A parsed five-field cron expression."""

    text: str
    minutes: tuple[int, ...]
    hours: tuple[int, ...]
    days: frozenset[int]
    months: frozenset[int]
    weekdays: frozenset[int]
    any_day: bool
    any_weekday: bool

    def matches_day(self, day: date) -> bool:
        if day.month not in self.months:
            return False
        dom = day.day in self.days
        dow = (day.weekday() + 1) % 7 in self.weekdays  # Python: Monday 0; cron: Sunday 0
        if self.any_day and self.any_weekday:
            return True
        if self.any_day:
            return dow
        if self.any_weekday:
            return dom
        return dom or dow


def parse_cron(text: str) -> Cron:
    fields = text.split()
    if len(fields) != 5:
        raise CronError("a cron expression has five fields: minute hour day-of-month month day-of-week")
    minute, hour, dom, month, dow = fields
    return Cron(
        text=" ".join(fields),
        minutes=tuple(sorted(_parse_field(minute, 0, 59, "minute"))),
        hours=tuple(sorted(_parse_field(hour, 0, 23, "hour"))),
        days=_parse_field(dom, 1, 31, "day of month"),
        months=_parse_field(month, 1, 12, "month", _MONTHS),
        weekdays=_parse_field(dow, 0, 6, "day of week", _DAYS),
        any_day=dom.startswith("*"),
        any_weekday=dow.startswith("*"),
    )


def next_after(cron: Cron, zone: ZoneInfo, moment: datetime) -> datetime:
    """The first scheduled instant strictly after ``moment`` (aware), as an aware datetime in ``zone``."""
    if moment.tzinfo is None:
        raise ValueError("next_after needs an aware datetime")
    day = moment.astimezone(zone).date()
    for _ in range(_SEARCH_DAYS):
        if cron.matches_day(day):
            # Wall times map to instants with fold=0: a time in the spring gap moves forward by the gap,
            # a repeated autumn time is its first occurrence. Mapped instants of one day are not always
            # in wall-clock order (02:30 in the gap is later than 03:00), so take the earliest.
            instants = [
                datetime(day.year, day.month, day.day, h, m, tzinfo=zone).astimezone(UTC)
                for h in cron.hours
                for m in cron.minutes
            ]
            later = [i for i in instants if i > moment]
            if later:
                return min(later).astimezone(zone)
        day += timedelta(days=1)
    raise CronError(f"{cron.text!r} never runs (for example the 31st of a 30-day month)")


def next_runs(cfg: ConnectionConfig, now: datetime, n: int = 5) -> list[datetime]:
    """The next ``n`` scheduled runs of a connection after ``now``, in its time zone. Pure."""
    cron, zone = parse_cron(cfg.schedule.cron), ZoneInfo(cfg.schedule.timezone)
    runs: list[datetime] = []
    moment = now if now.tzinfo else now.replace(tzinfo=UTC)
    for _ in range(n):
        moment = next_after(cron, zone, moment)
        runs.append(moment)
    return runs


class ZonedCron(BaseSchedule):
    """A Celery beat schedule: a cron expression evaluated in its own IANA time zone."""

    def __init__(
        self, cron: str, timezone: str = "UTC", nowfun: Callable[[], datetime] | None = None, app: Any = None
    ) -> None:
        super().__init__(nowfun=nowfun, app=app)
        self.cron_text = cron
        self.timezone = timezone
        self.cron = parse_cron(cron)
        self.zone = ZoneInfo(timezone)

    def now(self) -> datetime:
        moment = self.nowfun() if self.nowfun else datetime.now(UTC)
        return moment if moment.tzinfo else moment.replace(tzinfo=UTC)

    @staticmethod
    def _aware(moment: datetime) -> datetime:
        return moment if moment.tzinfo else moment.replace(tzinfo=UTC)  # beat stores naive UTC at times

    def next_after(self, moment: datetime) -> datetime:
        return next_after(self.cron, self.zone, self._aware(moment))

    def remaining_estimate(self, last_run_at: datetime) -> timedelta:
        return self.next_after(last_run_at) - self.now()

    def is_due(self, last_run_at: datetime) -> schedstate:
        """Due when a scheduled time has passed since the last run (several missed ones run once)."""
        now = self.now()
        upcoming = self.next_after(last_run_at)
        if upcoming <= now:
            return schedstate(True, max(1.0, (self.next_after(now) - now).total_seconds()))
        return schedstate(False, max(1.0, (upcoming - now).total_seconds()))

    def __reduce__(self) -> tuple[Any, ...]:
        return (self.__class__, (self.cron_text, self.timezone))

    def __eq__(self, other: object) -> bool:
        if isinstance(other, ZonedCron):
            return (self.cron.text, self.timezone) == (other.cron.text, other.timezone)
        return NotImplemented

    def __hash__(self) -> int:
        return hash((self.cron.text, self.timezone))

    def __repr__(self) -> str:
        return f"<ZonedCron {self.cron.text} {self.timezone}>"


def entry_name(connection: str) -> str:
    return f"sync:{connection}"


def build_beat_schedule(config: WorkerConfig) -> dict[str, dict[str, Any]]:
    """One beat entry per connection: an incremental sync on the ``sync`` queue on its own schedule."""
    entries: dict[str, dict[str, Any]] = {}
    problems = []
    for c in config.connections:
        try:
            schedule = ZonedCron(c.schedule.cron, c.schedule.timezone)
        except CronError as exc:
            problems.append(f"connection {c.name}: schedule.cron {c.schedule.cron!r}: {exc}")
            continue
        entries[entry_name(c.name)] = {
            "task": "icp.sync_connection",
            "schedule": schedule,
            "args": (c.name, RunKind.INCREMENTAL.value),
            "options": {"queue": "sync", "expires": SYNC_EXPIRES_SECONDS},
        }
    if problems:
        raise CronError("; ".join(problems))
    return entries


def describe(
    config: WorkerConfig, now: datetime, n: int = 3
) -> Iterable[tuple[ConnectionConfig, list[datetime]]]:
    for c in config.connections:
        yield c, next_runs(c, now, n)


class ConnectionScheduler(PersistentScheduler):
    """Beat's scheduler: the connections file's schedules, re-read when the file changes. The file is
    ``ICP_WORKER_CONFIG`` (or ``./icp-worker.yaml``), unless the app's ``icp_worker_config`` names one.

    Last run times persist in ``beat_schedule_filename`` (a shelve file), so a restart neither repeats
    nor forgets a run."""

    #: Seconds between checks of the connections file's modification time.
    reload_interval = 60.0

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self._config_stamp: tuple[str, float] | None = None
        self._checked_at = 0.0
        self._outbox_at = 0.0
        super().__init__(*args, **kwargs)

    def _dispatch_outbox(self) -> None:
        """Hand the re-evaluations a publish could not queue (broker down) to the workers."""
        import structlog

        from worker.outbox import dispatch_if_any

        try:
            dispatch_if_any(self.app)
        except Exception as exc:  # noqa: BLE001 - beat must keep scheduling; the rows stay pending
            structlog.get_logger("worker.schedule").warning(
                "outbox.dispatch_failed", error=f"{type(exc).__name__}: {exc}"
            )

    def _config_path(self) -> Path | None:
        from worker.celery_app import config_path

        explicit = self.app.conf.get("icp_worker_config")
        return Path(explicit) if explicit else config_path()

    def _stamp(self) -> tuple[str, float] | None:
        path = self._config_path()
        if path is None:
            return None
        try:
            return str(path), path.stat().st_mtime
        except OSError:
            return str(path), -1.0

    def _connection_entries(self) -> dict[str, dict[str, Any]]:
        from worker.config import WorkerConfig, load_config

        self._config_stamp = self._stamp()
        path = self._config_path()
        return build_beat_schedule(load_config(path) if path else WorkerConfig())

    def setup_schedule(self) -> None:
        filename = Path(self.schedule_filename)
        filename.parent.mkdir(parents=True, exist_ok=True)
        self.app.conf.beat_schedule = {**(self.app.conf.beat_schedule or {}), **self._connection_entries()}
        super().setup_schedule()
        self._log_schedule()

    def tick(self, *args: Any, **kwargs: Any) -> float:
        import time

        if time.monotonic() - self._checked_at >= self.reload_interval:
            self._checked_at = time.monotonic()
            if self._stamp() != self._config_stamp:
                self._reload()
        from worker.outbox import DISPATCH_INTERVAL

        if time.monotonic() - self._outbox_at >= DISPATCH_INTERVAL:
            self._outbox_at = time.monotonic()
            self._dispatch_outbox()
        return min(float(super().tick(*args, **kwargs)), DISPATCH_INTERVAL)

    def _reload(self) -> None:
        import structlog

        try:
            entries = self._connection_entries()
        except Exception as exc:  # noqa: BLE001 - a broken file must not stop beat: keep the old schedule
            structlog.get_logger("worker.schedule").error(
                "schedule.reload_failed", error=f"{type(exc).__name__}: {exc}", kept="previous schedule"
            )
            return
        static = {k: v for k, v in (self.app.conf.beat_schedule or {}).items() if not k.startswith("sync:")}
        self.app.conf.beat_schedule = {**static, **entries}
        self.merge_inplace(self.app.conf.beat_schedule)
        self.sync()
        self._log_schedule(reloaded=True)

    def _log_schedule(self, reloaded: bool = False) -> None:
        import structlog

        log = structlog.get_logger("worker.schedule")
        now = datetime.now(UTC)
        for name, entry in sorted(self.schedule.items()):
            sched = entry.schedule
            upcoming = sched.next_after(now).isoformat() if isinstance(sched, ZonedCron) else None
            log.info(
                "schedule.entry",
                entry=name,
                task=entry.task,
                schedule=repr(sched),
                next_run=upcoming,
                reloaded=reloaded or None,
                pid=os.getpid(),
            )
