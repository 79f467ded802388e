"""Training, validation and held-out utterances of a run (no TensorFlow here, so
the command line reads and checks them before TensorFlow loads)."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from slotkeras import data as sk_data
from slotkeras.config import BUNDLED_TEST, BUNDLED_TRAIN, TrainConfig, reader_options


@dataclass
class Splits:
    train: list
    valid: list
    test: list | None
    test_source: str | None


def held_out_fraction(utterances: list, fraction: float):
    """A fixed share of the utterances for validation: the same for every seed, so
    runs with different seeds are compared on the same data."""
    order = np.random.default_rng(12345).permutation(len(utterances))
    n_valid = max(1, int(round(fraction * len(utterances))))
    valid_idx = set(order[:n_valid].tolist())
    train = [u for i, u in enumerate(utterances) if i not in valid_idx]
    valid = [u for i, u in enumerate(utterances) if i in valid_idx]
    return train, valid


def load_splits(config: TrainConfig) -> Splits:
    """Reads the training data (and validation / held-out data when given)."""
    options = reader_options(config)
    source = Path(config.train)
    test, test_source = None, None
    if source.is_dir() and (source / "train").is_dir():
        splits = sk_data.read_splits(source, **options)
        train = splits["train"]
        valid = splits.get("valid")
        if "test" in splits:
            test, test_source = splits["test"], str(source / "test")
    else:
        train = sk_data.read_utterances(source, **options)
        valid = None
    if config.valid is not None:
        valid = sk_data.read_utterances(config.valid, **options)
    if valid is None:
        if len(train) < 2:
            raise sk_data.DataError(source, "too few utterances to hold out a validation set")
        train, valid = held_out_fraction(train, config.valid_fraction)
    if test is None and os.path.normpath(config.train) == os.path.normpath(BUNDLED_TRAIN):
        if Path(BUNDLED_TEST).is_file():
            test, test_source = sk_data.read_utterances(BUNDLED_TEST), BUNDLED_TEST
    return Splits(train, valid, test, test_source)
