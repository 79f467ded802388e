"""How far span confidences can be trusted: the expected calibration error (ECE).

A predicted span is correct when a gold span has the same slot type and the same
tokens (conlleval's span matching). Spans are binned by confidence into equal-width
bins; the ECE is the mean gap between each bin's accuracy and its mean confidence,
weighted by the bin's share of the spans (Guo et al. 2017, "On Calibration of Modern
Neural Networks"). 0 is perfect; a model that says 0.9 and is right half of the time
scores 40 on those spans.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from slotkeras.tag_schemes import iob_spans


def span_outcomes(gold_tags: Sequence[Sequence[str]], predictions) -> tuple[np.ndarray, np.ndarray]:
    """The confidence of every predicted span and whether it is correct."""
    confidences, correct = [], []
    for gold, prediction in zip(gold_tags, predictions, strict=True):
        gold_spans = set(iob_spans(gold))
        for span in prediction.spans(exact=True):
            confidences.append(span["confidence"])
            correct.append((span["slot"], span["token_start"], span["token_end"]) in gold_spans)
    return np.asarray(confidences, np.float64), np.asarray(correct, bool)


def reliability(gold_tags: Sequence[Sequence[str]], predictions, bins: int = 10) -> dict:
    """The report's `span_calibration`: `expected_calibration_error` (percent),
    `spans`, and per confidence bin its `lower`/`upper` edges, `count`, mean
    `confidence` and `accuracy` (both in [0, 1])."""
    confidences, correct = span_outcomes(gold_tags, predictions)
    edges = np.linspace(0.0, 1.0, bins + 1)
    # Bin i holds (edges[i], edges[i + 1]]; a confidence of exactly 0 joins the first.
    index = np.clip(np.searchsorted(edges, confidences, side="left") - 1, 0, bins - 1)
    rows, error = [], 0.0
    for i in range(bins):
        inside = index == i
        count = int(inside.sum())
        row = {"lower": float(edges[i]), "upper": float(edges[i + 1]), "count": count}
        if count:
            row["confidence"] = float(confidences[inside].mean())
            row["accuracy"] = float(correct[inside].mean())
            error += count * abs(row["accuracy"] - row["confidence"])
        rows.append(row)
    total = len(confidences)
    return {
        "expected_calibration_error": 100.0 * error / total if total else 0.0,
        "spans": total,
        "bins": rows,
    }
