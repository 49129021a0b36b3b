"""A word-trigram language model with back-off: training (counting) and sampling.

Standard library and numpy only. ``train(text)`` returns a JSON-ready dict;
``LanguageModel(model).generate(prompt, max_tokens, seed)`` yields tokens one at
a time, each with the space it needs in front, so ``prompt + "".join(tokens)``
is the generated text. The same seed gives the same tokens.

Each next token is sampled from the words that followed the last two tokens
in the corpus, in proportion to how often they did; when that pair never
occurred, from the words that followed the last token; when that never
occurred either, from all words by frequency.
"""

from __future__ import annotations

import itertools
import re
from collections import Counter, defaultdict
from collections.abc import Iterator
from typing import Any

import numpy as np

_TOKEN = re.compile(r"[A-Za-z0-9][A-Za-z0-9'-]*|[.,;:]")
_NO_SPACE_BEFORE = frozenset(".,;:")


def tokenize(text: str) -> list[str]:
    """Words (letters, digits, ``'`` and ``-``) and the punctuation ``.,;:``."""
    return _TOKEN.findall(text)


def train(text: str) -> dict[str, Any]:
    """Count unigrams, bigrams and trigrams of ``text`` (ids sorted, so output is stable)."""
    tokens = tokenize(text)
    vocab = sorted(set(tokens))
    index = {word: i for i, word in enumerate(vocab)}
    ids = [index[token] for token in tokens]
    unigrams = Counter(ids)
    bigrams: defaultdict[int, Counter[int]] = defaultdict(Counter)
    trigrams: defaultdict[tuple[int, int], Counter[int]] = defaultdict(Counter)
    for a, b in itertools.pairwise(ids):
        bigrams[a][b] += 1
    for a, b, c in zip(ids, ids[1:], ids[2:], strict=False):
        trigrams[a, b][c] += 1
    return {
        "tokens": len(tokens),
        "vocab": vocab,
        "unigrams": [unigrams[i] for i in range(len(vocab))],
        "bigrams": {str(a): sorted(nxt.items()) for a, nxt in sorted(bigrams.items())},
        "trigrams": {f"{a} {b}": sorted(nxt.items()) for (a, b), nxt in sorted(trigrams.items())},
    }


class LanguageModel:
    """Samples text from a model made by :func:`train`."""

    def __init__(self, model: dict[str, Any]) -> None:
        self.vocab: list[str] = list(model["vocab"])
        self._index = {word: i for i, word in enumerate(self.vocab)}
        self._unigrams = self._table(list(enumerate(model["unigrams"])))
        self._bigrams = {int(k): self._table(v) for k, v in model["bigrams"].items()}
        self._trigrams = {
            tuple(int(part) for part in k.split()): self._table(v)
            for k, v in model["trigrams"].items()
        }

    @staticmethod
    def _table(pairs: list[Any]) -> tuple[np.ndarray, np.ndarray]:
        words = np.array([int(word) for word, _ in pairs], dtype=np.int64)
        counts = np.array([count for _, count in pairs], dtype=np.float64)
        return words, counts / counts.sum()

    def generate(self, prompt: str, max_tokens: int, seed: int = 0) -> Iterator[str]:
        """Yield up to ``max_tokens`` tokens continuing ``prompt``, each with its leading space."""
        rng = np.random.default_rng(seed)
        history = [self._index.get(token, -1) for token in tokenize(prompt)]
        for _ in range(max_tokens):
            pair = tuple(history[-2:])
            table = self._trigrams.get(pair) if len(pair) == 2 else None  # type: ignore[arg-type]
            if table is None and history:
                table = self._bigrams.get(history[-1])
            if table is None:
                table = self._unigrams
            words, probabilities = table
            word = int(words[rng.choice(len(words), p=probabilities)])
            history.append(word)
            token = self.vocab[word]
            yield token if token in _NO_SPACE_BEFORE else " " + token
