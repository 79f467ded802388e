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
    from slotkeras.config import FORMATS

    def default(value):
        return argparse.SUPPRESS if unset else value

    parser.add_argument(
        "--format",
        default=default("auto"),
        choices=FORMATS,
        help="input format (default: from the file)",
    )
    for flag, value in (
        ("--text-column", "text"),
        ("--tags-column", "tags"),
        ("--intent-column", "intent"),
        ("--sentence-id-column", "sentence_id"),
        ("--token-column", "token"),
        ("--tag-column", "tag"),
    ):
        parser.add_argument(flag, default=default(value))


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
_decay = _number(float, lambda v: 0 < v <= 1, "a number in (0, 1]")
_non_negative_float = _number(float, lambda v: 0 <= v < float("inf"), "a number >= 0")


# Flags of train.py mapped to TrainConfig fields (flag dest == field name).
def _add_optimisation_flags(p) -> None:
    """train.py's flags of the fit and the regularisers (each a TrainConfig field)."""
    from slotkeras.config import OPTIMIZERS

    S = argparse.SUPPRESS  # unset flags keep the config file's or the default value
    p.add_argument("--epochs", type=_positive_int, default=S)
    p.add_argument("--batch-size", type=_positive_int, default=S)
    p.add_argument("--seed", type=_non_negative_int, default=S)
    p.add_argument("--patience", type=_positive_int, default=S)
    p.add_argument("--learning-rate", type=_positive_float, default=S)
    p.add_argument(
        "--learning-rate-decay",
        type=_decay,
        metavar="X",
        default=S,
        help="factor the learning rate is multiplied by each epoch, step by step "
        "(1 is constant; default: 1)",
    )
    p.add_argument(
        "--optimizer",
        choices=OPTIMIZERS,
        default=S,
        help="adam; lazy_adam: embedding rows updated only in batches that use them; "
        "summed_adam: Adam on the summed gradient of repeated embedding rows, a faster "
        "step (default: adam)",
    )
    p.add_argument(
        "--weight-averaging",
        type=_rate,
        metavar="MOMENTUM",
        default=S,
        help="validate and keep an exponential moving average of the weights "
        "(momentum in [0, 1), 0 is off; default: 0.99)",
    )
    p.add_argument(
        "--clipnorm",
        type=_positive_float,
        metavar="NORM",
        default=S,
        help="clip each weight's gradient to this norm (default: 2)",
    )
    p.add_argument("--dropout", type=_rate, default=S)
    p.add_argument(
        "--variational-dropout",
        action=argparse.BooleanOptionalAction,
        default=S,
        help="one dropout mask per utterance, the same units dropped at every word "
        "(default: off, a mask per word)",
    )
    p.add_argument("--word-dropout", type=_rate, default=S)
    p.add_argument(
        "--rare-word-dropout",
        type=_non_negative_float,
        metavar="A",
        default=S,
        help="drop a word seen c times in training with probability "
        "word_dropout + (1 - word_dropout) * A / (A + c) (default: 0, uniform)",
    )
    p.add_argument("--embedding-dim", type=_positive_int, default=S)
    p.add_argument("--hash-buckets", type=_positive_int, default=S)
    p.add_argument("--hash-dim", type=_positive_int, default=S)
    p.add_argument(
        "--char-filters",
        type=_non_negative_int,
        metavar="N",
        default=S,
        help="filters of a CNN over each word's letter trigrams in order (0: none)",
    )
    p.add_argument(
        "--pair-buckets",
        type=_non_negative_int,
        metavar="N",
        default=S,
        help="hash buckets of each word's pairs with its neighbours (0: none)",
    )
    p.add_argument("--pair-dim", type=_positive_int, metavar="N", default=S)
    p.add_argument(
        "--lexicon",
        metavar="auto|none|FILE",
        default=S,
        help="word list whose matches mark each token of text written without spaces "
        "(auto: jieba's dictionary when the training data is one CJK character a token)",
    )
    p.add_argument("--max-vocab", type=_positive_int, default=S)
    p.add_argument("--min-count", type=_positive_int, default=S)
    p.add_argument("--joint-intent", action=argparse.BooleanOptionalAction, default=S)
    p.add_argument(
        "--refit",
        action=argparse.BooleanOptionalAction,
        default=S,
        help="after the early stop, train anew on the training and validation data "
        "together for the epochs it chose, and keep that model (default: off)",
    )
    p.add_argument(
        "--intent-loss-weight",
        type=_non_negative_float,
        metavar="X",
        default=S,
        help="weight of the intent loss next to the slot loss (default: 5 with the CRF "
        "output, 0.5 with softmax)",
    )
    p.add_argument(
        "--slot-intent-feedback",
        action=argparse.BooleanOptionalAction,
        default=S,
        help="feed the utterance vector into every word's slot scores (default: on; off "
        "for feedforward)",
    )


