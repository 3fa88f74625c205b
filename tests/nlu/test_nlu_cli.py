"""`mirai nlu parse` and `mirai nlu eval` on the embedded backend."""
from __future__ import annotations

import io
import json

from bot.cli import main


def test_parse_prints_one_json_object(capsys):
    assert main(["nlu", "parse", "給料が払われない", "--backend", "embedded"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["intent"] == "ask_article" and out["language"] == "ja" and out["danger"] is False
    assert 0 < out["confidence"] <= 1


def test_parse_without_text_reads_one_message_per_line(capsys, monkeypatch):
    monkeypatch.setattr("sys.stdin", io.StringIO("hola\nquiero morir\nthank you\n"))
    assert main(["nlu", "parse", "--backend", "embedded"]) == 0
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [(x["intent"], x["language"], x["danger"]) for x in lines] == [
        ("greet", "es", False), ("danger", "es", True), ("thanks", "en", False)]


def test_eval_prints_a_table_per_language(capsys, tmp_path):
    sample = tmp_path / "sample.yml"
    sample.write_text('version: "3.1"\nnlu:\n- intent: stop\n  metadata:\n    lang: en\n  examples: |\n'
                      '    - stop sending me messages\n- intent: thanks\n  metadata:\n    lang: vi\n'
                      '  examples: |\n    - cảm ơn bạn nhiều lắm\n', encoding="utf-8")
    assert main(["nlu", "eval", str(sample), "--backend", "embedded"]) == 0
    out = capsys.readouterr().out
    assert "intent" in out and "lang in conv." in out
    rows = {line.split()[0]: line.split() for line in out.splitlines() if line[:3] in ("en ", "vi ", "all")}
    assert rows["en"][2] == "100.0%" and rows["vi"][3] == "100.0%"
