"""Follow-up Tasks (never two per key, even across a crash) and the owned-field install (idempotent)."""

from __future__ import annotations

from datetime import date

import pytest

from connectors.base import FollowUpTask
from connectors.salesforce.tasks import task_subject, task_token
from testing.salesforce import FakeSalesforce


@pytest.fixture
def fake():
    with FakeSalesforce() as f:
        yield f


def followups(fake, n: int, *, kind: str = "lead") -> list[FollowUpTask]:
    if kind == "lead":
        ids = fake.insert("Lead", ({"LastName": f"L{i}", "Company": f"C{i}"} for i in range(n)))
    else:
        ids = fake.insert("Account", ({"Name": f"C{i}"} for i in range(n)))
    owner = fake.insert("User", [{"Username": "rep@acme.example", "Name": "Rep"}])[0]
    return [
        FollowUpTask(
            key=f"icp-1-{kind}-{i}",
            object_type=kind,
            external_id=record_id,
            owner_id=owner,  # type: ignore[arg-type]
            subject=f"Re-engage C{i}: now an ICP fit",
            description=f"poor → best under ICP v3 ({i})",
            due_date=date(2026, 11, 26),
        )
        for i, record_id in enumerate(ids)
    ]


def test_tasks_are_created_for_the_owner_with_the_key_in_the_subject(fake):
    tasks = followups(fake, 2) + followups(fake, 1, kind="account")
    results = fake.connector().create_tasks(tasks)
    assert [(r.ok, r.existed) for r in results] == [(True, False)] * 3
    rows = {r["Id"]: r for r in fake.records("Task")}
    lead_task, account_task = rows[results[0].task_id], rows[results[2].task_id]
    assert lead_task["WhoId"] == tasks[0].external_id and lead_task["WhatId"] is None
    assert account_task["WhatId"] == tasks[2].external_id and account_task["WhoId"] is None
    assert lead_task["OwnerId"] == tasks[0].owner_id
    assert lead_task["Subject"] == f"Re-engage C0: now an ICP fit [icp:{task_token(tasks[0].key)}]"
    assert lead_task["Description"] == "poor → best under ICP v3 (0)"
    assert (lead_task["ActivityDate"], lead_task["Status"], lead_task["Priority"]) == (
        "2026-11-26",
        "Not Started",
        "Normal",
    )


def test_a_rerun_after_a_crash_creates_nothing_twice(fake):
    tasks = followups(fake, 5)
    first = fake.connector().create_tasks(tasks[:3])
    # The worker dies here: nothing of ``first`` reached the store. The next run asks for all five.
    second = fake.connector().create_tasks(tasks)
    assert [(r.ok, r.existed) for r in second] == [(True, True)] * 3 + [(True, False)] * 2
    assert [r.task_id for r in second[:3]] == [r.task_id for r in first]
    assert fake.count("Task") == 5
    assert fake.connector().create_tasks(tasks) and fake.count("Task") == 5


def test_a_create_whose_answer_is_lost_is_looked_up_not_repeated(fake):
    tasks = followups(fake, 4)
    connector = fake.connector()
    fake.drop_response_next(1, path="/composite/sobjects", method="POST")
    results = connector.create_tasks(tasks)
    assert all(r.ok and r.existed for r in results)
    assert fake.count("Task") == 4
    posts = [r for r in fake.log if r.method == "POST" and r.path.endswith("/composite/sobjects")]
    assert len(posts) == 1


def test_duplicate_keys_in_one_call_make_one_task(fake):
    task = followups(fake, 1)[0]
    results = fake.connector().create_tasks([task, task])
    assert results[0].task_id == results[1].task_id and fake.count("Task") == 1


def test_a_task_deleted_by_a_rep_is_not_created_again(fake):
    task = followups(fake, 1)[0]
    created = fake.connector().create_tasks([task])[0]
    fake.delete("Task", [created.task_id])
    again = fake.connector().create_tasks([task])[0]
    assert again.existed and again.task_id == created.task_id


