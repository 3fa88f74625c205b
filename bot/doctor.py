"""`mirai doctor`: what is wrong with this installation, in plain words, for the person on call."""
from __future__ import annotations

from dataclasses import dataclass

import httpx

from bot.settings import Settings

TIMEOUT = 5.0


@dataclass(frozen=True)
class Finding:
    ok: bool
    area: str
    message: str

    def line(self) -> str:
        return f"{'ok ' if self.ok else 'BAD'}  {self.area}: {self.message}"


def examine(settings: Settings) -> list[Finding]:
    return [_encryption(settings), _privacy_notice(settings), *_database(settings), *_channels(settings),
            *_office(settings), _translator(settings), _nlu(settings)]


def _privacy_notice(settings: Settings) -> Finding:
    from bot.flowbook import default_flowbook
    from bot.privacy import broken_promises

    promises = default_flowbook().promises
    if broken := broken_promises(settings, promises):
        return Finding(False, "privacy notice", "; ".join(broken) + ": the service refuses to start until the "
                                                "settings keep what workers were told.")
    return Finding(True, "privacy notice", f"free text is erased after {settings.free_text_retention_days} days "
                                           f"(the notice promises {promises.free_text_retention_days} at most); "
                                           f"employers see groups of {settings.report_min_respondents} or more "
                                           f"(promised: {promises.report_min_respondents}).")


def _encryption(settings: Settings) -> Finding:
    from bot.store.crypto import EncryptionKeyError, key_file_for, parse_keys

    try:
        keys = parse_keys(settings.encryption_keys)
    except EncryptionKeyError as exc:
        return Finding(False, "encryption", f"{exc}.")
    if keys:
        older = f", {len(keys) - 1} older one(s) only decrypt (drop them after `mirai keys rotate`)" \
            if len(keys) > 1 else ""
        return Finding(True, "encryption", f"workers' messages are encrypted with the first key of ENCRYPTION_KEYS"
                                           f"{older}.")
    key_file = key_file_for(settings.database_url)
    if key_file is None:
        return Finding(False, "encryption", "ENCRYPTION_KEYS is not set, and the server refuses to start without "
                                            "it: workers' messages are stored encrypted and PostgreSQL needs the "
                                            "key from the environment. Run `mirai keys new`, keep the key in your "
                                            "secret store and set ENCRYPTION_KEYS to it.")
    return Finding(True, "encryption", f"ENCRYPTION_KEYS is not set: a development key in {key_file} is used (fine "
                                       "on a laptop; production sets ENCRYPTION_KEYS).")


def _database(settings: Settings) -> list[Finding]:
    from bot.cli import _safe_url
    from bot.store.db import Database, schema_is_current

    from bot.store.crypto import EncryptionKeyError, new_key

    where = _safe_url(settings.database_url)
    try:
        db = Database(settings.database_url, settings.encryption_keys)
    except EncryptionKeyError:  # said above; the schema check needs no key of its own
        db = Database(settings.database_url, new_key())
    try:
        current = schema_is_current(db)
    except Exception as exc:  # noqa: BLE001 (whatever it is, the operator needs to read it)
        reason = str(getattr(exc, "orig", exc)).strip().splitlines()[0] if str(exc) else type(exc).__name__
        return [Finding(False, "database", f"cannot reach the database at {where}: {reason}. Check DATABASE_URL "
                                           "and that the server is running.")]
    finally:
        db.engine.dispose()
    if not current:
        return [Finding(False, "database", f"{where} answers but its schema is not current: run `mirai migrate`.")]
    return [Finding(True, "database", f"{where} answers and its schema is current.")]


def _channels(settings: Settings) -> list[Finding]:
    found = []
    groups = {
        "LINE": {"LINE_CHANNEL_SECRET": settings.line_channel_secret,
                 "LINE_CHANNEL_ACCESS_TOKEN": settings.line_channel_access_token},
        "Telegram": {"TELEGRAM_BOT_TOKEN": settings.telegram_bot_token,
                     "TELEGRAM_WEBHOOK_SECRET": settings.telegram_webhook_secret},
        "Messenger": {"MESSENGER_APP_SECRET": settings.messenger_app_secret,
                      "MESSENGER_VERIFY_TOKEN": settings.messenger_verify_token,
                      "MESSENGER_PAGE_ACCESS_TOKEN": settings.messenger_page_access_token},
    }
    for name, values in groups.items():
        missing = [k for k, v in values.items() if not v]
        if len(missing) == len(values):
            found.append(Finding(True, name, "off (no credentials set); its webhook answers 404."))
        elif missing:
            found.append(Finding(False, name, f"half configured: {', '.join(missing)} is not set, so the channel is "
                                              "off and workers writing on it get no answer."))
        else:
            found.append(_registration(name, settings))
    return found


