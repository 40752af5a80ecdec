"""The small separable feedback set the tests train on (vocabulary of the tiny BERT)."""

from __future__ import annotations

import random

from swarmlearn.feedback import Example

WORDS = {
    "joy": ["great", "fixed", "perfect", "thanks", "works", "super", "love", "nice"],
    "frustration": ["still", "broken", "down", "fails", "again", "error", "nope", "stuck"],
    "neutral": ["ok", "noted", "later", "tomorrow", "check", "logs", "seen", "meeting"],
}


def tiny_examples(n_per_label: int = 12, seed: int = 0) -> list[Example]:
    rng = random.Random(seed)
    out = []
    for label, words in WORDS.items():
        for _ in range(n_per_label):
            out.append(Example(" ".join(rng.sample(words, 3)), label, "en"))
    rng.shuffle(out)
    return out
