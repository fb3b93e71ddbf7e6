"""One settings class, read from the environment and an optional ``.env`` file.

Secrets are ``SecretStr``: they never appear in a repr, a log line or an error message.
CRM credentials are not settings of this class: each connection reads its own from the environment
under its ``env_prefix`` (see ``worker.config``).
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


def default_home() -> Path:
    return Path.home() / ".local" / "share" / "icp-worker"


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_file=".env", env_file_encoding="utf-8", extra="ignore")

    #: Where the embedded store and demo files live when nothing else is set.
    icp_worker_home: Path = Field(default_factory=default_home)
    #: SQLAlchemy URL of the store. Unset: SQLite in ``ICP_WORKER_HOME``.
    database_url: SecretStr | None = None
    #: Connections file (YAML). Unset: ``icp-worker.yaml`` in the working directory, if present.
    icp_worker_config: Path | None = None
    #: Celery broker. Unset: work runs in-process (the embedded default).
    celery_broker_url: SecretStr | None = None
    #: Redis for locks and the shared rate limiter. Unset: the broker URL when it is Redis.
    redis_url: SecretStr | None = None
    #: ``console`` (readable) or ``json`` (production).
    log_format: str = "console"
    log_level: str = "INFO"
    #: Port for the Prometheus metrics endpoint of a worker (0: off).
    metrics_port: int = 0
    #: A publish or rollback is held for approval when more than this share of a connection's scored
    #: records change tier (a connection's ``hold.share`` overrides it).
    icp_hold_share: float = Field(default=0.2, ge=0.0, le=1.0)
    #: ... or when it would write more than this many records of a connection (unset: no limit;
    #: a connection's ``hold.writes`` overrides it).
    icp_hold_writes: int | None = Field(default=None, ge=0)
    #: Who publishes, approves and rejects ICP versions (``--author``/``--by`` win). Unset: the OS user.
    icp_worker_user: str | None = None
    #: Seconds to wait for PostgreSQL, the broker or Redis to accept a connection before giving up.
    db_connect_timeout_seconds: float = Field(default=10.0, gt=0)
    #: Largest ICP or connections file read, in bytes (YAML beyond it is refused before parsing).
    yaml_max_bytes: int = Field(default=1_000_000, ge=1)

    @field_validator("log_format")
    @classmethod
    def _known_format(cls, v: str) -> str:
        if v not in ("console", "json"):
            raise ValueError("LOG_FORMAT must be 'console' or 'json'")
        return v

    def store_url(self) -> str:
        if self.database_url is not None and self.database_url.get_secret_value():
            url = self.database_url.get_secret_value()
            # Plain postgresql:// URLs get the psycopg 3 driver we install.
            if url.startswith("postgresql://") or url.startswith("postgres://"):
                url = "postgresql+psycopg://" + url.split("://", 1)[1]
            return url
        return f"sqlite:///{self.icp_worker_home / 'icp-worker.db'}"

    def broker_url(self) -> str | None:
        return self.celery_broker_url.get_secret_value() if self.celery_broker_url else None


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return Settings()
