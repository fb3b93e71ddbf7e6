"""The console's pages over plain HTTP on the demo store: what each shows, and what its buttons do."""

from __future__ import annotations

import csv
import io
import re

from tests.console.conftest import BUNDLED, signed_in
from worker import quality
from worker.console.data import tier_counts
from worker.store.models import AuditEvent, IcpVersion, ReengageFlag, SyncRun

V2 = (BUNDLED / "icp_v2.yaml").read_text(encoding="utf-8")


def test_overview_shows_tiers_runs_and_reengagement(env):
    c, _ = signed_in(env.app(), "vera")
    html = c.get("/").text
    assert 'id="conn-demo"' in html
    svg = re.search(r"<svg[^>]*class=\"chart\".*?</svg>", html, re.S).group(0)
    assert "Tier distribution" in svg and "account" in svg and "lead" in svg
    with env.store.session() as s:
        counts = tier_counts(s, 1)
    assert "account: " in svg and f"poor {counts['account']['poor']:,}" in svg
    assert "succeeded" in html and "full" in html
    assert "scored records" in html and "to re-engage" in html


def test_versions_page_yaml_and_diff(env):
    app = env.app()
    c, token = signed_in(app, "eddie")
    c.post("/icp/draft/publish", data={"csrf_token": token, "yaml": V2, "note": "mid-market"})
    listing = c.get("/icp").text
    assert "v1" in listing and "v2" in listing and "mid-market" in listing and "publish by eddie" in listing
    yaml_page = c.get("/icp/v2").text
    assert "Mid-market software" in yaml_page and "Computer Software: 1.0" in yaml_page
    diff = c.get("/icp/diff?a=1&b=2").text
    assert 'id="changes"' in diff and "criterion" in diff
    assert re.search(r'class="add">\+', diff) and re.search(r'class="del">-', diff)
    assert c.get("/icp/v99").status_code == 404


def test_draft_errors_are_shown_at_their_line(env):
    c, token = signed_in(env.app(), "eddie")
    broken = V2.replace("    weight: 25\n", "    weight: lots\n")
    line = broken.splitlines().index("    weight: lots") + 1
    response = c.post("/icp/draft/check", data={"csrf_token": token, "yaml": broken})
    assert response.status_code == 422
    note = re.search(r'<tr class="error-note" data-line="(\d+)">.*?</tr>', response.text, re.S)
    assert int(note.group(1)) == line
    assert "criteria[1].weight" in note.group(0) and "must be a number" in note.group(0)
    assert f'<tr id="line-{line}" class="has-error">' in response.text
    partial = c.post(
        "/icp/draft/check", data={"csrf_token": token, "yaml": broken}, headers={"HX-Request": "true"}
    )
    assert "<html" not in partial.text and f'data-line="{line}"' in partial.text
    ok = c.post("/icp/draft/check", data={"csrf_token": token, "yaml": V2})
    assert ok.status_code == 200 and 'id="check-ok"' in ok.text


def test_a_draft_can_be_uploaded(env):
    c, token = signed_in(env.app(), "eddie")
    response = c.post(
        "/icp/draft/check",
        data={"csrf_token": token, "yaml": ""},
        files={"upload": ("icp.yaml", b"name: x\ncriteria: []\ntiers: {best: 80, good: 90}\n", "text/yaml")},
    )
    assert response.status_code == 422 and 'id="listing"' in response.text
    latin_file = ("icp.yaml", "name: Caf\xe9\n".encode("latin-1"), "text/yaml")
    latin = c.post("/icp/draft/check", data={"csrf_token": token}, files={"upload": latin_file})
    assert latin.status_code == 422 and "not valid UTF-8 text" in latin.text


def test_preview_shows_the_impact_without_writing(env):
    c, token = signed_in(env.app(), "eddie")
    response = c.post("/icp/draft/preview", data={"csrf_token": token, "yaml": V2})
    assert response.status_code == 200
    html = response.text
    heat = re.search(r'<svg[^>]*class="chart heatmap".*?</svg>', html, re.S).group(0)
    assert "current tier → proposed tier" in heat and "records change tier" in heat
    assert "records a publish would write" in html and "re-engagement candidates" in html
    assert 'id="backtest-demo"' in html and "AUC" in html
    assert 'name="yaml"' in html and 'action="/icp/draft/publish"' in html
    with env.store.session() as s:
        assert s.query(IcpVersion).count() == 1, "a preview stores nothing"
    assert not (env.folder / "reimport").exists() or not any((env.folder / "reimport").rglob("*.csv"))


