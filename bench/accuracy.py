"""Accuracy benchmark per corpus: every network kind, both directions, each encoding.

    python bench/accuracy.py                      # ATIS: the whole table, 3 seeds each
    python bench/accuracy.py --kinds default --ablations --seeds 3   # the default only
    python bench/accuracy.py --corpus mit_movie_trivia resume_ner --kinds default --seeds 3
    python bench/accuracy.py --corpus path/to/corpus --kinds default --seeds 1
    python bench/accuracy.py --kinds lstm gru --directions bi --seeds 1
    python bench/accuracy.py --only-report        # rewrite every table from saved runs

`--corpus` takes NAMEs (folders of ../shared/data: atis, mit_movie_trivia, resume_ner)
or PATHs (a folder holding train/ and any of valid/, test/, or any file or folder that
train.py reads); `--data PATH` is the older spelling of one `--corpus PATH`. Default:
atis. Each run is `train.py --train CORPUS ...` in a fresh process (settings chosen on
the validation split; early stopping on validation slot F1; without a valid/ split
train.py holds out a fixed tenth of the training data) followed by `evaluate.py` on the
test split when the corpus has one (a CSV has none: such runs get validation figures
only, and the table says so). Every finished run is appended to
bench/results/accuracy.jsonl with its corpus's name, so an interrupted benchmark loses
nothing; docs/benchmarks.md gets one section per corpus rebuilt from that file: mean ±
sample std over seeds of span-level slot F1 (conlleval semantics), beside the linear-
chain CRF anchor of bench/crf_anchor.py and published figures on the same test set.
"""

from __future__ import annotations

