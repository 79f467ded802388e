"""TrainConfig: settings that depend on others, and their checks."""

import json

import pytest

from slotkeras.compiled_tagger import build_compiled_tagger
from slotkeras.config import ConfigError, TrainConfig


@pytest.mark.parametrize(
    "settings, expected",
    [
        ({}, 10.0),  # the CRF's loss is summed over words
        ({"output_layer": "softmax"}, 0.5),  # a softmax's is a per-token mean
        ({"output_layer": "softmax", "intent_loss_weight": 2.0}, 2.0),
        ({"intent_loss_weight": 0}, 0.0),
    ],
)
def test_intent_loss_weight_defaults_by_output_layer_and_reaches_the_loss(settings, expected):
    config = TrainConfig(units=4, embedding_dim=4, hash_dim=4, hash_buckets=8, **settings)
    assert config.validate().effective_intent_loss_weight == expected
    tagger = build_compiled_tagger(config, 5, 10, 3)
    weights = tagger.get_compile_config()["loss_weights"]  # what Keras weighs the losses by
    assert weights == {"slots": 1.0, "intent": expected}


def test_a_model_folders_config_json_reads_back_with_its_tokenizer_key(tmp_path):
    config = TrainConfig(model="gru", dropout=0.1)
    saved = {**config.to_dict(), "tokenizer": {"split_marks": True}, "extra": {}}
    path = tmp_path / "config.json"
    path.write_text(json.dumps(saved), encoding="utf-8")
    assert TrainConfig.from_json(path) == config
    with pytest.raises(ConfigError, match="unknown setting"):
        TrainConfig.from_dict({**saved, "dropout_rate": 0.1})


@pytest.mark.parametrize(
    "name, value",
    [
        ("intent_loss_weight", -1.0),
        ("intent_loss_weight", "5"),
        ("learning_rate_decay", 0.0),
        ("learning_rate_decay", 1.5),
    ],
)
def test_bad_values_name_the_setting(name, value):
    with pytest.raises(ConfigError, match=f"`{name}`"):
        TrainConfig(**{name: value}).validate()


@pytest.mark.parametrize(
    "flags, expected", [([], TrainConfig().clipnorm), (["--clipnorm", "3"], 3.0)]
)
def test_clipnorm_flag_reaches_the_optimizer(flags, expected):
    from slotkeras.cli import config_from_args, train_parser

    config = config_from_args(train_parser().parse_args(flags))
    assert config.clipnorm == expected
    small = TrainConfig(
        units=4, embedding_dim=4, hash_dim=4, hash_buckets=8, clipnorm=config.clipnorm
    )
    assert build_compiled_tagger(small, 5, 10, 3).optimizer.clipnorm == expected


@pytest.mark.parametrize("value", [0.0, -1.0, float("inf"), "2"])
def test_clipnorm_must_be_a_positive_number(value):
    with pytest.raises(ConfigError, match="`clipnorm`"):
        TrainConfig(clipnorm=value).validate()
    assert TrainConfig(clipnorm=None).validate().clipnorm is None  # no clipping
