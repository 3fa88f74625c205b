"""Cross-validation of the language identifier on its TRAINING data only (never nlu/test/).

    PYTHONPATH=. python nlu/train/langid/cv.py [--folds 4] [--jobs 2] [--misses en]

The held-out candidates are the examples of nlu/train/<lang>.yml and the hand-written short messages of
nlu/train/langid/<lang>.txt; they are cut into folds by a hash of their text (stable across runs and edits: a line
keeps its fold when others are added). For each fold the real trainer (`train_langid_model`) runs with that fold's
texts excluded everywhere (also from the English + other-language mixes), and the identifier is measured on them
as `mirai nlu eval` does: `lang` = no hint against the text's own language (None is a miss), `conv` = the worker's
language as the hint, `switch` = the next language as the hint. Rows are the worker's language, as in the eval.
"yml" columns count only the nlu/train/<lang>.yml examples (the closest kind to the held-out set).
About 200 s of training per fold (two trainings, nlu.training.LANGID_SEEDS); folds run in --jobs processes.
"""
from __future__ import annotations

import argparse
import sys
import zlib
from collections import defaultdict
from concurrent.futures import ProcessPoolExecutor

from nlu.data import LANGUAGES, TRAIN_DIR, read_examples
from nlu.langid import LanguageIdentifier
from nlu.text import key
from nlu.training import LANGID_DIR, langid_messages, language_corpus, text_languages, train_langid_model

Item = tuple[str, str, str, str]  # text, worker's language, text's language, source ("yml" | "txt")


def candidates() -> list[Item]:
    relabel = text_languages()
    items = [(e.text, e.lang, relabel.get(key(e.text), e.language), "yml")
             for e in read_examples(TRAIN_DIR) if e.lang in LANGUAGES]
    items += [(t, lang, lang, "txt") for t, lang in langid_messages(LANGID_DIR, generated=False)]
    return items


def fold_of(text: str, folds: int) -> int:
    return zlib.crc32(key(text).encode()) % folds


def run_fold(args: tuple[int, int]) -> list[tuple[Item, str | None, str | None, str | None]]:
    fold, folds = args
    items = [it for it in candidates() if fold_of(it[0], folds) == fold]
    exclude = frozenset(key(it[0]) for it in items)
    model = train_langid_model(read_examples(TRAIN_DIR), language_corpus(), exclude=exclude)
    ident = LanguageIdentifier(model)
    out = []
    for it in items:
        text, worker, _, _ = it
        other = LANGUAGES[(LANGUAGES.index(worker) + 1) % len(LANGUAGES)]
        out.append((it, ident.detect(text), ident.resolve(text, worker), ident.resolve(text, other)))
    print(f"fold {fold} done", file=sys.stderr, flush=True)
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--folds", type=int, default=4)
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--misses", default="", help="comma-separated languages whose no-hint misses are printed")
    opts = ap.parse_args()
    with ProcessPoolExecutor(opts.jobs) as pool:
        results = [r for rs in pool.map(run_fold, [(f, opts.folds) for f in range(opts.folds)]) for r in rs]
    stats: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    misses = []
    for (text, worker, lang, source), detected, conv, switch in results:
        for row in (worker, "all"):
            s = stats[row]
            s["n"] += 1
            s["lang"] += detected == lang
            s["conv"] += conv == worker
            s["switch"] += switch == worker
            if source == "yml":
                s["yml n"] += 1
                s["yml lang"] += detected == lang
                s["yml conv"] += conv == worker
                s["yml switch"] += switch == worker
        if detected != lang and worker in opts.misses.split(","):
            misses.append(f"  {worker} [{source}] {text!r}: {lang} -> {detected}")
    print(f"{'lang':<5} {'n':>5} {'lang':>7} {'conv':>7} {'switch':>7} {'yml n':>6} {'yml lang':>9} {'yml conv':>9} "
          f"{'yml switch':>10}")
    for row in (*LANGUAGES, "all"):
        s = stats[row]
        print(f"{row:<5} {s['n']:>5} {s['lang'] / s['n']:>7.1%} {s['conv'] / s['n']:>7.1%} "
              f"{s['switch'] / s['n']:>7.1%} {s['yml n']:>6} {s['yml lang'] / max(s['yml n'], 1):>9.1%} "
              f"{s['yml conv'] / max(s['yml n'], 1):>9.1%} {s['yml switch'] / max(s['yml n'], 1):>10.1%}")
    if misses:
        print("no-hint misses:")
        print("\n".join(sorted(misses)))


if __name__ == "__main__":
    main()
