"""Speed of a trained model's CRF decoding in batches: where pruned Viterbi steps are
left unproven, decoding again only those sequences against the whole batch.

    python bench/decoding_speed.py                  # trains the default on ATIS (seed 1)
    python bench/decoding_speed.py --model FOLDER   # a trained model folder

The pruned Viterbi step of batches (`slotkeras.layers.crf._pruned_max_plus`) is exact
where a bound proves it; after the loop, the sequences it did not prove are decoded
again with full steps. A one-epoch model (the serving bench's) proves every step; a
trained one leaves a few unproven. This bench counts them on the test split and times,
in one process and interleaved, the same decoders with the two ways of decoding again
(`CRF._unproven_decoded_again`, and the whole batch again, as before c3afad6):

- `SlotFiller.predict_ids` on the whole test split (what `evaluate.py` runs: sorted
  batches of 256, CRF decoding with each tag's probability);
- the CRF alone on the first 256 test utterances in sorted chunks of 64 (what the
  SavedModel runs for a batch of 256): `decode` and `decode_with_probabilities`.

Tags are checked to be the same both ways. Results go to docs/benchmarks.md.
"""

from __future__ import annotations

import contextlib
import datetime
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from slotkeras.datasets import pad_tokens

ROOT = Path(__file__).resolve().parents[1]
BEGIN, END = "<!-- decoding-speed:begin -->", "<!-- decoding-speed:end -->"
CHUNK = 64


def _whole_batch_again(self, tags, exact, emissions, mask):
    """The fallback before c3afad6: any unproven sequence reruns the whole batch."""
    import tensorflow as tf

    return tf.cond(
        tf.reduce_all(exact), lambda: tags, lambda: self._viterbi(emissions, mask, False)
    )


@contextlib.contextmanager
def _decoding_again(crf_class, again):
    """`crf_class._unproven_decoded_again` is `again` while decoders are traced in
    the block (tracing reads it), and this checkout's one again afterwards."""
    own = crf_class._unproven_decoded_again
    crf_class._unproven_decoded_again = again
    try:
        yield
    finally:
        crf_class._unproven_decoded_again = own


def _interleaved(calls: dict, rounds: int) -> dict:
    """Median seconds of each call, timed in turns (the first one alternating)."""
    times = {name: [] for name in calls}
    names = list(calls)
    for round_ in range(rounds):
        for name in names if round_ % 2 == 0 else names[::-1]:
            start = time.perf_counter()
            calls[name]()
            times[name].append(time.perf_counter() - start)
    return {name: statistics.median(v) for name, v in times.items()}


def _unproven_steps(crf, emissions, mask) -> tuple[int, int]:
    """(unproven, real) steps of the pruned Viterbi over one batch, run step by step."""
    import tensorflow as tf

    from slotkeras.layers.crf import _max_plus

    em, mk, transitions, start, _ = crf._prepare(emissions, mask)
    step = crf._pruned_step(transitions)
    delta, seen, unproven, real = start[None] + em[0], mk[0], 0, 0
    for t in range(1, int(em.shape[0])):
        counted = mk[t] & seen
        unproven += int(tf.reduce_sum(tf.cast(counted & ~step(delta)[2], tf.int32)))
        real += int(tf.reduce_sum(tf.cast(counted, tf.int32)))
        best, _ = _max_plus(delta, transitions)
        delta = tf.where(mk[t][:, None], best + em[t], delta)
        seen = seen | mk[t]
    return unproven, real


