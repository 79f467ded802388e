"""What to label next: unlabelled utterances ordered by how unsure the model is of them.

Three measures (`BY`), higher meaning less sure:

- `span`: 1 - the lowest confidence among the utterance's decisions: each predicted
  span's confidence (its tokens' mean marginal, as `predict` reports it), the
  probability of "O" at each token outside a span (a slot the model may have
  missed), and the intent's probability;
- `span-sum`: the expected number of those decisions that are wrong, the sum of
  1 - confidence over them: it prefers utterances with more to correct, where `span`
  looks at the weakest decision alone;
- `entropy`: the mean, over the utterance's tokens, of the entropy of each token's
  tag marginals (the CRF's forward-backward marginals, or the softmax's
  probabilities), in nats. Marks the tokenizer split off that the training data
  never had are "O" by rule: entropy 0.

`rank` keeps only the `top` most uncertain as it goes (a heap), so a pool of any
size is ranked in constant memory; the command writes them, most uncertain first, as
a Label Studio import with the model's pre-annotations (slotkeras.prediction_writers).
bench/active_learning.py measures which measure finds the utterances worth labelling.
"""

from __future__ import annotations

import heapq
from collections.abc import Iterable

from slotkeras.prediction_writers import decision_confidences, utterance_score

BY = ("span", "entropy", "span-sum")


def span_uncertainty(predictions) -> list[float]:
    return [1.0 - utterance_score(p) for p in predictions]


def expected_errors(predictions) -> list[float]:
    """Each prediction's expected number of wrong decisions: the sum over its
    `decision_confidences` of 1 - confidence."""
    return [float(sum(1.0 - c for c in decision_confidences(p))) for p in predictions]


def entropy_uncertainty(filler, token_lists) -> list[float]:
    """Mean token-marginal entropy of each pre-tokenized utterance (0 for an empty one)."""
    import numpy as np

    if not token_lists:
        return []
    marginals, forced = _marginals(filler)(_padded(token_lists))
    marginals, forced = marginals.numpy(), forced.numpy()
    out = []
    for row, tokens in enumerate(token_lists):
        if not tokens:
            out.append(0.0)
            continue
        p = np.clip(marginals[row, : len(tokens)].astype(np.float64), 1e-12, 1.0)
        entropy = -(p * np.log(p)).sum(axis=-1)
        entropy[forced[row, : len(tokens)]] = 0.0
        out.append(float(entropy.mean()))
    return out


def _padded(token_lists):
    from slotkeras.datasets import pad_tokens

    return pad_tokens([list(tokens) or [""] for tokens in token_lists]).astype(str)


_compiled = {}


def _marginals(filler):
    """A compiled function from padded tokens to (marginals [b, t, tags], forced [b, t])."""
    if id(filler) in _compiled and _compiled[id(filler)][0] is filler:
        return _compiled[id(filler)][1]
    import tensorflow as tf

    from slotkeras.decoding import find_crf

    crf = find_crf(filler.model)

    def marginals(tokens):
        mask = tf.not_equal(tokens, "")
        with filler.prepared.scope():
            slots = filler.model(tokens, training=False)["slots"]
        if crf is not None:
            probabilities = crf.marginals(slots, mask)
        else:
            probabilities = tf.cast(slots, tf.float32)
        forced = tf.logical_and(filler.tokenizer.unseen_marks(tokens), mask)
        return probabilities, forced

    compiled = tf.function(
        marginals, input_signature=[tf.TensorSpec([None, None], tf.string)], reduce_retracing=True
    )
    _compiled[id(filler)] = (filler, compiled)
    return compiled


def uncertainties(filler, predictions, by: str) -> list[float]:
    """Each prediction's uncertainty by `by` (one of `BY`)."""
    if by == "span":
        return span_uncertainty(predictions)
    if by == "span-sum":
        return expected_errors(predictions)
    if by == "entropy":
        return entropy_uncertainty(filler, [p.tokens for p in predictions])
    raise ValueError(
        f"Received an invalid value for argument `by`, expected one of {BY}, got {by!r}."
    )


def rank(batches: Iterable[list], filler, by: str, top: int) -> list[tuple[float, object]]:
    """The `top` most uncertain predictions of `batches` (lists of predictions, in
    pool order), most uncertain first as `(uncertainty, prediction)`; ties keep the
    pool's order. Empty utterances are left out."""
    heap, position = [], 0  # (uncertainty, -position, prediction): the least kept on top
    for predictions in batches:
        scores = uncertainties(filler, predictions, by)
        for prediction, score in zip(predictions, scores, strict=True):
            position += 1
            if not prediction.tokens:
                continue
            item = (score, -position, prediction)
            if len(heap) < top:
                heapq.heappush(heap, item)
            elif item[:2] > heap[0][:2]:
                heapq.heapreplace(heap, item)
    ordered = sorted(heap, key=lambda item: (-item[0], -item[1]))
    return [(score, prediction) for score, _, prediction in ordered]


def least_sure(values: list[float], top: int) -> list[int]:
    """The indices of the `top` largest values, largest first (ties: the earlier)."""
    order = sorted(range(len(values)), key=lambda i: (-values[i], i))
    return order[:top]
