"""The one place where configuration is read (environment variables and an optional `.env` file)."""
from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

PROJECT_ROOT = Path(__file__).resolve().parent.parent


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_file=".env", env_file_encoding="utf-8", extra="ignore")

    database_url: str = Field(
        default=f"sqlite:///{PROJECT_ROOT / 'data' / 'mirai.db'}",
        description="SQLAlchemy URL; SQLite by default, postgresql+psycopg://... in production.",
    )
    host: str = "127.0.0.1"
    port: int = 8000
    default_language: str = "en"
    timezone: str = "Asia/Tokyo"
    log_level: str = "INFO"


@lru_cache
def get_settings() -> Settings:
    return Settings()