def main(argv=None) -> int:
    sys.path.insert(0, str(ROOT))
    sys.path.insert(0, str(ROOT / "bench"))
    from accuracy import machine, publish, timing_parser

    p = timing_parser(__doc__, rounds=10)
    p.add_argument("--model", help="a trained model folder (default: train the default)")
    args = p.parse_args(argv)
    import numpy as np
    import tensorflow as tf

    from slotkeras import data
    from slotkeras.decoding import find_crf
    from slotkeras.layers.crf import CRF
    from slotkeras.slot_filler import SlotFiller

    tokens = [u.tokens for u in data.read_utterances(Path(args.data) / "test")]
    with tempfile.TemporaryDirectory() as tmp:
        folder = args.model
        if folder is None:
            folder = str(Path(tmp) / "m")
            subprocess.run(
                [sys.executable, "train.py", "--train", args.data, "--output", folder,
                 "--seed", "1", "--verbose", "0", "--no-export"],
                cwd=ROOT, env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}, check=True,
                capture_output=True,
            )  # fmt: skip
        ways = {"whole batch": _whole_batch_again, "unproven rows": CRF._unproven_decoded_again}
        fillers = {}
        for name, again in ways.items():
            with _decoding_again(CRF, again):
                fillers[name] = SlotFiller.load(folder)
                fillers[name].predict_ids(tokens)  # traced now
        results = {name: f.predict_ids(tokens)[0] for name, f in fillers.items()}
        same = all(
            np.array_equal(a, b) for a, b in zip(*results.values(), strict=True)
        )  # fmt: skip

        # The SavedModel's chunks of a batch of 256: sorted by length, each cut to its
        # own longest utterance.
        filler = fillers["unproven rows"]
        crf = find_crf(filler.model)
        batch = sorted(tokens[:256], key=len)
        chunks = []
        for i in range(0, len(batch), CHUNK):
            padded = tf.constant(pad_tokens(batch[i : i + CHUNK]).astype(str))
            with filler.prepared.scope():
                chunks.append((filler.model(padded, training=False)["slots"], padded != ""))
        unproven = [_unproven_steps(crf, *chunk) for chunk in chunks]
        signature = [
            tf.TensorSpec([None, None, crf.num_tags]),
            tf.TensorSpec([None, None], tf.bool),
        ]
        decoders = {}
        for name, again in ways.items():
            for method in ("decode", "decode_with_probabilities"):

                def run(emissions, mask, method=method):
                    with filler.prepared.scope():
                        return getattr(crf, method)(emissions, mask)

                function = tf.function(run, input_signature=signature)
                with _decoding_again(CRF, again):
                    for chunk in chunks:
                        function(*chunk)  # traced now
                decoders[(method, name)] = function
        timed = _interleaved(
            {
                **{
                    ("predict_ids", name): (lambda f=f: f.predict_ids(tokens))
                    for name, f in fillers.items()
                },
                **{
                    key: (lambda d=d: [d(*chunk) for chunk in chunks])
                    for key, d in decoders.items()
                },
            },
            args.rounds,
        )

    command = "python bench/decoding_speed.py " + " ".join(
        argv if argv is not None else sys.argv[1:]
    )
    model = args.model or f"the default, seed 1, trained on {Path(args.data).name}"
    lines = [
        f"Command: `{command.strip()}`. Machine: {machine()}, TensorFlow {tf.__version__}. "
        f"Date: {datetime.date.today()}. Model: {model}; {len(tokens)} test utterances; "
        f"medians of {args.rounds} interleaved rounds.",
        "",
        f"Unproven pruned steps in the {len(chunks)} chunks of {CHUNK} of the first 256 test "
        "utterances: "
        + ", ".join(f"{u} of {r}" for u, r in unproven)
        + f". Same tags both ways on the whole split: {'yes' if same else 'NO'}.",
        "",
        "| decoder | whole batch again | unproven rows again | ratio |",
        "|---|---|---|---|",
    ]
    labels = {
        "predict_ids": f"`SlotFiller.predict_ids`, {len(tokens)} utterances (s)",
        "decode": f"`CRF.decode`, {len(chunks)} chunks (ms)",
        "decode_with_probabilities": f"`CRF.decode_with_probabilities`, {len(chunks)} chunks (ms)",
    }
    for method, text in labels.items():
        scale = 1 if method == "predict_ids" else 1000
        whole, rows = timed[(method, "whole batch")], timed[(method, "unproven rows")]
        lines.append(f"| {text} | {whole * scale:.2f} | {rows * scale:.2f} | {whole / rows:.2f}x |")
    publish(BEGIN, END, lines)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