def test_publish_stores_the_version_logs_who_and_reevaluates(env):
    c, token = signed_in(env.app(), "eddie")
    response = c.post("/icp/draft/publish", data={"csrf_token": token, "yaml": V2, "note": "mid-market"},
                      follow_redirects=False)  # fmt: skip
    assert response.status_code == 303 and response.headers["location"].startswith("/icp/v2")
    page = c.get(response.headers["location"]).text
    assert "current" in page and "eddie" in page
    with env.store.session() as s:
        v2 = s.query(IcpVersion).filter_by(number=2).one()
        assert v2.author == "eddie" and v2.note == "mid-market"
        event = s.query(AuditEvent).one()
        assert (event.actor, event.action, event.icp_version) == ("eddie", "publish", 2)
        assert s.query(ReengageFlag).count() > 0, "the re-evaluation ran and raised flags"
    assert any((env.folder / "reimport").rglob("*.csv")), "and wrote the re-import files"


def test_publish_needs_a_note_and_a_valid_draft(env):
    c, token = signed_in(env.app(), "eddie")
    assert (
        c.post("/icp/draft/publish", data={"csrf_token": token, "yaml": V2, "note": " "}).status_code == 400
    )
    assert (
        c.post("/icp/draft/publish", data={"csrf_token": token, "yaml": "x: [", "note": "n"}).status_code
        == 422
    )
    with env.store.session() as s:
        assert s.query(IcpVersion).count() == 1


def test_rollback_by_an_approver(env):
    app = env.app()
    eddie, token = signed_in(app, "eddie")
    eddie.post("/icp/draft/publish", data={"csrf_token": token, "yaml": V2, "note": "v2"})
    alice, atoken = signed_in(app, "alice")
    assert 'id="rollback"' in alice.get("/icp/v1").text
    assert 'id="rollback"' not in eddie.get("/icp/v1").text
    response = alice.post("/icp/v1/rollback", data={"csrf_token": atoken}, follow_redirects=False)
    assert response.status_code == 303 and response.headers["location"].startswith("/icp/v3")
    with env.store.session() as s:
        v3 = s.query(IcpVersion).filter_by(number=3).one()
        assert v3.content == s.query(IcpVersion).filter_by(number=1).one().content
        assert [(e.actor, e.action) for e in s.query(AuditEvent).order_by(AuditEvent.id)] == [
            ("eddie", "publish"),
            ("alice", "rollback"),
        ]
    assert "rollback by alice" in alice.get("/icp").text


def test_runs_and_a_run_with_its_errors_and_warnings(env):
    c, _ = signed_in(env.app(), "vera")
    runs = c.get("/runs").text
    assert 'href="/runs/1"' in runs and "succeeded" in runs
    run = c.get("/runs/1").text
    assert "Record errors" in run and "Data quality" in run
    with env.store.session() as s:
        report = quality.build_report(s, "demo", run_id=1)
    assert report.unreadable_values > 0
    counts = re.search(r'<div class="grid" id="quality-counts">.*?</div>\s*</div>', run, re.S).group(0)
    assert f"<b>{report.unreadable_values:,}</b><span>values could not be read" in counts
    warnings = re.search(r'<table id="warnings">.*?</table>', run, re.S).group(0)
    unreadable = [a for a in report.attributes if a.unreadable or a.impossible]
    assert warnings.count("<tr><td>") == len(unreadable)
    some = next(v for a in unreadable for v in a.values if v.raw and v.example_ids)
    assert some.raw in warnings and "/records/demo/" in warnings
    assert 'id="coverage"' in run
    assert c.get("/runs/999").status_code == 404


def test_reengage_queue_filters_and_csv(env):
    app = env.app()
    eddie, token = signed_in(app, "eddie")
    eddie.post("/icp/draft/publish", data={"csrf_token": token, "yaml": V2, "note": "v2"})
    with env.store.session() as s:
        flags = s.query(ReengageFlag).filter_by(state="active").all()
    assert flags
    kinds = {f.kind for f in flags}
    owner = flags[0].owner_id
    page = eddie.get("/reengage").text
    assert f"<b>{len(flags):,}</b> record" in page
    for kind in kinds:
        html = eddie.get(f"/reengage?kind={kind}").text
        n = sum(1 for f in flags if f.kind == kind)
        assert f"<b>{n:,}</b> record" in html
    by_owner = eddie.get(f"/reengage?owner={owner}&tier=best").text
    n = sum(1 for f in flags if f.owner_id == owner and f.to_tier == "best")
    assert f"<b>{n:,}</b> record" in by_owner
    partial = eddie.get(f"/reengage?owner={owner}", headers={"HX-Request": "true"})
    assert "<html" not in partial.text and 'id="queue-table"' in partial.text
    exported = eddie.get(f"/reengage.csv?owner={owner}")
    assert exported.headers["content-type"].startswith("text/csv")
    assert "attachment" in exported.headers["content-disposition"]
    rows = list(csv.DictReader(io.StringIO(exported.text)))
    assert {r["id"] for r in rows} == {f.external_id for f in flags if f.owner_id == owner}
    assert rows[0]["reason"] and rows[0]["to_tier"] and rows[0]["kind"] in kinds


