"""One typed configuration per training run, written next to the model."""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass
from pathlib import Path

from slotkeras.data import FORMATS, MISALIGNED_SPANS  # the readers' own lists

BUNDLED_TRAIN = "data/train.csv"
BUNDLED_TEST = "data/test.csv"
# The allowed values of the choice settings, here (not in slotkeras.models) so that the
# command line checks them without importing Keras.
KINDS = ("feedforward", "elman", "jordan", "gru", "lstm", "peephole_lstm")
ENCODINGS = ("onehot", "hash", "both")
OUTPUTS = ("softmax", "crf")
TAG_SCHEMES = ("auto", "bio", "bioes")
STRATEGIES = ("auto", "one_device", "mirrored", "multi_worker")
OPTIMIZERS = ("adam", "lazy_adam", "summed_adam")
# Keys of a model folder's config.json that are not settings: the tokenizer's fitted
# choices (written next to the settings), and the free-form `extra` of older folders.
_NOT_SETTINGS = ("tokenizer", "extra")


def default_output_layer(model: str) -> str:
    """The slot output layer a network kind gets unless one is asked for: the
    feedforward baseline has none but its per-word softmax (a CRF's transitions would
    give it a memory of the previous tag)."""
    return "softmax" if model == "feedforward" else "crf"


def default_slot_intent_feedback(model: str) -> bool:
    """Whether the utterance vector feeds the slot scores unless asked: not for the
    feedforward baseline, whose point is that it sees one word at a time."""
    return model != "feedforward"


def default_pair_buckets(model: str) -> int:
    """Neighbour-pair buckets unless asked: none for the feedforward baseline, whose
    point is that it sees one word at a time (a pair with the previous word would tell
    "leave taipei" from "arrive taipei")."""
    return 0 if model == "feedforward" else 65536


def reader_options(source) -> dict:
    """The readers' format, column and span options from a `TrainConfig` or from
    parsed command-line flags (both name them alike)."""
    names = ("format", *_COLUMNS, "misaligned_spans", "text_tokenizer")
    return {name: getattr(source, name) for name in names}


class ConfigError(ValueError):
    """A setting that cannot be used; the message names the setting and the value."""


