"""The model factory: word encoder -> recurrent stack -> slot (and intent) heads."""

from __future__ import annotations

from collections.abc import Sequence

import keras
import numpy as np

from slotkeras.config import (
    ENCODINGS,
    KINDS,
    OUTPUTS,
    TrainConfig,
    default_output_layer,
    default_pair_buckets,
    default_slot_intent_feedback,
)
from slotkeras.layers.fused_lstm import FusedLSTM
from slotkeras.layers.hashed_word_embedding import HashedWordEmbedding
from slotkeras.layers.masked_pooling import MaskedPooling
from slotkeras.layers.utterance_context import BroadcastToTokens, PaddingMask

# build_tagger's defaults are those of a run's config: one place for both.
_DEFAULT = TrainConfig()
__all__ = ["ENCODINGS", "KINDS", "OUTPUTS", "build_end_to_end", "build_tagger", "tagger_options"]


def _invalid(name, value, expected):
    return ValueError(
        f"Received an invalid value for argument `{name}`, expected {expected}, got {value!r}."
    )


def recurrent_layer(kind: str, units: int, name: str, seed: int | None = None):
    """One layer of the given kind returning a sequence (the lecture's networks).

    Built-in LSTM and GRU keep their default activations and no recurrent dropout,
    so that on a GPU Keras runs their fused cuDNN kernels; the LSTM is the built-in
    one with a fused inference path on CPU (`FusedLSTM`).
    """
    if kind == "elman":
        return keras.layers.SimpleRNN(units, return_sequences=True, name=name, seed=seed)
    if kind == "gru":
        return keras.layers.GRU(units, return_sequences=True, name=name, seed=seed)
    if kind == "lstm":
        return FusedLSTM(units, return_sequences=True, name=name, seed=seed)
    if kind == "jordan":
        from slotkeras.layers import JordanRNN

        return JordanRNN(units, return_sequences=True, name=name)
    if kind == "peephole_lstm":
        from slotkeras.layers import PeepholeLSTM

        return PeepholeLSTM(units, return_sequences=True, name=name)
    raise _invalid("model", kind, f"one of {', '.join(KINDS)}")


