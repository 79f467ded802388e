"""Linear-chain conditional random field on top of per-token emission scores."""

import keras
import numpy as np
import tensorflow as tf
from keras import initializers

from slotkeras.layers.argument_checks import check_positive_int
from slotkeras.layers.prepared import prepared

# Viterbi keeps, per step, this many best-scoring previous tags as candidates when
# the tag set is large, and checks that nothing outside them can win.
PRUNE_CANDIDATES = 8
# Batches of at most this many sequences take the full Viterbi step, not the pruned one.
SMALL_BATCH = 4
# Time steps per iteration of `decode_with_marginals`'s loop.
UNROLL = 2
# Added to the score of a transition that the tags' notation forbids: no path through
# one can win, and its weight in the marginals, exp(-1e4), is 0 in float32.
FORBIDDEN = -1e4


def _notation(name):
    """(prefix, type) of a BIO or BIOES tag name: ("O", None), ("B", "city"), ...;
    None for a name of neither notation."""
    if name == "O":
        return "O", None
    if len(name) > 2 and name[0] in "BIES" and name[1] == "-":
        return name[0], name[2:]
    return None


def allowed_transitions(tag_names):
    """What a tag sequence in the names' notation may do, as bool arrays
    `(transitions [n, n], start [n], end [n])`: `transitions[i, j]` is whether tag
    `j` may follow tag `i`.

    BIO (no name begins with `E-` or `S-`): `I-x` continues a span, so it follows
    only `B-x` or `I-x`, and no sequence starts with it. BIOES: a span is `S-x`, or
    `B-x`, any `I-x`, `E-x`; so after `B-x` or `I-x` come only `I-x` or `E-x`, and
    `B-`, `S-` or `O` come only at a sequence's start or after `E-`, `S-` or `O`.
    A name of neither notation may be followed and preceded by anything."""
    parsed = [_notation(str(name)) for name in tag_names]
    bioes = any(p is not None and p[0] in "ES" for p in parsed)
    n = len(parsed)
    transitions = np.ones((n, n), bool)
    start, end = np.ones(n, bool), np.ones(n, bool)
    inside = ("B", "I")  # a span that has not ended
    for j, after in enumerate(parsed):
        if after is None:
            continue
        continues = after[0] in (("I", "E") if bioes else ("I",))
        start[j] = not continues
        end[j] = not (bioes and after[0] in inside)
        for i, before in enumerate(parsed):
            if before is None:
                continue
            if continues:
                transitions[i, j] = before[0] in inside and before[1] == after[1]
            elif bioes:
                transitions[i, j] = before[0] not in inside
    return transitions, start, end


def _pruning_structure(allowed):
    """How constrained transitions split the columns for a pruned Viterbi step, or
    None when they do not split so.

    Under BIO or BIOES constraints each tag either starts something (`O`, `B-x`,
    `S-x`: its allowed predecessors are the same rows for all such tags, every tag
    in BIO, `O`, `E-` and `S-` in BIOES) or continues a span (`I-x`, `E-x`: at most
    the two predecessors `B-x` and `I-x`). Pruning over all rows would fail its
    exactness check at every step (a continuing tag whose predecessors are not
    among the best rows scores the penalty), so the starting tags are pruned over
    their allowed rows only and the continuing ones take the max of their two
    predecessors: `(rows, free columns, continuing columns, their predecessors
    [c, 2], order)`, `order` putting `[free, continuing]` back in tag order."""
    n = allowed.shape[0]
    few, free, rows = [], [], None
    for j in range(n):
        before = np.flatnonzero(allowed[:, j])
        if len(before) <= 2:
            # One allowed predecessor counts twice; a tag with none (it cannot
            # occur) takes the penalized transition from itself.
            pair = {0: [j, j], 1: [before[0]] * 2, 2: list(before)}[len(before)]
            few.append((j, pair))
        elif rows is None or np.array_equal(before, rows):
            rows = before
            free.append(j)
        else:
            return None
    if rows is None or len(rows) < PRUNE_CANDIDATES:
        return None
    free_columns = np.array(free, np.int32)
    few_columns = np.array([j for j, _ in few], np.int32)
    predecessors = np.array([sorted(p) for _, p in few], np.int32).reshape(-1, 2)
    order = np.argsort(np.concatenate([free_columns, few_columns])).astype(np.int32)
    return rows.astype(np.int32), free_columns, few_columns, predecessors, order


def _max_plus(delta, transitions):
    """`max_i delta[b, i] + transitions[i, j]` and its argmax `i` (the lowest on
    ties), for every `b` and `j`: one Viterbi step over all tags."""
    candidates = delta[:, :, None] + transitions[None]  # [batch, i, j]
    return (
        tf.reduce_max(candidates, axis=1),
        tf.argmax(candidates, axis=1, output_type=tf.int32),
    )


