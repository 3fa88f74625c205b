"""Trains the embedded models from the repository's data (`mirai nlu train`) and writes nlu/models/.

- intent.json.gz: the intent classifier, trained on nlu/train/*.yml (exactly the examples of nlu/nlu.yml).
- danger.json.gz: the same examples plus everyday messages (nlu/train/ordinary/*.txt) as an 11th class, read by
  the danger detector for P(danger) (see nlu/embedded.py for how it combines with nlu/danger.yaml).
- langid.json.gz: the language identifier, trained on the same examples plus the bot's texts in 9 languages
  (bot/flows/*.yaml), the portal articles (content/articles/*.md) cut into sentences, and short chat messages
  and Japanese in romaji written for it (nlu/train/langid/<lang>[-what].txt).

Training is deterministic (fixed seeds, sorted inputs) and takes three to four minutes in pure Python on two
cores (the intent model trains in a second process; the language model trains twice, see LANGID_SEEDS).
"""
from __future__ import annotations

import random
import re
import sys
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import yaml

from nlu.data import LANGUAGES, TRAIN_DIR, Example, read_examples
from nlu.embedded import DANGER_MODEL, DEFAULT_DANGER_KEYWORD_THRESHOLD, DEFAULT_DANGER_THRESHOLD, INTENT_MODEL, \
    LANGID_MODEL, MODELS_DIR, ORDINARY
from nlu.langid import langid_features
from nlu.linear import LinearModel, save_json_gz
from nlu.text import danger_features, intent_features, key

ROOT = Path(__file__).resolve().parent.parent
LANGID_DIR = TRAIN_DIR / "langid"
FLOW_FILES = ("ui", "self_diagnosis", "indicators", "residence_statuses", "keywords")
INTENT_EPOCHS = 10  # the danger model's
LANGID_EPOCHS = 10
# The intent model's settings, chosen by 5-fold cross-validation on nlu/train/ only (python -m nlu.crossval; the
# figures are in its docstring): features nlu.text.intent_features, 15 epochs with feature dropout 0.3, the
# weights averaged over epochs 6-15, and the mean of three such models with different seeds (bagging: one seed's
# shuffle and dropout order moved a language's accuracy by a point or more).
INTENT_SETTINGS: dict = {"epochs": 15, "rate": 0.5, "l2": 1e-4, "average_from": 5,  # type: ignore[type-arg]
                         "seeds": (13, 14, 15), "features": "default", "dropout": 0.3}
# The language model is the mean of the models of two trainings that differ only in the order of the examples
# (shuffle seeds): one model of the same size and speed, less at the mercy of one order. Chosen by cross-validation
# on the training data (nlu/train/langid/cv_average.py, 4 folds x seeds 13, 1, 2): no-hint misses of all
# languages 228-240 for one training, 225-228 for the mean of two, 224 for three (each a third more training time);
# averaging the last epochs of one training instead changed nothing (229-245).
LANGID_SEEDS: tuple[int, ...] = (13, 1)

Log = Callable[[str], None]


