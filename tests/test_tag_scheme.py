"""The tags a model learns (`--tag-scheme`) and the BIO tags it answers in."""

import pytest

from slotkeras.config import TrainConfig
from slotkeras.data import Utterance, read_utterances
from slotkeras.splits import Splits
from slotkeras.tag_schemes import iob_spans, output_tag, to_bioes
from slotkeras.training_inputs import _dataset_arrays, model_tags, training_inputs


@pytest.fixture(scope="module")
def sample():
    utterances = read_utterances("data/train.csv")[:120]
    return Splits(utterances[:100], utterances[100:], None, None)


@pytest.mark.parametrize("scheme", ["bio", "bioes"])
def test_training_targets_are_the_data_spans_in_the_chosen_scheme(sample, scheme):
    config = TrainConfig(tag_scheme=scheme, lexicon="none").validate()
    inputs = training_inputs(config, sample)
    assert inputs.tag_scheme == scheme
    labels = inputs.tags.labels
    prefixes = {tag[:2] for tag in labels if tag != "O"}
    assert prefixes == ({"B-", "I-", "E-", "S-"} if scheme == "bioes" else {"B-", "I-"})
    # The training targets, read back through `output_tag`, hold the data's spans.
    tag_lists = [model_tags(inputs.tag_scheme, u.tags) for u in sample.train]
    *_, slot_ids, _ = _dataset_arrays(inputs.featurizer, sample.train, tag_lists, inputs.tags, None)
    for u, ids in zip(sample.train, slot_ids, strict=True):
        learnt = [labels[i] for i in ids]
        assert learnt == (to_bioes(u.tags) if scheme == "bioes" else list(u.tags))
        assert iob_spans([output_tag(t) for t in learnt]) == iob_spans(u.tags)


def test_auto_takes_bioes_where_most_spans_are_longer_than_one_token():
    def splits(*tag_lists):
        train = [Utterance(tuple(f"w{i}" for i in range(len(t))), tuple(t)) for t in tag_lists]
        return Splits(train, train[:1], None, None)

    auto = TrainConfig(lexicon="none").validate()
    assert auto.tag_scheme == "auto"
    long_, short = ["B-a", "I-a", "O"], ["B-a", "O", "B-b"]
    # Two spans of two tokens, two of one: half are longer, so BIOES.
    assert training_inputs(auto, splits(long_, long_, short)).tag_scheme == "bioes"
    assert training_inputs(auto, splits(long_, short, short)).tag_scheme == "bio"
    assert training_inputs(auto, splits(["O", "O"])).tag_scheme == "bio"  # no spans
    # The bundled corpus (ATIS-like, mostly one-word values) keeps BIO.
    bundled = read_utterances("data/train.csv")
    assert training_inputs(auto, Splits(bundled, bundled[:5], None, None)).tag_scheme == "bio"


def test_an_unknown_scheme_is_a_config_error():
    from slotkeras.config import ConfigError

    with pytest.raises(ConfigError, match="tag_scheme"):
        TrainConfig(tag_scheme="bmes").validate()
