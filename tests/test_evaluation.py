"""slotkeras.evaluation: span-level scores with conlleval semantics."""

import warnings

import pytest

from slotkeras.evaluation import report, slot_f1


def test_a_span_type_never_predicted_scores_zero_without_a_warning():
    gold = [["B-a", "O", "B-b", "I-b"], ["B-a"]]
    pred = [["B-a", "O", "O", "O"], ["O"]]
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # seqeval would warn "ill-defined" here
        result = report(gold, pred)
        f1 = slot_f1(gold, pred)
    # 1 correct span of 1 predicted and 3 gold: P 100, R 33.3, F1 50.
    assert result["slot_precision"] == pytest.approx(100.0)
    assert result["slot_recall"] == pytest.approx(100.0 / 3)
    assert result["slot_f1"] == pytest.approx(50.0) == f1
    assert result["per_slot"]["b"] == {"precision": 0.0, "recall": 0.0, "f1": 0.0, "support": 1}
    assert result["per_slot"]["a"]["recall"] == pytest.approx(50.0)


def test_nothing_predicted_and_nothing_to_find():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert slot_f1([["O", "O"]], [["O", "O"]]) == 0.0
        assert slot_f1([["B-a"]], [["O"]]) == 0.0