def build_tagger(
    *,
    num_tags: int,
    vocabulary_size: int,
    num_intents: int = 0,
    model: str = _DEFAULT.model,
    bidirectional: bool = _DEFAULT.bidirectional,
    layers: int = _DEFAULT.layers,
    units: int = _DEFAULT.units,
    encoding: str = _DEFAULT.encoding,
    embedding_dim: int = _DEFAULT.embedding_dim,
    hash_buckets: int = _DEFAULT.hash_buckets,
    hash_dim: int = _DEFAULT.hash_dim,
    max_trigrams: int = _DEFAULT.max_trigrams,
    char_filters: int = _DEFAULT.char_filters,
    pair_buckets: int | None = None,
    pair_dim: int = _DEFAULT.pair_dim,
    dropout: float = _DEFAULT.dropout,
    variational_dropout: bool = _DEFAULT.variational_dropout,
    output: str | None = None,
    slot_intent_feedback: bool | None = None,
    seed: int | None = None,
    tag_names: Sequence[str] | None = None,
    word_vectors=None,
    name: str = "tagger",
) -> keras.Model:
    """Builds a slot tagger as a functional Keras model with every layer named.

    Inputs (dict, as `slotkeras.layers.TokenFeaturizer` makes them): `word_ids` int
    `[batch, time]` (1-of-N indices, 0 = padding, 1 = "Other"), `trigram_ids` int
    `[batch, time, max_trigrams]` (hashed letter trigrams, 0 = none). Outputs (dict):
    `slots` `[batch, time, num_tags]` (softmax probabilities, or the CRF's emission
    scores) and, when `num_intents > 0`, `intent` `[batch, num_intents]`.

    The defaults are those of `slotkeras.config.TrainConfig`; `tagger_options(config)`
    gives the arguments of a run.

    Args:
        num_tags: number of slot tags (BIO).
        vocabulary_size: number of 1-of-N indices (padding + "Other" + lexicon).
        num_intents: number of intents; 0 builds no intent head.
        model: one of `KINDS`; "feedforward" has no memory (the lecture's baseline
            that cannot tell "arrive Taipei" from "leave Taipei").
        bidirectional: run each recurrent layer forwards and backwards and
            concatenate (ignored by "feedforward", which sees one word at a time).
        layers: number of stacked recurrent (or dense) layers.
        units: units per layer and direction.
        encoding: "onehot" (1-of-N with "Other"), "hash" (letter trigrams) or "both".
        embedding_dim: width of the 1-of-N embedding.
        hash_buckets, hash_dim, max_trigrams: word hashing settings.
        char_filters: filters of a CNN over each word's trigrams in order
            (`TrigramCNN`), beside the encoding; 0: none.
        pair_buckets, pair_dim: hash buckets and width of the embeddings of each
            word's pairs with its neighbours (`NeighbourPairEmbedding`); 0 buckets: none;
            None: 65,536, and none for "feedforward" (which sees one word at a time).
        dropout: dropout rate on the word vectors and between layers.
        variational_dropout: drop the same units at every word of an utterance
            (one mask per utterance, Gal & Ghahramani 2016) instead of a new mask
            per word.
        output: "softmax" (per-token) or "crf" (linear-chain CRF, Viterbi decoding);
            None: softmax for "feedforward" (the lecture's baseline), crf otherwise.
        slot_intent_feedback: with an intent head, feed the utterance vector back
            into every token's slot classifier; None: off for "feedforward", on
            otherwise.
        seed: seed of the dropout layers.
        tag_names: each tag's name (BIO or BIOES); with the CRF output, decoding
            keeps to the transitions their notation allows (`CRF`'s `tag_names`).
        word_vectors: pretrained vectors `[words, dim]` (`slotkeras.word_vectors`):
            an input `vector_ids` (0: none, i: row i - 1) looks them up in a frozen
            embedding beside the others; None: no such input.
        name: model name.
    """
    if model not in KINDS:
        raise _invalid("model", model, f"one of {', '.join(KINDS)}")
    output = default_output_layer(model) if output is None else output
    if slot_intent_feedback is None:
        slot_intent_feedback = default_slot_intent_feedback(model)
    if pair_buckets is None:
        pair_buckets = default_pair_buckets(model)
    _check_arguments(encoding, output, layers, units, num_tags, dropout)

    word_ids = keras.Input(shape=(None,), dtype="int32", name="word_ids")
    trigram_ids = keras.Input(shape=(None, max_trigrams), dtype="int32", name="trigram_ids")
    mask = PaddingMask(name="padding_mask")(word_ids)
    inputs = {"word_ids": word_ids, "trigram_ids": trigram_ids}
    x = _word_vectors(
        word_ids, trigram_ids, encoding, vocabulary_size, embedding_dim, hash_buckets, hash_dim
    )
    if word_vectors is not None:
        x = _with_pretrained(x, inputs, word_vectors)
    x = _with_context_features(
        x, word_ids, trigram_ids, hash_buckets, char_filters, pair_buckets, pair_dim
    )
    # (batch, 1, features): one mask per utterance, broadcast over its words.
    noise_shape = (None, 1, None) if variational_dropout else None
    x = keras.layers.Dropout(dropout, noise_shape=noise_shape, seed=seed, name="word_dropout")(x)

    x = _stack(x, mask, model, layers, units, bidirectional, dropout, noise_shape, seed)
    outputs = _heads(x, mask, num_tags, num_intents, units, output, slot_intent_feedback, tag_names)
    return _filled_pretrained(keras.Model(inputs, outputs, name=name), word_vectors)


def _check_arguments(encoding, output, layers, units, num_tags, dropout) -> None:
    if encoding not in ENCODINGS:
        raise _invalid("encoding", encoding, f"one of {', '.join(ENCODINGS)}")
    if output not in OUTPUTS:
        raise _invalid("output", output, f"one of {', '.join(OUTPUTS)}")
    for arg, value in (("layers", layers), ("units", units), ("num_tags", num_tags)):
        if not isinstance(value, int) or isinstance(value, bool) or value < 1:
            raise _invalid(arg, value, "a positive integer")
    if not 0.0 <= dropout < 1.0:
        raise _invalid("dropout", dropout, "a number in [0, 1)")


def _stack(x, mask, model, layers, units, bidirectional, dropout, noise_shape, seed):
    """The deep part: `layers` recurrent (or, for feedforward, dense) layers, each
    followed by dropout."""
    for i in range(layers):
        layer_name = f"{model}_{i + 1}"
        if model == "feedforward":
            x = keras.layers.Dense(units, activation="tanh", name=layer_name)(x)
        else:
            layer = recurrent_layer(model, units, layer_name, seed=seed)
            if bidirectional:
                layer = keras.layers.Bidirectional(layer, name=f"bi_{layer_name}")
            x = layer(x, mask=mask)
        x = keras.layers.Dropout(
            dropout, noise_shape=noise_shape, seed=seed, name=f"dropout_{i + 1}"
        )(x)
    return x


