"""Settings that adapt to the amount of training data, decided from the data before a
run starts and recorded in its config.json; and the warning of a run that learned to
tag nothing."""

from __future__ import annotations

import dataclasses

from slotkeras.config import DECIDED_FROM_DATA, TrainConfig

# Hash buckets a distinct training key gets at least (trigrams, word pairs): few
# collisions among them, and the tables of the three full-size corpora stay at their
# defaults (docs/benchmarks.md, "Small data").
BUCKETS_PER_KEY = 16
SMALLEST_TABLE = 1024


def adapted(config: TrainConfig, train: list) -> tuple[TrainConfig, dict]:
    """`config` with its data-dependent settings decided for the training utterances
    `train`, and what was decided (empty when nothing was left open or changed)."""
    decided = {}
    for name in DECIDED_FROM_DATA:  # the refit and the warmup serve small data alone
        if getattr(config, name) is None:
            decided[name] = len(train) < config.epoch_utterances
    if config.size_tables_to_data:
        trigrams, pairs = distinct_keys(train, config.lowercase, config.max_trigrams)
        for name, keys in (("hash_buckets", trigrams), ("pair_buckets", pairs)):
            configured = getattr(config, name)
            if configured and table_size(keys) < configured:
                decided[name] = table_size(keys)
    return dataclasses.replace(config, **decided), decided


def table_size(keys: int) -> int:
    """Buckets for `keys` distinct keys: a power of two, `BUCKETS_PER_KEY` a key."""
    size = SMALLEST_TABLE
    while size < BUCKETS_PER_KEY * keys:
        size *= 2
    return size


def distinct_keys(train: list, lowercase: bool, max_trigrams: int) -> tuple[int, int]:
    """The distinct letter trigrams (of `#word#`, as `LetterTrigramHashing` cuts them)
    and neighbour pairs (with the utterance's edges) of the training utterances."""
    trigrams, pairs = set(), set()
    for utterance in train:
        words = [w.lower() for w in utterance.tokens] if lowercase else list(utterance.tokens)
        pairs.update(zip(["<s>", *words], [*words, "</s>"]))
        for word in words:
            marked = f"#{word}#"
            trigrams.update(marked[i : i + 3] for i in range(min(len(marked) - 2, max_trigrams)))
    return len(trigrams), len(pairs)


def passes_per_epoch(config: TrainConfig, train_utterances: int) -> int:
    """Passes over the training split in one epoch: enough for `epoch_utterances`."""
    return max(1, -(-config.epoch_utterances // max(train_utterances, 1)))


def silent_failure(validation: dict) -> str | None:
    """A warning for a model that tags nothing: validation slot F1 of 0, or no span
    predicted at all; None for a model that learned something."""
    spans = validation.get("num_predicted_spans")
    if validation.get("slot_f1", 0.0) > 0.0 and spans != 0:
        return None
    what = "predicts no span at all" if spans == 0 else "has validation slot F1 0"
    return (
        f"the saved model {what} on the validation data: it has learned to tag "
        "nothing. Most likely too little training for these settings: label more "
        "utterances, or raise --patience and --epochs; with few utterances "
        "--weight-averaging 0 trains without the weight average"
    )
