"""Settings of the web console only (the common ones are in ``worker.settings.Settings``)."""

from __future__ import annotations

from functools import lru_cache
from typing import Literal

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class ConsoleSettings(BaseSettings):
    model_config = SettingsConfigDict(env_file=".env", env_file_encoding="utf-8", extra="ignore")

    #: ``auto``: cookies are ``Secure`` except on plain HTTP to a loopback address (``icp-worker console``
    #: on 127.0.0.1); ``always``: always ``Secure`` (behind TLS); ``never``: never (plain HTTP).
    console_cookie_secure: Literal["auto", "always", "never"] = "auto"
    #: A sign-in lasts this many minutes, then the user signs in again.
    console_session_minutes: int = Field(default=480, ge=1)
    #: Failed sign-ins allowed per user name, and per client address (times 4), within the window below ...
    console_login_attempts: int = Field(default=5, ge=1)
    #: ... of this many seconds; past them, sign-in is refused until the window has passed.
    console_login_window_seconds: int = Field(default=900, ge=1)
    #: May an approver approve a revision they published themselves? Off by default (four eyes).
    console_self_approval: bool = False


@lru_cache(maxsize=1)
def get_console_settings() -> ConsoleSettings:
    return ConsoleSettings()
