"""Hub configuration: one pydantic model per area, loaded from a TOML file; bad config names its key."""

from __future__ import annotations

import tomllib
from pathlib import Path
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from fusionhub.analytics.config import AnalyticsConfig
from fusionhub.dispatch.config import DispatchConfig
from fusionhub.media.config import MediaConfig
from fusionhub.media.intercom.config import IntercomConfig
from fusionhub.signaling.config import BusConfig


class ConfigError(Exception):
    """The configuration cannot be used; the message names the key and why."""


class HttpConfig(BaseModel):
    """Where the console listens and how it checks browsers."""

    model_config = ConfigDict(extra="forbid")

    host: str = Field("127.0.0.1", description="address to listen on")
    port: int = Field(8080, ge=0, le=65535, description="TCP port; 0 picks a free one")
    allowed_origins: list[str] = Field(
        default_factory=list,
        description="extra Origins allowed on /ws besides the hub's own (e.g. a reverse proxy's)",
    )


class AuthConfig(BaseModel):
    """Login tokens."""

    model_config = ConfigDict(extra="forbid")

    token_ttl_s: int = Field(12 * 3600, ge=60, le=30 * 86400, description="how long a login lasts")
    secret_file: str = Field(
        "secret.key", description="file under the data directory holding the token signing key"
    )


class HubConfig(BaseModel):
    """Everything one hub process needs."""

    model_config = ConfigDict(extra="forbid")

    data_dir: Path = Field(Path("var"), description="database file, models, evidence, clips")
    database_url: str | None = Field(
        None,
        description="SQLAlchemy async URL; default sqlite+aiosqlite under the data directory",
    )
    database_pool: int = Field(
        20, ge=1, le=500,
        description="database connections this process keeps open (PostgreSQL); more requests at once "
        "wait for one. Hub processes x this must stay under the server's max_connections",
    )
    timezone: str = Field("Asia/Shanghai", description="IANA time zone the console shows times in")
    default_lang: str = Field("zh-CN", pattern=r"^(zh-CN|en)$", description="console language")
    http: HttpConfig = Field(default_factory=HttpConfig)
    auth: AuthConfig = Field(default_factory=AuthConfig)
    bus: BusConfig = Field(default_factory=BusConfig)
    media: MediaConfig = Field(default_factory=MediaConfig)
    intercom: IntercomConfig = Field(default_factory=IntercomConfig, description="push-to-talk rooms")
    analytics: AnalyticsConfig = Field(default_factory=AnalyticsConfig)
    dispatch: DispatchConfig = Field(
        default_factory=DispatchConfig, description="working hours, category catalog file, deadline supervision"
    )

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ValueError(f"unknown time zone {value!r}") from exc
        return value

    def resolved_database_url(self) -> str:
        """The database URL, defaulting to a SQLite file in the data directory."""
        if self.database_url:
            return self.database_url
        return f"sqlite+aiosqlite:///{(self.data_dir / 'fusionhub.db').resolve()}"


def load_config(path: Path | None = None, **overrides: object) -> HubConfig:
    """Read a TOML config file (or defaults), apply top-level overrides, and validate."""
    raw: dict[str, object] = {}
    if path is not None:
        try:
            raw = tomllib.loads(path.read_text(encoding="utf-8"))
        except OSError as exc:
            raise ConfigError(f"cannot read config file {path}: {exc.strerror}") from exc
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"config file {path} is not valid TOML: {exc}") from exc
    raw.update({k: v for k, v in overrides.items() if v is not None})
    try:
        return HubConfig.model_validate(raw)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in err['loc']) or '(root)'}: {err['msg']}" for err in exc.errors()
        )
        raise ConfigError(f"invalid configuration: {problems}") from exc