def test_lookups_are_batched(fake):
    tasks = followups(fake, 120)
    fake.connector().create_tasks(tasks)
    lookups = [r for r in fake.calls_of("read") if r.soql and "FROM Task" in r.soql]
    assert len(lookups) == 3  # 50 keys a query
    assert lookups[0].soql is not None and "Subject LIKE '%[icp:" in lookups[0].soql
    assert len([r for r in fake.log if r.kind == "write"]) == 1  # 120 tasks, one collection request


def test_a_bad_record_fails_alone(fake):
    tasks = followups(fake, 2)
    bad = FollowUpTask(
        "icp-1-bad", "lead", fake.insert("Account", [{"Name": "x"}])[0], None, "s", "d", date(2026, 11, 26)
    )
    results = fake.connector().create_tasks([tasks[0], bad, tasks[1]])
    assert [r.ok for r in results] == [True, False, True]
    assert results[1].error and results[1].error.startswith("FIELD_INTEGRITY_EXCEPTION")


def test_subject_fits_255_characters_with_its_marker():
    subject = task_subject("x" * 400, task_token("k"))
    assert len(subject) == 255 and subject.endswith(f"[icp:{task_token('k')}]")


def test_field_check_lists_missing_owned_fields(fake):
    missing = fake.connector().check_fields(["account", "opportunity"])
    assert missing[:2] == ["Account.ICP_Fit_Score__c", "Account.ICP_Fit_Tier__c"]
    assert len(missing) == 14 and "Opportunity.ICP_Reengage_Reason__c" in missing


def test_field_install_creates_fields_and_access_and_is_idempotent(fake):
    connector = fake.connector()
    created = connector.install_fields(["account", "lead", "opportunity"])
    assert len(created) == 21 and "Lead.ICP_Scored_At__c" in created
    assert connector.check_fields(["account", "lead", "opportunity"]) == []
    account = {f["name"]: f for f in connector.describe("account")["fields"]}
    assert account["ICP_Fit_Score__c"]["type"] == "double" and account["ICP_Fit_Score__c"]["updateable"]
    assert account["ICP_Scored_At__c"]["type"] == "datetime"
    assert account["ICP_Reengage__c"]["type"] == "boolean"
    assert account["ICP_Fit_Tier__c"]["length"] == 40
    fake.reset_counts()
    again = fake.connector()
    assert again.install_fields(["account", "lead", "opportunity"]) == []
    changes = [r for r in fake.log if r.method in ("POST", "PATCH", "DELETE") and r.kind != "auth"]
    assert changes == []
    assert len(fake.records("PermissionSet")) == 1
    assert len(fake.records("FieldPermissions")) == 21
    assert len(fake.records("PermissionSetAssignment")) == 1


def test_field_install_finishes_a_half_done_install(fake):
    first = fake.connector()
    first.install_fields(["account"])
    # Fields exist but the user lost the permission set: describe no longer shows them.
    fake.delete("PermissionSetAssignment", fake.ids("PermissionSetAssignment"))
    assert len(first.check_fields(["account"])) == 7
    assert first.install_fields(["account", "lead"]) == [
        f"Lead.{n}"
        for n in (
            "ICP_Fit_Score__c",
            "ICP_Fit_Tier__c",
            "ICP_Fit_Reasons__c",
            "ICP_Version__c",
            "ICP_Scored_At__c",
            "ICP_Reengage__c",
            "ICP_Reengage_Reason__c",
        )
    ]
    assert first.check_fields(["account", "lead"]) == []


def test_a_lost_create_answer_during_install_is_not_a_failure(fake):
    connector = fake.connector()
    fake.drop_response_next(1, path="/tooling/sobjects/CustomField")
    created = connector.install_fields(["account"])
    assert len(created) == 6  # the seventh was created, but its answer was lost
    assert connector.check_fields(["account"]) == []


def test_field_install_with_session_auth_finds_the_user_through_userinfo(fake):
    connector = fake.connector("session")
    assert len(connector.install_fields(["opportunity"])) == 7
    assignment = fake.records("PermissionSetAssignment")[0]
    assert assignment["AssigneeId"] == fake.user_id
    assert connector.check_fields(["opportunity"]) == []
