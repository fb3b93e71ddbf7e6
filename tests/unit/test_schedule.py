"""Per-connection cron schedules in their own time zones: parsing, next runs, DST, beat's is_due."""

from __future__ import annotations

import pickle
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from worker.config import ConnectionConfig, ScheduleConfig, WorkerConfig
from worker.schedule import CronError, ZonedCron, build_beat_schedule, next_runs, parse_cron

BERLIN = ZoneInfo("Europe/Berlin")
NEW_YORK = ZoneInfo("America/New_York")


def conn(cron: str = "0 2 * * *", tz: str = "UTC", name: str = "acme") -> ConnectionConfig:
    return ConnectionConfig(name=name, crm="files", schedule=ScheduleConfig(cron=cron, timezone=tz))


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)


def test_default_schedule_is_nightly_at_two_utc():
    runs = next_runs(ConnectionConfig(name="acme", crm="files"), utc(2026, 11, 23, 1, 59), 3)
    assert [r.astimezone(UTC) for r in runs] == [
        utc(2026, 11, 23, 2),
        utc(2026, 11, 24, 2),
        utc(2026, 11, 25, 2),
    ]


def test_next_run_is_strictly_after_now():
    assert next_runs(conn(), utc(2026, 11, 23, 2, 0), 1)[0] == utc(2026, 11, 24, 2)


def test_runs_are_in_the_connections_zone_and_returned_as_local_times():
    (run,) = next_runs(conn(tz="Europe/Berlin"), utc(2026, 11, 23, 12), 1)
    assert run.tzinfo == BERLIN and (run.hour, run.minute) == (2, 0)
    assert run.astimezone(UTC) == utc(2026, 11, 24, 1)  # CET is UTC+1


@pytest.mark.parametrize(
    ("tz", "start", "expected_utc"),
    [
        # Berlin, clocks go forward on 2026-03-29 at 02:00 -> 03:00: 02:00 does not exist, runs at 03:00 CEST
        (
            "Europe/Berlin",
            utc(2026, 3, 27, 12),
            [utc(2026, 3, 28, 1), utc(2026, 3, 29, 1), utc(2026, 3, 30, 0)],
        ),
        # Berlin, clocks go back on 2026-10-25 at 03:00 -> 02:00: 02:00 happens twice, runs once (the first)
        (
            "Europe/Berlin",
            utc(2026, 10, 23, 12),
            [utc(2026, 10, 24, 0), utc(2026, 10, 25, 0), utc(2026, 10, 26, 1)],
        ),
        # New York, forward on 2026-03-08: 02:00 EST does not exist -> 03:00 EDT (07:00 UTC)
        (
            "America/New_York",
            utc(2026, 3, 6, 12),
            [utc(2026, 3, 7, 7), utc(2026, 3, 8, 7), utc(2026, 3, 9, 6)],
        ),
        # New York, back on 2026-11-01: 01:00-02:00 repeats; 02:00 EST exists once
        (
            "America/New_York",
            utc(2026, 10, 30, 12),
            [utc(2026, 10, 31, 6), utc(2026, 11, 1, 7), utc(2026, 11, 2, 7)],
        ),
    ],
)
def test_nightly_run_happens_exactly_once_a_day_across_dst(tz, start, expected_utc):
    runs = next_runs(conn(tz=tz), start, 3)
    assert [r.astimezone(UTC) for r in runs] == expected_utc
    assert all(r.astimezone(ZoneInfo(tz)).hour in (2, 3) for r in runs)


def test_a_time_inside_the_spring_gap_moves_forward_by_the_gap_and_keeps_the_order():
    # 02:30 does not exist on 2026-03-29 in Berlin: it runs at 03:30 CEST, after 03:00.
    runs = next_runs(conn("0,30 2,3 * * *", "Europe/Berlin"), utc(2026, 3, 28, 23), 4)
    local = [r.astimezone(BERLIN).strftime("%d %H:%M %Z") for r in runs]
    assert local == ["29 03:00 CEST", "29 03:30 CEST", "30 02:00 CEST", "30 02:30 CEST"]
    assert runs == sorted(runs) and len(set(runs)) == len(runs), "no instant twice"


def test_hourly_schedule_in_autumn_runs_each_wall_clock_hour_once():
    runs = next_runs(conn("0 * * * *", "Europe/Berlin"), utc(2026, 10, 24, 22, 30), 4)
    assert [r.astimezone(BERLIN).strftime("%H:%M %Z") for r in runs] == [
        "01:00 CEST", "02:00 CEST", "03:00 CET", "04:00 CET",
    ]  # fmt: skip


@pytest.mark.parametrize(
    ("cron", "start", "expected"),
    [
        (
            "*/15 9-10 * * mon-fri",
            utc(2026, 11, 20, 10, 50),
            [utc(2026, 11, 23, 9), utc(2026, 11, 23, 9, 15)],
        ),
        ("0 6 1 jan,jul *", utc(2026, 3, 1), [utc(2026, 7, 1, 6), utc(2027, 1, 1, 6)]),
        ("0 0 * * 7", utc(2026, 11, 23), [utc(2026, 11, 29), utc(2026, 12, 6)]),  # 7 is Sunday
        # day of month and day of week both restricted: either matches (Vixie cron)
        ("0 12 1 * fri", utc(2026, 11, 23), [utc(2026, 11, 27, 12), utc(2026, 12, 1, 12)]),
        ("0 0 29 2 *", utc(2026, 3, 1), [utc(2028, 2, 29), utc(2032, 2, 29)]),
        ("5/20 0 * * *", utc(2026, 11, 23), [utc(2026, 11, 23, 0, 5), utc(2026, 11, 23, 0, 25)]),
    ],
)
def test_cron_fields(cron, start, expected):
    assert [r.astimezone(UTC) for r in next_runs(conn(cron), start, len(expected))] == expected