def train_parser() -> Parser:
    from slotkeras.config import ENCODINGS, KINDS, OUTPUTS, STRATEGIES, TAG_SCHEMES

    p = Parser(prog="train.py", description="Train a slot-filling tagger.")
    S = argparse.SUPPRESS  # unset flags keep the config file's or the default value
    p.add_argument("--config", help="JSON file of settings (TrainConfig fields); flags override it")
    p.add_argument("--train", default=S, help="training data (default: data/train.csv)")
    p.add_argument("--valid", default=S, help="validation data (default: a fixed tenth of --train)")
    p.add_argument("--output", default=S, help="model folder (default: models/default)")
    _add_format_flags(p, unset=True)
    p.add_argument(
        "--model",
        choices=KINDS,
        default=S,
        metavar="KIND",
        help="network kind: %(choices)s (default: lstm)",
    )
    p.add_argument("--bidirectional", action=argparse.BooleanOptionalAction, default=S)
    p.add_argument("--layers", type=_positive_int, default=S)
    p.add_argument("--units", type=_positive_int, default=S)
    p.add_argument(
        "--encoding",
        choices=ENCODINGS,
        default=S,
        metavar="ENCODING",
        help="word encoding: %(choices)s (default: both)",
    )
    p.add_argument(
        "--output-layer",
        choices=OUTPUTS,
        default=S,
        metavar="LAYER",
        help="slot output layer: %(choices)s (default: crf; softmax for feedforward)",
    )
    p.add_argument(
        "--tag-scheme",
        choices=TAG_SCHEMES,
        default=S,
        metavar="SCHEME",
        help="tags the model learns: %(choices)s (bioes: span ends and one-token spans "
        "tagged apart; auto, the default: bioes when most training spans are longer "
        "than one token; predictions are BIO either way)",
    )
    _add_optimisation_flags(p)
    p.add_argument("--strategy", choices=STRATEGIES, default=S)
    p.add_argument(
        "--jit-compile",
        action=argparse.BooleanOptionalAction,
        default=S,
        help="compile the train step with XLA; the run is then seeded but not "
        "bit-for-bit reproducible (default: off; slower on CPU)",
    )
    p.add_argument("--tensorboard", metavar="DIR", default=S, help="write TensorBoard logs")
    p.add_argument(
        "--resume",
        action=argparse.BooleanOptionalAction,
        default=S,
        help="resume an interrupted run of the same command (default: on)",
    )
    p.add_argument(
        "--export",
        action=argparse.BooleanOptionalAction,
        default=S,
        help="write the SavedModel (default: on)",
    )
    p.add_argument("--verbose", type=int, choices=[0, 1, 2], default=S)
    p.add_argument(
        "--test",
        help="held-out data to report on after training "
        "(default: the bundled held-out set when training on the bundled corpus)",
    )
    return p


def config_from_args(args):
    """The run's checked config: the `--config` file's settings, overridden by flags."""
    from slotkeras.config import TrainConfig

    values = vars(args).copy()
    config_file = values.pop("config", None)
    values.pop("test", None)
    base = TrainConfig.from_json(config_file).to_dict() if config_file else {}
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


def _check_output_folder(output) -> None:
    """`--output` must be a model folder that can be (re)placed: not a file, not inside
    a file, and not a folder of something else (it is replaced as a whole)."""
    path = Path(output)
    if path.exists() and not path.is_dir():
        raise UsageError(f"train.py: --output {output}: is a file, expected a model folder")
    if path.is_dir():
        contents = [entry.name for entry in path.iterdir()]
        if contents and not {"model.keras", "config.json"} & set(contents):
            raise UsageError(
                f"train.py: --output {output}: a folder that holds no model (no model.keras "
                "or config.json) would be replaced as a whole; choose a new folder"
            )
        return
    existing = _first_existing(path)
    if not existing.is_dir():
        raise UsageError(f"train.py: --output {output}: {existing} is a file, not a folder")


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


