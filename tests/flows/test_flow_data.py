"""The sheet and every sentence around it exist in all 9 languages; the Japanese follows the seed."""
from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest
import yaml

from bot.flowbook import LANGUAGES, FlowDataError, load_flowbook

ROOT = Path(__file__).resolve().parents[2]
SEED = ROOT.parent / "shared" / "seeds" / "jp-mirai-2023-activity-highlights.txt"


def test_the_sheet_has_the_13_questions_of_the_spec_with_every_item(book):
    assert [q.id for q in book.questions] == [f"Q{i}" for i in range(1, 14)]
    assert [i.id for i in book.question("Q1").items] == [f"1.{n}" for n in range(1, 8)]
    assert [i.id for i in book.question("Q3").items] == [f"3.{n}" for n in range(1, 17)]
    assert [i.id for i in book.question("Q11").items] == [f"11.{n}" for n in range(1, 4)]
    types = {q.id: q.type for q in book.questions}
    assert types["Q2"] == "amount" and types["Q12"] == "free_text"
    assert {types[q] for q in ("Q5", "Q7", "Q8")} == {"yes_no_unknown"}


def test_severities_of_the_spec(book):
    critical = {i.id for q in book.questions for i in q.items if i.severity == "critical"}
    assert critical == {"1.1", "1.3", "1.4", "3.4", "3.9", "3.10", "3.13"}


@pytest.mark.skipif(not SEED.exists(), reason="the seed documents are not beside the checkout")
def test_the_japanese_wording_is_the_seeds(book):
    seed = re.sub(r"\s+", "", SEED.read_text(encoding="utf-8"))
    for q in book.questions:
        assert re.sub(r"\s+", "", q.text("ja")) in seed, q.id
        for item in q.items:
            assert re.sub(r"\s+", "", item.text("ja")) in seed, item.id


def test_every_text_exists_in_all_9_languages(book):
    for q in book.questions:
        assert all(q.text(lang) for lang in LANGUAGES)
    for text_id, text in book.texts.items():
        assert set(text) == set(LANGUAGES), text_id
    for intent, words in book.keywords.items():
        assert all(words[lang] for lang in LANGUAGES), intent


def test_languages_do_not_fall_back_to_english(book):
    """A copy of the English is not a translation (numbers and names aside)."""
    for lang in set(LANGUAGES) - {"en"}:
        same = [q.id for q in book.questions if q.text(lang) == q.text("en")]
        assert not same, (lang, same)


def copy_data(tmp_path: Path) -> tuple[Path, Path]:
    flows, content = tmp_path / "flows", tmp_path / "content"
    shutil.copytree(ROOT / "bot" / "flows", flows)
    shutil.copytree(ROOT / "content", content)
    return flows, content


def test_a_missing_translation_stops_the_bot_from_loading(tmp_path):
    flows, content = copy_data(tmp_path)
    sheet = yaml.safe_load((flows / "self_diagnosis.yaml").read_text())
    del sheet["questions"][2]["items"][3]["text"]["vi"]
    (flows / "self_diagnosis.yaml").write_text(yaml.safe_dump(sheet, allow_unicode=True))
    with pytest.raises(FlowDataError, match="vi"):
        load_flowbook(flows, content)


def test_an_item_without_a_severity_stops_the_bot_from_loading(tmp_path):
    flows, content = copy_data(tmp_path)
    sheet = yaml.safe_load((flows / "self_diagnosis.yaml").read_text())
    del sheet["questions"][0]["items"][0]["severity"]
    (flows / "self_diagnosis.yaml").write_text(yaml.safe_dump(sheet, allow_unicode=True))
    with pytest.raises(FlowDataError, match="severity"):
        load_flowbook(flows, content)


def test_a_broken_placeholder_stops_the_bot_from_loading(tmp_path):
    flows, content = copy_data(tmp_path)
    ui = yaml.safe_load((flows / "ui.yaml").read_text())
    ui["texts"]["progress"]["tl"] = "Tanong {num} sa 13"
    (flows / "ui.yaml").write_text(yaml.safe_dump(ui, allow_unicode=True))
    with pytest.raises(FlowDataError, match="placeholders"):
        load_flowbook(flows, content)


def test_yes_and_no_words_never_overlap_within_a_language(book):
    for lang in LANGUAGES:
        for a, b in (("yes", "no"), ("agree", "decline")):
            overlap = {w.casefold() for w in book.keywords[a][lang]} & {w.casefold() for w in book.keywords[b][lang]}
            assert not overlap, (lang, a, b, overlap)


def test_command_words_are_not_also_answers(book):
    commands = ("back", "skip", "stop", "menu", "help", "talk_to_person", "change_language")
    answers = ("yes", "no", "unknown", "none", "agree", "decline")
    for lang in LANGUAGES:
        cmd = {w.casefold() for c in commands for w in book.keywords[c][lang]}
        ans = {w.casefold() for a in answers for w in book.keywords[a][lang]}
        assert not cmd & ans, (lang, cmd & ans)


def test_each_languages_example_amount_is_understood(book):
    from bot.amounts import AmountParser

    parser = AmountParser(book.currencies)
    for lang in LANGUAGES:
        assert parser.parse(book.t("amount_example", lang), lang), lang


def test_the_dated_currency_table_names_its_date(book):
    assert re.fullmatch(r"\d{4}-\d{2}-\d{2}", book.currencies.as_of)
