"""Property install and checks: the owned properties, their group, and the mapped properties.

Reads use ``GET /crm/v3/properties/{object}`` (one request returns every property of the object; it is
not the SDK's paging ``get_all`` helper of the objects API). Creation is idempotent: a property or group
that exists (or appears between the check and the create: 409) is left alone, and a tier enumeration
that lacks some of the ICP's tiers gets the missing options appended.
"""

from __future__ import annotations

from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from connectors.base import ObjectType
from connectors.errors import MissingFieldsError, PermanentError
from connectors.hubspot.client import HubSpotClient
from connectors.hubspot.mapping import build_mapping, hubspot_object
from connectors.hubspot.options import HubSpotOptions

TASKS = "tasks"
IDEAL_CUSTOMER_PROFILE = "hs_ideal_customer_profile"


def _label(name: str) -> str:
    return name.replace("_", " ").strip().capitalize()


def tier_options(tiers: Sequence[str]) -> list[dict[str, Any]]:
    return [{"label": _label(t), "value": t, "displayOrder": i, "hidden": False} for i, t in enumerate(tiers)]


def owned_definitions(options: HubSpotOptions) -> dict[str, dict[str, Any]]:
    """Canonical owned field -> the HubSpot property definition to create."""
    names = options.owned_map()
    group = options.property_group

    def prop(
        field: str, label: str, type_: str, field_type: str, description: str, **extra: Any
    ) -> dict[str, Any]:
        return {
            "name": names[field],
            "label": label,
            "type": type_,
            "fieldType": field_type,
            "groupName": group,
            "description": description,
            **extra,
        }

    return {
        "fit_score": prop(
            "fit_score",
            "ICP fit score",
            "number",
            "number",
            "How well the record fits the Ideal Customer Profile, 0-100.",
        ),
        "fit_tier": prop(
            "fit_tier",
            "ICP fit tier",
            "enumeration",
            "select",
            "The ICP tier of the record.",
            options=tier_options(options.tiers),
        ),
        "fit_reasons": prop(
            "fit_reasons",
            "ICP fit reasons",
            "string",
            "textarea",
            "Why the record got its score, one criterion a line.",
        ),
        "icp_version": prop(
            "icp_version", "ICP version", "string", "text", "The ICP version the record was scored with."
        ),
        "scored_at": prop("scored_at", "ICP scored at", "datetime", "date", "When the record was scored."),
        "reengage_flag": prop(
            "reengage_flag",
            "ICP re-engage",
            "bool",
            "booleancheckbox",
            "A dismissed or stale record now fits the ICP: worth another look.",
            options=[
                {"label": "Yes", "value": "true", "displayOrder": 0, "hidden": False},
                {"label": "No", "value": "false", "displayOrder": 1, "hidden": False},
            ],
        ),
        "reengage_reason": prop(
            "reengage_reason",
            "ICP re-engage reason",
            "string",
            "textarea",
            "Why the record was flagged for re-engagement.",
        ),
    }


def task_key_definition(options: HubSpotOptions) -> dict[str, Any]:
    return {
        "name": options.task_key_property,
        "label": "ICP follow-up key",
        "type": "string",
        "fieldType": "text",
        "groupName": options.property_group,
        "description": "Identifies the re-engagement flag this task follows up (no duplicates).",
    }