def test_record_search_and_page(env):
    c, _ = signed_in(env.app(), "vera")
    by_id = c.get("/records?q=001000000000001").text
    assert "/records/demo/account/001000000000001" in by_id
    by_name = c.get("/records?q=cyberdyne").text
    assert "Cyberdyne" in by_name
    page = c.get("/records/demo/account/001000000000001").text
    assert 'id="fit"' in page and 'id="history"' in page and "v1" in page
    assert c.get("/records/demo/account/nope").status_code == 404
    assert "No record has that id" in c.get("/records?q=zzzz-nothing").text


def test_the_records_csv_lists_what_the_publish_then_writes(env):
    c, token = signed_in(env.app(), "eddie")
    preview = c.post("/icp/draft/preview", data={"csrf_token": token, "yaml": V2}).text
    assert 'class="records-to-write"' in preview
    exported = c.post("/icp/draft/records.csv", data={"csrf_token": token, "yaml": V2})
    assert exported.status_code == 200 and exported.headers["content-type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(exported.text)))
    assert list(rows[0]) == [
        "connection", "object_type", "id", "name", "fit_score_before", "fit_score_after", "fit_tier_before",
        "fit_tier_after", "reengage_before", "reengage_after", "reason",
    ]  # fmt: skip
    assert len({(r["object_type"], r["id"]) for r in rows}) == len(rows)
    c.post("/icp/draft/publish", data={"csrf_token": token, "yaml": V2, "note": "v2"})
    with env.store.session() as s:
        from worker.store.models import SyncRun

        run = s.query(SyncRun).filter_by(kind="reevaluate").one()
        assert run.counts["written"] == len(rows)


def test_a_record_page_explains_its_history_as_of_and_next_tier(env):
    app = env.app()
    eddie, token = signed_in(app, "eddie")
    with env.store.session() as s:
        first_run = s.query(SyncRun).one()
        v1_at = first_run.finished_at
    eddie.post("/icp/draft/publish", data={"csrf_token": token, "yaml": V2, "note": "v2"})
    with env.store.session() as s:
        from worker.store.models import FitHistory

        moved = (
            s.query(FitHistory)
            .filter(FitHistory.object_type == "account", FitHistory.icp_version == 2)
            .filter(FitHistory.previous_tier.isnot(None), FitHistory.previous_tier != FitHistory.tier)
            .first()
        )
        assert moved is not None
        old_tier = moved.previous_tier
    page = eddie.get(f"/records/demo/account/{moved.external_id}").text
    history = re.search(r'<table id="history">.*?</table>', page, re.S).group(0)
    assert "<td>v1</td>" in history and "<td>v2</td>" in history
    assert 'id="reasons"' in page and 'id="crm"' in page
    as_of = eddie.get(f"/records/demo/account/{moved.external_id}?as_of={v1_at.isoformat()}").text
    said = re.search(r'<div class="flash ok" id="as-of">(.*?)</div>', as_of, re.S).group(1)
    assert old_tier in said and "ICP v1" in said
    with env.store.session() as s:
        from worker.store.models import RecordFit, RecordSnapshot

        good = (
            s.query(RecordSnapshot)
            .join(RecordFit, RecordFit.snapshot_id == RecordSnapshot.id)
            .filter(RecordSnapshot.object_type == "account", RecordFit.tier == "good")
            .first()
        )
    suggestion = eddie.get(f"/records/demo/account/{good.external_id}").text
    next_tier = re.search(r'<section class="card" id="next-tier">.*?</section>', suggestion, re.S).group(0)
    assert "best" in next_tier
    bad = eddie.get(f"/records/demo/account/{good.external_id}?as_of=yesterday")
    assert bad.status_code == 200 and "Not a date" in bad.text