def train_main(argv=None) -> int:
    args = train_parser().parse_args(argv)
    # Everything the user gave is checked before Keras is imported (fast) and before
    # anything is written: a bad flag, setting or file leaves no trace.
    config = config_from_args(args)
    test_file = args.test
    splits, test = _read_inputs(config, test_file)
    _check_output_folder(config.output)
    _import_tensorflow_quietly()
    from slotkeras import evaluation, training

    metrics = training.train(config, splits=splits)
    if not metrics.get("chief", True):
        return 0  # another worker of a multi-worker run: the chief writes and reports
    if test_file is not None:
        from slotkeras.predictor import SlotFiller

        filler = SlotFiller.load(config.output)
        metrics["test"] = evaluation.evaluate(filler, test)
        metrics["test_source"] = test_file
    if "test" in metrics:
        print(f"\nHeld-out report ({metrics['test_source']}):")
        print(evaluation.format_report(metrics["test"]))
    return 0


def evaluate_parser() -> Parser:
    p = Parser(prog="evaluate.py", description="Evaluate a trained tagger on held-out data.")
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


def evaluate_main(argv=None) -> int:
    args = evaluate_parser().parse_args(argv)
    from slotkeras import data
    from slotkeras.config import BUNDLED_TEST, reader_options
    from slotkeras.model_folder import read_model_folder

    prog = "evaluate.py"
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
    from slotkeras.predictor import SlotFiller

    filler = SlotFiller.load(args.model)
    predictions = filler.predict([u.tokens for u in utterances], batch_size=args.batch_size)
    result = evaluation.evaluate(filler, utterances, predictions)
    result["span_calibration"] = reliability([u.tags for u in utterances], predictions)
    print(evaluation.format_report(result))
    ece = result["span_calibration"]["expected_calibration_error"]
    print(f"span confidence calibration error (ECE) {ece:.2f}")
    if args.report_json:
        _write_text(args.report_json, json.dumps(result, indent=2) + "\n")
    if args.errors:
        _write_text(args.errors, _errors_text(utterances, predictions))
    if args.plots:
        from slotkeras.plots import write_plots

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
    from slotkeras.model_folder import atomic_write

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


def predict_main(argv=None) -> int:
    p = Parser(prog="slotkeras predict", description="Tag utterances; prints JSON lines.")
    p.add_argument("--model", default="models/default")
    p.add_argument("texts", nargs="*", help="utterances (or use --file)")
    p.add_argument("--file", help="a file of utterances (CSV with a text column, or any format)")
    _add_format_flags(p)
    args = p.parse_args(argv)
    from slotkeras import data
    from slotkeras.config import reader_options
    from slotkeras.model_folder import read_model_folder

    if not args.texts and not args.file:
        raise UsageError("slotkeras predict: give utterances or --file FILE")
    # A file is a corpus, tokenized already; utterances on the command line are raw
    # text, split by the model's own tokenizer.
    token_lists = []
    if args.file:
        utterances = data.read_utterances(args.file, require_tags=False, **reader_options(args))
        token_lists = [list(u.tokens) for u in utterances]
    read_model_folder(args.model)  # a missing or broken folder fails before TF loads
    _import_tensorflow_quietly()
    from slotkeras.predictor import SlotFiller

    filler = SlotFiller.load(args.model)
    predictions = filler.predict(token_lists) if token_lists else []
    predictions += filler.tag_text(args.texts) if args.texts else []
    for prediction in predictions:
        print(json.dumps(prediction.to_json(), ensure_ascii=False))
    return 0


def convert_main(argv=None) -> int:
    p = Parser(
        prog="slotkeras convert", description="Convert any supported format to utterance CSV."
    )
    p.add_argument("source")
    p.add_argument("destination")
    _add_format_flags(p)
    args = p.parse_args(argv)
    from slotkeras import data
    from slotkeras.config import reader_options

    count = data.convert(args.source, args.destination, **reader_options(args))
    print(f"wrote {count} utterances to {args.destination}")
    return 0


def main(argv=None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    commands = {
        "train": train_main,
        "evaluate": evaluate_main,
        "predict": predict_main,
        "convert": convert_main,
    }
    if not argv or argv[0] not in commands:
        print("usage: python -m slotkeras {train,evaluate,predict,convert} ...", file=sys.stderr)
        return 2
    return run_cli(commands[argv[0]], argv[1:])