import argparse
import datetime
import importlib.metadata
import json
import os
import platform
import re
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path
from typing import NamedTuple

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared" / "data"  # read from there, never copied into the project
RESULTS = ROOT / "bench" / "results" / "accuracy.jsonl"
CRF_RESULTS = ROOT / "bench" / "results" / "crf_anchor.jsonl"  # bench/crf_anchor.py's
DOC = ROOT / "docs" / "benchmarks.md"
KINDS = ["feedforward", "elman", "jordan", "gru", "lstm", "peephole_lstm"]
# Rows saved before rows named their corpus were all ATIS runs.
DEFAULT_CORPUS = "atis"
# The corpora of ../shared/data, in the order their sections appear in the doc, each
# with what its section says of the data and the published figures on its test split.
# Any other corpus (a PATH) gets a section too, described from its rows.
CORPORA = {
    "atis": {
        "title": "ATIS",
        "data": "`../shared/data/atis` (4,478 train / 500 valid / 893 test, the split of Goo "
        "et al. 2018)",
        "published": [
            ("Jordan RNN", "Mesnil et al. 2015 (IEEE/ACM TASLP)", "94.29"),
            ("Elman RNN", "Mesnil et al. 2015", "94.98"),
            ("LSTM", "Yao et al. 2014 (SLT)", "94.85"),
            ("deep LSTM", "Yao et al. 2014", "95.08"),
            ("attention BiRNN", "Liu & Lane 2016 (Interspeech)", "95.98"),
            ("slot-gated", "Goo et al. 2018 (NAACL)", "95.2"),
            ("stack-propagation", "Qin et al. 2019 (EMNLP)", "95.9"),
            ("plain 40-line Keras BiLSTM", "measured on this machine (issue 5)", "about 94.7"),
        ],
        # What the anchor row says until bench/crf_anchor.py has measured it.
        "anchor": ("about 93.2", "issue 5"),
    },
    "mit_movie_trivia": {
        "title": "MIT Movie trivia10k13",
        "data": "`../shared/data/mit_movie_trivia` (the trivia10k13 part of the MIT Movie "
        "corpus, Liu et al. 2013: 7,034 train / 782 valid, the original train file split 9:1 "
        "in order / 1,953 test, the original test file; 12 slot types, long spans and rare "
        "words, lower case, no intents)",
        "published": [
            (
                "DeBERTa-v3-large fine-tuned (a pretrained transformer)",
                "T-NER, Ushio & Camacho-Collados 2021 (EACL demo): the model card of "
                "`tner/deberta-v3-large-mit-movie-trivia`, test micro F1 over types; "
                "the same 1,953 test utterances; its train/valid cut may differ from ours",
                "73.24",
            ),
        ],
        "published_note": "No RNN or CRF result on this test set was found in the literature "
        "searched (the corpus is mostly reported in few-shot or cross-domain settings).",
        "anchor": ("67.44", "issue 16"),
    },
    "resume_ner": {
        "title": "Resume NER",
        "data": "`../shared/data/resume_ner` (Zhang & Yang 2018: 3,820 train / 463 valid / 477 "
        "test; one character per token, 8 entity types, BMES tags converted to BIO, no "
        "intents)",
        "published": [
            (
                "Lattice LSTM (character LSTM with lexicon words)",
                "Zhang & Yang 2018 (ACL)",
                "94.46",
            ),
            (
                "character BiLSTM-CRF baselines (char, + bichar, + softword)",
                "Zhang & Yang 2018 (ACL), their Resume table; exact figures not checked here",
                "about 93",
            ),
        ],
        "anchor": ("91.41", "issue 16"),
    },
}
# Ablations of the default configuration: one choice changed at a time. Each value is
# the list of train.py flags the variant adds, passed as given (any flags, any number);
# what a run was trained with is read back from its config.json into the table's
# columns. Add a variant by adding an entry, e.g. "no-pairs": ["--pair-buckets", "0"].
ABLATIONS = {
    "onehot": ["--encoding", "onehot"],
    "hash": ["--encoding", "hash"],
    "softmax": ["--output-layer", "softmax"],
    "no-feedback": ["--no-slot-intent-feedback"],
    "two-layers": ["--layers", "2"],
    # Issue 16: the default before it (dropout 0.2, no neighbour pairs), and its parts.
    "previous-default": ["--dropout", "0.2", "--pair-buckets", "0"],
    "no-pairs": ["--pair-buckets", "0"],
    "dropout-0.2": ["--dropout", "0.2"],
    "char-cnn": ["--char-filters", "64"],
    "refit": ["--refit"],
    # The word lexicon's matches (jieba's dictionary on Chinese written a character a
    # token; nothing elsewhere).
    "no-lexicon": ["--lexicon", "none"],
    # BIO tags where the default's auto scheme takes BIOES (most spans longer than a token).
    "bio": ["--tag-scheme", "bio"],
}
# Flags whose setting the table shows in a column of its own: left out of its "extra
# flags" column, so that an `--encoding hash` ablation groups with the runs saved before
# ablations passed the encoding as a flag (their extra flags are empty).
COLUMN_FLAGS = {"--encoding"}


class Corpus(NamedTuple):
    name: str  # what its rows and doc section are keyed by
    path: str  # what train.py's --train gets


def resolve_corpus(value: str) -> Corpus:
    """NAME (a folder of ../shared/data) or PATH -> the corpus. A path into
    ../shared/data is named after its folder, so that `--data ../shared/data/atis` and
    `--corpus atis` land in the same table."""
    if os.sep not in value and "/" not in value and (SHARED / value).is_dir():
        return Corpus(value, str(SHARED / value))
    path = Path(value)
    if not path.exists():
        names = sorted(p.name for p in SHARED.iterdir() if p.is_dir()) if SHARED.is_dir() else []
        raise argparse.ArgumentTypeError(
            f"{value}: no such file or folder, and no corpus of that name in {SHARED} "
            f"(there: {', '.join(names) or 'nothing'})"
        )
    # train.py runs in the project's root: the path it gets must not depend on where
    # this script was started.
    if SHARED.is_dir() and path.resolve().parent == SHARED.resolve():
        return Corpus(path.name, str(path.absolute()))
    return Corpus(os.path.normpath(value), str(path.absolute()))


def test_folder(path: str) -> Path | None:
    """The test split of a corpus: the test/ folder beside train/, else none."""
    folder = Path(path)
    return folder / "test" if (folder / "train").is_dir() and (folder / "test").is_dir() else None