def _stderr(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def train_intent_model(examples: list[Example], epochs: int | None = None) -> LinearModel:
    settings = INTENT_SETTINGS
    xs = [intent_features(e.text) for e in examples]
    ys = [e.intent for e in examples]
    models = [LinearModel.train(xs, ys, epochs=epochs or settings["epochs"], rate=settings["rate"],
                                l2=settings["l2"], seed=seed,
                                average_from=min(settings["average_from"], (epochs or settings["epochs"]) - 1),
                                dropout=settings["dropout"])
              for seed in settings["seeds"]]
    return LinearModel.mean(models)


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
    return LinearModel.train([danger_features(t) for t in texts], labels, epochs=epochs, rate=0.5, l2=1e-4)


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


def langid_messages(folder: Path = LANGID_DIR, generated: bool | None = None) -> list[tuple[str, str]]:
    """(message, language) pairs of nlu/train/langid/<lang>.txt and <lang>-<anything>.txt, one message a line
    (# starts a comment line); generated=True/False: only the files whose name ends in -generated, or the others."""
    out: list[tuple[str, str]] = []
    for path in sorted(folder.glob("*.txt")):
        lang = path.stem.split("-")[0]
        if lang not in LANGUAGES or (generated is not None and path.stem.endswith("-generated") != generated):
            continue
        out.extend((line.strip(), lang) for line in path.read_text(encoding="utf-8").splitlines()
                   if line.strip() and not line.startswith("#"))
    return out


def text_languages(path: Path = LANGID_DIR / "text-lang.tsv") -> dict[str, str]:
    """key(text) -> language of the training examples written entirely in another language than their file's."""
    out: dict[str, str] = {}
    if path.exists():
        for line in path.read_text(encoding="utf-8").splitlines():
            if line.strip() and not line.startswith("#"):
                lang, text = line.split("\t", 1)
                out[key(text)] = lang.strip()
    return out


# Workers mix English into their own language ("let's start po", "thanks ya kak", "cancel nha"): such a message
# is in the worker's language. Mixed examples of an English chat message and a short message of each other
# Latin-script language teach the model that, MIXED_PER_LANGUAGE a language (deterministic).
MIXED_PER_LANGUAGE = 200
MIXED_LANGUAGES = ("vi", "tl", "id", "pt", "es")
# Romaji generated from the Japanese texts (nlu/train/langid/ja-romaji-generated.txt) is plentiful and machine-cut:
# it counts half as much as the texts written by hand.
GENERATED_WEIGHT = 0.5


def mixed_messages(messages: list[tuple[str, str]], per_language: int = MIXED_PER_LANGUAGE,
                   seed: int = 29) -> list[tuple[str, str]]:
    """English + another language's short message (either order), labelled with the other language, each with
    its English message alone, labelled English."""
    rng = random.Random(seed)
    short = [t for t, lang in messages if lang == "en" and len(t.split()) <= 3]
    out: list[tuple[str, str]] = []
    for lang in MIXED_LANGUAGES:
        native = [t for t, lang2 in messages if lang2 == lang and len(t.split()) <= 2]
        if not short or not native:
            continue
        for _ in range(per_language):
            english, own = rng.choice(short), rng.choice(native)
            out.append((f"{english} {own}" if rng.random() < 0.7 else f"{own} {english}", lang))
            out.append((english, "en"))  # and the English alone, so that its words stay English
    return out


def langid_training_set(examples: list[Example], corpus: list[tuple[str, str]],
                        exclude: frozenset[str] = frozenset()) -> list[tuple[str, str, float]]:
    """(text, language, weight): the NLU examples (with their text's own language), the bot's texts and articles,
    the short messages of nlu/train/langid/ and mixes of English with them. `exclude`: key()s of texts left out
    everywhere, mixes included (cross-validation, nlu/train/langid/cv.py)."""
    relabel = text_languages()
    data = [(e.text, relabel.get(key(e.text), e.language), 1.0) for e in examples if e.lang]
    data += [(t, lang, 1.0) for t, lang in corpus]
    written = [(t, lang) for t, lang in langid_messages(LANGID_DIR, generated=False) if key(t) not in exclude]
    data += [(t, lang, 1.0) for t, lang in written]
    data += [(t, lang, GENERATED_WEIGHT) for t, lang in langid_messages(LANGID_DIR, generated=True)]
    data = [d for d in data if key(d[0]) not in exclude]
    data += [(t, lang, 1.0) for t, lang in mixed_messages(written)]
    return data


def _epoch_snapshots(xs: list[dict[str, float]], ys: list[str], weights: list[float], *, epochs: int, seed: int,
                     keep: Callable[[int], bool]) -> list[tuple[int, LinearModel]]:
    """LinearModel.train's Adagrad SGD, with a copy of the model at the end of each epoch `keep` accepts.
    LinearModel.train builds its model with cls(labels), so a subclass made here sees it as it trains."""
    made: list[LinearModel] = []
    out: list[tuple[int, LinearModel]] = []

    class Watched(LinearModel):
        def __init__(self, *args, **kwargs) -> None:  # type: ignore[no-untyped-def]
            super().__init__(*args, **kwargs)
            made.append(self)

    def progress(epoch: int, _loss: float) -> None:
        if keep(epoch):
            m = made[0]
            out.append((epoch, LinearModel(m.labels, {n: list(r) for n, r in m.weights.items()}, list(m.bias))))

    Watched.train(xs, ys, epochs=epochs, rate=0.5, l2=1e-4, seed=seed, sample_weights=weights, progress=progress)
    return out


def train_langid_model(examples: list[Example], corpus: list[tuple[str, str]],
                       epochs: int = LANGID_EPOCHS, exclude: frozenset[str] = frozenset(),
                       seeds: tuple[int, ...] = LANGID_SEEDS) -> LinearModel:
    """One training per shuffle seed, their weights averaged into one model (see LANGID_SEEDS)."""
    data = langid_training_set(examples, corpus, exclude)
    xs, ys, ws = [langid_features(t) for t, _, _ in data], [lang for _, lang, _ in data], [w for _, _, w in data]
    models = [LinearModel.train(xs, ys, epochs=epochs, rate=0.5, l2=1e-4, seed=seed, sample_weights=ws)
              for seed in seeds]
    return models[0] if len(models) == 1 else LinearModel.mean(models)


# ----- the command -----------------------------------------------------------------------------------------------
def train_all(train_dir: Path = TRAIN_DIR, models_dir: Path = MODELS_DIR, log: Log = _stderr) -> dict[str, Path]:
    examples = read_examples(train_dir)
    log(f"training the embedded NLU on {len(examples)} examples from {train_dir}")
    start = time.monotonic()
    # The intent model (three bagged models) trains in a second process meanwhile the danger and language models
    # train in this one: the same models, in about the time of the slower half on two cores.
    with ProcessPoolExecutor(max_workers=1) as pool:
        intent_job = pool.submit(_intent_model_json, examples)
        paths = _train_danger_and_langid(examples, train_dir, models_dir, log)
        intent_json = intent_job.result()
    intent_path = models_dir / INTENT_MODEL.name
    save_json_gz(intent_path, {"model": intent_json, "examples": len(examples),
                               "epochs": INTENT_SETTINGS["epochs"], "seeds": len(INTENT_SETTINGS["seeds"])})
    log(f"  intent model: {intent_path} ({intent_path.stat().st_size // 1024} KiB)")
    log(f"done in {time.monotonic() - start:.0f} s")
    return {"intent": intent_path, **paths}


def _intent_model_json(examples: list[Example]) -> dict:  # type: ignore[type-arg]
    return train_intent_model(examples).to_json()


def _train_danger_and_langid(examples: list[Example], train_dir: Path, models_dir: Path,
                             log: Log) -> dict[str, Path]:
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
        f"{len(langid_training_set(examples, corpus))} sentences)")
    return {"danger": danger_path, "langid": langid_path}


if __name__ == "__main__":
    train_all()
