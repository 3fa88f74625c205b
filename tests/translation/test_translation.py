"""A counsellor who reads Japanese talks with a worker who writes Vietnamese, through machine translation.

Everything runs through deep-translator's real LibreTranslator against a fake LibreTranslate server on
127.0.0.1 (tests/fakes/libretranslate.py); nothing here is mocked.
"""
from __future__ import annotations

import json
import logging
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator

import pytest
from deep_translator.constants import DEEPL_LANGUAGE_TO_CODE, GOOGLE_LANGUAGES_TO_CODES, LIBRE_LANGUAGES_TO_CODES

from bot.flowbook import LANGUAGES
from bot.settings import Settings
from bot.translation import PROVIDER_CODES, Translation, Translator
from tests.fakes.libretranslate import FakeLibreTranslate

UNPAID = "Tôi chưa được trả lương ba tháng."
UNPAID_JA = "3か月間給料が支払われていません。"
PASSPORT = "Công ty giữ hộ chiếu của tôi."
PASSPORT_JA = "会社にパスポートを取り上げられています。"
REPLY_JA = "ご相談ありがとうございます。明日お電話してもよろしいですか。"
REPLY_VI = "Cảm ơn bạn đã liên hệ. Ngày mai tôi gọi điện cho bạn được không?"


@pytest.fixture
def libre() -> Iterator[FakeLibreTranslate]:
    with FakeLibreTranslate() as server:
        yield server


def translator_for(server: FakeLibreTranslate, **settings: object) -> Translator:
    values: dict[str, object] = dict(translator="libre", libretranslate_url=server.base_url,
                                     translator_timeout_seconds=3.0, translator_cooldown_seconds=0)
    values.update(settings)
    return Translator.from_settings(Settings(**values))


# ---- the conversation ------------------------------------------------------------------------------


def test_the_workers_vietnamese_message_is_shown_to_the_counsellor_in_japanese(libre):
    translator = translator_for(libre)

    shown = translator.translate(UNPAID, "vi", "ja")

    assert shown == Translation(text=UNPAID_JA, source="vi", target="ja", translated=True, provider="libre")
    [request] = libre.translate_requests
    assert libre.fields(request) == {"q": UNPAID, "source": "vi", "target": "ja", "format": "text"}
    assert "api_key" not in libre.fields(request)  # a self-hosted server without keys gets none


def test_the_counsellors_japanese_reply_reaches_the_worker_in_vietnamese(libre):
    translator = translator_for(libre)

    sent = translator.translate(REPLY_JA, "ja", "vi")

    assert (sent.text, sent.translated, sent.source, sent.target) == (REPLY_VI, True, "ja", "vi")


def test_a_message_in_a_language_nobody_set_yet_is_detected_by_the_server(libre):
    translator = translator_for(libre)

    shown = translator.translate(PASSPORT, None, "ja")

    assert (shown.text, shown.translated, shown.source) == (PASSPORT_JA, True, "auto")
    assert libre.fields(libre.translate_requests[0])["source"] == "auto"


def test_a_sentence_outside_the_phrase_book_still_travels_translated(libre):
    shown = translator_for(libre).translate("Xin chào", "vi", "en")
    assert (shown.text, shown.translated) == ("[en] Xin chào", True)


def test_the_same_message_read_twice_is_translated_once(libre):
    translator = translator_for(libre)

    first = translator.translate(UNPAID, "vi", "ja")
    again = translator.translate(UNPAID, "vi", "ja")

    assert first == again and again.translated
    assert len(libre.translate_requests) == 1
    translator.translate(UNPAID, "vi", "en")  # another language is another translation
    assert len(libre.translate_requests) == 2


