"""A multinomial logistic regression over sparse features, trained and run in pure Python.

Small enough to ship trained in the repository (weights rounded and pruned, gzip'd JSON) and fast enough to
answer in well under a millisecond: a message has a few hundred features, each a lookup and ten additions.
"""
from __future__ import annotations

import gzip
import json
import math
import random
from itertools import groupby
from operator import itemgetter
from collections.abc import Callable, Sequence
from pathlib import Path

Features = dict[str, float]


class LinearModel:
    def __init__(self, labels: Sequence[str], weights: dict[str, Sequence[float]] | None = None,
                 bias: list[float] | None = None) -> None:
        self.labels = list(labels)
        self.weights: dict[str, Sequence[float]] = weights or {}
        self.bias = bias or [0.0] * len(self.labels)

    # ----- inference -----------------------------------------------------------------------------
    def scores(self, feats: Features) -> list[float]:
        """Bias plus the weighted sum of the features' rows. The features of a group share one value and follow
        each other (nlu.text.add_group), so each run of one value has its rows summed column by column in C (zip,
        sum) and multiplied once: a few hundred rows cost tens of microseconds, not a Python loop per weight."""
        out = list(self.bias)
        rows_of = map(self.weights.get, feats)
        for value, run in groupby(zip(feats.values(), rows_of), key=itemgetter(0)):
            rows = [row for _, row in run if row is not None]
            if rows:
                out = [o + value * s for o, s in zip(out, map(sum, zip(*rows)))]
        return out

    def _train_scores(self, feats: Features) -> list[float]:
        # Training keeps the one-by-one sum: the same order of additions, so retraining gives the same models.
        out = list(self.bias)
        k = len(out)
        weights = self.weights
        for name, value in feats.items():
            row = weights.get(name)
            if row is not None:
                for j in range(k):
                    out[j] += row[j] * value
        return out

    def proba(self, feats: Features) -> list[float]:
        return softmax(self.scores(feats))

    def ranking(self, feats: Features) -> list[tuple[str, float]]:
        return sorted(zip(self.labels, self.proba(feats)), key=lambda p: -p[1])

    # ----- training ------------------------------------------------------------------------------
    @classmethod
    def train(cls, xs: Sequence[Features], ys: Sequence[str], *, epochs: int = 20, rate: float = 0.5,
              l2: float = 1e-4, seed: int = 13, sample_weights: Sequence[float] | None = None,
              average_from: int | None = None, dropout: float = 0.0,
              progress: Callable[[int, float], None] | None = None) -> LinearModel:
        """Adagrad SGD on the cross-entropy with L2, examples shuffled each epoch (deterministic seed).

        average_from=e: the model returned is the mean of the weights at the end of epochs e+1..epochs (iterate
        averaging: the last epoch's shuffle order weighs less on the result).
        dropout=p: each time an example is seen, each of its features is left out with probability p (the others
        scaled by 1/(1-p)), so that no single n-gram carries an intent alone (a regulariser like DIET's dropout)."""
        labels = sorted(set(ys))
        index = {label: j for j, label in enumerate(labels)}
        k = len(labels)
        model = cls(labels)
        weights: dict[str, list[float]] = {}
        model.weights = weights  # type: ignore[assignment]
        bias = model.bias
        g2: dict[str, list[float]] = {}
        g2_bias = [1e-8] * k
        order = list(range(len(xs)))
        rng = random.Random(seed)
        drop_rng = random.Random(seed + 1)
        keep_scale = 1.0 / (1.0 - dropout) if dropout else 1.0
        sw = sample_weights or [1.0] * len(xs)
        if dropout:
            # The features in a fixed order: which ones are dropped must not depend on the order a set of names came
            # in (str hashes differ from one process to the next), or a retrain would not give the same model.
            xs = [dict(sorted(x.items())) for x in xs]
        sums: dict[str, list[float]] = {}
        bias_sum = [0.0] * k
        averaged = 0
        for epoch in range(epochs):
            rng.shuffle(order)
            loss = 0.0
            for i in order:
                feats, target, w = xs[i], index[ys[i]], sw[i]
                if dropout:
                    rand = drop_rng.random
                    feats = {name: value * keep_scale for name, value in feats.items() if rand() >= dropout}
                probs = softmax(model._train_scores(feats))
                loss -= math.log(max(probs[target], 1e-12)) * w
                grad = [p * w for p in probs]
                grad[target] -= w
                active = [j for j in range(k) if abs(grad[j]) > 1e-4]
                if not active:
                    continue
                for j in active:
                    g2_bias[j] += grad[j] * grad[j]
                    bias[j] -= rate * grad[j] / math.sqrt(g2_bias[j])
                for name, value in feats.items():
                    row = weights.get(name)
                    if row is None:
                        row = weights[name] = [0.0] * k
                        g2[name] = [1e-8] * k
                    acc = g2[name]
                    for j in active:
                        g = grad[j] * value + l2 * row[j]
                        acc[j] += g * g
                        row[j] -= rate * g / math.sqrt(acc[j])
            if average_from is not None and epoch >= average_from:
                for name, row in weights.items():
                    total = sums.get(name)
                    if total is None:
                        sums[name] = list(row)
                    else:
                        sums[name] = [t + v for t, v in zip(total, row)]
                bias_sum = [t + b for t, b in zip(bias_sum, bias)]
                averaged += 1
            if progress:
                progress(epoch + 1, loss / max(len(xs), 1))
        if averaged:
            model.weights = {name: [v / averaged for v in row] for name, row in sums.items()}
            model.bias = [b / averaged for b in bias_sum]
        return model

    @classmethod
    def mean(cls, models: Sequence[LinearModel]) -> LinearModel:
        """The model whose scores are the mean of the models' scores (same labels): bagging in one model."""
        labels = models[0].labels
        assert all(m.labels == labels for m in models)
        n = len(models)
        k = len(labels)
        weights: dict[str, list[float]] = {}
        for m in models:
            for name, row in m.weights.items():
                total = weights.get(name)
                weights[name] = list(row) if total is None else [t + v for t, v in zip(total, row)]
        bias = [sum(m.bias[j] for m in models) / n for j in range(k)]
        return cls(labels, {name: [v / n for v in row] for name, row in weights.items()}, bias)

    # ----- storage -------------------------------------------------------------------------------
    def to_json(self, digits: int = 3) -> dict:  # type: ignore[type-arg]
        scale = 10 ** digits
        weights = {}
        for name in sorted(self.weights):
            row = [round(v * scale) for v in self.weights[name]]
            if any(row):
                weights[name] = row
        return {"labels": self.labels, "scale": scale, "bias": [round(b * scale) for b in self.bias],
                "weights": weights}

    @classmethod
    def from_json(cls, data: dict) -> LinearModel:  # type: ignore[type-arg]
        scale = float(data["scale"])
        # Tuples of floats, not lists: the garbage collector stops tracking them, so its full collections do not
        # walk a hundred thousand rows in the middle of a parse (that was most of the p99 latency).
        weights = {name: tuple(v / scale for v in row) for name, row in data["weights"].items()}
        return cls(data["labels"], weights, [b / scale for b in data["bias"]])


def softmax(scores: Sequence[float]) -> list[float]:
    top = max(scores)
    exps = [math.exp(s - top) for s in scores]
    total = sum(exps)
    return [e / total for e in exps]


def save_json_gz(path: Path, data: dict) -> None:  # type: ignore[type-arg]
    path.parent.mkdir(parents=True, exist_ok=True)
    raw = json.dumps(data, ensure_ascii=False, separators=(",", ":"), sort_keys=True).encode()
    # mtime=0: the same model gives the same bytes, so a retrain without changes leaves git clean.
    with open(path, "wb") as fh, gzip.GzipFile(fileobj=fh, mode="wb", mtime=0, compresslevel=9) as gz:
        gz.write(raw)


def load_json_gz(path: Path) -> dict:  # type: ignore[type-arg]
    with gzip.open(path, "rb") as fh:
        return json.loads(fh.read())  # type: ignore[no-any-return]
