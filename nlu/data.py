"""Reads the NLU data (Rasa 3 format, intent-level metadata `lang`) and builds `nlu/nlu.yml` from nlu/train/.

An example written entirely in another language than its block's (a Vietnamese worker typing "unsubscribe" or the
romaji "konbanwa") carries that language as example-level metadata `text_lang` (the long form of Rasa 3:
`- text: unsubscribe` / `metadata: {text_lang: en}`); see nlu/DATA.md.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import yaml

NLU_DIR = Path(__file__).resolve().parent
TRAIN_DIR = NLU_DIR / "train"
TEST_DIR = NLU_DIR / "test"
NLU_YML = NLU_DIR / "nlu.yml"
LANGUAGES = ("ja", "en", "zh", "vi", "tl", "id", "my", "pt", "es")
INTENTS = ("greet", "start_diagnosis", "ask_article", "talk_to_person", "stop", "change_language", "help",
           "thanks", "delete_my_data", "danger")

# Rasa's inline entity annotation, [text](entity): the example's text is the bracketed part.
_ENTITY = re.compile(r"\[([^\]]*)\]\([^)]*\)|\[([^\]]*)\]\{[^}]*\}")


@dataclass(frozen=True)
class Example:
    text: str
    intent: str
    lang: str | None  # the worker's language (the block's `lang`)
    text_lang: str | None = None  # the text's own language when it differs (example metadata `text_lang`)

    @property
    def language(self) -> str | None:
        """The language the text is written in."""
        return self.text_lang or self.lang


def read_examples(path: Path) -> list[Example]:
    """Examples of one Rasa NLU file, or of every *.yml / *.yaml file in a folder (sorted by name)."""
    if path.is_dir():
        files = sorted(p for p in path.iterdir() if p.suffix in (".yml", ".yaml") and p.is_file())
        return [e for f in files for e in read_examples(f)]
    data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    out: list[Example] = []
    for block in data.get("nlu") or []:
        if "intent" not in block:
            continue
        lang = (block.get("metadata") or {}).get("lang")
        for text, meta in _example_lines(block.get("examples", "")):
            text_lang = meta.get("text_lang")
            out.append(Example(text, str(block["intent"]), lang,
                               str(text_lang) if text_lang and text_lang != lang else None))
    return out


def _raw_examples(examples: object) -> list[tuple[str, dict]]:  # type: ignore[type-arg]
    """(text, example metadata) of a block: the multi-line string form, or the long form `- text: ...`."""
    if isinstance(examples, list):
        pairs = [(str(e.get("text", "")), e.get("metadata") or {}) if isinstance(e, dict) else (str(e), {})
                 for e in examples]
    else:
        pairs = [(ln.strip()[2:], {}) for ln in str(examples).splitlines() if ln.strip().startswith("- ")]
    return [(text.strip(), meta if isinstance(meta, dict) else {}) for text, meta in pairs if text.strip()]


def _raw_lines(examples: object) -> list[str]:
    return [text for text, _ in _raw_examples(examples)]


def _example_lines(examples: object) -> list[tuple[str, dict]]:  # type: ignore[type-arg]
    return [(_ENTITY.sub(lambda m: m.group(1) or m.group(2) or "", text).strip(), meta)
            for text, meta in _raw_examples(examples)]


def build_nlu_yml(train_dir: Path = TRAIN_DIR) -> str:
    """The text of nlu/nlu.yml: every block of nlu/train/<lang>.yml, in the order of LANGUAGES."""
    parts = ['# Built by `python -m nlu.build` from nlu/train/<lang>.yml: edit those, then rebuild.\n'
             'version: "3.1"\nnlu:\n']
    for lang in LANGUAGES:
        path = train_dir / f"{lang}.yml"
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        for block in data.get("nlu") or []:
            meta = dict(block.get("metadata") or {})
            meta.setdefault("lang", lang)
            lines = _raw_lines(block.get("examples", ""))
            parts.append(f"- intent: {block['intent']}\n  metadata:\n    lang: {meta['lang']}\n  examples: |\n")
            parts.extend(f"    - {line}\n" for line in lines)
    return "".join(parts)