def test_when_the_translation_server_is_down_the_counsellor_reads_the_original(libre, caplog):
    translator = translator_for(libre)
    libre.down = True

    with caplog.at_level(logging.WARNING, logger="mirai.translation"):
        shown = translator.translate(UNPAID, "vi", "ja")

    assert shown == Translation(text=UNPAID, source="vi", target="ja", translated=False, provider="libre")
    assert len(libre.translate_requests) == 1
    assert "ServerException" in caplog.text
    assert UNPAID not in caplog.text  # a worker's words stay out of the logs

    libre.down = False  # a failure is not remembered: once the server is back, the message is translated
    assert translator.translate(UNPAID, "vi", "ja").text == UNPAID_JA
    assert len(libre.translate_requests) == 2


def test_after_a_failure_the_provider_is_rested_so_a_long_transcript_does_not_wait_on_it(libre):
    translator = translator_for(libre, translator_cooldown_seconds=60)
    libre.down = True
    assert translator.translate(UNPAID, "vi", "ja").translated is False
    libre.down = False
    assert translator.translate(REPLY_VI, "vi", "ja").translated is False, "not asked again during the rest"
    assert len(libre.translate_requests) == 1


def test_an_answer_that_makes_no_sense_is_not_shown(libre):
    translator = translator_for(libre)
    libre.fail_next(200, body={"unexpected": "shape"})
    libre.fail_next(200, body={"translatedText": ""})

    assert translator.translate(UNPAID, "vi", "ja").translated is False
    assert translator.translate(UNPAID, "vi", "ja").translated is False
    assert translator.translate(UNPAID, "vi", "ja").text == UNPAID_JA


def test_a_slow_translation_server_does_not_keep_the_counsellor_waiting(libre):
    translator = translator_for(libre, translator_timeout_seconds=0.5)
    libre.delay_seconds = 5

    started = time.monotonic()
    shown = translator.translate(UNPAID, "vi", "ja")
    waited = time.monotonic() - started

    assert (shown.text, shown.translated) == (UNPAID, False)
    assert 0.4 <= waited < 1.5
    assert libre.wait_for(lambda: len(libre.translate_requests) == 1)

    libre.delay_seconds = 0  # the timeout was not cached either
    assert translator.translate(UNPAID, "vi", "ja").translated is True


def test_with_translation_switched_off_nothing_is_sent_anywhere(libre):
    translator = Translator.from_settings(Settings(translator="none", libretranslate_url=libre.base_url))

    shown = translator.translate(UNPAID, "vi", "ja")

    assert shown == Translation(text=UNPAID, source="vi", target="ja", translated=False, provider="none")
    assert libre.requests == []


def test_text_already_in_the_readers_language_is_not_sent(libre):
    translator = translator_for(libre)

    shown = translator.translate(REPLY_JA, "ja", "ja")

    assert (shown.text, shown.translated) == (REPLY_JA, False)
    assert libre.requests == []


def test_empty_text_and_unknown_languages_are_not_sent(libre):
    translator = translator_for(libre)

    assert translator.translate("", "vi", "ja").translated is False
    assert translator.translate("   ", "vi", "ja").translated is False
    assert translator.translate(UNPAID, "vi", "xx").translated is False
    assert translator.translate(UNPAID, "klingon", "ja").translated is False
    assert libre.requests == []


def test_burmese_which_the_provider_does_not_translate_is_shown_as_written(libre):
    translator = translator_for(libre)
    burmese = "ကျွန်တော် လစာ မရသေးပါ။"

    shown = translator.translate(burmese, "my", "ja")

    assert (shown.text, shown.translated) == (burmese, False)
    assert not translator.supports("my") and translator.supports("vi")
    assert libre.requests == []


def test_a_server_that_needs_an_api_key_gets_ours():
    with FakeLibreTranslate(api_key="mirai-key") as libre:
        shown = translator_for(libre, libretranslate_api_key="mirai-key").translate(UNPAID, "vi", "ja")
        assert (shown.text, shown.translated) == (UNPAID_JA, True)
        assert libre.fields(libre.translate_requests[0])["api_key"] == "mirai-key"

        refused = translator_for(libre, libretranslate_api_key="wrong").translate(UNPAID, "vi", "ja")
        assert (refused.text, refused.translated) == (UNPAID, False)


