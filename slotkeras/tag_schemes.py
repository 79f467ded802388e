"""Tag schemes: the spans of BIO tags (conlleval semantics), and the BIOES tags a model
may learn inside, read back as BIO."""

from __future__ import annotations

from collections.abc import Iterable, Sequence


def iob_spans(tags: Iterable[str]) -> list[tuple[str, int, int]]:
    """The slot spans of a BIO tag sequence, with conlleval semantics.

    A span starts at `B-x`, or at `I-x` when the previous tag is `O` or of
    another type; it ends before `O`, `B-*` or a tag of another type. Any tag
    that is not `B-x` or `I-x` (padding `""`, an unknown-tag token) counts as
    `O`. Bytes (as TensorFlow returns them) are decoded as UTF-8.

    Args:
        tags: the tags of one utterance.

    Returns:
        `(slot, start, end)` tuples, `end` exclusive, in order.

    Example:

    >>> iob_spans(["O", "I-city", "I-city", "B-date", "I-time"])
    [('city', 1, 3), ('date', 3, 4), ('time', 4, 5)]
    """
    spans = []
    slot = None
    start = 0
    position = 0
    for position, tag in enumerate(tags):
        if isinstance(tag, bytes):
            tag = tag.decode("utf-8")
        if isinstance(tag, str) and len(tag) > 2 and tag[:2] in ("B-", "I-"):
            prefix, kind = tag[0], tag[2:]
        else:
            prefix, kind = "O", None
        if slot is not None and (prefix != "I" or kind != slot):
            spans.append((slot, start, position))
            slot = None
        if prefix == "B" or (prefix == "I" and slot is None):
            slot, start = kind, position
    if slot is not None:
        spans.append((slot, start, position + 1))
    return spans


# --------------------------------------------------------------------------
# Format readers
# --------------------------------------------------------------------------


def to_bioes(tags: Sequence[str]) -> list[str]:
    """One utterance's BIO tags in the BIOES scheme that a model may tag with inside:
    a span of one token is `S-x`, a longer one `B-x I-x ... E-x`. Spans are read with
    conlleval semantics (`iob_spans`: an `I-x` may open one), so that
    `output_tag` of each tag gives back a sequence with exactly the same spans.

    >>> to_bioes(["O", "B-city", "I-city", "I-city", "I-date", "O"])
    ['O', 'B-city', 'I-city', 'E-city', 'S-date', 'O']
    """
    out = ["O"] * len(tags)
    for kind, start, end in iob_spans(tags):
        if end - start == 1:
            out[start] = f"S-{kind}"
            continue
        out[start] = f"B-{kind}"
        out[start + 1 : end - 1] = [f"I-{kind}"] * (end - start - 2)
        out[end - 1] = f"E-{kind}"
    return out


def output_tag(tag: str) -> str:
    """The BIO tag that a model's tag stands for in predictions, reports and the
    SavedModel: `S-x` opens a span like `B-x`, and `E-x` continues one like `I-x`, so a
    model tagging in BIOES answers in the scheme of its training data (and a decoded
    `B-x O`, which BIOES forbids, reads as the one-token span it would be in BIO)."""
    if tag[:2] == "S-":
        return "B-" + tag[2:]
    if tag[:2] == "E-":
        return "I-" + tag[2:]
    return tag
