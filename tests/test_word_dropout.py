"""Word dropout to "Other": uniform, and weighted towards rare words."""

import numpy as np
import pytest
import tensorflow as tf

from slotkeras.config import ConfigError, TrainConfig
from slotkeras.layers.token_featurizer import OTHER_INDEX, PAD_INDEX
from slotkeras.training_inputs import _word_dropout, word_dropout_rates

# Word 2 seen 9 times, word 3 once, word 4 never (a lexicon word outside the split).
WORD_IDS = [np.array([2, 2, 2, 3]), np.array([2] * 6)]


def test_uniform_rates_leave_padding_and_other_alone():
    rates = word_dropout_rates(WORD_IDS, 5, 0.2, 0.0)
    np.testing.assert_allclose(rates, [0, 0, 0.2, 0.2, 0.2])


def test_rare_words_are_dropped_more_often():
    rates = word_dropout_rates(WORD_IDS, 5, 0.2, 1.0)
    # 0.2 + 0.8 * 1 / (1 + c) for c = 9, 1, 0.
    np.testing.assert_allclose(rates, [0, 0, 0.28, 0.6, 1.0], rtol=1e-6)
    assert word_dropout_rates(WORD_IDS, 5, 0.0, 0.25)[3] == pytest.approx(0.2)


def _dropped_share(rates, word, n=4000):
    batch = ({"word_ids": tf.fill([1, n], word)}, {})
    out, _ = _word_dropout(rates, seed=7, epoch=3)(tf.constant(0, tf.int64), batch)
    return float(np.mean(out["word_ids"].numpy() == OTHER_INDEX))


def test_each_word_is_dropped_at_its_own_rate():
    rates = word_dropout_rates(WORD_IDS, 5, 0.2, 1.0)
    assert _dropped_share(rates, 2) == pytest.approx(0.28, abs=0.03)
    assert _dropped_share(rates, 3) == pytest.approx(0.6, abs=0.03)
    assert _dropped_share(rates, PAD_INDEX) == 0.0


def test_rare_word_dropout_is_checked():
    with pytest.raises(ConfigError, match="rare_word_dropout"):
        TrainConfig(rare_word_dropout=-1.0).validate()
