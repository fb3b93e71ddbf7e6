"""The owned custom fields: check them with ``describe``, install them with the Tooling API.

``install_fields`` is idempotent and safe to re-run after a crash: it asks the Tooling API which
``CustomField`` rows exist (``describe`` cannot tell, it hides fields the integration user may not
read), creates only the missing ones, then makes sure a permission set grants read and edit on every
owned field and is assigned to the integration user. A second run makes no change.

Field types: the score and ICP version are numbers, the tier is text (tier names come from the ICP
and may change, which a restricted picklist would refuse), reasons are a text area, the scored-at a
date-time and the re-engagement flag a checkbox.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

from simple_salesforce.format import format_soql

from connectors.errors import ConnectorError, PermanentError, TransientError
from connectors.salesforce.client import SalesforceClient

log = logging.getLogger("connectors.salesforce")

_NOTE = "Written by the ICP fit worker on every sync; edits are overwritten."

#: Tooling API ``CustomField.Metadata`` per canonical owned field.
FIELD_METADATA: dict[str, dict[str, Any]] = {
    "fit_score": {"label": "ICP Fit Score", "type": "Number", "precision": 3, "scale": 0},
    "fit_tier": {"label": "ICP Fit Tier", "type": "Text", "length": 40},
    "fit_reasons": {"label": "ICP Fit Reasons", "type": "TextArea"},
    "icp_version": {"label": "ICP Version", "type": "Number", "precision": 8, "scale": 0},
    "scored_at": {"label": "ICP Scored At", "type": "DateTime"},
    "reengage_flag": {"label": "ICP Re-engage", "type": "Checkbox", "defaultValue": "false"},
    "reengage_reason": {"label": "ICP Re-engage Reason", "type": "TextArea"},
}


def field_metadata(canonical: str) -> dict[str, Any]:
    return {**FIELD_METADATA[canonical], "description": _NOTE, "inlineHelpText": _NOTE}


def missing_owned(
    sobject: str, describe_fields: Iterable[Mapping[str, Any]], owned: Mapping[str, str]
) -> list[str]:
    """Owned fields of ``sobject`` that the integration user cannot see or cannot edit."""
    editable = {f["name"].lower() for f in describe_fields if f.get("updateable")}
    return [f"{sobject}.{api}" for api in owned.values() if api.lower() not in editable]


def _query_all(client: SalesforceClient, soql: str, *, tooling: bool = False) -> list[dict[str, Any]]:
    if tooling:
        result = client.rest("other", "tooling/query/", params={"q": soql}) or {}
    else:
        result = client.query(soql, kind="other")
    rows = list(result.get("records") or ())
    while not result.get("done", True) and result.get("nextRecordsUrl"):
        result = client.query_more(result["nextRecordsUrl"], kind="other")
        rows.extend(result.get("records") or ())
    return rows


def _create_once(
    client: SalesforceClient,
    path: str,
    body: dict[str, Any],
    exists: Callable[[], str | None],
    *,
    attempts: int,
    sleep: Callable[[float], None],
) -> tuple[str, bool]:
    """POST ``body`` to ``path`` unless ``exists()`` finds the row; never repeat a POST blindly.
    Returns ``(id, created)``."""
    for attempt in range(1, attempts + 1):
        try:
            answer = client.rest("other", path, method="POST", json=body, retry=False) or {}
            return str(answer.get("id")), True
        except TransientError:
            if attempt == attempts:
                raise
            sleep(min(2.0**attempt, 30.0))
        except ConnectorError as exc:
            if exc.code not in ("DUPLICATE_DEVELOPER_NAME", "DUPLICATE_VALUE", "DUPLICATE_USERNAME"):
                raise
        found = exists()
        if found:
            return found, False
    raise PermanentError(f"Salesforce POST {path}: could not create the row")


def _integration_user_id(client: SalesforceClient) -> str:
    """The logged-in user's id: by username when we have one (plain API access suffices), else from the
    OpenID Connect userinfo endpoint (session auth)."""
    username = client.credentials.username
    if username:
        rows = _query_all(client, format_soql("SELECT Id FROM User WHERE Username = {}", username))
        if rows:
            return str(rows[0]["Id"])
    user_id = client.userinfo().get("user_id")
    if not user_id:
        raise PermanentError("Salesforce did not name the integration user (userinfo has no user_id)")
    return str(user_id)


def install_owned_fields(
    client: SalesforceClient,
    sobjects: Sequence[str],
    owned: Mapping[str, str],
    *,
    permission_set: str,
    sleep: Callable[[float], None],
    attempts: int = 3,
) -> list[str]:
    """Create missing owned fields on ``sobjects`` and grant edit access; return the fields created."""
    dev_names = {api.removesuffix("__c"): (canonical, api) for canonical, api in owned.items()}

    def existing_fields() -> set[tuple[str, str]]:
        soql = format_soql(
            "SELECT Id, DeveloperName, TableEnumOrId FROM CustomField "
            "WHERE TableEnumOrId IN {} AND DeveloperName IN {}",
            list(sobjects),
            list(dev_names),
        )
        return {
            (row["TableEnumOrId"].lower(), row["DeveloperName"].lower())
            for row in _query_all(client, soql, tooling=True)
        }

    present = existing_fields()
    created: list[str] = []
    for sobject in sobjects:
        for dev_name, (canonical, api) in dev_names.items():
            if (sobject.lower(), dev_name.lower()) in present:
                continue
            full_name = f"{sobject}.{api}"
            body = {"FullName": full_name, "Metadata": field_metadata(canonical)}

            def exists(sobject: str = sobject, dev_name: str = dev_name) -> str | None:
                return "existing" if (sobject.lower(), dev_name.lower()) in existing_fields() else None

            _, was_created = _create_once(
                client, "tooling/sobjects/CustomField", body, exists, attempts=attempts, sleep=sleep
            )
            if was_created:
                log.info("created custom field %s", full_name)
                created.append(full_name)

    _grant_edit(client, sobjects, owned, permission_set, sleep=sleep, attempts=attempts)
    return created


def _grant_edit(
    client: SalesforceClient,
    sobjects: Sequence[str],
    owned: Mapping[str, str],
    name: str,
    *,
    sleep: Callable[[float], None],
    attempts: int,
) -> None:
    """Edit access to the owned fields through one permission set, assigned to the integration user."""
    set_id = _ensure_permission_set(client, name, sleep=sleep, attempts=attempts)
    to_create, to_update = _field_permission_changes(client, set_id, sobjects, owned)
    _save_field_permissions(client, to_create, to_update)
    if to_create or to_update:
        log.info("permission set %s: granted edit on %d fields", name, len(to_create) + len(to_update))
    _assign_permission_set(client, set_id, name, sleep=sleep, attempts=attempts)


def _ensure_permission_set(
    client: SalesforceClient, name: str, *, sleep: Callable[[float], None], attempts: int
) -> str:
    def find_set() -> str | None:
        rows = _query_all(client, format_soql("SELECT Id FROM PermissionSet WHERE Name = {}", name))
        return rows[0]["Id"] if rows else None

    set_id = find_set()
    if set_id is None:
        body = {
            "Name": name,
            "Label": name.replace("_", " "),
            "Description": "Edit access to the ICP fit fields.",
        }
        set_id, _ = _create_once(
            client, "sobjects/PermissionSet", body, find_set, attempts=attempts, sleep=sleep
        )
        log.info("created permission set %s", name)
    return set_id


def _field_permission_changes(
    client: SalesforceClient, set_id: str, sobjects: Sequence[str], owned: Mapping[str, str]
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """The FieldPermissions rows to create, and those to update to read and edit."""
    rows = _query_all(
        client,
        format_soql(
            "SELECT Id, Field, PermissionsRead, PermissionsEdit FROM FieldPermissions "
            "WHERE ParentId = {} AND SobjectType IN {}",
            set_id,
            list(sobjects),
        ),
    )
    by_field = {row["Field"].lower(): row for row in rows}
    to_create: list[dict[str, Any]] = []
    to_update: list[dict[str, Any]] = []
    for sobject in sobjects:
        for api in owned.values():
            row = by_field.get(f"{sobject}.{api}".lower())
            if row is None:
                to_create.append(
                    {
                        "attributes": {"type": "FieldPermissions"},
                        "ParentId": set_id,
                        "SobjectType": sobject,
                        "Field": f"{sobject}.{api}",
                        "PermissionsRead": True,
                        "PermissionsEdit": True,
                    }
                )
            elif not (row.get("PermissionsRead") and row.get("PermissionsEdit")):
                to_update.append(
                    {
                        "attributes": {"type": "FieldPermissions"},
                        "id": row["Id"],
                        "PermissionsRead": True,
                        "PermissionsEdit": True,
                    }
                )
    return to_create, to_update


def _save_field_permissions(
    client: SalesforceClient, to_create: list[dict[str, Any]], to_update: list[dict[str, Any]]
) -> None:
    # Both are idempotent enough to retry: a duplicate FieldPermissions row is refused per record.
    for method, records in (("POST", to_create), ("PATCH", to_update)):
        for start in range(0, len(records), 200):
            chunk = records[start : start + 200]
            answer = (
                client.rest(
                    "other", "composite/sobjects", method=method, json={"allOrNone": False, "records": chunk}
                )
                or []
            )
            problems = []
            for record, save in zip(chunk, answer, strict=False):
                errors = save.get("errors") or []
                if not save.get("success") and not any(
                    e.get("statusCode") == "DUPLICATE_VALUE" for e in errors
                ):
                    first = errors[0] if errors else {}
                    problems.append(
                        f"{record.get('Field') or record.get('id')}: {first.get('statusCode')} "
                        f"{first.get('message')}"
                    )
            if problems:
                raise PermanentError("granting field access failed: " + "; ".join(problems))


def _assign_permission_set(
    client: SalesforceClient, set_id: str, name: str, *, sleep: Callable[[float], None], attempts: int
) -> None:
    user_id = _integration_user_id(client)

    def find_assignment() -> str | None:
        rows = _query_all(
            client,
            format_soql(
                "SELECT Id FROM PermissionSetAssignment WHERE PermissionSetId = {} AND AssigneeId = {}",
                set_id,
                user_id,
            ),
        )
        return rows[0]["Id"] if rows else None

    if find_assignment() is None:
        _create_once(
            client,
            "sobjects/PermissionSetAssignment",
            {"PermissionSetId": set_id, "AssigneeId": user_id},
            find_assignment,
            attempts=attempts,
            sleep=sleep,
        )
        log.info("assigned permission set %s to the integration user", name)