@pytest.mark.parametrize(
    "cron",
    ["60 2 * * *", "0 24 * * *", "0 2 0 * *", "0 2 * 13 *", "0 2 * * 8", "*/0 * * * *", "5-1 * * * *",
     "a * * * *", "0 2 * *", "1,,2 * * * *"],
)  # fmt: skip
def test_invalid_cron_is_refused_with_the_field_named(cron):
    with pytest.raises((CronError, ValueError)):
        parse_cron(cron)


def test_a_cron_that_never_fires_says_so():
    with pytest.raises(CronError, match="never runs"):
        next_runs(conn("0 0 31 2 *"), utc(2026, 1, 1), 1)


def test_build_beat_schedule_reports_every_bad_connection():
    config = WorkerConfig(
        connections=[conn("61 * * * *", name="a"), conn(name="b"), conn("0 25 * * *", name="c")]
    )
    with pytest.raises(CronError) as exc:
        build_beat_schedule(config)
    assert "connection a" in str(exc.value) and "connection c" in str(exc.value)


def test_beat_entries_run_the_sync_task_on_the_sync_queue():
    config = WorkerConfig(
        connections=[conn(tz="Europe/Berlin", name="acme"), conn("30 3 * * *", name="beta")]
    )
    entries = build_beat_schedule(config)
    assert set(entries) == {"sync:acme", "sync:beta"}
    acme = entries["sync:acme"]
    assert acme["task"] == "icp.sync_connection" and acme["args"] == ("acme", "incremental")
    assert acme["options"]["queue"] == "sync"
    assert acme["schedule"] == ZonedCron("0 2 * * *", "Europe/Berlin")


class Clock:
    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


def test_zoned_cron_is_due_once_per_scheduled_time():
    clock = Clock(utc(2026, 11, 24, 0, 59))
    sched = ZonedCron("0 2 * * *", "Europe/Berlin", nowfun=clock)
    last = utc(2026, 11, 23, 1)  # yesterday's 02:00 CET run
    due, wait = sched.is_due(last)
    assert not due and wait == pytest.approx(60)
    clock.now = utc(2026, 11, 24, 1, 0, 1)
    due, wait = sched.is_due(last)
    assert due and wait == pytest.approx(timedelta(days=1).total_seconds() - 1)
    due, _ = sched.is_due(clock.now)  # beat records the run: not due again until tomorrow
    assert not due


def test_runs_missed_while_beat_was_down_run_once():
    clock = Clock(utc(2026, 11, 27, 12))
    sched = ZonedCron("0 2 * * *", "UTC", nowfun=clock)
    due, wait = sched.is_due(utc(2026, 11, 23, 2))  # four runs missed
    assert due and wait == pytest.approx(14 * 3600)
    assert not sched.is_due(clock.now)[0]


def test_zoned_cron_accepts_naive_utc_and_pickles_for_the_beat_state_file():
    clock = Clock(utc(2026, 11, 24, 3))
    sched = ZonedCron("0 2 * * *", "UTC", nowfun=clock)
    assert sched.is_due(datetime(2026, 11, 23, 2))[0]
    again = pickle.loads(pickle.dumps(sched))
    assert again == sched and again.next_after(utc(2026, 11, 24)) == utc(2026, 11, 24, 2)
    assert sched.remaining_estimate(utc(2026, 11, 24, 2)) == timedelta(hours=23)


def test_beat_scheduler_follows_the_connections_file(tmp_path):
    from worker.celery_app import RuntimeSettings, create_app
    from worker.schedule import ConnectionScheduler
    from worker.settings import Settings

    config = tmp_path / "icp-worker.yaml"
    config.write_text(
        "connections:\n"
        "  - {name: acme, crm: files, options: {path: crm, out: out},\n"
        '     schedule: {cron: "0 2 * * *", timezone: UTC}}\n'
    )
    app = create_app(Settings(_env_file=None), RuntimeSettings(_env_file=None))
    app.conf.icp_worker_config = str(config)
    beat = ConnectionScheduler(app=app, schedule_filename=str(tmp_path / "beat-state"), lazy=False)
    try:
        assert set(beat.schedule) == {"sync:acme"}
        last_run = beat.schedule["sync:acme"].last_run_at
        config.write_text(
            "connections:\n"
            "  - {name: acme, crm: files, options: {path: crm, out: out},\n"
            '     schedule: {cron: "30 4 * * *", timezone: Europe/Berlin}}\n'
            "  - {name: beta, crm: files, options: {path: crm, out: out}}\n"
        )
        beat._reload()
        assert set(beat.schedule) == {"sync:acme", "sync:beta"}
        assert beat.schedule["sync:acme"].schedule == ZonedCron("30 4 * * *", "Europe/Berlin")
        assert beat.schedule["sync:acme"].last_run_at == last_run, "a changed schedule keeps its last run"
        config.write_text("connections: [{name: acme, crm: nope}]\n")
        beat._reload()  # a broken file keeps the schedule beat has
        assert set(beat.schedule) == {"sync:acme", "sync:beta"}
        config.write_text("connections:\n  - {name: beta, crm: files, options: {path: crm, out: out}}\n")
        beat._reload()
        assert set(beat.schedule) == {"sync:beta"}, "a removed connection is no longer scheduled"
    finally:
        beat.close()
        app.close()
