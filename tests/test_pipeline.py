"""The training stream of `slotkeras.training_inputs`."""

from slotkeras.config import TrainConfig
from slotkeras.data import read_utterances
from slotkeras.splits import Splits
from slotkeras.training_inputs import training_inputs


def test_the_training_stream_runs_without_the_autotuning_thread():
    # Early stopping abandons the stream mid-way. Tearing down an autotuned iterator
    # joins tf.data's model thread, which was seen to sleep out its optimization
    # period (up to a minute) first: a run's time then jumps for nothing
    # (docs/experiments/training_stall.md).
    utterances = read_utterances("data/train.csv")[:40]
    inputs = training_inputs(
        TrainConfig(lexicon="none").validate(), Splits(utterances, utterances[:5], None, None)
    )
    for first_epoch in (0, 3):
        assert inputs.train_from(first_epoch).options().autotune.enabled is False