def test_many_counsellors_at_once(libre):
    translator = translator_for(libre)
    results: list[Translation] = []

    def read(text: str) -> None:
        results.append(translator.translate(text, "vi", "ja"))

    threads = [threading.Thread(target=read, args=(text,)) for text in [UNPAID, PASSPORT] * 10]
    for t in threads:
        t.start()
    for t in threads:
        t.join(10)

    assert sorted({r.text for r in results}) == sorted({UNPAID_JA, PASSPORT_JA})
    assert all(r.translated for r in results) and len(results) == 20


# ---- configuration -----------------------------------------------------------------------------------


@pytest.mark.parametrize("settings", [
    dict(translator="deepl"),  # no key
    dict(translator="microsoft"),  # no key
    dict(translator="libre"),  # neither a server nor a key
    dict(translator="babelfish"),
])
def test_a_provider_that_cannot_work_is_switched_off_at_start(settings):
    translator = Translator.from_settings(Settings(**settings))
    assert translator.provider == "none" and not translator.enabled
    assert translator.translate(UNPAID, "vi", "ja").translated is False


def test_our_language_codes_are_the_ones_deep_translator_knows():
    tables = {"google": GOOGLE_LANGUAGES_TO_CODES, "libre": LIBRE_LANGUAGES_TO_CODES,
              "deepl": DEEPL_LANGUAGE_TO_CODE}
    for provider, table in tables.items():
        assert set(PROVIDER_CODES[provider]) <= set(LANGUAGES)
        assert set(PROVIDER_CODES[provider].values()) <= set(table.values()), provider
    assert PROVIDER_CODES["google"]["zh"] == "zh-CN" and PROVIDER_CODES["microsoft"]["tl"] == "fil"
    assert set(PROVIDER_CODES["google"]) == set(PROVIDER_CODES["microsoft"]) == set(LANGUAGES)


# ---- the fake answers as LibreTranslate does ---------------------------------------------------------


def _call(url: str, data: bytes | None = None, content_type: str | None = None) -> tuple[int, object]:
    request = urllib.request.Request(url, data=data, headers={"Content-Type": content_type} if content_type else {})
    try:
        with urllib.request.urlopen(request, timeout=5) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


def test_the_fake_speaks_libretranslates_api(libre):
    status, languages = _call(libre.base_url + "/languages")
    assert status == 200 and {"code": "ja", "name": "Japanese",
                              "targets": ["en", "es", "id", "pt", "tl", "vi", "zh"]} in languages

    body = json.dumps({"q": REPLY_JA, "source": "ja", "target": "vi", "format": "text"}).encode()
    assert _call(libre.base_url + "/translate", body, "application/json") == (200, {"translatedText": REPLY_VI})

    form = urllib.parse.urlencode({"q": UNPAID, "source": "auto", "target": "ja"}).encode()
    assert _call(libre.base_url + "/translate", form, "application/x-www-form-urlencoded") == (
        200, {"translatedText": UNPAID_JA, "detectedLanguage": {"confidence": 90.0, "language": "vi"}})

    batch = json.dumps({"q": [UNPAID, "hello"], "source": "vi", "target": "ja"}).encode()
    assert _call(libre.base_url + "/translate", batch, "application/json") == (
        200, {"translatedText": [UNPAID_JA, "[ja] hello"]})

    missing = json.dumps({"source": "vi", "target": "ja"}).encode()
    assert _call(libre.base_url + "/translate", missing, "application/json") == (
        400, {"error": "Invalid request: missing q parameter"})
    burmese = json.dumps({"q": "x", "source": "vi", "target": "my"}).encode()
    assert _call(libre.base_url + "/translate", burmese, "application/json") == (400, {"error": "my is not supported"})

    libre.down = True
    status, error = _call(libre.base_url + "/translate", body, "application/json")
    assert status == 500 and "error" in error
    assert len(libre.translate_requests) == 6 and len(libre.requests) == 7
