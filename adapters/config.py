"""Server settings, read from the environment; secrets never come from anywhere else."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass

from adapters.graph import DEFAULT_API_URL

__all__ = ["DEFAULT_DB", "LOG_FORMAT", "REQUIRED_SECRETS", "ServerConfig"]

DEFAULT_DB = "whatsapp-tickets.db"
# Without these the server cannot verify Meta's calls or send replies.
REQUIRED_SECRETS = ("WHATSAPP_APP_SECRET", "WHATSAPP_VERIFY_TOKEN", "WHATSAPP_ACCESS_TOKEN")
# Verify token of development mode when none is set, so `curl` examples work as written.
DEV_VERIFY_TOKEN = "dev-verify-token"
# The process id tells the workers of `serve --workers N` apart.
LOG_FORMAT = "%(asctime)s %(process)d %(levelname)s %(name)s: %(message)s"
# Meta's webhook bodies reach about 3 MB; anything larger is refused with 413.
MAX_BODY_BYTES = 4 * 1024 * 1024


@dataclass(frozen=True)
class ServerConfig:
    db_path: str
    flows: str
    dev: bool = False
    app_secret: str | None = None
    verify_token: str | None = None
    access_token: str | None = None
    phone_number_id: str = ""
    api_url: str = DEFAULT_API_URL
    admin_token: str | None = None
    payments_secret: str | None = None
    max_body_bytes: int = MAX_BODY_BYTES
    sweep_seconds: float = 15.0

    @classmethod
    def from_environment(
        cls,
        environment: Mapping[str, str] | None = None,
        *,
        db_path: str | None = None,
        flows: str,
        dev: bool = False,
    ) -> ServerConfig:
        """Read settings from `environment` (default `os.environ`); options given here win."""
        env = os.environ if environment is None else environment

        def value(name: str) -> str | None:
            text = env.get(name, "").strip()
            return text or None

        return cls(
            db_path=db_path or value("WHATSAPP_TICKETS_DB") or DEFAULT_DB,
            flows=flows,
            dev=dev,
            app_secret=value("WHATSAPP_APP_SECRET"),
            verify_token=value("WHATSAPP_VERIFY_TOKEN") or (DEV_VERIFY_TOKEN if dev else None),
            access_token=value("WHATSAPP_ACCESS_TOKEN"),
            phone_number_id=value("WHATSAPP_PHONE_NUMBER_ID") or "",
            api_url=value("WHATSAPP_API_URL") or DEFAULT_API_URL,
            admin_token=value("ADMIN_TOKEN"),
            payments_secret=value("PAYMENTS_WEBHOOK_SECRET"),
        )

    def missing_secrets(self) -> list[str]:
        """Names of the required variables that are not set (none are required in dev mode)."""
        if self.dev:
            return []
        present = {
            "WHATSAPP_APP_SECRET": self.app_secret,
            "WHATSAPP_VERIFY_TOKEN": self.verify_token,
            "WHATSAPP_ACCESS_TOKEN": self.access_token,
        }
        return [name for name in REQUIRED_SECRETS if not present[name]]