def run_one(corpus: Corpus, kind: str, bidirectional: bool, seed: int, extra: list[str]) -> dict:
    """Trains one configuration on `corpus` and scores it; `extra`: flags for train.py."""
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "PYTHONUNBUFFERED": "1"}
    test_split = test_folder(corpus.path)
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / "model"
        cmd = [
            sys.executable,
            "train.py",
            "--train",
            corpus.path,
            "--output",
            str(folder),
            "--seed",
            str(seed),
            "--verbose",
            "0",
            "--no-export",
        ]
        if kind != "default":
            cmd += ["--model", kind, "--bidirectional" if bidirectional else "--no-bidirectional"]
        cmd += extra
        started = time.time()
        subprocess.run(cmd, cwd=ROOT, env=env, check=True, capture_output=True, text=True)
        seconds = time.time() - started
        test = None
        if test_split is not None:
            report = Path(tmp) / "test.json"
            subprocess.run(
                [
                    sys.executable,
                    "evaluate.py",
                    "--model",
                    str(folder),
                    "--data",
                    str(test_split),
                    "--report-json",
                    str(report),
                ],
                cwd=ROOT,
                env=env,
                check=True,
                capture_output=True,
                text=True,
            )
            test = json.loads(report.read_text())
        metrics = json.loads((folder / "metrics.json").read_text())
        config = json.loads((folder / "config.json").read_text())
    return {
        "corpus": corpus.name,
        "data": corpus.path,
        "kind": kind,
        "model": config["model"],
        "bidirectional": config["bidirectional"],
        "encoding": config["encoding"],
        "output_layer": config["output_layer"],
        "layers": config["layers"],
        "units": config["units"],
        "optimizer": config["optimizer"],
        "learning_rate": config["learning_rate"],
        "weight_averaging": config["weight_averaging"],
        "intent_loss_weight": _train_config(config).effective_intent_loss_weight,
        "patience": config["patience"],
        "word_dropout": config["word_dropout"],
        "dropout": config["dropout"],
        "learning_rate_decay": config.get("learning_rate_decay", 1.0),
        "lexicon": config.get("lexicon", "none"),
        "lexicon_words": metrics.get("lexicon_words", 0),
        "tag_scheme": metrics.get("tag_scheme", "bio"),  # the tags the model learnt
        "extra": extra,
        "seed": seed,
        "valid_slot_f1": metrics["validation"]["slot_f1"],
        "valid_intent_accuracy": metrics["validation"].get("intent_accuracy"),
        "test_slot_f1": test["slot_f1"] if test else None,
        "test_intent_accuracy": test.get("intent_accuracy") if test else None,
        "train_utterances": metrics.get("train_utterances"),
        "valid_utterances": metrics.get("valid_utterances"),
        # Where validation came from: the corpus's valid/ split, or the fixed tenth of
        # the training data that train.py holds out without one.
        "valid_split": "valid" if (Path(corpus.path) / "valid").is_dir() else "held out",
        "test_utterances": test["num_utterances"] if test else None,
        "parameters": metrics["parameters"],
        "train_seconds": metrics["train_seconds"],
        "wall_seconds": round(seconds, 1),
        "epochs": metrics["epochs_trained"],
        "best_epoch": metrics["best_epoch"],
        "date": datetime.date.today().isoformat(),
        "machine": machine(),
    }


def _packages() -> dict:
    names = ("tensorflow", "keras", "numpy")
    return {name: importlib.metadata.version(name) for name in names}


def commit() -> str:
    """The checkout's commit, short (what a result row was run at); a copy of the
    tree outside git (a snapshot, so that edits do not reach a long run) names its
    commit in SLOTKERAS_COMMIT."""
    found = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True
    ).stdout.strip()
    return found or os.environ.get("SLOTKERAS_COMMIT", "")


def _train_config(values: dict | None = None):
    """A `TrainConfig` of the project beside this script: the defaults, or `values`."""
    sys.path.insert(0, str(ROOT))
    from slotkeras.config import TrainConfig

    return TrainConfig.from_dict(values) if values is not None else TrainConfig()