@dataclass
class TrainConfig:
    """Every setting of a training run; `config.json` in the model folder holds one."""

    # --- data ---
    train: str = BUNDLED_TRAIN  # training file or folder (any supported format)
    valid: str | None = None  # validation file; None holds out `valid_fraction` of train
    valid_fraction: float = 0.1  # fixed share of the training file held out when no --valid
    output: str = "models/default"  # model folder to write
    format: str = "auto"  # auto | utterance_csv | token_csv | folder | conll, or spans over
    # raw text: jsonl | markup | rasa | label_studio (README, "Input formats")
    text_column: str = "text"
    tags_column: str = "tags"
    intent_column: str = "intent"
    sentence_id_column: str = "sentence_id"
    token_column: str = "token"
    tag_column: str = "tag"
    misaligned_spans: str = "error"  # a span (of jsonl, markup, rasa, label_studio) that
    # starts or ends inside a token: error, skip (left out) or expand (widened to whole
    # tokens); skip and expand report each such span on stderr
    text_tokenizer: str = "words"  # how those formats' raw text becomes tokens: words
    # (marks split off, CJK a character a token), characters, JSON rules or a model folder
    # --- word encodings ---
    encoding: str = "both"  # 1-of-N ("onehot"), letter trigrams ("hash"), or both
    lowercase: bool = True  # lowercase words before lookup and hashing
    min_count: int = 1  # words seen fewer times go to the "Other" bucket
    max_vocab: int | None = None  # largest 1-of-N lexicon (most frequent words)
    embedding_dim: int = 100  # width of the 1-of-N word embedding
    hash_buckets: int = 16384  # letter-trigram hash buckets
    hash_dim: int = 64  # width of the trigram embedding
    max_trigrams: int = 16  # trigrams kept per word
    char_filters: int = 0  # filters of a CNN over each word's trigrams in order (ordered
    # character features beside the bag of trigrams); 0: none
    pair_buckets: int | None = None  # hash buckets of each word's pairs with its
    # neighbours (the "bichar" features of Chinese character corpora, word pairs in
    # English); 0: none; None: 65,536, and none for feedforward (default_pair_buckets)
    pair_dim: int = 32  # width of each neighbour pair's embedding
    size_tables_to_data: bool = True  # hash and pair tables of at most 16 buckets per
    # distinct trigram or word pair of the training split (a power of two, at least
    # 1,024), so that a small corpus makes a small model; recorded in config.json
    lexicon: str = "auto"  # word list whose matches mark each token (slotkeras.lexicon):
    # auto (jieba's dictionary when the training data is one CJK character a token,
    # else none), none, or a file of words, one a line
    word_vectors: str | None = None  # pretrained word vectors: a GloVe, word2vec or fastText
    # text file (.txt, .vec, optionally .gz), or glove-6b-50d (the `vectors` extra);
    # frozen, looked up beside the other encodings (slotkeras.word_vectors); None: none
    max_word_vectors: int = 50000  # vectors kept besides the training words' (the file's
    # most frequent words first): they bound the model's size
    word_dropout: float = 0.2  # share of training words replaced by "Other" each step, so
    # that the model learns to read unknown words from their trigrams and context
    rare_word_dropout: float = 0.0  # a: a word seen c times in training is replaced with
    # probability word_dropout + (1 - word_dropout) * a / (a + c), so that rare words,
    # the ones a test split's unseen words resemble, are read without their own row
    # more often than frequent ones (Kiperwasser & Goldberg 2016); 0: uniform
    # --- network ---
    model: str = "lstm"  # feedforward | elman | jordan | gru | lstm | peephole_lstm
    bidirectional: bool = True  # forward and backward layers, concatenated
    layers: int = 1  # stacked recurrent layers (more scored no better on validation)
    units: int = 128  # units per layer and direction
    dropout: float = 0.5  # on word vectors and between layers (with the neighbour pairs,
    # chosen on the validation splits of three corpora together: docs/benchmarks.md,
    # "Ablations behind the defaults")
    variational_dropout: bool = False  # one dropout mask per utterance, the same units
    # dropped at every word (Gal & Ghahramani 2016), instead of a new mask per word
    output_layer: str | None = None  # softmax | crf (linear-chain CRF, Viterbi decoding);
    # None: softmax for feedforward, crf for the recurrent kinds (default_output_layer)
    tag_scheme: str = "auto"  # the tags the model learns: the data's BIO, or BIOES (a
    # span's last token and one-token spans tagged apart); auto: BIOES when most
    # training spans are longer than one token (slotkeras.training_inputs.tag_scheme_for).
    # Predictions are BIO either way
    joint_intent: bool = True  # train an intent head when the data has intents
    slot_intent_feedback: bool | None = None  # feed the utterance vector into the slot
    # head; None: off for feedforward, on for the recurrent kinds
    # --- optimisation ---
    epochs: int = 40  # upper bound; early stopping usually ends sooner
    epoch_utterances: int = 1000  # an epoch is at least this many utterances: a smaller
    # training set is repeated, reshuffled, within an epoch, so that validation,
    # patience and the epoch limit count examples seen rather than passes over a few
    # dozen utterances
    batch_size: int = 64  # per replica (a batch of a sixteenth of a small training set,
    # at least 8, scored lower with the refit: docs/experiments/small_data.md)
    learning_rate: float = 1e-2  # Adam (half of it: as good, but more epochs)
    learning_rate_decay: float = 1.0  # the learning rate is multiplied by this once an epoch
    # (smoothly, step by step; 1: constant)
    clipnorm: float | None = 2.0  # each weight's gradient clipped to this norm (null: none);
    # 2: higher than 1 and 5 on the validation splits of all three corpora together
    optimizer: str = "adam"  # adam (Keras' update, fused: slotkeras.optimizers.FusedAdam) |
    # lazy_adam (embedding rows updated only when used: lower validation slot F1, and no
    # faster an epoch) | summed_adam (Adam on a repeated row's summed gradient: a faster
    # epoch, lower validation slot F1 on all three corpora)
    weight_averaging: float = 0.99  # momentum of an exponential moving average of the
    # weights, which validation, early stopping and the saved model use (0: off)
    weight_averaging_warmup: bool | None = None  # the average's momentum grows as
    # min(momentum, (1 + t) / (10 + t)) at step t (TensorFlow's ExponentialMovingAverage
    # rule), so that a run of a few hundred steps is not averaged back to its initial
    # weights; None: when the training split is smaller than epoch_utterances. On the
    # full-size corpora the warmed-up average peaks sooner and patience stops ATIS
    # epochs earlier, lower on test (docs/experiments/small_data.md)
    patience: int = 4  # epochs without a better validation slot F1 before stopping (4
    # stopped on the same best epoch as 6 on validation; 3 did not)
    intent_loss_weight: float | None = None  # weight of the intent loss next to the slot
    # loss; None: 10 with the CRF output, whose loss is summed over an utterance's words,
    # and 0.5 with softmax, whose loss is a per-token mean (each the better on validation)
    refit: bool | None = None  # after the early stop, train anew on the training and
    # validation splits together for the epochs it chose, and keep that model; None: when
    # the training split is smaller than epoch_utterances, where the validation split is
    # a large share of the labelled data (data_size.adapted)
    seed: int = 1  # fixes every source of randomness
    # --- machinery ---
    strategy: str = "auto"  # auto | one_device | mirrored | multi_worker
    jit_compile: bool = False  # XLA compilation of the train step; turns TF's op
    # determinism off (Keras does not compile with it on), and on CPU it is slower, since
    # each new batch length compiles anew (docs/experiments/epoch_speed.md)
    tensorboard: str | None = None  # folder for TensorBoard logs, off by default
    resume: bool = True  # resume an interrupted run of the same output folder
    export: bool = True  # write saved_model/ next to model.keras
    verbose: int = 1  # 0 silent, 1 progress bar (epoch lines off a terminal), 2 epoch lines

    def __post_init__(self):
        # A setting left to the network kind is decided here, so that config.json
        # records what was trained.
        if self.output_layer is None:
            self.output_layer = default_output_layer(self.model)
        if self.slot_intent_feedback is None:
            self.slot_intent_feedback = default_slot_intent_feedback(self.model)
        if self.pair_buckets is None:
            self.pair_buckets = default_pair_buckets(self.model)

    def validate(self) -> TrainConfig:
        """Checks every setting; raises ConfigError naming the first bad one."""

        def bad(name, expected):
            value = getattr(self, name)
            return ConfigError(
                f"Received an invalid value for `{name}`, expected {expected}, got {value!r}."
            )

        def is_number(value):
            return isinstance(value, (int, float)) and not isinstance(value, bool)

        for name in ("train", "output", "lexicon", "text_tokenizer", *_COLUMNS):
            value = getattr(self, name)
            if not isinstance(value, str) or not value.strip():
                raise bad(name, "a non-empty string")
        for name in ("valid", "tensorboard"):
            value = getattr(self, name)
            if value is not None and (not isinstance(value, str) or not value.strip()):
                raise bad(name, "a non-empty string or null")
        for name in _BOOLEANS:
            if name in DECIDED_FROM_DATA and getattr(self, name) is None:
                continue
            if not isinstance(getattr(self, name), bool):
                raise bad(name, "true or false")
        for name in _NUMBERS:
            if not is_number(getattr(self, name)):
                raise bad(name, "a number")
        if self.verbose not in (0, 1, 2) or isinstance(self.verbose, bool):
            raise bad("verbose", "0, 1 or 2")
        choices = {
            "model": KINDS,
            "encoding": ENCODINGS,
            "output_layer": OUTPUTS,
            "tag_scheme": TAG_SCHEMES,
            "strategy": STRATEGIES,
            "format": FORMATS,
            "misaligned_spans": MISALIGNED_SPANS,
            "optimizer": OPTIMIZERS,
        }
        for name, allowed in choices.items():
            if getattr(self, name) not in allowed:
                raise bad(name, "one of " + ", ".join(allowed))
        for name in _POSITIVE_INTS:
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise bad(name, "a positive integer")
        for name in ("char_filters", "pair_buckets"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 0:
                raise bad(name, "an integer >= 0")
        if self.max_vocab is not None and (
            not isinstance(self.max_vocab, int)
            or isinstance(self.max_vocab, bool)
            or self.max_vocab < 1
        ):
            raise bad("max_vocab", "a positive integer")
        for name in ("dropout", "word_dropout"):
            if not 0.0 <= getattr(self, name) < 1.0:
                raise bad(name, "a number in [0, 1)")
        if not 0.0 <= self.rare_word_dropout < float("inf"):
            raise bad("rare_word_dropout", "a number >= 0")
        if not is_number(self.weight_averaging) or not 0.0 <= self.weight_averaging < 1.0:
            raise bad("weight_averaging", "a number in [0, 1)")
        if not 0.0 < self.valid_fraction < 1.0:
            raise bad("valid_fraction", "a number in (0, 1)")
        if not 0 < self.learning_rate < float("inf"):
            raise bad("learning_rate", "a positive number")
        if not 0 < self.learning_rate_decay <= 1:
            raise bad("learning_rate_decay", "a number in (0, 1]")
        if self.clipnorm is not None and not (
            is_number(self.clipnorm) and 0 < self.clipnorm < float("inf")
        ):
            raise bad("clipnorm", "a positive number or null")
        if self.intent_loss_weight is not None and not (
            is_number(self.intent_loss_weight) and 0 <= self.intent_loss_weight < float("inf")
        ):
            raise bad("intent_loss_weight", "a number >= 0 or null")
        if not isinstance(self.seed, int) or isinstance(self.seed, bool) or self.seed < 0:
            raise bad("seed", "a non-negative integer")
        return self

    @property
    def effective_intent_loss_weight(self) -> float:
        """`intent_loss_weight`, or its default for the output layer when None."""
        if self.intent_loss_weight is not None:
            return float(self.intent_loss_weight)
        return 10.0 if self.output_layer == "crf" else 0.5

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, values: dict, source: str = "config") -> TrainConfig:
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(values) - known - set(_NOT_SETTINGS))
        if unknown:
            raise ConfigError(f"{source}: unknown setting(s) {', '.join(unknown)}")
        return cls(**{k: v for k, v in values.items() if k in known})

    @classmethod
    def from_json(cls, path: str | Path) -> TrainConfig:
        try:
            values = json.loads(Path(path).read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise ConfigError(f"{path}: no such file") from None
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
            raise ConfigError(f"{path}: not a readable JSON file ({error})") from None
        if not isinstance(values, dict):
            raise ConfigError(f"{path}: expected a JSON object of settings")
        return cls.from_dict(values, source=str(path))


# The type lists that `validate` and the command line check against, read off the
# fields' annotations so that a new setting is checked as its type says.
_FIELDS = {field.name: field for field in dataclasses.fields(TrainConfig)}
_COLUMNS = tuple(name for name in _FIELDS if name.endswith("_column"))
_BOOLEANS = tuple(n for n, f in _FIELDS.items() if f.type in ("bool", "bool | None"))
# Switches that None leaves to the training data's size (slotkeras.data_size.adapted).
DECIDED_FROM_DATA = ("refit", "weight_averaging_warmup")
_NUMBERS = tuple(n for n, f in _FIELDS.items() if f.type == "float")
# Integer settings of at least 1; the rest have rules of their own in `validate`.
_POSITIVE_INTS = tuple(
    n
    for n, f in _FIELDS.items()
    if f.type == "int" and n not in ("char_filters", "pair_buckets", "seed", "verbose")
)


def field_default(name: str):
    """A setting's default as the dataclass states it (None where it is decided by
    another setting in `__post_init__`)."""
    field = _FIELDS[name]
    return field.default
