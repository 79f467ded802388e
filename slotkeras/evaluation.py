"""Span-level slot metrics with conlleval semantics (via seqeval) and the report."""

from __future__ import annotations

from collections.abc import Sequence

from seqeval.metrics import f1_score, precision_score, recall_score
from seqeval.metrics.sequence_labeling import get_entities, precision_recall_fscore_support


def slot_f1(gold: Sequence[Sequence[str]], predicted: Sequence[Sequence[str]]) -> float:
    """Micro span F1 in percent (conlleval semantics: an I- tag may open a span)."""
    return 100.0 * f1_score([list(g) for g in gold], [list(p) for p in predicted], zero_division=0)


def evaluate(filler, utterances, predictions=None, batch_size: int = 256) -> dict:
    """The report of a trained `SlotFiller` on `utterances` (with their tags; intents
    are scored when the model and every utterance have one). `predictions`: the
    filler's predictions for them, when already made."""
    if predictions is None:
        predictions = filler.predict([u.tokens for u in utterances], batch_size=batch_size)
    has_intents = bool(filler.intents) and all(u.intent is not None for u in utterances)
    return report(
        [u.tags for u in utterances],
        [p.tags for p in predictions],
        [u.intent for u in utterances] if has_intents else None,
        [p.intent for p in predictions] if has_intents else None,
        known_tags=filler.tags,
    )


def report(
    gold_tags: Sequence[Sequence[str]],
    predicted_tags: Sequence[Sequence[str]],
    gold_intents: Sequence[str | None] | None = None,
    predicted_intents: Sequence[str | None] | None = None,
    known_tags: Sequence[str] | None = None,
) -> dict:
    """The evaluation report, as `evaluate.py --report-json` writes it (its keys are a
    contract: scripts and benchmarks read them); figures in percent.

    Slot types in the gold data that the model never saw in training (not in
    `known_tags`) are still scored (as misses) and listed under `unseen_slots`.
    """
    gold = [list(g) for g in gold_tags]
    pred = [list(p) for p in predicted_tags]
    if len(gold) != len(pred) or any(len(g) != len(p) for g, p in zip(gold, pred)):
        raise ValueError("gold and predicted tag sequences differ in shape")
    tokens = sum(len(g) for g in gold)
    correct_tokens = sum(a == b for g, p in zip(gold, pred) for a, b in zip(g, p))
    result = {
        # A span type never predicted (or never in the gold) scores 0, as in conlleval,
        # without a warning on the user's terminal.
        "slot_f1": 100.0 * f1_score(gold, pred, zero_division=0),
        "slot_precision": 100.0 * precision_score(gold, pred, zero_division=0),
        "slot_recall": 100.0 * recall_score(gold, pred, zero_division=0),
        "token_accuracy": 100.0 * correct_tokens / max(tokens, 1),
        "sentence_accuracy": 100.0 * sum(g == p for g, p in zip(gold, pred)) / max(len(gold), 1),
        "num_utterances": len(gold),
        "num_tokens": tokens,
        "num_predicted_spans": sum(len(get_entities(p)) for p in pred),
    }
    per_slot = {}
    # seqeval orders its per-type rows by sorted span type over gold and predictions.
    types = sorted({kind for seq in gold + pred for kind, _, _ in get_entities(seq)})
    if types:
        p, r, f, s = precision_recall_fscore_support(gold, pred, average=None, zero_division=0)
        for name, pi, ri, fi, si in zip(types, p, r, f, s):
            per_slot[name] = {
                "precision": 100.0 * float(pi),
                "recall": 100.0 * float(ri),
                "f1": 100.0 * float(fi),
                "support": int(si),
            }
    result["per_slot"] = per_slot
    if known_tags is not None:
        known = {tag[2:] for tag in known_tags if tag != "O"}
        result["unseen_slots"] = sorted(
            {tag[2:] for seq in gold for tag in seq if tag != "O"} - known
        )
    if gold_intents is not None and all(i is not None for i in gold_intents) and gold_intents:
        hits = sum(g == p for g, p in zip(gold_intents, predicted_intents))
        result["intent_accuracy"] = 100.0 * hits / len(gold_intents)
    return result


def format_report(result: dict) -> str:
    """The report as an aligned text table, then the summary lines."""
    rows = result["per_slot"]
    width = max([len(name) for name in rows] + [len("slot")])
    lines = [f"{'slot':<{width}}  {'precision':>9}  {'recall':>7}  {'f1':>7}  {'support':>7}"]
    for name in sorted(rows):
        row = rows[name]
        lines.append(
            f"{name:<{width}}  {row['precision']:9.2f}  {row['recall']:7.2f}  "
            f"{row['f1']:7.2f}  {row['support']:7d}"
        )
    lines.append("")
    lines.append(
        f"slot F1 {result['slot_f1']:.2f}  (precision {result['slot_precision']:.2f}, "
        f"recall {result['slot_recall']:.2f})"
    )
    lines.append(f"token accuracy {result['token_accuracy']:.2f}")
    lines.append(f"sentence accuracy {result['sentence_accuracy']:.2f}")
    if "intent_accuracy" in result:
        lines.append(f"intent accuracy {result['intent_accuracy']:.2f}")
    lines.append(f"utterances {result['num_utterances']}")
    if result.get("unseen_slots"):
        lines.append("slot types not seen in training: " + ", ".join(result["unseen_slots"]))
    return "\n".join(lines)
