"""Trains the embedded models from the repository's data (`mirai nlu train`) and writes nlu/models/.

- intent.json.gz: the intent classifier, trained on nlu/train/*.yml (exactly the examples of nlu/nlu.yml).
- danger.json.gz: the same examples plus everyday messages (nlu/train/ordinary/*.txt) as an 11th class, read by
  the danger detector for P(danger) (see nlu/embedded.py for how it combines with nlu/danger.yaml).
- langid.json.gz: the language identifier, trained on the same examples plus the bot's texts in 9 languages
  (bot/flows/*.yaml) and the portal articles (content/articles/*.md), cut into sentences.

Training is deterministic (fixed seeds, sorted inputs) and takes about a minute in pure Python.
"""
from __future__ import annotations

import re
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import yaml

from nlu.data import LANGUAGES, TRAIN_DIR, Example, read_examples
from nlu.embedded import DANGER_MODEL, DEFAULT_DANGER_KEYWORD_THRESHOLD, DEFAULT_DANGER_THRESHOLD, INTENT_MODEL, \
    LANGID_MODEL, MODELS_DIR, ORDINARY
from nlu.langid import langid_features
from nlu.linear import LinearModel, save_json_gz
from nlu.text import intent_features

ROOT = Path(__file__).resolve().parent.parent
FLOW_FILES = ("ui", "self_diagnosis", "indicators", "residence_statuses", "keywords")
INTENT_EPOCHS = 10
LANGID_EPOCHS = 6

Log = Callable[[str], None]


def _stderr(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def train_intent_model(examples: list[Example], epochs: int = INTENT_EPOCHS) -> LinearModel:
    return LinearModel.train([intent_features(e.text) for e in examples], [e.intent for e in examples],
                             epochs=epochs, rate=0.5, l2=1e-4)


def ordinary_messages(train_dir: Path = TRAIN_DIR) -> list[str]:
    """Everyday messages (nlu/train/ordinary/<lang>.txt) that are no request to the bot and no danger."""
    folder = train_dir / "ordinary"
    return [line.strip() for path in sorted(folder.glob("*.txt"))
            for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def train_danger_model(examples: list[Example], ordinary: list[str], epochs: int = INTENT_EPOCHS) -> LinearModel:
    """The intents plus an `ordinary` class of everyday talk: its P(danger) is what the danger detector reads, so
    that "my feet are killing me" has somewhere to go other than the danger intent."""
    texts = [e.text for e in examples] + ordinary
    labels = [e.intent for e in examples] + [ORDINARY] * len(ordinary)
    return LinearModel.train([intent_features(t) for t in texts], labels, epochs=epochs, rate=0.5, l2=1e-4)


# ----- the language identifier's corpus ------------------------------------------------------------------------
def _walk_languages(node: object, out: list[tuple[str, str]]) -> None:
    if isinstance(node, dict):
        if set(node) >= set(LANGUAGES):
            for lang in LANGUAGES:
                value = node[lang]
                if isinstance(value, str):
                    out.append((value, lang))
                elif isinstance(value, list):
                    out.extend((str(v), lang) for v in value)
        else:
            for value in node.values():
                _walk_languages(value, out)
    elif isinstance(node, list):
        for value in node:
            _walk_languages(value, out)


def _sentences(text: str) -> Iterator[str]:
    text = re.sub(r"\{[^}]*\}|https?://\S+|\*\*|[#>*`|]", "", text)
    for part in re.split(r"(?<=[.!?。！？])\s*|\n+|[:：]\s", text):
        part = part.strip(" -–•")
        if len(part) >= 3:
            yield part


def language_corpus(root: Path = ROOT) -> list[tuple[str, str]]:
    """(sentence, language) pairs from the bot's texts and the portal articles, in a stable order."""
    pairs: list[tuple[str, str]] = []
    for name in FLOW_FILES:
        path = root / "bot" / "flows" / f"{name}.yaml"
        if path.exists():
            _walk_languages(yaml.safe_load(path.read_text(encoding="utf-8")), pairs)
    out = [(s, lang) for text, lang in pairs for s in _sentences(text)]
    for path in sorted((root / "content" / "articles").glob("*.md")):
        parts = path.read_text(encoding="utf-8").split("---", 2)
        if len(parts) < 3:
            continue
        meta = yaml.safe_load(parts[1]) or {}
        for lang, phrases in sorted((meta.get("keywords") or {}).items()):
            if lang in LANGUAGES:
                out.extend((str(p), lang) for p in phrases or [])
        for m in re.finditer(r"<!-- lang: (\w+) -->(.*?)(?=<!-- lang:|\Z)", parts[2], re.S):
            if m.group(1) in LANGUAGES:
                out.extend((s, m.group(1)) for s in _sentences(m.group(2)))
    return out


def train_langid_model(examples: list[Example], corpus: list[tuple[str, str]],
                       epochs: int = LANGID_EPOCHS) -> LinearModel:
    data = [(e.text, e.lang) for e in examples if e.lang] + corpus
    return LinearModel.train([langid_features(t) for t, _ in data], [lang for _, lang in data],
                             epochs=epochs, rate=0.5, l2=1e-4)


# ----- the command -----------------------------------------------------------------------------------------------
def train_all(train_dir: Path = TRAIN_DIR, models_dir: Path = MODELS_DIR, log: Log = _stderr) -> dict[str, Path]:
    examples = read_examples(train_dir)
    log(f"training the embedded NLU on {len(examples)} examples from {train_dir}")
    start = time.monotonic()
    intent = train_intent_model(examples)
    intent_path = models_dir / INTENT_MODEL.name
    save_json_gz(intent_path, {"model": intent.to_json(), "examples": len(examples), "epochs": INTENT_EPOCHS})
    log(f"  intent model: {intent_path} ({intent_path.stat().st_size // 1024} KiB)")
    ordinary = ordinary_messages(train_dir)
    danger = train_danger_model(examples, ordinary)
    danger_path = models_dir / DANGER_MODEL.name
    save_json_gz(danger_path, {"model": danger.to_json(), "threshold": DEFAULT_DANGER_THRESHOLD,
                               "cue_threshold": DEFAULT_DANGER_KEYWORD_THRESHOLD,
                               "examples": len(examples), "ordinary": len(ordinary)})
    log(f"  danger model: {danger_path} ({danger_path.stat().st_size // 1024} KiB, {len(ordinary)} everyday "
        "messages)")
    corpus = language_corpus()
    langid = train_langid_model(examples, corpus)
    langid_path = models_dir / LANGID_MODEL.name
    save_json_gz(langid_path, langid.to_json())
    log(f"  language model: {langid_path} ({langid_path.stat().st_size // 1024} KiB, "
        f"{len(examples) + len(corpus)} sentences)")
    log(f"done in {time.monotonic() - start:.0f} s")
    return {"intent": intent_path, "danger": danger_path, "langid": langid_path}


if __name__ == "__main__":
    train_all()
