"""Text as people type it, on the shared corpora (slow: trains the default on each).

ATIS's test split typed in sentence case with names capitalized and a closing mark,
and resume_ner's without spaces, served from raw text through the SavedModel's own
function: slot F1 on the original words stays within 1.0 of the corpus tokens', and
no value takes in a punctuation mark (bench/typed_text.py is the benchmark)."""

import sys

import pytest
from conftest import ROOT, run

from slotkeras import data

SHARED = ROOT.parent / "shared" / "data"


@pytest.mark.slow
@pytest.mark.parametrize("corpus", ["atis", "resume_ner"])
def test_typed_text_scores_within_one_point_of_the_corpus_tokens(corpus, tmp_path):
    folder = SHARED / corpus
    if not folder.is_dir():
        pytest.skip(f"{folder} is not here (../shared/data is read, never copied)")
    model = tmp_path / "model"
    result = run(
        ["train.py", "--train", folder, "--output", model, "--seed", "1", "--verbose", "0",
         "--no-export"],
        timeout=3600,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    sys.path.insert(0, str(ROOT / "bench"))
    from typed_text import score_typed

    from slotkeras.slot_filler import SlotFiller

    filler = SlotFiller.load(model)
    test = data.read_utterances(folder / "test")
    scores = score_typed(filler, test, joiner="" if corpus == "resume_ner" else None)
    assert scores["leaked_values"] == 0
    assert abs(scores["typed_slot_f1"] - scores["clean_slot_f1"]) <= 1.0, scores
    assert scores["clean_slot_f1"] > (94 if corpus == "atis" else 90)
