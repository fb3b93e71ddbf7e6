"""The README's examples are real: the ICP example validates, the connection examples are accepted by the
connectors' own option models, and the two set-up commands are where CI and new users look for them."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from ruamel.yaml import YAML

from connectors.registry import build_connector
from worker.config import parse_config
from worker.icp.spec import load_icp, parse_icp

ROOT = Path(__file__).resolve().parents[2]
README = (ROOT / "README.md").read_text(encoding="utf-8")
BLOCKS = re.findall(r"```(\w+)\n(.*?)```", README, flags=re.S)


def yaml_blocks() -> list[str]:
    return [body for lang, body in BLOCKS if lang == "yaml"]


def test_first_commands_install_and_run_the_demo_then_the_tests():
    bash = [body.strip() for lang, body in BLOCKS if lang == "bash"]
    assert bash[0].endswith("pip install -e . && icp-worker demo")
    assert "pip install -e '.[dev]'" in bash[1] and bash[1].endswith("python -m pytest")
    assert README.index(bash[0]) < README.index("## Contents")


def test_icp_example_is_the_bundled_v2_and_validates():
    example = next(b for b in yaml_blocks() if b.startswith("name: Mid-market software"))
    spec = parse_icp(example, "README.md")
    bundled = load_icp(ROOT / "worker" / "demo" / "icp_v2.yaml")
    assert spec.criteria == bundled.criteria and spec.disqualifiers == bundled.disqualifiers
    assert spec.tiers == bundled.tiers and spec.min_coverage == bundled.min_coverage


def test_connections_example_parses():
    example = next(b for b in yaml_blocks() if b.startswith("connections:"))
    config = parse_config(example, "README.md")
    assert [c.name for c in config.connections] == ["acme", "exports"]
    assert config.connections[0].schedule.timezone == "Europe/Berlin"


SECRETS = {
    "ACME_SF_CONSUMER_KEY": "3MVG9-key",
    "ACME_SF_USERNAME": "integration@acme.test",
    "ACME_SF_PRIVATE_KEY": "-----BEGIN PRIVATE KEY-----\nx\n-----END PRIVATE KEY-----",
    "GLOBEX_HUBSPOT_ACCESS_TOKEN": "pat-na1-0000",
}


@pytest.mark.parametrize("crm", ["salesforce", "hubspot"])
def test_crm_option_examples_are_accepted_by_the_connector(crm):
    block = next(b for b in yaml_blocks() if b.lstrip().startswith(f"crm: {crm}"))
    doc = YAML(typ="safe").load(block)
    connector = build_connector(crm, doc["options"], env_prefix=doc["env_prefix"], env=SECRETS)
    connector.close()


def test_registry_hands_a_shared_limiter_to_the_hubspot_client():
    class Budget:
        def acquire(self, kind: str) -> float:
            return 0.0

        def pause(self, seconds: float) -> None:
            pass

    shared = Budget()
    connector = build_connector(
        "hubspot", {"auth": "private_app"}, env_prefix="GLOBEX_", env=SECRETS, limiter=shared
    )
    assert connector.client.limiter is shared
    own = build_connector("hubspot", {"auth": "private_app"}, env_prefix="GLOBEX_", env=SECRETS)
    assert own.client.limiter is not shared, "without a shared budget the connector paces itself"