def _pruned_max_plus(delta, transitions, column_max=None):
    """What `_max_plus` returns, computed from the `PRUNE_CANDIDATES` best previous
    tags of each sequence, and whether it is provably the same answer: `(best,
    best_prev, exact)`.

    A tag `i` outside those has `delta[i] <= d_k` (the k-th best score), so it
    reaches at most `d_k + max_i transitions[i, j]` at tag `j`. Where the best
    candidate beats that bound strictly for every `b` and `j`, no other tag can
    win or tie, and the result is exact. After training the scores are peaked and
    the check passes at nearly every step, and a batch's work drops from `tags x
    tags` to `k x tags` per sequence. `exact` is per sequence `[batch]`, and the
    caller decides what to do where it fails: a decoder runs the full steps again on
    the sequences that failed (one check after its loop costs less than a
    conditional at every step).
    `column_max`, `max_i transitions[i, j]`, is computed when not given (a decoder
    passes it once for all steps).
    """
    # The candidates in ascending tag order, so that the first maximum is the
    # lowest tag among ties, as `_max_plus` chooses.
    top_index = tf.sort(tf.math.top_k(delta, PRUNE_CANDIDATES).indices, axis=1)  # [batch, k]
    top_delta = tf.gather(delta, top_index, batch_dims=1)
    candidates = top_delta[:, :, None] + tf.gather(transitions, top_index)  # [batch, k, j]
    best = tf.reduce_max(candidates, axis=1)
    best_prev = tf.gather(
        top_index, tf.argmax(candidates, axis=1, output_type=tf.int32), batch_dims=1
    )
    if column_max is None:
        column_max = tf.reduce_max(transitions, axis=0)
    bound = tf.reduce_min(top_delta, axis=1, keepdims=True) + column_max
    return best, best_prev, tf.reduce_all(best > bound, axis=1)


def _log_matmul(scores, exp_matrix, column_max):
    """`log sum_i exp(scores[b, i] + M[i, j])` from `exp_matrix = exp(M - column_max)`:
    with the row max of `scores` taken out too, every exponent is <= 0 and each
    column of `exp_matrix` holds a 1, so nothing overflows, and the sum is one
    matrix product instead of a `[batch, tags, tags]` reduction."""
    row_max = tf.reduce_max(scores, axis=-1, keepdims=True)
    summed = tf.matmul(tf.exp(scores - row_max), exp_matrix)
    tiny = tf.constant(1e-30, tf.float32)  # keeps log() finite in extreme cases
    return tf.math.log(summed + tiny) + row_max + tf.expand_dims(column_max, -2)


def _padded_for_unroll(emissions, mask, width, prune):
    """Time-major `emissions` and `mask` padded to one step and whole `UNROLL`-step
    iterations after it (one step at least, so that the first step can be taken before
    the loop); each sequence's length; and a function reversing a time-major tensor
    within each sequence's length."""
    missing = 1 + (tf.maximum(width, 1) - 1 + UNROLL - 1) // UNROLL * UNROLL - width
    emissions = tf.pad(emissions, [[0, missing], [0, 0], [0, 0]])
    mask = tf.pad(mask, [[0, missing], [0, 0]])
    steps, batch = tf.shape(emissions)[0], tf.shape(emissions)[1]
    lengths = tf.reduce_sum(tf.cast(mask, tf.int32), axis=0)
    if prune:
        # On batches, a gather with the reversed indices is cheaper than
        # ReverseSequence.
        time = tf.range(steps)[:, None]
        reversed_time = tf.where(time < lengths[None], lengths[None] - 1 - time, time)
        reversed_index = tf.stack(
            [reversed_time, tf.broadcast_to(tf.range(batch)[None], tf.shape(reversed_time))], -1
        )

        def reverse_within_lengths(x):
            return tf.gather_nd(x, reversed_index)
    else:

        def reverse_within_lengths(x):
            return tf.reverse_sequence(x, lengths, seq_axis=0, batch_axis=1)

    return emissions, mask, lengths, reverse_within_lengths


def _sum_to_one(chain):
    """`chain` `[batch, tags]` rescaled to sum 1 per row. A row whose sum underflows
    to 0 stays 0 (and its marginals 0), not NaN."""
    return tf.math.divide_no_nan(chain, tf.reduce_sum(chain, axis=-1, keepdims=True))


def _backtrack(backpointers, last_tag, steps, batch_size):
    """The best path `[batch, time]` from each step's backpointers (a TensorArray of
    `[batch, tags]`) and the best last tag: tag[t] = backpointers[t + 1][tag[t + 1]],
    walking from the end."""

    def backward(t, tag, path):
        path = path.write(t, tag)
        return t - 1, tf.gather(backpointers.read(t), tag, batch_dims=1), path

    _, _, path = tf.while_loop(
        lambda t, *_: t >= 0,
        backward,
        (steps - 1, last_tag, tf.TensorArray(tf.int32, size=steps, element_shape=[None])),
    )
    return tf.transpose(tf.reshape(path.stack(), [steps, batch_size]), [1, 0])


def _path_score(emissions, tags, mask, transitions, start, end):
    """Score of the given tag path of each sequence, all time steps at once.

    Time-major inputs (`[time, batch, tags]` emissions, `[time, batch]` tags and
    mask). Masked steps are skipped: the transitions join consecutive real tokens,
    wherever the padding is."""
    emissions, tags, mask = (
        tf.transpose(emissions, [1, 0, 2]),
        tf.transpose(tags, [1, 0]),
        tf.transpose(mask, [1, 0]),
    )
    emission_score = tf.reduce_sum(
        tf.where(mask, tf.gather(emissions, tags, batch_dims=2), 0.0), axis=1
    )
    # The real tokens' tags first, in order; one zero column keeps index 0 valid.
    order = tf.argsort(tf.cast(tf.logical_not(mask), tf.int32), axis=1, stable=True)
    real_tags = tf.gather(tags, order, batch_dims=1)
    real_tags = tf.concat([real_tags, tf.zeros([tf.shape(tags)[0], 1], tf.int32)], axis=1)
    lengths = tf.reduce_sum(tf.cast(mask, tf.int32), axis=1)
    pairs = tf.gather_nd(transitions, tf.stack([real_tags[:, :-1], real_tags[:, 1:]], axis=-1))
    joined = tf.sequence_mask(lengths, tf.shape(real_tags)[1])[:, 1:]
    transition_score = tf.reduce_sum(tf.where(joined, pairs, 0.0), axis=1)
    last_tag = tf.gather(real_tags, tf.maximum(lengths - 1, 0), batch_dims=1)
    return (
        tf.gather(start, real_tags[:, 0])
        + emission_score
        + transition_score
        + tf.gather(end, last_tag)
    )