def _default_row() -> dict:
    """What a row of the default configuration, as `train.py` has it now, holds."""
    config = _train_config()
    return {
        "bidirectional": config.bidirectional,
        "encoding": config.encoding,
        "output_layer": config.output_layer,
        "optimizer": config.optimizer,
        "learning_rate": config.learning_rate,
        "weight_averaging": config.weight_averaging,
        "intent_loss_weight": config.effective_intent_loss_weight,
        "patience": config.patience,
        "word_dropout": config.word_dropout,
        "dropout": config.dropout,
        "learning_rate_decay": config.learning_rate_decay,
        "lexicon": config.lexicon,
        "extra": [],
    }


def timing_parser(doc: str, rounds: int) -> argparse.ArgumentParser:
    """The arguments the speed benches share: the corpus (`--data`, ATIS) and the
    number of interleaved rounds (`--rounds`)."""
    parser = argparse.ArgumentParser(
        description=doc, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--data", default=str(SHARED / "atis"))
    parser.add_argument("--rounds", type=int, default=rounds)
    return parser


def machine() -> str:
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return f"{cpu}, {os.cpu_count()} cores, Python {platform.python_version()}"


def mean_std(values):
    values = [v for v in values if v is not None]
    if not values:
        return "-"
    if len(values) == 1:
        return f"{values[0]:.2f}"
    return f"{statistics.mean(values):.2f} ± {statistics.stdev(values):.2f}"


def training(row) -> str:
    """Optimizer, learning rate (and its decay), weight averaging, intent-loss weight and
    patience of a run, its dropout and word dropout, and its lexicon if it had one (rows
    saved before these were recorded were trained with Adam 5e-3, no decay, no
    averaging, an intent-loss weight of 0.5, patience 6, dropout 0.3, word dropout
    0.05 and no lexicon)."""
    averaging = row.get("weight_averaging", 0.0)
    text = f"{row.get('optimizer', 'adam')} {row.get('learning_rate', 5e-3):g}"
    if row.get("learning_rate_decay", 1.0) != 1.0:
        text += f" x{row['learning_rate_decay']:g}/epoch"
    if averaging:
        text += f", averaged {averaging:g}"
    text += f", intent x{row.get('intent_loss_weight', 0.5):g}"
    text += f", patience {row.get('patience', 6)}"
    text += f", dropout {row.get('dropout', 0.3):g}"
    text += f", word dropout {row.get('word_dropout', 0.05):g}"
    # Only where it matched words (auto gives English corpora none).
    return text + (f", lexicon {row['lexicon']}" if row.get("lexicon_words") else "")


def shown_flags(flags: list[str]) -> list[str]:
    """`flags` without those of COLUMN_FLAGS (and their values)."""
    shown, skip = [], False
    for flag in flags:
        if skip:
            skip = False
        elif flag in COLUMN_FLAGS:
            skip = True
        elif flag.split("=", 1)[0] not in COLUMN_FLAGS:
            shown.append(flag)
    return shown


def output(row) -> str:
    """The output layer, and the tags it learnt where they were BIOES."""
    scheme = row.get("tag_scheme", "bio")  # rows from before the schemes were BIO
    return row["output_layer"] + (", BIOES" if scheme == "bioes" else "")


def label(row) -> str:
    name = "default" if row["kind"] == "default" else row["model"]
    direction = "bi" if row["bidirectional"] else "uni"
    extra = " ".join(shown_flags(row["extra"]))
    if row.get("note"):
        extra = f"{extra} ({row['note']})".strip()
    return f"{name} | {direction} | {row['encoding']} | {output(row)} | {training(row)} | {extra}"


def corpus_of(row) -> str:
    return row.get("corpus", DEFAULT_CORPUS)


def table(rows) -> str:
    """Mean ± std over seeds per configuration; the intent column only where a run of
    the corpus scored intents."""
    groups: dict[str, list] = {}
    for row in rows:
        groups.setdefault(label(row), []).append(row)
    intents = any(r.get("test_intent_accuracy") is not None for r in rows)
    header = (
        "| configuration | direction | encoding | output | training | extra flags | seeds "
        "| valid slot F1 | **test slot F1** | "
        + ("test intent acc. | " if intents else "")
        + "parameters | train s (median) | epochs (median) |"
    )
    lines = [header, "|" + "---|" * header.count(" | ") + "---|"]
    # The current default first, then earlier defaults, then the rest.
    current = {
        label({"kind": "default", **_default_row(), "lexicon_words": n, "tag_scheme": scheme})
        for n in (0, 1)
        for scheme in ("bio", "bioes")
    }
    for key in sorted(groups, key=lambda k: (k not in current, not k.startswith("default"), k)):
        runs = groups[key]
        intent = f"{mean_std([r.get('test_intent_accuracy') for r in runs])} | " if intents else ""
        lines.append(
            f"| {key} | {len(runs)} | {mean_std([r['valid_slot_f1'] for r in runs])} | "
            f"**{mean_std([r.get('test_slot_f1') for r in runs])}** | {intent}"
            f"{runs[0]['parameters']:,} | "
            f"{statistics.median(r['train_seconds'] for r in runs):.0f} | "
            f"{statistics.median(r['epochs'] for r in runs):.0f} |"
        )
    return "\n".join(lines)


def markers(name: str) -> tuple[str, str]:
    """The begin and end markers of a corpus's section: ATIS keeps the ones its section
    had before there were other corpora."""
    if name == DEFAULT_CORPUS:
        return "<!-- accuracy:begin -->", "<!-- accuracy:end -->"
    slug = re.sub(r"[^A-Za-z0-9_.]+", "-", name).strip("-.") or "corpus"
    return f"<!-- accuracy-{slug}:begin -->", f"<!-- accuracy-{slug}:end -->"


def read_rows(path: Path) -> list[dict]:
    if not path.is_file():
        return []
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line]


