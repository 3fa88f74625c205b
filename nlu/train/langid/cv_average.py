"""Cross-validation (training data only, the folds of cv.py) of averaged language models: the end-of-epoch models
of one training averaged over its last epochs (tail-averaged SGD), and models trained with several shuffle seeds
averaged into one.

    PYTHONPATH=. python nlu/train/langid/cv_average.py train --seeds 13,1,2 [--folds 4] [--jobs 2]
    PYTHONPATH=. python nlu/train/langid/cv_average.py report --seeds 13,1,2

`train` keeps the models of each (fold, seed) at the end of epochs 3..LANGID_EPOCHS in --dir; `report` measures
the variants (no hint, `lang` of cv.py) per language: for each seed, and the spread (min-max) over the seeds.
About 4 minutes a (fold, seed) on a busy 2-CPU machine.

Measured 2026-11-25 (seeds 13, 1, 2; ~5,800 held-out texts; no-hint misses, all languages / es / en):
    one training (final epoch)           228-240 (mean 233) / 24-29 / 65-68
    the same, mean of its last 2/3/5     229-247            / 25-30 / 67-70   (no better: not used)
    mean of 2 trainings (3 pairs)        225-228 (mean 227) / 26-27 / 63-65   <- LANGID_SEEDS (13, 1)
    mean of 3 trainings                  224                / 24    / 64      (3x the training time)
    mean of 2 / 3 trainings of 5 epochs  227-230 / 225      / 24-28, 26 / 65-67, 63
"""
from __future__ import annotations

import argparse
import pickle
import statistics
import sys
from collections import defaultdict
from concurrent.futures import ProcessPoolExecutor
from itertools import combinations
from pathlib import Path

from nlu.data import LANGUAGES, TRAIN_DIR, read_examples
from nlu.langid import LanguageIdentifier, langid_features
from nlu.linear import LinearModel
from nlu.text import key
from nlu.train.langid.cv import candidates, fold_of
from nlu.linear import LinearModel
from nlu.training import LANGID_EPOCHS, _epoch_snapshots, langid_training_set, language_corpus

FIRST_KEPT = 3


def _path(folder: Path, fold: int, seed: int, epoch: int) -> Path:
    return folder / f"f{fold}-s{seed}-e{epoch}.pkl"


def train_task(args: tuple[int, int, int, str]) -> None:
    fold, folds, seed, folder = args
    exclude = frozenset(key(it[0]) for it in candidates() if fold_of(it[0], folds) == fold)
    data = langid_training_set(read_examples(TRAIN_DIR), language_corpus(), exclude)
    snaps = _epoch_snapshots([langid_features(t) for t, _, _ in data], [lang for _, lang, _ in data],
                             [w for _, _, w in data], epochs=LANGID_EPOCHS, seed=seed,
                             keep=lambda e: e >= FIRST_KEPT)
    for epoch, model in snaps:
        with open(_path(Path(folder), fold, seed, epoch), "wb") as fh:
            pickle.dump(model.to_json(digits=5), fh, protocol=pickle.HIGHEST_PROTOCOL)
    print(f"fold {fold} seed {seed} done", file=sys.stderr, flush=True)


def load(folder: Path, fold: int, seed: int, epoch: int) -> LinearModel:
    with open(_path(folder, fold, seed, epoch), "rb") as fh:
        return LinearModel.from_json(pickle.load(fh))


def score(model: LinearModel, items: list) -> dict[str, tuple[int, int]]:  # type: ignore[type-arg]
    ident = LanguageIdentifier(model)
    out: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    for text, worker, lang, _ in items:
        ok = ident.detect(text) == lang
        for row in (worker, "all"):
            out[row][0] += ok
            out[row][1] += 1
    return {k: (v[0], v[1]) for k, v in out.items()}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("step", choices=("train", "report"))
    ap.add_argument("--seeds", default="13,1,2")
    ap.add_argument("--folds", type=int, default=4)
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--dir", default="/tmp/langid-cv-average")
    ap.add_argument("--ensemble", type=int, default=3, help="K of the seed ensembles reported")
    opts = ap.parse_args()
    seeds = [int(s) for s in opts.seeds.split(",")]
    folder = Path(opts.dir)
    folder.mkdir(parents=True, exist_ok=True)
    if opts.step == "train":
        tasks = [(f, opts.folds, s, str(folder)) for s in seeds for f in range(opts.folds)
                 if not _path(folder, f, s, LANGID_EPOCHS).exists()]
        with ProcessPoolExecutor(opts.jobs) as pool:
            list(pool.map(train_task, tasks))
        return
    last = LANGID_EPOCHS
    seeds = [s for s in seeds if all(_path(folder, f, s, last).exists() for f in range(opts.folds))]
    print(f"seeds trained: {seeds}", file=sys.stderr)
    single = {  # name -> epochs averaged within one training
        "final": [last], "avg last 2": list(range(last - 1, last + 1)),
        "avg last 3": list(range(last - 2, last + 1)), "avg last 5": list(range(last - 4, last + 1)),
        "avg 3..10": list(range(FIRST_KEPT, last + 1)), "e5 final": [5], "e5 avg 3..5": [3, 4, 5],
    }
    items_of = {f: [it for it in candidates() if fold_of(it[0], opts.folds) == f] for f in range(opts.folds)}
    # results[variant][member] -> per-language (ok, n) summed over folds; member = a seed or a seed combination
    results: dict[str, dict[str, dict[str, list[int]]]] = defaultdict(lambda: defaultdict(lambda: defaultdict(
        lambda: [0, 0])))
    groups = [(str(s),) for s in seeds] + [tuple(str(s) for s in c) for c in combinations(seeds, opts.ensemble)
                                                  if len(seeds) >= opts.ensemble]
    for fold in range(opts.folds):
        cache: dict[tuple[int, int], LinearModel] = {}

        def get(seed: int, epoch: int) -> LinearModel:
            if (seed, epoch) not in cache:
                cache[(seed, epoch)] = load(folder, fold, seed, epoch)
            return cache[(seed, epoch)]

        for name, epochs in single.items():
            for group in groups:
                models = [get(int(s), e) for s in group for e in epochs]
                model = models[0] if len(models) == 1 else LinearModel.mean(models)
                variant = name if len(group) == 1 else f"{name}, {len(group)} seeds"
                for row, (ok, n) in score(model, items_of[fold]).items():
                    results[variant]["+".join(group)][row][0] += ok
                    results[variant]["+".join(group)][row][1] += n
        print(f"fold {fold} scored", file=sys.stderr, flush=True)
    rows = (*LANGUAGES, "all")
    print(f"{'variant':<28} {'members':>9} " + " ".join(f"{r:>15}" for r in rows))
    print("(each cell: mean of the members' no-hint accuracy [min-max]; es/en misses in the last columns)")
    for variant, members in results.items():
        cells = []
        for row in rows:
            rates = [m[row][0] / m[row][1] for m in members.values()]
            cells.append(f"{statistics.mean(rates):6.2%}[{min(rates):.1%}-{max(rates):.1%}]"[:15])
        misses = {r: [m[r][1] - m[r][0] for m in members.values()] for r in ("en", "es", "all")}
        print(f"{variant:<28} {len(members):>9} " + " ".join(f"{c:>15}" for c in cells)
              + f"  misses en {misses['en']} es {misses['es']} all {misses['all']}")


if __name__ == "__main__":
    main()