@keras.saving.register_keras_serializable(package="slotkeras")
class CRF(keras.layers.Layer):
    """Linear-chain conditional random field over per-token emission scores.

    The layer holds the transition scores of a linear-chain CRF and scores a
    tag sequence `y` for emission scores `e` (the logits of the layer below,
    `[batch, time, num_tags]`) as

    ```
    score(y) = start[y_0] + sum_t e[t, y_t] + sum_t transitions[y_{t-1}, y_t]
               + end[y_last]
    log p(y | e) = score(y) - logsumexp over all paths y' of score(y')
    ```

    The normaliser comes from the forward algorithm in log space and the best
    path from the Viterbi algorithm; both loop over time only (a TensorFlow
    while loop) and are vectorised over the batch and the tags, so they run
    in a `tf.function` or SavedModel with unknown batch and time sizes and
    under XLA (`jit_compile=True`).

    Calling the layer is the identity: the model's output stays the emission
    scores, and the CRF's weights are trained through `CRFLoss` (which calls
    `log_likelihood`). Use `decode` on the model's output to get tags.

    Args:
        num_tags: Positive integer, number of tags (the last dimension of the
            emission scores).
        transitions_initializer: Initializer for `transitions`,
            `start_transitions` and `end_transitions`. Default: `"zeros"`
            (the log-likelihood is concave in these weights, so no symmetry
            needs breaking; at zero the model starts as a per-token softmax
            tagger).
        tag_names: The name of each tag, in BIO or BIOES notation (`O`, `B-x`,
            `I-x`, `E-x`, `S-x`), or None (the default). With names, `decode`,
            `marginals` and `decode_with_marginals` rule out the transitions the
            notation forbids (`allowed_transitions`), so every decoded sequence is
            well formed (no `I-x` after `O`, no `B-x` left open in BIOES) and
            forbidden paths get no probability. Training (`log_likelihood`) is
            not constrained: the gold sequences are well formed anyway.
        **kwargs: Base layer keyword arguments, such as `name`.

    Weights:
        transitions: `[num_tags, num_tags]`, score of tag `i` followed by
            tag `j` at `[i, j]`.
        start_transitions: `[num_tags]`, score of starting with each tag.
        end_transitions: `[num_tags]`, score of ending with each tag.

    Call arguments:
        emissions: float tensor `[batch, time, num_tags]`, returned unchanged.
        mask: bool tensor `[batch, time]` (optional), passed on unchanged.

    Masking:
        `log_likelihood` and `decode` take a bool `mask` `[batch, time]`, True
        on real tokens. Masked positions are skipped: the sequence is the
        real tokens in order, so right padding (the usual case) and left
        padding both work. A sequence with no real token has log-likelihood 0
        and decodes to all zeros. Padded positions always decode to 0.

    Example:
        >>> crf = CRF(num_tags=5)
        >>> emissions = np.random.randn(2, 7, 5).astype("float32")
        >>> mask = np.arange(7) < np.array([[7], [3]])
        >>> crf(emissions).shape
        (2, 7, 5)
        >>> crf.decode(emissions, mask).shape  # int32, 0 after each length
        TensorShape([2, 7])
        >>> crf.log_likelihood(emissions, np.zeros((2, 7), "int32"), mask).shape
        TensorShape([2])

    References:
        - Lafferty, McCallum and Pereira, "Conditional Random Fields:
          Probabilistic Models for Segmenting and Labeling Sequence Data",
          ICML 2001.
        - Lample et al., "Neural Architectures for Named Entity Recognition",
          NAACL 2016 (the BiLSTM-CRF tagger).
    """

    def __init__(self, num_tags, transitions_initializer="zeros", tag_names=None, **kwargs):
        super().__init__(**kwargs)
        self.num_tags = check_positive_int("num_tags", num_tags)
        self.transitions_initializer = initializers.get(transitions_initializer)
        self.supports_masking = True
        self.tag_names = tag_names

    @property
    def tag_names(self):
        """The tag names whose notation decoding keeps to; None: no constraint.
        Settable (on a loaded model too), before the model's inference functions
        are traced."""
        return None if self._tag_names is None else list(self._tag_names)

    @tag_names.setter
    def tag_names(self, names):
        self._tag_names, self._penalties, self._structure = None, None, None
        if names is None:
            return
        names = [str(name) for name in names]
        if len(names) != self.num_tags:
            raise ValueError(
                "Received an invalid value for argument `tag_names`, expected "
                f"num_tags={self.num_tags} names, got {len(names)}."
            )
        self._tag_names = tuple(names)  # a tuple: Keras tracks lists set on a layer
        allowed = allowed_transitions(names)
        self._penalties = tuple(np.where(a, 0.0, FORBIDDEN).astype("float32") for a in allowed)
        self._structure = _pruning_structure(allowed[0])

    def build(self, input_shape):
        if input_shape is not None and input_shape[-1] not in (None, self.num_tags):
            raise ValueError(
                "Received an invalid value for argument `emissions`, expected "
                f"the last dimension to be num_tags={self.num_tags}, got shape "
                f"{tuple(input_shape)}."
            )
        n = self.num_tags
        self.transitions = self.add_weight(
            shape=(n, n), initializer=self.transitions_initializer, name="transitions"
        )
        self.start_transitions = self.add_weight(
            shape=(n,), initializer=self.transitions_initializer, name="start_transitions"
        )
        self.end_transitions = self.add_weight(
            shape=(n,), initializer=self.transitions_initializer, name="end_transitions"
        )

    def call(self, emissions, mask=None):
        return emissions

    def compute_mask(self, inputs, mask=None):
        return mask

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "num_tags": self.num_tags,
                "transitions_initializer": initializers.serialize(self.transitions_initializer),
                "tag_names": self.tag_names,
            }
        )
        return config

    def prepared_weights(self) -> dict:
        """The marginals' matrix (`_chain_matrix`): laid out once for serving
        (`slotkeras.layers.prepared`), not at every call."""
        return {"chain_matrix": self._chain_matrix()}

    def _chain_matrix(self):
        """`E = exp(transitions - max)`: the forward chain goes through `E` at each
        step and the backward one (the forward chain of the reversed sequence)
        through its transpose. Two products of tags x tags are half the arithmetic
        of one through the block-diagonal `[[E, 0], [0, E^T]]`, which is what a
        batch's loop pays for (docs/experiments/crf_decoding_speed.md)."""
        transitions = self._weights(constrained=True)[0]
        return tf.exp(transitions - tf.reduce_max(transitions))

    def _weights(self, constrained):
        """`transitions`, `start_transitions` and `end_transitions` as float32
        tensors; `constrained`: with the forbidden transitions ruled out."""
        weights = [
            tf.cast(tf.convert_to_tensor(w), tf.float32)
            for w in (self.transitions, self.start_transitions, self.end_transitions)
        ]
        if constrained and self._penalties is not None:
            weights = [w + tf.constant(p) for w, p in zip(weights, self._penalties, strict=True)]
        return weights

    def _prepare(self, emissions, mask, constrained=True):
        """Float32 time-major emissions and mask, plus the weights as tensors (for
        decoding, `constrained`: with the forbidden transitions ruled out)."""
        emissions = tf.convert_to_tensor(emissions)
        if not self.built:
            self.build(emissions.shape)
        emissions = tf.cast(emissions, tf.float32)
        if mask is None:
            mask = tf.ones(tf.shape(emissions)[:2], dtype=tf.bool)
        mask = tf.cast(mask, tf.bool)
        return (
            tf.transpose(emissions, [1, 0, 2]),
            tf.transpose(mask, [1, 0]),
            *self._weights(constrained),
        )

    def _pruned_step(self, transitions):
        """The pruned Viterbi step over `transitions` (with the constraints' penalties):
        `delta -> (best, best_prev, exact)`, as `_pruned_max_plus`. Under BIO/BIOES
        constraints the columns are split as `_pruning_structure` says; the gathers
        of the weights run once, outside the decoder's loop."""
        if self._structure is None:
            column_max = tf.reduce_max(transitions, axis=0)
            return lambda delta: _pruned_max_plus(delta, transitions, column_max)
        rows, free, few, predecessors, order = (tf.constant(x) for x in self._structure)
        free_transitions = tf.gather(tf.gather(transitions, rows), free, axis=1)
        free_max = tf.reduce_max(free_transitions, axis=0)
        few_transitions = tf.gather_nd(
            transitions,
            tf.stack([predecessors, tf.broadcast_to(few[:, None], tf.shape(predecessors))], -1),
        )  # [continuing, 2]

        def step(delta):
            best, best_row, exact = _pruned_max_plus(
                tf.gather(delta, rows, axis=1), free_transitions, free_max
            )
            candidates = tf.gather(delta, predecessors, axis=1) + few_transitions[None]
            which = tf.argmax(candidates, axis=-1, output_type=tf.int32)  # lowest on ties
            best_few = tf.reduce_max(candidates, axis=-1)
            prev_few = tf.where(tf.equal(which, 0), predecessors[:, 0], predecessors[:, 1])
            best = tf.gather(tf.concat([best, best_few], 1), order, axis=1)
            prev = tf.concat([tf.gather(rows, best_row), prev_few], 1)
            return best, tf.gather(prev, order, axis=1), exact

        return step

    def log_likelihood(self, emissions, tags, mask=None):
        """Log-probability of each tag sequence, `log p(tags | emissions)`.

        Args:
            emissions: float tensor `[batch, time, num_tags]`.
            tags: int tensor `[batch, time]`; values at masked positions are
                ignored (they may be -1).
            mask: bool tensor `[batch, time]`, True on real tokens. Default:
                all True.

        Returns:
            float32 tensor `[batch]`, 0 for sequences with no real token.
        """
        emissions, mask, transitions, start, end = self._prepare(emissions, mask, constrained=False)
        tags = tf.transpose(tf.cast(tags, tf.int32), [1, 0])
        tags = tf.where(mask, tags, tf.zeros_like(tags))
        batch_size = tf.shape(emissions)[1]
        step, initial = self._forward_step(transitions, start, batch_size[None])
        alpha, seen = tf.foldl(step, (emissions, mask), initial)
        log_partition = tf.reduce_logsumexp(alpha + end[None], axis=1)
        path_score = _path_score(emissions, tags, mask, transitions, start, end)
        return tf.where(seen, path_score - log_partition, tf.zeros_like(path_score))

    def _forward_step(self, transitions, start, batch_shape):
        """The forward algorithm's step over time-major `(emission, is_real)` and
        its initial `(alpha, seen)`: `alpha[..., b, j]` is the log-sum of the scores
        of all paths of the real tokens so far that end in tag `j`. `transitions`
        `[..., tags, tags]` and `start` `[..., tags]` may carry leading axes (one
        chain each) that `batch_shape` starts with."""
        column_max = tf.reduce_max(transitions, axis=-2)
        exp_transitions = tf.exp(transitions - tf.expand_dims(column_max, -2))
        start = tf.expand_dims(start, -2)

        def step(carry, inputs):
            alpha, seen = carry
            emission, is_real = inputs
            next_alpha = _log_matmul(alpha, exp_transitions, column_max) + emission
            next_alpha = tf.where(seen[..., None], next_alpha, start + emission)
            return tf.where(is_real[..., None], next_alpha, alpha), seen | is_real

        initial = (
            tf.zeros(tf.concat([batch_shape, [self.num_tags]], 0), tf.float32),
            tf.zeros(batch_shape, tf.bool),
        )
        return step, initial

    def marginals(self, emissions, mask=None):
        """Posterior probability of each tag at each token, `p(y_t = j | emissions)`,
        from the forward-backward algorithm.

        Args:
            emissions: float tensor `[batch, time, num_tags]`.
            mask: bool tensor `[batch, time]`, True on real tokens. Default:
                all True.

        Returns:
            float32 tensor `[batch, time, num_tags]`: each real token's row sums to
            1, masked positions are 0.
        """
        emissions, mask, _, start, end = self._prepare(emissions, mask)
        n = self.num_tags
        # One step at least: an empty TensorArray of unknown element shape cannot be
        # stacked. The padding step is masked and cut off again.
        width = tf.shape(emissions)[0]
        missing = tf.maximum(1 - width, 0)
        emissions = tf.pad(emissions, [[0, missing], [0, 0], [0, 0]])
        mask = tf.pad(mask, [[0, missing], [0, 0]])
        # The backward pass is the forward pass of the time-reversed chain (transposed
        # transitions, start and end swapped). Both run in one loop, as a state of
        # 2 x tags (`_chain_matrix`). Marginals need each step's scores only up to a
        # factor, so the state is probabilities rescaled to sum 1 (per chain) at every
        # step: a product, a sum and a division, where log-sum-exp takes twice the ops.
        scores = tf.concat([emissions, tf.reverse(emissions, [0])], axis=-1)  # [t, b, 2n]
        real = tf.stack([mask, tf.reverse(mask, [0])], axis=-1)  # [t, b, 2]
        matrix = prepared(self, "chain_matrix", self._chain_matrix)
        steps, batch = tf.shape(scores)[0], tf.shape(scores)[1]
        halves = tf.reshape(scores, [steps, batch, 2, n])
        weights = tf.exp(halves - tf.reduce_max(halves, axis=-1, keepdims=True))
        first = tf.reshape(tf.stack([start, end]), [1, 1, 2, n]) + halves
        first = tf.exp(first - tf.reduce_max(first, axis=-1, keepdims=True))
        tiny = tf.constant(1e-30, tf.float32)

        def chained(state):  # [b, 2, n]: the forward chain through E, the backward through E^T
            return tf.stack(
                [tf.matmul(state[:, 0], matrix), tf.matmul(state[:, 1], matrix, transpose_b=True)],
                axis=1,
            )

        def step(t, state, seen, states):  # state [b, 2, n], seen [b, 2]
            is_real = real[t]
            following = tf.where(seen[..., None], chained(state) * weights[t], first[t])
            following = following / (tf.reduce_sum(following, axis=-1, keepdims=True) + tiny)
            state = tf.where(is_real[..., None], following, state)
            return t + 1, state, seen | is_real, states.write(t, state)

        _, _, _, states = tf.while_loop(
            lambda t, *_: t < steps,
            step,
            (
                0,
                tf.zeros([batch, 2, n]),
                tf.zeros([batch, 2], tf.bool),
                tf.TensorArray(tf.float32, size=steps, element_shape=[None, 2, n]),
            ),
        )
        states = states.stack()
        forward, reversed_backward = states[:, :, 0], states[:, :, 1]
        # Reversed, the backward chain's weights include each token's own emission.
        backward = tf.reverse(reversed_backward / (weights[:, :, 1] + tiny), [0])
        product = forward * backward
        marginals = product / (tf.reduce_sum(product, axis=-1, keepdims=True) + tiny)
        marginals = tf.where(mask[:, :, None], marginals, 0.0)
        return tf.transpose(marginals, [1, 0, 2])[:, :width]

    def decode(self, emissions, mask=None):
        """Most likely tag sequence of each example (Viterbi).

        Args:
            emissions: float tensor `[batch, time, num_tags]`.
            mask: bool tensor `[batch, time]`, True on real tokens. Default:
                all True.

        Returns:
            int32 tensor `[batch, time]`, 0 at masked positions.
        """
        if self.num_tags <= 2 * PRUNE_CANDIDATES:
            return self._viterbi(emissions, mask, carry_paths=False)
        # Pruning pays on batches; on a few sequences the full step is fewer ops, and
        # carrying each tag's best path forwards saves the backtrace loop.
        return tf.cond(
            tf.shape(emissions)[0] <= SMALL_BATCH,
            lambda: self._viterbi(emissions, mask, carry_paths=True),
            lambda: self._viterbi(emissions, mask, carry_paths=False, prune=True),
        )

    def decode_with_marginals(self, emissions, mask=None):
        """`decode` and `marginals` together, in one loop over time: what serving
        needs, the best path and each tag's posterior, at the cost of little more
        than `decode` alone (docs/experiments/crf_decoding_speed.md). A served utterance's time is
        mostly the number of ops run, and one loop runs the loop's own ops and the
        per-step slicing once instead of twice.

        Args:
            emissions: float tensor `[batch, time, num_tags]`.
            mask: bool tensor `[batch, time]` of right padding: True on the first
                tokens of each sequence, False after them. Default: all True.

        Returns:
            `(tags, marginals)`: what `decode` and `marginals` return for the same
            right-padded input.
        """
        return self._decode_in_one_loop(emissions, mask, chosen_only=False)

    def decode_with_probabilities(self, emissions, mask=None):
        """`decode`, and the posterior probability of each decoded tag: what
        `decode_with_marginals` gives, with the marginals of the other tags left
        out (serving returns only these, and skipping the rest saves a few passes
        over a `[batch, time, tags]` tensor).

        Args:
            emissions: float tensor `[batch, time, num_tags]`.
            mask: bool tensor `[batch, time]` of right padding. Default: all True.

        Returns:
            `(tags, probabilities)`: int32 and float32 `[batch, time]`, 0 on padding.
        """
        return self._decode_in_one_loop(emissions, mask, chosen_only=True)

    def _decode_in_one_loop(self, emissions, mask, chosen_only):
        if self.num_tags <= 2 * PRUNE_CANDIDATES:
            return self._fused(emissions, mask, prune=False, chosen_only=chosen_only)
        return tf.cond(
            tf.shape(emissions)[0] <= SMALL_BATCH,
            lambda: self._fused(emissions, mask, prune=False, chosen_only=chosen_only),
            lambda: self._fused(emissions, mask, prune=True, chosen_only=chosen_only),
        )

    def _fused(self, emissions, mask, prune, chosen_only=False):
        """`decode_with_marginals` (`chosen_only`: `decode_with_probabilities`);
        `prune` for batches: pruned Viterbi steps and backpointers walked back after
        the loop, where a few sequences carry each tag's best path forwards (as
        `_viterbi` does). Its steps: the inputs padded to whole unrolled iterations,
        the chains' inputs, one loop for Viterbi and both chains, and the tags and
        marginals read off its results."""
        given = (emissions, mask)
        emissions, mask, transitions, start, end = self._prepare(emissions, mask)
        width = tf.shape(emissions)[0]
        emissions, mask, lengths, reverse_within_lengths = _padded_for_unroll(
            emissions, mask, width, prune
        )
        # The backward chain is the forward chain of each sequence reversed within
        # its length, so both start at step 0 and run over real tokens first; past
        # a sequence's end they go on over padding, which nothing reads. Each chain
        # is rescaled at every step to sum 1. Their weights are each token's
        # emissions, exp(emission - its max), in the forward chain's order and,
        # reversed within each sequence, in the backward chain's.
        weights = tf.exp(emissions - tf.reduce_max(emissions, axis=-1, keepdims=True))
        inputs, first_forward, first_backward = self._chain_inputs(
            emissions, mask, weights, lengths, start, end, reverse_within_lengths
        )
        delta, history, forwards, backwards, exact = self._fused_loop(
            emissions, inputs, transitions, start, first_forward, first_backward, prune
        )
        steps, batch = tf.shape(emissions)[0], tf.shape(emissions)[1]
        last_tag = tf.argmax(delta + end[None], axis=1, output_type=tf.int32)
        if prune:
            tags = _backtrack(history, last_tag, steps, batch)[:, :width]
            tags = self._unproven_decoded_again(tags, exact, *given)
        else:
            tags = tf.gather(history, last_tag, batch_dims=1)[:, :width]  # [batch, time]
        tags = tf.where(tf.transpose(mask[:width], [1, 0]), tags, tf.zeros_like(tags))
        # Reversed, the backward chain's weights include each token's own emission.
        forward = forwards.stack()
        backward = tf.math.divide_no_nan(reverse_within_lengths(backwards.stack()), weights)
        product = (forward * backward)[:width]  # [time, batch, tags], up to a factor per token
        total = tf.reduce_sum(product, axis=-1, keepdims=True)
        real = mask[:width]
        if chosen_only:
            chosen = tf.gather(product, tf.transpose(tags), batch_dims=2)  # [time, batch]
            chosen = tf.math.divide_no_nan(chosen, total[..., 0])
            return tags, tf.transpose(tf.where(real, chosen, 0.0))
        marginals = tf.math.divide_no_nan(product, total)
        marginals = tf.where(real[:, :, None], marginals, 0.0)
        return tags, tf.transpose(marginals, [1, 0, 2])

    def _chain_inputs(self, emissions, mask, weights, lengths, start, end, reverse):
        """Each step's inputs (emission, both chains' weights, real) as one TensorArray,
        and the two chains' first steps."""
        # One tensor read from one TensorArray: every tensor a while loop captures costs
        # a few ops at each iteration, and a read costs fewer than slicing a tensor at a
        # loop index.
        n = self.num_tags
        steps, batch = tf.shape(emissions)[0], tf.shape(emissions)[1]
        packed = tf.concat(
            [emissions, weights, reverse(weights), tf.cast(mask, tf.float32)[..., None]],
            axis=-1,
        )
        inputs = tf.TensorArray(tf.float32, size=steps, element_shape=[None, 3 * n + 1])
        inputs = inputs.unstack(packed)
        # The backward chain starts at each sequence's last token (the first, where
        # there is none).
        last = tf.gather_nd(emissions, tf.stack([tf.maximum(lengths - 1, 0), tf.range(batch)], 1))
        first = tf.stack([start + emissions[0], end + last], 1)  # [b, 2, n]
        first = tf.exp(first - tf.reduce_max(first, axis=-1, keepdims=True))
        return inputs, _sum_to_one(first[:, 0]), _sum_to_one(first[:, 1])

    def _fused_loop(
        self, emissions, inputs, transitions, start, first_forward, first_backward, prune
    ):
        """One while loop, `UNROLL` steps an iteration, of Viterbi (pruned or full) and
        both chains. Returns the last step's scores, the backpointers (pruned) or best
        paths (full), both chains' steps and, pruned, which sequences were proven exact."""
        n = self.num_tags
        steps, batch = tf.shape(emissions)[0], tf.shape(emissions)[1]
        matrix = prepared(self, "chain_matrix", self._chain_matrix)
        identity = tf.broadcast_to(tf.range(n, dtype=tf.int32)[None], [batch, n])
        pruned_step = self._pruned_step(transitions) if prune else None
        if prune:  # backpointers of every step
            history = tf.TensorArray(tf.int32, size=steps, element_shape=tf.TensorShape([None, n]))
            history, history_shape = history.write(0, identity), None
        else:  # the best path into every tag, [batch, tags, steps so far]
            history, history_shape = identity[:, :, None], tf.TensorShape([None, n, None])
        last_step = identity[:, :, None]

        def step(t, delta, history, forward, backward, forwards, backwards, exact):
            # UNROLL steps per iteration: a loop's own ops, a few per loop variable
            # and captured tensor, run once per iteration.
            for u in [t + k for k in range(UNROLL)]:
                emission, weight, reversed_weight, real = tf.split(
                    inputs.read(u), [n, n, n, 1], axis=-1
                )
                is_real = real > 0
                if prune:
                    best, best_prev, proven = pruned_step(delta)
                    exact = tf.logical_and(
                        exact, tf.logical_or(proven, tf.logical_not(is_real[:, 0]))
                    )
                else:
                    best, best_prev = _max_plus(delta, transitions)
                delta = tf.where(is_real, best + emission, delta)
                backpointer = tf.where(is_real, best_prev, tf.range(n))
                if prune:
                    history = history.write(u, backpointer)
                else:
                    history = tf.concat(
                        [tf.gather(history, backpointer, batch_dims=1), last_step], axis=2
                    )
                # E forwards, its transpose backwards (`_chain_matrix`).
                forward = _sum_to_one(tf.matmul(forward, matrix) * weight)
                backward = tf.matmul(backward, matrix, transpose_b=True) * reversed_weight
                backward = _sum_to_one(backward)
                forwards, backwards = forwards.write(u, forward), backwards.write(u, backward)
            return t + UNROLL, delta, history, forward, backward, forwards, backwards, exact

        chains = [
            tf.TensorArray(tf.float32, size=steps, element_shape=[None, n]).write(0, first)
            for first in (first_forward, first_backward)
        ]
        _, delta, history, _, _, forwards, backwards, exact = tf.while_loop(
            lambda t, *_: t < steps,
            step,
            (
                1,
                start[None] + emissions[0],
                history,
                first_forward,
                first_backward,
                *chains,
                tf.ones([batch], tf.bool),
            ),
            shape_invariants=(
                tf.TensorShape([]),
                tf.TensorShape([None, n]),
                history_shape,
                tf.TensorShape([None, n]),
                tf.TensorShape([None, n]),
                None,
                None,
                tf.TensorShape([None]),
            ),
        )
        return delta, history, forwards, backwards, exact

    def _unproven_decoded_again(self, tags, exact, emissions, mask):
        """`tags` (`[batch, time]`, from pruned steps) with the sequences whose pruned
        steps were not all proven exact (`exact` False) decoded again by full steps.
        Only those rows run again: a trained model's scores leave a step unproven
        now and then, and rerunning the whole batch ran the full steps for most
        batches of a few dozen utterances (docs/experiments/crf_decoding_speed.md)."""
        emissions = tf.convert_to_tensor(emissions)
        if mask is None:
            mask = tf.ones(tf.shape(emissions)[:2], tf.bool)
        mask = tf.cast(mask, tf.bool)

        def again():
            rows = tf.where(tf.logical_not(exact))  # [unproven, 1]
            some_emissions, some_mask = tf.gather_nd(emissions, rows), tf.gather_nd(mask, rows)
            paths = tf.cond(
                tf.shape(rows)[0] <= SMALL_BATCH,
                lambda: self._viterbi(some_emissions, some_mask, carry_paths=True),
                lambda: self._viterbi(some_emissions, some_mask, carry_paths=False),
            )
            return tf.tensor_scatter_nd_update(tags, rows, paths)

        return tf.cond(tf.reduce_all(exact), lambda: tags, again)

    def _viterbi(self, emissions, mask, carry_paths, prune=False):
        """`decode` with `_max_plus` steps (or `_pruned_max_plus`, `prune`). The best
        path comes from backpointers walked back from the end, or (`carry_paths`)
        from the best path into every tag, extended at each step: `[batch, tags,
        time]` integers, cheap for a few sequences."""
        given = (emissions, mask)
        emissions, mask, transitions, start, end = self._prepare(emissions, mask)
        batch_size = tf.shape(emissions)[1]
        n = self.num_tags
        identity = tf.broadcast_to(tf.range(n, dtype=tf.int32)[None], [batch_size, n])
        pruned_step = self._pruned_step(transitions) if prune else None
        steps = tf.shape(emissions)[0]
        if carry_paths:
            history = tf.zeros([batch_size, n, 0], tf.int32)
            history_shape = tf.TensorShape([None, n, None])
        else:
            # Backpointers of every step; tf.scan would also stack every step's scores.
            history = tf.TensorArray(tf.int32, size=steps, element_shape=tf.TensorShape([None, n]))
            history_shape = None

        def forward(t, delta, seen, history, exact):
            emission, is_real = emissions[t], mask[t]
            if prune:
                best, best_prev, proven = pruned_step(delta)
                # Only the steps that extend a path count (the others start one).
                counted = tf.logical_and(is_real, seen)
                exact = tf.logical_and(exact, tf.logical_or(proven, tf.logical_not(counted)))
            else:
                best, best_prev = _max_plus(delta, transitions)
            next_delta = tf.where(seen[:, None], best + emission, start[None] + emission)
            # Skipped steps and first steps point back to the same tag, so
            # the backtrace carries the tag through padding unchanged.
            backpointer = tf.where((is_real & seen)[:, None], best_prev, identity)
            if carry_paths:
                history = tf.concat(
                    [tf.gather(history, backpointer, batch_dims=1), identity[:, :, None]], axis=2
                )
            else:
                history = history.write(t, backpointer)
            next_delta = tf.where(is_real[:, None], next_delta, delta)
            return t + 1, next_delta, seen | is_real, history, exact

        initial = (
            0,
            tf.zeros([batch_size, n]),
            tf.zeros([batch_size], tf.bool),
            history,
            tf.ones([batch_size], tf.bool),
        )
        _, last_delta, _, history, exact = tf.while_loop(
            lambda t, *_: t < steps,
            forward,
            initial,
            shape_invariants=None
            if history_shape is None
            else (
                tf.TensorShape([]),
                tf.TensorShape([None, n]),
                tf.TensorShape([None]),
                history_shape,
                tf.TensorShape([None]),
            ),
        )
        # (With no time steps at all the initial scores stand in for the last.)
        last_tag = tf.argmax(last_delta + end[None], axis=1, output_type=tf.int32)
        if carry_paths:
            path = tf.gather(history, last_tag, batch_dims=1)  # [batch, time]
        elif prune:
            # Where a pruned step was not proven exact, the full steps decide.
            path = _backtrack(history, last_tag, steps, batch_size)
            path = self._unproven_decoded_again(path, exact, *given)
        else:
            path = _backtrack(history, last_tag, steps, batch_size)
        return tf.where(tf.transpose(mask, [1, 0]), path, tf.zeros_like(path))