def anchor_row(name: str, crf_rows: list[dict]) -> tuple[str, str, str] | None:
    """The comparison-table row of the CRF anchor: the latest measurement of
    bench/crf_anchor.py, else the figure the issue gave (labelled as such)."""
    measured = [r for r in crf_rows if r.get("corpus") == name]
    model = "linear-chain CRF, word-window features (the anchor)"
    if measured:
        last = measured[-1]
        return (
            model,
            f"`python bench/crf_anchor.py --corpus {name}`: {last['date']}, "
            f"{last['seconds']:.0f} s on {last['machine']}",
            f"{last['test_slot_f1']:.2f}",
        )
    if name in CORPORA:
        figure, issue = CORPORA[name]["anchor"]
        return model, f"the figure of {issue}, not yet measured by bench/crf_anchor.py", figure
    return None


def describe(name: str, rows: list[dict]) -> str:
    """What a section says of its data: the known corpora's description, else the sizes
    and splits its runs saw."""
    if name in CORPORA:
        return CORPORA[name]["data"]
    if not rows:
        return f"`{name}`"
    last = rows[-1]
    valid = "valid" if last.get("valid_split") == "valid" else "valid (a fixed tenth held out)"
    test = f"{last['test_utterances']:,} test" if last.get("test_utterances") else "no test"
    return (
        f"`{name}` ({last.get('train_utterances') or 0:,} train / "
        f"{last.get('valid_utterances') or 0:,} {valid} / {test})"
    )


def wrap(text: str) -> str:
    """A paragraph of the doc, wrapped as the ATIS section always was."""
    return textwrap.fill(text, width=91, break_long_words=False, break_on_hyphens=False)


def current_rows(rows: list[dict]) -> list[dict]:
    """The rows a reference shows: of each configuration (kind, direction, encoding,
    output, extra flags), only the runs of its latest settings; the earlier ones stay in
    bench/results/accuracy.jsonl and docs/experiments/."""

    def key(row):
        name = "default" if row["kind"] == "default" else row["model"]
        return (name, row["bidirectional"], row["encoding"], output(row), tuple(row["extra"]))

    latest = {}
    for row in rows:
        if key(row) not in latest or row["date"] >= latest[key(row)][0]:
            latest[key(row)] = (row["date"], training(row))
    return [r for r in rows if training(r) == latest[key(r)][1]]


