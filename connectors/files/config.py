"""Options of the files connector (the ``options:`` of a ``crm: files`` connection).

Defaults follow a Salesforce data export (Setup → Data Export, or Data Loader "Export All"): one CSV per
object with API field names as column headers. Re-import files use the owned fields' API names.
"""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, field_validator

from connectors.base import OBJECT_TYPES, OWNED_API_NAMES, OWNED_FIELDS, ObjectType

#: Export file per object type, in ``FilesConfig.path``.
DEFAULT_FILES: dict[ObjectType, str] = {
    "account": "accounts.csv",
    "opportunity": "opportunities.csv",
    "lead": "leads.csv",
}

#: CSV column → canonical name, per object type. Canonical names with a role: ``id``, ``name``, ``owner_id``,
#: ``last_activity``, ``modstamp`` (CrmRecord fields), the status keys of ``connectors.base.STATUS_KEYS``
#: (CrmRecord.status) and ``account_type`` (kept in raw; "Customer…" also sets status ``is_customer``).
#: Every other canonical name is an attribute in ``CrmRecord.raw``.
DEFAULT_COLUMNS: dict[ObjectType, dict[str, str]] = {
    "account": {
        "Id": "id",
        "Name": "name",
        "Industry": "industry",
        "NumberOfEmployees": "employees",
        "AnnualRevenue": "annual_revenue",
        "BillingCountry": "country",
        "BillingState": "state",
        "OwnerId": "owner_id",
        "LastActivityDate": "last_activity",
        "LastModifiedDate": "modstamp",
        "Tech_Stack__c": "tech_stack",
        "Type": "account_type",
    },
    "opportunity": {
        "Id": "id",
        "Name": "name",
        "AccountId": "account_id",
        "StageName": "stage",
        "IsClosed": "is_closed",
        "IsWon": "is_won",
        "Amount": "amount",
        "CloseDate": "close_date",
        "OwnerId": "owner_id",
        "LastModifiedDate": "modstamp",
    },
    "lead": {
        "Id": "id",
        "Company": "name",
        "Industry": "industry",
        "NumberOfEmployees": "employees",
        "AnnualRevenue": "annual_revenue",
        "Country": "country",
        "State": "state",
        "Status": "lead_status",
        "IsConverted": "is_converted",
        "OwnerId": "owner_id",
        "LastActivityDate": "last_activity",
        "LastModifiedDate": "modstamp",
        "Tech_Stack__c": "tech_stack",
    },
}

#: Owned field → column name in the re-import files: Salesforce's API names (``connectors.base``).
DEFAULT_FIELD_NAMES: dict[str, str] = OWNED_API_NAMES["files"]


class FilesConfig(BaseModel):
    """Where the exports are, where re-import files go, and how columns map.

    ``files`` and ``columns`` extend the defaults: ``columns: {account: {Segment__c: segment}}`` adds an
    attribute; mapping a default column to ``null`` drops it (``{account: {Type: null}}``). Columns absent
    from a file are ignored, except the one mapped to ``id``.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    #: Folder with the CSV exports.
    path: Path
    #: Folder for the re-import files (``<object>_updates.csv``, ``tasks.csv``); created when missing.
    out: Path
    #: Export file name per object type (defaults: ``DEFAULT_FILES``).
    files: dict[ObjectType, str] = Field(default_factory=lambda: dict(DEFAULT_FILES))
    #: Per object type, CSV column → canonical name (defaults: ``DEFAULT_COLUMNS``; user entries come first).
    columns: dict[ObjectType, dict[str, str | None]] = Field(default_factory=dict, validate_default=True)
    #: Owned field → re-import column name (defaults: ``DEFAULT_FIELD_NAMES``).
    field_names: dict[str, str] = Field(default_factory=lambda: dict(DEFAULT_FIELD_NAMES))
    #: Header of the record id column in the re-import files.
    id_column: str = "Id"
    #: Records per pulled page.
    page_size: int = Field(2000, ge=1)
    #: Encoding of the exports; ``utf-8-sig`` also reads plain UTF-8 (it only drops a byte-order mark).
    encoding: str = "utf-8-sig"
    delimiter: str = Field(",", min_length=1, max_length=1)
    #: Encoding of the re-import files.
    out_encoding: str = "utf-8"
    #: Written for an owned field whose new value is empty (None). Salesforce Data Loader reads ``#N/A``
    #: as "set to null"; an empty cell usually means "leave unchanged".
    null_value: str = ""

    @field_validator("files", mode="after")
    @classmethod
    def _merge_files(cls, value: dict[ObjectType, str]) -> dict[ObjectType, str]:
        merged = {**DEFAULT_FILES, **value}
        for object_type, name in merged.items():
            if not name or not name.strip():
                raise ValueError(f"{object_type}: empty file name")
        return merged

    @field_validator("columns", mode="after")
    @classmethod
    def _merge_columns(
        cls, value: dict[ObjectType, dict[str, str | None]]
    ) -> dict[ObjectType, dict[str, str]]:
        merged: dict[ObjectType, dict[str, str]] = {}
        for object_type in OBJECT_TYPES:
            user = value.get(object_type, {})
            columns = {column: name for column, name in user.items() if name}
            for column, name in DEFAULT_COLUMNS[object_type].items():
                if column not in user:
                    columns[column] = name
            for column, name in columns.items():
                if not column or not name.strip():
                    raise ValueError(f"{object_type}: empty column or canonical name in {column!r}: {name!r}")
            if "id" not in columns.values():
                raise ValueError(f"{object_type}: no column maps to id")
            merged[object_type] = columns
        return merged  # type: ignore[return-value]

    @field_validator("field_names", mode="after")
    @classmethod
    def _merge_field_names(cls, value: dict[str, str]) -> dict[str, str]:
        unknown = sorted(set(value) - set(OWNED_FIELDS))
        if unknown:
            raise ValueError(f"unknown owned fields {unknown}; expected some of {list(OWNED_FIELDS)}")
        merged = {**DEFAULT_FIELD_NAMES, **value}
        names = [merged[name] for name in OWNED_FIELDS]
        if any(not name.strip() for name in names) or len(set(names)) != len(names):
            raise ValueError("owned field column names must be non-empty and distinct")
        return merged

    def file_for(self, object_type: ObjectType) -> Path:
        return self.path / self.files[object_type]

    def columns_for(self, object_type: ObjectType) -> dict[str, str]:
        """Effective CSV column → canonical name mapping (user entries first)."""
        return self.columns[object_type]  # type: ignore[return-value]