def _with_pretrained(x, inputs: dict, word_vectors):
    """The word vectors `x` with each word's pretrained vector beside them, looked up
    by the input `vector_ids` (added to `inputs`) in a frozen table whose row 0, of
    words without a vector, is zeros (set after the model is built)."""
    vector_ids = inputs["vector_ids"] = keras.Input((None,), dtype="int32", name="vector_ids")
    pretrained = keras.layers.Embedding(
        len(word_vectors) + 1,
        word_vectors.shape[1],
        trainable=False,
        name="pretrained_word_vectors",
    )(vector_ids)
    return keras.layers.Concatenate(name="word_and_pretrained_vectors")([x, pretrained])


def _filled_pretrained(model: keras.Model, word_vectors) -> keras.Model:
    """`model` with its frozen table of pretrained vectors filled in: weights, not a
    layer's config."""
    if word_vectors is not None:
        table = np.concatenate([np.zeros((1, word_vectors.shape[1])), word_vectors])
        model.get_layer("pretrained_word_vectors").set_weights([table.astype("float32")])
    return model


def _word_vectors(
    word_ids, trigram_ids, encoding, vocabulary_size, embedding_dim, hash_buckets, hash_dim
):
    """Each word's vector: its 1-of-N embedding, its trigrams' embedding, or both."""
    parts = []
    if encoding in ("onehot", "both"):
        parts.append(
            keras.layers.Embedding(vocabulary_size, embedding_dim, name="word_embedding")(word_ids)
        )
    if encoding in ("hash", "both"):
        parts.append(
            HashedWordEmbedding(hash_buckets, hash_dim, name="trigram_embedding")(trigram_ids)
        )
    return parts[0] if len(parts) == 1 else keras.layers.Concatenate(name="word_vectors")(parts)


def _with_context_features(
    x, word_ids, trigram_ids, hash_buckets, char_filters, pair_buckets, pair_dim
):
    """The word vectors `x`, with the ordered-trigram CNN's features and the
    neighbour pairs' embeddings beside them when asked for."""
    parts = [x]
    if char_filters:
        from slotkeras.layers.trigram_cnn import TrigramCNN

        parts.append(TrigramCNN(hash_buckets, char_filters, name="trigram_cnn")(trigram_ids))
    if pair_buckets:
        from slotkeras.layers.neighbour_pairs import NeighbourPairEmbedding

        pairs = NeighbourPairEmbedding(pair_buckets, pair_dim, name="neighbour_pairs")
        parts.append(pairs(word_ids))
    if len(parts) == 1:
        return x
    return keras.layers.Concatenate(name="word_and_context_vectors")(parts)


def _heads(x, mask, num_tags, num_intents, units, output, slot_intent_feedback, tag_names) -> dict:
    """The slot scores (and the intent) from the words' top-layer vectors `x`."""
    outputs = {}
    if num_intents:
        pooled = MaskedPooling(name="utterance_pooling")(x, mask=mask)
        outputs["intent"] = keras.layers.Dense(num_intents, activation="softmax", name="intent")(
            pooled
        )
        if slot_intent_feedback:
            context = keras.layers.Dense(units, activation="tanh", name="utterance_context")(pooled)
            context = BroadcastToTokens(name="utterance_context_per_token")([context, x])
            x = keras.layers.Concatenate(name="token_and_utterance")([x, context])
    if output == "crf":
        from slotkeras.layers.crf import CRF

        emissions = keras.layers.Dense(num_tags, name="slot_scores")(x)
        outputs["slots"] = CRF(num_tags, tag_names=tag_names, name="slots")(emissions, mask=mask)
    else:
        outputs["slots"] = keras.layers.Dense(num_tags, activation="softmax", name="slots")(x)
    return outputs


def tagger_options(config: TrainConfig) -> dict:
    """The `build_tagger` arguments of a run (all but the sizes of the vocabularies)."""
    names = (
        "model bidirectional layers units encoding embedding_dim hash_buckets hash_dim "
        "max_trigrams char_filters pair_buckets pair_dim dropout variational_dropout "
        "slot_intent_feedback seed"
    ).split()
    return {**{name: getattr(config, name) for name in names}, "output": config.output_layer}


def build_end_to_end(featurizer, tagger: keras.Model, name: str = "slot_filler") -> keras.Model:
    """Wraps a tagger with its featurizer: string tokens `[batch, time]` (padded
    with "") in, the tagger's outputs out. This is what `model.keras` holds."""
    tokens = keras.Input(shape=(None,), dtype="string", name="tokens")
    features = featurizer(tokens)
    outputs = tagger(features)
    return keras.Model(tokens, outputs, name=name)