def section(name: str, rows: list[dict], crf_rows: list[dict], command: str) -> str:
    begin, end = markers(name)
    rows = current_rows(rows)
    title = CORPORA.get(name, {}).get("title", f"`{name}`")
    # A corpus without a test split (a CSV) has validation figures only.
    has_test = not rows or any(r.get("test_slot_f1") is not None for r in rows)
    split = "test split" if has_test else "validation split, no test split"
    lines = [
        begin,
        f"## Accuracy on {title} ({split}, span-level slot F1, conlleval semantics)",
        "",
    ]
    if rows:
        commands = dict.fromkeys(r.get("command", command) for r in rows)
        lines += [
            "Commands (each appends its rows to `bench/results/accuracy.jsonl`;",
            "`python bench/accuracy.py --only-report` rebuilds this table from it):",
            *(f"- `{c}`" for c in commands),
            "",
        ]
    scored = (
        "the test split is scored once per run"
        if has_test
        else "there is no test split, so no test figure exists"
    )
    lines.append(
        wrap(
            f"Data: {describe(name, rows)}. Early stopping and every setting use the "
            f"validation split only; {scored}. Mean ± sample standard deviation over seeds; "
            "no pretrained embeddings."
        )
    )
    if rows:
        machines = "; ".join(sorted({r["machine"] for r in rows}))
        dates = ", ".join(sorted({r["date"] for r in rows}))
        lines += [f"Machine: {machines}. Dates: {dates}.", "", table(rows)]
    else:
        option = "" if name == DEFAULT_CORPUS else f"--corpus {name} "
        lines += [
            "",
            f"No runs yet: `python bench/accuracy.py {option}--kinds default --ablations "
            "--seeds 3`\nmakes the first.",
        ]
    published = list(CORPORA.get(name, {}).get("published", []))
    anchor = anchor_row(name, crf_rows)
    if anchor:
        published.append(anchor)
    if published:
        lines += [
            "",
            "Published results on the same test set, and the CRF anchor, for comparison:",
            "",
            "| model | source | slot F1 |",
            "|---|---|---|",
            *(f"| {model} | {source} | {figure} |" for model, source, figure in published),
        ]
    note = CORPORA.get(name, {}).get("published_note")
    if note:
        lines += ["", wrap(note)]
    return "\n".join(lines + [end])


def corpus_order(names) -> list[str]:
    """The known corpora in CORPORA's order (each has a section even before its first
    run: its published figures and anchor are worth reading), then the others sorted."""
    names = set(names) | set(CORPORA)
    return [n for n in CORPORA if n in names] + sorted(names - set(CORPORA))


def write_doc(rows, command: str, crf_rows=None) -> None:
    """Rebuilds every corpus's section of docs/benchmarks.md: one per known corpus and
    per other corpus with runs or a CRF anchor; a new section goes right after the one
    before it, so that they stay together."""
    crf_rows = read_rows(CRF_RESULTS) if crf_rows is None else crf_rows
    previous_end = None
    for name in corpus_order([corpus_of(r) for r in rows] + [r["corpus"] for r in crf_rows]):
        runs = [r for r in rows if corpus_of(r) == name]
        begin, end = markers(name)
        replace_section(begin, end, section(name, runs, crf_rows, command), after=previous_end)
        previous_end = end


def replace_section(
    begin: str, end: str, section: str, after: str | None = None, doc: Path = DOC
) -> None:
    """Puts `section` (which starts with `begin` and ends with `end`) into `doc`
    (docs/benchmarks.md) in place of the old one, or else right after the marker
    `after` (when the file has it) or at the end of the file."""
    text = doc.read_text(encoding="utf-8") if doc.is_file() else "# Benchmarks\n"
    if begin in text and end in text:
        head, rest = text.split(begin, 1)
        text = head + section + rest.split(end, 1)[1]
    elif after is not None and after in text:
        head, rest = text.split(after, 1)
        text = head + after + "\n\n" + section + rest
    else:
        text = text.rstrip("\n") + "\n\n" + section + "\n"
    doc.parent.mkdir(parents=True, exist_ok=True)
    doc.write_text(text, encoding="utf-8")


