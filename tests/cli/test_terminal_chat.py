"""`mirai chat`: anyone can try the bot in a terminal, by hand or with piped lines, in any of the 9 languages."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from bot.flowbook import LANGUAGES

ROOT = Path(__file__).resolve().parents[2]


def mirai(args: list[str], database_url: str, **kwargs) -> subprocess.Popen:
    env = {**os.environ, "DATABASE_URL": database_url, "PYTHONPATH": str(ROOT)}
    return subprocess.Popen([sys.executable, "-m", "bot.cli", *args], cwd=ROOT, env=env, text=True,
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, **kwargs)


def chat_jsonl(lines: list[str], database_url: str, *args: str) -> list[dict]:
    proc = mirai(["chat", "--jsonl", *args], database_url)
    out, err = proc.communicate("\n".join(lines) + "\n", timeout=120)
    assert proc.returncode == 0, err
    assert "Traceback" not in err
    return [json.loads(line) for line in out.splitlines()]


def typed_sheet(book, lang: str) -> list[str]:
    """What a worker types, as a person would: option numbers, words of their language, an amount."""
    kw = lambda intent: book.keywords[intent][lang][0]  # noqa: E731
    return [
        "1",  # agree to the privacy notice
        "1",  # skip the employer code (option 1)
        kw("skip"),  # residence status: skipped by word
        "13",  # Tokyo
        "5",  # Q1: had to borrow money
        book.t("amount_example", lang),  # Q2
        "1, 3",  # Q3
        kw("yes"), kw("no"), "1", kw("unknown"), kw("yes"), "1", kw("no"),  # Q4..Q10
        kw("none"),  # Q11
        book.t("goodbye", lang),  # Q12, some words
        kw("no"),  # Q13
    ]


@pytest.mark.parametrize("lang", LANGUAGES)
def test_a_piped_session_completes_the_sheet(book, lang, tmp_path):
    messages = chat_jsonl(typed_sheet(book, lang), f"sqlite:///{tmp_path / 'm.db'}", "--lang", lang,
                          "--user", f"piped-{lang}")
    asked = [m["question"] for m in messages if m.get("question", "").startswith("Q")]
    assert asked == [f"Q{i}" for i in range(1, 14)], asked  # each asked once: nothing was misunderstood
    result = next(m for m in messages if m["kind"] == "result")
    assert result["level"] == "high"
    assert {"1.5", "3.1", "3.3", "Q2"} <= set(result["indicators"])
    assert all(m["language"] == lang for m in messages)
    q3 = next(m for m in messages if m.get("question") == "Q3")
    assert q3["kind"] == "multiselect" and q3["options"][-1]["id"] == "none"
    assert q3["options"][3] == {"id": "3.4", "label": book.question("Q3").items[3].text(lang)}


def test_japanese_shows_the_seeds_wording(book, tmp_path):
    messages = chat_jsonl(["1", "1", "スキップ", "スキップ"], f"sqlite:///{tmp_path / 'm.db'}", "--lang", "ja")
    q1 = next(m for m in messages if m.get("question") == "Q1")
    assert "あなたは働くために日本にくるまでの間、以下の事項に当てはまる経験がありましたか。" in q1["text"]
    assert "1. 自分の意思に反して無理やり日本に連れてこられた。" in q1["text"]


def test_without_a_language_the_bot_first_asks_for_one(tmp_path):
    messages = chat_jsonl(["4"], f"sqlite:///{tmp_path / 'm.db'}")
    assert messages[1]["question"] == "language" and messages[1]["options"][3]["id"] == "vi"
    assert messages[-1]["question"] == "consent" and messages[-1]["language"] == "vi"


def test_killing_the_process_after_q6_resumes_at_q7_with_earlier_answers_kept(book, database_url):
    lines = ["1", "1", "skip", "skip", "0", "0", "4", "yes", "no", "yes"]  # ... Q3 3.4 (critical), Q4..Q6
    proc = mirai(["chat", "--jsonl", "--lang", "en", "--user", "crash-test"], database_url)
    seen: list[dict] = []
    for line in lines:
        proc.stdin.write(line + "\n")
        proc.stdin.flush()
    while True:  # read until the bot asks Q7, then kill it without warning
        message = json.loads(proc.stdout.readline())
        seen.append(message)
        if message.get("question") == "Q7":
            break
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=10)

    rest = ["yes", "yes", "yes", "no", "0", "skip", "no"]  # Q7..Q13
    resumed = chat_jsonl(rest, database_url, "--user", "crash-test")
    assert resumed[0]["text"] == book.t("welcome_back", "en")
    assert resumed[1]["question"] == "Q7"
    result = next(m for m in resumed if m["kind"] == "result")
    assert result["level"] == "critical" and "3.4" in result["indicators"], "Q3's answer survived the kill"
    assert resumed[-1]["question"] == "counsellor_offer"


def test_migrate_creates_the_database_and_its_folder_on_a_fresh_checkout(tmp_path):
    url = f"sqlite:///{tmp_path / 'not-yet' / 'mirai.db'}"
    proc = mirai(["migrate"], url)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err
    assert (tmp_path / "not-yet" / "mirai.db").exists()
