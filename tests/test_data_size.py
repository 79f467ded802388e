"""Settings decided from the training data's size (recorded in config.json), the
deployable model without optimizer state, and the warning of a model that learned to
tag nothing."""

import json

from conftest import ROOT

from slotkeras import data, data_size
from slotkeras.config import TrainConfig
from slotkeras.evaluation import report


def test_an_epoch_repeats_a_small_training_set_up_to_its_utterances():
    config = TrainConfig()
    assert data_size.passes_per_epoch(config, 30) == 34  # 1,020 utterances an epoch
    assert data_size.passes_per_epoch(config, 1000) == 1
    assert data_size.passes_per_epoch(config, 4478) == 1


def test_tables_shrink_for_a_small_corpus_and_stay_for_the_bundled_one():
    train = data.read_utterances(ROOT / "data" / "train.csv")
    config, decided = data_size.adapted(TrainConfig(), train)
    assert decided == {"refit": False, "weight_averaging_warmup": False}
    assert (config.hash_buckets, config.pair_buckets) == (16384, 65536)
    small, decided = data_size.adapted(TrainConfig(), train[:36])
    assert decided["refit"] is True and small.weight_averaging_warmup is True
    assert small.pair_buckets < 65536 and small.pair_buckets % 1024 == 0
    # Asked for explicitly, a size is kept; so is a table turned off.
    small_off = TrainConfig(size_tables_to_data=False, refit=False, weight_averaging_warmup=False)
    kept, _ = data_size.adapted(small_off, train[:36])
    assert (kept.pair_buckets, kept.refit, kept.weight_averaging_warmup) == (65536, False, False)
    kept, _ = data_size.adapted(TrainConfig(weight_averaging_warmup=True), train)
    assert kept.weight_averaging_warmup is True
    off, _ = data_size.adapted(TrainConfig(model="feedforward"), train[:36])
    assert off.pair_buckets == 0


def test_a_table_has_16_buckets_a_key_at_least_1024():
    assert data_size.table_size(1) == 1024
    assert data_size.table_size(65) == 2048
    assert data_size.table_size(6120) == 131072


def test_a_model_that_tags_nothing_is_warned_about():
    gold = [["O", "B-city"], ["B-date", "O"]]
    nothing = report(gold, [["O", "O"], ["O", "O"]])
    assert nothing["num_predicted_spans"] == 0
    assert "predicts no span at all" in data_size.silent_failure(nothing)
    wrong = report(gold, [["B-date", "O"], ["O", "B-city"]])
    assert "slot F1 0" in data_size.silent_failure(wrong)
    assert data_size.silent_failure(report(gold, gold)) is None


def test_a_small_corpus_trains_a_small_model_that_records_its_settings(tmp_path, capsys):
    """36 utterances: the decided settings are in config.json, model.keras holds no
    optimizer state, and a warning line appears (and is kept in metrics.json) when
    validation finds no span."""
    import zipfile

    from slotkeras import evaluation, training
    from slotkeras.splits import Splits

    train = data.read_utterances(ROOT / "data" / "train.csv")
    splits = Splits(train[:36], train[36:46], None, None)
    folder = tmp_path / "small"
    config = TrainConfig(output=str(folder), epochs=2, epoch_utterances=40, verbose=0, seed=3)
    real = evaluation.evaluate
    lines = []

    def no_spans(filler, utterances, *args, **kwargs):  # as a model that learned nothing
        result = real(filler, utterances, *args, **kwargs)
        return {**result, "slot_f1": 0.0, "num_predicted_spans": 0}

    evaluation.evaluate = no_spans
    try:
        metrics = training.train(config, log=lines.append, splits=splits)
    finally:
        evaluation.evaluate = real
    saved = json.loads((folder / "config.json").read_text())
    assert saved["refit"] is True and saved["pair_buckets"] < 65536
    assert saved["weight_averaging_warmup"] is True
    decided = [line for line in lines if line.startswith("From the training data's size: ")]
    assert len(decided) == 1 and "refit on" in decided[0] and "warmup on" in decided[0]
    warnings = [line for line in lines if line.startswith("warning: the saved model")]
    assert len(warnings) == 1 and "learned to tag nothing" in warnings[0]
    assert json.loads((folder / "metrics.json").read_text())["warning"] == metrics["warning"]
    with zipfile.ZipFile(folder / "model.keras") as archive:
        import h5py

        with archive.open("model.weights.h5") as handle, h5py.File(handle) as weights:
            names = []
            weights.visit(names.append)
    assert not [n for n in names if "optimizer" in n]