def publish(begin: str, end: str, lines: list[str], doc: Path = DOC) -> None:
    """Writes `lines` as the section between `begin` and `end` of `doc`
    (docs/benchmarks.md) and prints them."""
    section = "\n".join(lines)
    replace_section(begin, end, f"{begin}\n{section}\n{end}", doc=doc)
    print(section)


def plan_runs(kinds, directions, ablations, skip_default) -> list[tuple[str, bool, list[str]]]:
    """(kind, bidirectional, train.py flags) of every configuration asked for."""
    plan = []
    for kind in kinds:
        if kind == "default":
            if not skip_default:
                plan.append(("default", True, []))
            plan += [("default", True, list(ABLATIONS[name])) for name in ablations]
            continue
        for direction in directions:
            if kind == "feedforward" and direction == "bi":
                continue  # no memory, no direction: the same network
            plan.append((kind, direction == "bi", []))
    return plan


def main(argv=None) -> int:
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument(
        "--corpus",
        dest="corpora",
        nargs="+",
        action="extend",
        type=resolve_corpus,
        metavar="NAME|PATH",
        help="corpora to run on, each a folder name under ../shared/data or a path (default: atis)",
    )
    p.add_argument(
        "--data",
        dest="corpora",
        action="append",
        type=resolve_corpus,
        metavar="PATH",
        help="one corpus, as --corpus PATH (kept for older commands)",
    )
    p.add_argument(
        "--kinds",
        nargs="+",
        default=["default"] + KINDS,
        help="'default' is train.py's default configuration",
    )
    p.add_argument("--directions", nargs="+", choices=["uni", "bi"], default=["uni", "bi"])
    p.add_argument(
        "--ablations",
        nargs="*",
        choices=sorted(ABLATIONS),
        default=sorted(ABLATIONS),
        help="variants of the default configuration run beside it (default: all)",
    )
    p.add_argument("--skip-default", action="store_true", help="run only the ablations")
    p.add_argument("--seeds", type=int, default=3)
    p.add_argument("--first-seed", type=int, default=1)
    p.add_argument(
        "--extra",
        nargs=argparse.REMAINDER,
        default=[],
        help="flags passed to train.py for every run (must come last)",
    )
    p.add_argument(
        "--note",
        default="",
        help="a remark the runs' rows show beside their flags, so that runs of the same "
        "settings under another code or environment are averaged apart (e.g. 'rerun')",
    )
    p.add_argument("--only-report", action="store_true")
    args = p.parse_args(argv)
    command = "python bench/accuracy.py " + " ".join(argv if argv is not None else sys.argv[1:])

    if not args.only_report:
        try:
            corpora = args.corpora or [resolve_corpus(DEFAULT_CORPUS)]
        except argparse.ArgumentTypeError as error:
            p.error(str(error))
        plan = plan_runs(args.kinds, args.directions, args.ablations, args.skip_default)
        RESULTS.parent.mkdir(parents=True, exist_ok=True)
        for corpus in corpora:
            if test_folder(corpus.path) is None:
                print(f"{corpus.name}: no test split, so no test figure exists", flush=True)
            for kind, bidirectional, flags in plan:
                for seed in range(args.first_seed, args.first_seed + args.seeds):
                    row = run_one(corpus, kind, bidirectional, seed, flags + args.extra)
                    row["command"] = command
                    row["commit"] = commit()
                    # The same code gave ATIS other figures on another day (docs/benchmarks.md).
                    row["packages"] = _packages()
                    if args.note:
                        row["note"] = args.note
                    with open(RESULTS, "a", encoding="utf-8") as handle:
                        handle.write(json.dumps(row) + "\n")
                    test = "-" if row["test_slot_f1"] is None else f"{row['test_slot_f1']:.2f}"
                    print(
                        f"{corpus.name}: {label(row)} seed {seed}: valid "
                        f"{row['valid_slot_f1']:.2f} test {test} ({row['train_seconds']:.0f} s)",
                        flush=True,
                    )
    write_doc(read_rows(RESULTS), command)
    print(f"wrote {DOC}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
