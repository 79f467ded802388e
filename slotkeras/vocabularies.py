"""The vocabularies of a run, fixed on its training split: the 1-of-N lexicon of words,
and the label vocabularies of tags and intents."""

from __future__ import annotations

import collections
from collections.abc import Iterable, Sequence

from slotkeras.layers.argument_checks import check_positive_int


def build_vocabulary(
    token_lists: Iterable[Sequence[str]],
    *,
    lowercase: bool = True,
    min_count: int = 1,
    max_size: int | None = None,
) -> list[str]:
    """The 1-of-N lexicon of a training split: words seen `min_count` times or more,
    most frequent first (ties alphabetical, so the order is deterministic), at most
    `max_size` words. Everything else falls into the "Other" bucket."""
    check_positive_int("min_count", min_count)
    if max_size is not None:
        check_positive_int("max_size", max_size)
    counts = collections.Counter(
        token.lower() if lowercase else token for tokens in token_lists for token in tokens
    )
    words = sorted((w for w, c in counts.items() if c >= min_count), key=lambda w: (-counts[w], w))
    return words[:max_size] if max_size is not None else words


class LabelVocabulary:
    """A list of labels (slot tags or intents) with a fixed order and index lookups.

    For slot tags "O" comes first; the rest are sorted, so two runs on the same data
    give the same ids.
    """

    def __init__(self, labels: Sequence[str]):
        self.labels = list(labels)
        self.index = {label: i for i, label in enumerate(self.labels)}
        if len(self.index) != len(self.labels):
            raise ValueError(f"Duplicate labels in {self.labels!r}.")

    @classmethod
    def from_tags(cls, tag_lists: Iterable[Sequence[str]]) -> LabelVocabulary:
        tags = {tag for tags in tag_lists for tag in tags}
        tags.discard("O")
        return cls(["O"] + sorted(tags))

    @classmethod
    def from_labels(cls, labels: Iterable[str]) -> LabelVocabulary:
        return cls(sorted(set(labels)))

    def __len__(self):
        return len(self.labels)

    def encode(self, labels: Sequence[str], unknown: int | None = None) -> list[int]:
        """Label ids; a label not in the vocabulary gives `unknown` (or raises)."""
        if unknown is None:
            return [self.index[label] for label in labels]
        return [self.index.get(label, unknown) for label in labels]