@keras.saving.register_keras_serializable(package="slotkeras")
class CRFLoss(keras.losses.Loss):
    """Negative log-likelihood of the gold tags under a `CRF` layer.

    Args:
        crf: The `CRF` layer whose transitions score the paths (the layer the
            model's output comes from).
        name: Name of the loss. Default: `"crf_loss"`.
        **kwargs: Base loss keyword arguments (`reduction`, `dtype`). The
            default reduction averages the per-sequence losses over the batch.

    Call arguments:
        y_true: int tensor `[batch, time]`, gold tags, -1 on padding.
        y_pred: float tensor `[batch, time, num_tags]`, the emission scores.

    Masking:
        Padding is read from `y_true` (`y_true >= 0` marks real tokens); any
        Keras mask on `y_pred` is not applied to the per-sequence losses.

    Saving:
        The loss holds a layer, which a config cannot carry. A model compiled
        with it saves and loads, but the reloaded loss is unbound: compile the
        reloaded model again with `CRFLoss(model.get_layer(crf_name))` before
        `fit` or `evaluate`.

    Example:
        >>> model.compile("adam", loss=CRFLoss(model.get_layer("crf")))
    """

    def __init__(self, crf, name="crf_loss", **kwargs):
        super().__init__(name=name, **kwargs)
        if crf is not None and not isinstance(crf, CRF):
            raise ValueError(
                f"Received an invalid value for argument `crf`, expected a CRF layer, got {crf}."
            )
        self.crf = crf
        self._crf_name = None if crf is None else crf.name

    def __call__(self, y_true, y_pred, sample_weight=None):
        # A [batch, time] Keras mask on y_pred would be applied to the
        # [batch] losses; y_true already carries the padding.
        return super().__call__(y_true, tf.identity(y_pred), sample_weight)

    def call(self, y_true, y_pred):
        if self.crf is None:
            raise ValueError(
                f"This CRFLoss was rebuilt from a config and holds no CRF layer (it was "
                f"bound to the layer named {self._crf_name!r}). Compile the model again "
                "with `CRFLoss(model.get_layer(name))`."
            )
        y_true = tf.cast(y_true, tf.int32)
        mask = y_true >= 0
        return -self.crf.log_likelihood(y_pred, y_true, mask)

    def get_config(self):
        config = super().get_config()
        config["crf_name"] = self._crf_name
        return config

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        crf_name = config.pop("crf_name", None)
        loss = cls(None, **config)
        loss._crf_name = crf_name
        return loss