class PropertyManager:
    """Reads, checks and installs properties; caches each object's property list for the run."""

    def __init__(self, client: HubSpotClient, options: HubSpotOptions) -> None:
        self.client = client
        self.options = options
        self._cache: dict[str, dict[str, dict[str, Any]]] = {}

    def properties_of(self, hs_object: str, *, fresh: bool = False) -> dict[str, dict[str, Any]]:
        """Property name -> definition for one HubSpot object type."""
        if fresh or hs_object not in self._cache:
            api = self.client.api("properties.core")
            answer = self.client.call(
                "other", f"read {hs_object} properties", api.get_all_with_http_info, hs_object, archived=False
            )
            results = (answer.body or {}).get("results") or []
            self._cache[hs_object] = definitions = {p["name"]: p for p in results}
            return definitions
        return self._cache[hs_object]

    def property(self, hs_object: str, name: str) -> dict[str, Any] | None:
        return self.properties_of(hs_object).get(name)

    def _targets(self, object_types: Sequence[ObjectType]) -> list[tuple[str, dict[str, dict[str, Any]]]]:
        definitions = owned_definitions(self.options)
        targets = [(hubspot_object(t, self.options), definitions) for t in dict.fromkeys(object_types)]
        if self.options.follow_up_tasks:
            targets.append((TASKS, {"task_key": task_key_definition(self.options)}))
        return targets

    def check(self, object_types: Sequence[ObjectType]) -> list[str]:
        """Missing owned properties as ``companies.icp_fit_score``; a tier enumeration that lacks an ICP
        tier is listed as ``companies.icp_fit_tier:<tier>``."""
        missing: list[str] = []
        targets = self._targets(object_types)
        # One read per object, all at once (each admitted by the client's limiter).
        with ThreadPoolExecutor(max(1, len(targets)), thread_name_prefix="hubspot-properties") as pool:
            read = list(pool.map(lambda t: self.properties_of(t[0], fresh=True), targets))
        for (hs_object, definitions), existing in zip(targets, read, strict=True):
            for definition in definitions.values():
                name = definition["name"]
                current = existing.get(name)
                if current is None:
                    missing.append(f"{hs_object}.{name}")
                elif definition["type"] == "enumeration" and definition.get("options"):
                    have = {o.get("value") for o in current.get("options") or ()}
                    missing += [
                        f"{hs_object}.{name}:{o['value']}"
                        for o in definition["options"]
                        if o["value"] not in have
                    ]
        return missing

    def install(self, object_types: Sequence[ObjectType]) -> list[str]:
        """Create the group and every missing owned property; return what was created or extended."""
        created: list[str] = []
        for hs_object, definitions in self._targets(object_types):
            self._ensure_group(hs_object)
            existing = self.properties_of(hs_object, fresh=True)
            for definition in definitions.values():
                name = definition["name"]
                current = existing.get(name)
                if current is None:
                    if self._create_property(hs_object, definition):
                        created.append(f"{hs_object}.{name}")
                elif definition["type"] == "enumeration" and definition.get("options"):
                    added = self._extend_options(hs_object, current, definition["options"])
                    created += [f"{hs_object}.{name}:{value}" for value in added]
            self._cache.pop(hs_object, None)
        return created

    def _ensure_group(self, hs_object: str) -> None:
        api = self.client.api("properties.groups")
        group = self.options.property_group
        try:
            self.client.call(
                "other", f"read {hs_object} property group", api.get_by_name_with_http_info, hs_object, group
            )
            return
        except PermanentError as exc:
            if exc.status != 404:
                raise
        body = {"name": group, "label": self.options.property_group_label, "displayOrder": -1}
        try:
            self.client.call(
                "write", f"create {hs_object} property group", api.create_with_http_info, hs_object, body
            )
        except PermanentError as exc:
            if exc.status != 409:  # created meanwhile: fine
                raise

    def _create_property(self, hs_object: str, definition: dict[str, Any]) -> bool:
        api = self.client.api("properties.core")
        try:
            self.client.call(
                "write",
                f"create {hs_object}.{definition['name']}",
                api.create_with_http_info,
                hs_object,
                definition,
            )
        except PermanentError as exc:
            if exc.status == 409:
                return False
            raise
        return True

    def _extend_options(
        self, hs_object: str, current: dict[str, Any], wanted: list[dict[str, Any]]
    ) -> list[str]:
        options = [dict(o) for o in current.get("options") or ()]
        have = {o.get("value") for o in options}
        added = [o for o in wanted if o["value"] not in have]
        if not added:
            return []
        start = max((int(o.get("displayOrder", 0)) for o in options), default=-1) + 1
        options += [{**o, "displayOrder": start + i} for i, o in enumerate(added)]
        api = self.client.api("properties.core")
        self.client.call(
            "write",
            f"update {hs_object}.{current['name']} options",
            api.update_with_http_info,
            hs_object,
            current["name"],
            {"options": options},
        )
        return [o["value"] for o in added]

    def check_mapping(self, object_types: Sequence[ObjectType]) -> None:
        """Raise ``MissingFieldsError`` listing every mapped property the portal lacks (all at once)."""
        missing: list[str] = []
        for object_type in dict.fromkeys(object_types):
            mapping = build_mapping(object_type, self.options)
            existing = self.properties_of(mapping.hubspot_object)
            missing += [f"{mapping.hubspot_object}.{p}" for p in mapping.properties() if p not in existing]
            if (
                object_type == "account"
                and self.options.mirror_ideal_customer_profile
                and IDEAL_CUSTOMER_PROFILE not in existing
            ):
                missing.append(f"companies.{IDEAL_CUSTOMER_PROFILE}")
        if missing:
            raise MissingFieldsError(
                f"HubSpot properties missing from the portal: {', '.join(missing)} "
                "(fix the connection's property mapping or create them)",
                missing=missing,
            )
