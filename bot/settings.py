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

    # Privacy. encryption_keys: comma-separated Fernet keys (`mirai keys new`); the first encrypts what workers
    # say, all of them decrypt (put a new key first, run `mirai keys rotate`, then drop the old one). Empty: a
    # development key is generated beside a SQLite database; PostgreSQL refuses to start without one.
    encryption_keys: str = ""
    # After this many days the free text of a conversation (messages, typed answers, raw webhook events, sent
    # payloads, counsellors' notes) is erased; levels, indicators and dates stay (`mirai privacy purge`).
    free_text_retention_days: int = 365

    # LINE Messaging API: the channel is off until both secrets are set.
    line_channel_secret: str = ""
    line_channel_access_token: str = ""
    line_api_base_url: str = "https://api.line.me"
    # Telegram Bot API: off until the token is set; the secret is checked on every webhook.
    telegram_bot_token: str = ""
    telegram_webhook_secret: str = ""
    telegram_api_base_url: str = "https://api.telegram.org/bot"
    # Facebook Messenger (Graph API Send API).
    messenger_app_secret: str = ""
    messenger_verify_token: str = ""
    messenger_page_access_token: str = ""
    messenger_api_base_url: str = "https://graph.facebook.com/v21.0"

    # The durable outbox: how sends are retried.
    outbox_retry_base_seconds: float = 1.0
    outbox_retry_max_seconds: float = 300.0
    outbox_max_attempts: int = 10
    # Counsellors: when they work (in TIMEZONE), and how long a login lasts.
    office_hours: str = "mon-fri 09:00-18:00"
    staff_token_hours: float = 10.0
    inbox_poll_seconds: float = 1.0  # how often the inbox's live stream looks for new messages
    # Employer reports: any figure resting on fewer respondents than this is suppressed (bot/reports.py),
    # and a report with fewer respondents in all says only "too few responses".
    report_min_respondents: int = Field(default=10, ge=2)
    report_quarters: int = Field(default=8, ge=1, le=40)  # the quarters an employer report covers, up to now
    # `mirai serve` steps stored webhook events and sends the outbox itself (false: `mirai dispatch` does it), in
    # two child processes (`mirai dispatch --role steps` / `--role sends`) that use the other CPUs, or with
    # pipeline_processes false in threads of its own process (one CPU in all: Python runs one thread at a time).
    run_workers_in_process: bool = True
    pipeline_processes: bool = True

    # Machine translation between counsellors (ja/en) and workers (bot/translation.py).
    # translator: google | libre | deepl | microsoft | none (off: texts are shown untranslated).
    # libretranslate_url: any LibreTranslate-compatible server, e.g. http://translate.internal:5000
    # (empty + a key = libretranslate.com). A call slower than the timeout is shown untranslated.
    translator: str = "none"
    libretranslate_url: str = ""
    libretranslate_api_key: str = ""
    deepl_api_key: str = ""
    microsoft_translator_key: str = ""
    microsoft_translator_region: str = ""
    translator_timeout_seconds: float = 5.0

    # Understanding free text (nlu/): embedded (offline, shipped trained) or rasa (POST {rasa_url}/model/parse).
    # With rasa, a server that is down, fails or is slower than the timeout is replaced by the embedded
    # classifier for that message (a warning is logged); danger is always checked by the embedded detector.
    nlu_backend: str = "embedded"
    rasa_url: str = ""
    nlu_timeout_seconds: float = 0.5
    # Check-in nudges and campaigns (bot/scheduler.py, bot/nudges.py, bot/campaigns.py). Unsolicited messages
    # wait out the quiet hours (local time in TIMEZONE; "" = none) and never go to who said stop.
    run_scheduler_in_process: bool = True  # `mirai serve` runs the scheduler too (one is active at a time)
    scheduler_interval_seconds: float = 60.0  # how often due nudges and campaigns are looked for
    quiet_hours: str = "21:00-08:00"
    reinvite_days: int = 90  # invite again to the self-diagnosis this long after the last one
    reminder_hours: str = "24,72"  # remind of an unfinished sheet this long after the last answer (at most two)
    followup_days: int = 7  # ask "did things get better?" this long after a counsellor resolved the case
    # Provider rate limits, messages (calls) a second: a token bucket per channel, and per chat on Telegram.
    telegram_rate_per_second: float = 30.0
    telegram_chat_rate_per_second: float = 1.0
    line_rate_per_second: float = 2000.0  # push and reply
    line_multicast_rate_per_second: float = 200.0  # multicast calls, each to up to 500 people
    messenger_rate_per_second: float = 250.0

    # After a failed call the provider is not asked again for this long (texts go out untranslated).
    translator_cooldown_seconds: float = 30.0


@lru_cache
def get_settings() -> Settings:
    return Settings()
