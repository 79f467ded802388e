"""`--refit`: after the early stop, a model trained anew on the training and validation
splits together, for the epochs early stopping chose."""

import json

import pytest
from conftest import write

from slotkeras.config import TrainConfig
from slotkeras.slot_filler import SlotFiller
from slotkeras.training import train

TRAIN = "text,tags,intent\n" + "".join(
    f"fly to {city} {day},O O B-toloc.city_name B-depart_date.day_name,atis_flight\n"
    for city in ("boston", "denver", "dallas", "miami", "austin", "tampa")
    for day in ("monday", "friday", "sunday")
)
# "zanzibar" and "quito" are only in the validation split.
VALID = (
    "text,tags,intent\n"
    "fly to zanzibar friday,O O B-toloc.city_name B-depart_date.day_name,atis_flight\n"
    "fly to quito monday,O O B-toloc.city_name B-depart_date.day_name,atis_flight\n"
)


@pytest.mark.parametrize("refit", [False, True])
def test_refit_trains_on_both_splits_for_the_chosen_epochs(tmp_path, refit):
    train_file = write(tmp_path / "train.csv", TRAIN)
    valid_file = write(tmp_path / "valid.csv", VALID)
    config = TrainConfig(
        train=str(train_file),
        valid=str(valid_file),
        output=str(tmp_path / "model"),
        epochs=3,
        epoch_utterances=1,  # a pass an epoch, as the refit's own epochs count
        units=8,
        embedding_dim=8,
        hash_dim=8,
        export=False,
        verbose=0,
        refit=refit,
    )
    metrics = train(config, log=lambda *_: None)
    saved = json.loads((tmp_path / "model" / "metrics.json").read_text())
    filler = SlotFiller.load(tmp_path / "model")
    vocabulary = filler.model.get_layer("token_featurizer").vocabulary
    if refit:
        assert saved["refit"] == {"epochs": saved["best_epoch"], "utterances": 20}
        assert {"zanzibar", "quito"} <= set(vocabulary)
    else:
        assert saved["refit"] is None
        assert not {"zanzibar", "quito"} & set(vocabulary)
    assert metrics["validation"] == saved["validation"]
    assert json.loads((tmp_path / "model" / "config.json").read_text())["refit"] is refit
