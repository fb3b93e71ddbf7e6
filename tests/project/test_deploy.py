"""The deploy files, checked without a container engine: the compose file and the Dockerfile are parsed, and
every command they (and the systemd units) run is run here with ``--help``, so a renamed command or option
fails this test instead of a deployment. Every setting the code reads is in ``.env.example``."""

from __future__ import annotations

import configparser
import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from worker.celery_app import RuntimeSettings
from worker.console.settings import ConsoleSettings
from worker.settings import Settings

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
BIN = Path(sys.executable).parent
#: Secret suffixes (worker.observability.SECRET_SUFFIXES) and words that must never be baked into an image.
SECRET_WORDS = re.compile(r"(PASSWORD|TOKEN|SECRET|_KEY\b|PRIVATE|SESSION)", re.IGNORECASE)


@pytest.fixture(scope="module")
def compose() -> dict:
    return yaml.safe_load((DEPLOY / "compose.yaml").read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def env_example() -> dict[str, str]:
    """NAME -> the comment above it, for active (NAME=) and optional (# NAME=) lines."""
    found: dict[str, str] = {}
    comment = ""
    for line in (ROOT / ".env.example").read_text(encoding="utf-8").splitlines():
        match = re.match(r"^#?\s*([A-Z][A-Z0-9_]*)=", line)
        if match:
            found[match.group(1)] = comment
        elif line.startswith("#"):
            comment = line.lstrip("# ").strip()
        else:
            comment = ""
    return found


def dockerfile_stages() -> list[list[tuple[str, str]]]:
    """The Dockerfile's instructions, continuation lines joined, grouped by stage."""
    text = (DEPLOY / "Dockerfile").read_text(encoding="utf-8")
    text = re.sub(r"\\\n", " ", text)
    stages: list[list[tuple[str, str]]] = []
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        op, _, rest = line.partition(" ")
        if op.upper() == "FROM":
            stages.append([])
        stages[-1].append((op.upper(), rest.strip()))
    return stages


def interpolate(value: str) -> str:
    """Compose's ${VAR:-default} / ${VAR:?error} / $$, as a deployment with nothing set would see them."""
    value = re.sub(r"\$\{[A-Za-z_][A-Za-z0-9_]*:-([^}]*)\}", r"\1", value)
    value = re.sub(r"\$\{[A-Za-z_][A-Za-z0-9_]*:\?[^}]*\}", "x", value)
    return value.replace("$$HOSTNAME", "celery-host").replace("$$", "$")


def command_env(tmp_path: Path) -> dict[str, str]:
    keep = {k: v for k, v in os.environ.items() if not k.startswith(("CELERY_", "DATABASE_", "ICP_WORKER_"))}
    return {**keep, "ICP_WORKER_HOME": str(tmp_path), "DATABASE_URL": f"sqlite:///{tmp_path / 'store.db'}"}


def assert_runs(argv: list[str], tmp_path: Path) -> str:
    """Run a command the deployment runs, with --help appended: click checks the command and every option
    given before printing the help, so a renamed command or option fails here."""
    program = Path(argv[0]).name
    assert program in ("icp-worker", "celery"), f"unexpected program {argv[0]}"
    done = subprocess.run([str(BIN / program), *argv[1:], "--help"], cwd=tmp_path, env=command_env(tmp_path),
                          capture_output=True, text=True, timeout=120)  # fmt: skip
    assert done.returncode == 0, f"{' '.join(argv)}: {done.stdout}\n{done.stderr}"
    return done.stdout


def app_services(compose: dict) -> dict[str, dict]:
    """Services running our image (the others use upstream images with their own commands)."""
    return {name: s for name, s in compose["services"].items() if s.get("image") == "icp-fit-worker:latest"}


# --------------------------------------------------------------------------------------------- compose


def test_compose_services_have_health_checks_and_wait_for_the_migration(compose):
    services = compose["services"]
    assert {"redis", "postgres", "migrate", "worker", "beat", "console", "flower"} <= set(services)
    for name in ("redis", "postgres"):
        assert services[name]["healthcheck"]["test"], f"{name} has no health check"
    assert services["migrate"]["command"] == ["db", "upgrade"]
    assert services["migrate"]["restart"] == "no"
    assert services["migrate"]["depends_on"]["postgres"]["condition"] == "service_healthy"
    for name in ("worker", "beat", "console"):
        deps = services[name]["depends_on"]
        assert deps["migrate"]["condition"] == "service_completed_successfully"
        assert deps["redis"]["condition"] == "service_healthy"
    assert services["worker"]["healthcheck"]["test"]
    assert services["flower"]["profiles"] == ["monitoring"]
    assert app_services(compose).keys() == {"migrate", "worker", "beat", "console"}


def test_compose_gives_every_app_service_the_store_broker_and_config(compose):
    for name, service in app_services(compose).items():
        env = service["environment"]
        assert env["DATABASE_URL"].startswith("postgresql://") and "@postgres:5432/" in env["DATABASE_URL"]
        assert env["CELERY_BROKER_URL"] == "redis://redis:6379/0", name
        assert env["ICP_WORKER_CONFIG"] == "/etc/icp-worker/icp-worker.yaml"
        assert any(v.endswith(":/etc/icp-worker:ro") for v in service["volumes"]), name
        assert service["env_file"][0]["path"] == "../.env"
    assert compose["services"]["worker"]["environment"]["METRICS_PORT"]


def test_every_command_the_compose_file_runs_exists(compose, tmp_path):
    for name, service in app_services(compose).items():
        assert_runs(["icp-worker", *(interpolate(str(a)) for a in service["command"])], tmp_path)
    health = compose["services"]["worker"]["healthcheck"]["test"]
    assert health[0] == "CMD-SHELL"
    assert_runs(shlex.split(interpolate(health[1])), tmp_path)


def test_every_variable_the_compose_file_reads_is_in_env_example(env_example):
    text = (DEPLOY / "compose.yaml").read_text(encoding="utf-8")
    text = text.replace("$$", "")
    used = set(re.findall(r"\$\{([A-Za-z_][A-Za-z0-9_]*)", text)) | set(
        re.findall(r"\$([A-Za-z_][A-Za-z0-9_]*)", text)
    )
    assert used, "the compose file reads no variable?"
    assert used <= set(env_example), f"missing from .env.example: {sorted(used - set(env_example))}"


def test_the_migration_the_deployment_runs_works(tmp_path):
    done = subprocess.run([str(BIN / "icp-worker"), "db", "upgrade"], cwd=tmp_path, env=command_env(tmp_path),
                          capture_output=True, text=True, timeout=120)  # fmt: skip
    assert done.returncode == 0 and "store is up to date" in done.stdout, done.stderr


# --------------------------------------------------------------------------------------------- Dockerfile


def test_dockerfile_is_multi_stage_on_python_311_slim_and_runs_as_a_non_root_user(tmp_path):
    stages = dockerfile_stages()
    assert len(stages) >= 2
    assert all(stage[0][1].split()[0] == "python:3.11-slim" for stage in stages)
    runtime = stages[-1]
    users = [arg for op, arg in runtime if op == "USER"]
    assert users and users[-1].split(":")[0] not in ("root", "0")
    assert any(op == "RUN" and "useradd" in arg for op, arg in runtime)
    assert any(op == "RUN" and "pip wheel" in arg for op, arg in stages[0]), "the builder builds the wheels"
    assert any(op == "RUN" and "--no-index" in arg for op, arg in runtime), "the runtime installs only those"
    entry = [yaml.safe_load(arg) for op, arg in runtime if op == "ENTRYPOINT"][-1]
    cmd = [yaml.safe_load(arg) for op, arg in runtime if op == "CMD"][-1]
    assert entry == ["icp-worker"]
    assert_runs([*entry, *cmd], tmp_path)


def test_dockerfile_bakes_in_no_secret():
    for stage in dockerfile_stages():
        for op, arg in stage:
            if op in ("ARG", "ENV"):
                names = re.findall(r"([A-Za-z_][A-Za-z0-9_]*)=", arg) or [arg.split()[0]]
                assert not any(SECRET_WORDS.search(n) for n in names), f"{op} {arg}"
            if op in ("COPY", "ADD"):
                sources = arg.split()[:-1]
                assert not any(".env" in s for s in sources), f"{op} {arg}"
                for src in sources:
                    if not src.startswith("--"):
                        assert (ROOT / src).exists(), f"COPY {src}: not in the repository"
    ignore = (DEPLOY / "Dockerfile.dockerignore").read_text(encoding="utf-8").splitlines()
    assert ignore[ignore.index("**")] == "**" and "**/.env" in ignore and "!.env" not in ignore


# --------------------------------------------------------------------------------------------- systemd


@pytest.mark.parametrize("unit", ["icp-worker.service", "icp-beat.service", "icp-console.service"])
def test_systemd_units_restart_read_an_environment_file_and_run_existing_commands(unit, tmp_path):
    parser = configparser.ConfigParser(strict=False, interpolation=None)
    parser.optionxform = str  # keys are case-sensitive
    parser.read(DEPLOY / "systemd" / unit)
    service = parser["Service"]
    assert service["Restart"] == "always"
    assert service["EnvironmentFile"].startswith("/etc/icp-worker/")
    assert service["User"] not in ("root", "0")
    argv = shlex.split(service["ExecStart"])
    assert argv[0] == "/opt/icp-worker/venv/bin/icp-worker"
    help_text = assert_runs(argv, tmp_path)
    assert argv[1] in ("worker", "beat", "console") and "Start" in help_text
    assert parser["Install"]["WantedBy"] == "multi-user.target"


# --------------------------------------------------------------------------------------------- .env.example


def test_env_example_lists_every_setting_with_a_comment(env_example):
    names = {n.upper() for n in Settings.model_fields} | {n.upper() for n in RuntimeSettings.model_fields}
    names |= {n.upper() for n in ConsoleSettings.model_fields}
    names |= {"PROMETHEUS_MULTIPROC_DIR", "ICP_WORKER_NO_PROGRESS", "POSTGRES_PASSWORD"}
    assert names <= set(env_example), f"missing: {sorted(names - set(env_example))}"
    secrets = {"SF_USERNAME", "SF_PASSWORD", "SF_SECURITY_TOKEN", "SF_CONSUMER_KEY", "SF_PRIVATE_KEY",
               "SF_PRIVATE_KEY_FILE", "SF_SESSION_ID", "HUBSPOT_ACCESS_TOKEN", "HUBSPOT_CLIENT_ID",
               "HUBSPOT_CLIENT_SECRET", "HUBSPOT_REFRESH_TOKEN"}  # fmt: skip
    for suffix in secrets:
        assert any(n.endswith("_" + suffix) for n in env_example), f"no example of {{PREFIX}}{suffix}"
    uncommented = [n for n, comment in env_example.items() if not comment]
    assert not uncommented, f"settings without a comment: {uncommented}"


def test_env_example_holds_no_real_secret():
    for line in (ROOT / ".env.example").read_text(encoding="utf-8").splitlines():
        name, sep, value = line.partition("=")
        if sep and not line.startswith("#") and SECRET_WORDS.search(name):
            assert value in ("", "change-me"), line


# --------------------------------------------------------------------------------------------- console


def test_the_console_service_publishes_on_loopback_only_and_checks_its_health(compose):
    console = compose["services"]["console"]
    assert console["command"][:1] == ["console"] and "--port" in console["command"]
    port = console["command"][console["command"].index("--port") + 1]
    assert [interpolate(p) for p in console["ports"]] == [f"127.0.0.1:8080:{port}"]
    health = console["healthcheck"]["test"]
    assert health[0] == "CMD" and f"127.0.0.1:{port}/login" in " ".join(health)
    runtime = dockerfile_stages()[-1]
    exposed = " ".join(arg for op, arg in runtime if op == "EXPOSE").split()
    assert port in exposed


def test_the_console_unit_listens_on_loopback(tmp_path):
    parser = configparser.ConfigParser(strict=False, interpolation=None)
    parser.optionxform = str
    parser.read(DEPLOY / "systemd" / "icp-console.service")
    argv = shlex.split(parser["Service"]["ExecStart"])
    assert argv[1] == "console" and argv[argv.index("--host") + 1] == "127.0.0.1"
