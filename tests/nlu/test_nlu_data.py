"""The NLU data: nlu/nlu.yml is what the build makes of nlu/train/, and the held-out sets stay held out."""
from __future__ import annotations

import yaml

from nlu.data import INTENTS, LANGUAGES, NLU_DIR, NLU_YML, TEST_DIR, TRAIN_DIR, build_nlu_yml, read_examples
from nlu.text import key
from nlu.training import ordinary_messages


def test_committed_nlu_yml_is_what_the_build_produces():
    assert NLU_YML.read_text(encoding="utf-8") == build_nlu_yml(), "run: python -m nlu.build"


def test_nlu_yml_holds_every_training_example_with_its_language():
    assert sorted(map(repr, read_examples(NLU_YML))) == sorted(map(repr, read_examples(TRAIN_DIR)))


def test_every_language_has_examples_of_every_intent_in_training_and_test():
    for folder in (TRAIN_DIR, TEST_DIR):
        seen = {(e.lang, e.intent) for e in read_examples(folder)}
        assert seen == {(lang, intent) for lang in LANGUAGES for intent in INTENTS}, folder


def test_held_out_sentences_are_never_trained_on():
    """No held-out sentence of a language is among that language's training examples, and no held-out one at all
    among the everyday messages the danger model learns from."""
    test = {(e.lang, key(e.text)) for e in read_examples(TEST_DIR)}
    assert not {(e.lang, key(e.text)) for e in read_examples(TRAIN_DIR)} & test
    held_out = {k for _, k in test} | {key(line) for path in (TEST_DIR / "ordinary").glob("*.txt")
                                       for line in path.read_text(encoding="utf-8").splitlines() if line.strip()}
    assert not {key(t) for t in ordinary_messages()} & held_out


def test_domain_and_config_name_the_intents_and_a_char_ngram_diet_pipeline():
    domain = yaml.safe_load((NLU_DIR / "domain.yml").read_text(encoding="utf-8"))
    assert tuple(domain["intents"]) == INTENTS
    config = yaml.safe_load((NLU_DIR / "config.yml").read_text(encoding="utf-8"))
    names = [c["name"] for c in config["pipeline"]]
    assert names[0] == "WhitespaceTokenizer" and names[-1] == "DIETClassifier"
    assert any(c.get("analyzer") == "char_wb" for c in config["pipeline"])