def _registration(name: str, settings: Settings) -> Finding:
    """Asks the provider whether our webhook is registered (a network call; a failure is reported, not fatal)."""
    try:
        if name == "Telegram":
            base = settings.telegram_api_base_url.rstrip("/")
            info = httpx.get(f"{base}{settings.telegram_bot_token}/getWebhookInfo", timeout=TIMEOUT).json()
            url = (info.get("result") or {}).get("url")
            if not info.get("ok"):
                return Finding(False, name, f"Telegram refused the bot token: {info.get('description', '?')}.")
            if not url:
                return Finding(False, name, "no webhook is registered: run `mirai channels setup telegram URL`.")
            return Finding(True, name, f"on; Telegram delivers to {url}.")
        if name == "LINE":
            response = httpx.get(f"{settings.line_api_base_url.rstrip('/')}/v2/bot/channel/webhook/endpoint",
                                 headers={"Authorization": f"Bearer {settings.line_channel_access_token}"},
                                 timeout=TIMEOUT)
            if response.status_code == 401:
                return Finding(False, name, "LINE refused LINE_CHANNEL_ACCESS_TOKEN (expired or wrong).")
            endpoint = response.json().get("endpoint") if response.status_code == 200 else None
            if response.status_code == 200 and not endpoint:
                return Finding(False, name, "no webhook URL is set in the LINE Developers console.")
            return Finding(True, name, f"on; LINE delivers to {endpoint or '(not reported)'}.")
        return Finding(True, name, "on (the webhook is registered in Meta's console; not checked from here).")
    except (httpx.HTTPError, ValueError) as exc:
        return Finding(False, name, f"credentials are set but the provider could not be asked ({type(exc).__name__}); "
                                    "check the network and the API base URL.")


def _office(settings: Settings) -> list[Finding]:
    from bot.office import OfficeHours, OfficeHoursError

    try:
        OfficeHours.parse(settings.office_hours, settings.timezone)
    except (OfficeHoursError, Exception) as exc:  # noqa: BLE001 (a bad time zone name raises its own error)
        return [Finding(False, "office hours", f"{exc}")]
    return [Finding(True, "office hours", f"{settings.office_hours} ({settings.timezone}).")]


def _translator(settings: Settings) -> Finding:
    from bot.translation import Translator

    translator = Translator.from_settings(settings)
    if settings.translator != "none" and not translator.enabled:
        return Finding(False, "translation", f"TRANSLATOR={settings.translator} is incomplete, so it is off: "
                                             "counsellors will read workers' messages untranslated.")
    if not translator.enabled:
        return Finding(True, "translation", "off (TRANSLATOR=none): counsellors read the original texts.")
    shown = translator.translate("こんにちは", "ja", "en")
    if not shown.translated:
        return Finding(False, "translation", f"{settings.translator} did not answer a test translation; messages "
                                             "will go out untranslated.")
    return Finding(True, "translation", f"{settings.translator} answers.")


def _nlu(settings: Settings) -> Finding:
    if settings.nlu_backend != "rasa":
        return Finding(True, "understanding", "the embedded classifier (no server needed).")
    try:
        response = httpx.get(f"{settings.rasa_url.rstrip('/')}/status", timeout=TIMEOUT)
        model = response.json().get("model_file") if response.status_code == 200 else None
    except (httpx.HTTPError, ValueError) as exc:
        return Finding(False, "understanding", f"Rasa at {settings.rasa_url} does not answer ({type(exc).__name__}); "
                                               "the embedded classifier answers meanwhile.")
    if not model:
        return Finding(False, "understanding", f"Rasa at {settings.rasa_url} has no model loaded.")
    return Finding(True, "understanding", f"Rasa at {settings.rasa_url} with {model}.")
