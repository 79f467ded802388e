"""Checks on the bundled corpus in data/ and on the script that makes it."""

import csv
import re
import subprocess
import sys

import pytest
from conftest import ROOT

DATA = ROOT / "data"
SCRIPT = ROOT / "scripts" / "make_corpus.py"
FILES = ["train.csv", "test.csv", "README.md", "smart_home.md"]
TAG_RE = re.compile(r"^(O|[BI]-[a-z_]+(\.[a-z_]+)?)$")


def read_rows(name):
    with (DATA / name).open(encoding="utf-8", newline="") as f:
        reader = csv.reader(f)
        header = next(reader)
        assert header == ["text", "tags", "intent"]
        return list(reader)


@pytest.fixture(scope="module")
def train():
    return read_rows("train.csv")


@pytest.fixture(scope="module")
def test():
    return read_rows("test.csv")


def entities(rows, slot):
    """The values (as strings) tagged with ``slot`` in ``rows``."""
    found = []
    for text, tags, _ in rows:
        words, labels = text.split(), tags.split()
        current = None
        for word, label in zip(words, labels, strict=True):
            if label == "B-" + slot:
                current = [word]
                found.append(current)
            elif label == "I-" + slot and current is not None:
                current.append(word)
            else:
                current = None
    return [" ".join(e) for e in found]


def find_phrase(rows, phrase):
    """(tags, start) for every row whose text contains ``phrase``."""
    target = phrase.split()
    hits = []
    for text, tags, _ in rows:
        words, labels = text.split(), tags.split()
        for i in range(len(words) - len(target) + 1):
            if words[i : i + len(target)] == target:
                hits.append((labels, i))
    return hits


def test_regenerating_gives_identical_files(tmp_path):
    subprocess.run(
        [sys.executable, str(SCRIPT), "--out", str(tmp_path)],
        check=True,
        capture_output=True,
        timeout=60,
    )
    for name in FILES:
        assert (tmp_path / name).read_bytes() == (DATA / name).read_bytes(), name


def test_sizes(train, test):
    assert len(train) >= 2000
    assert len(test) >= 500


@pytest.mark.parametrize("split", ["train.csv", "test.csv"])
def test_rows_are_well_formed(split):
    rows = read_rows(split)
    for n, (text, tags, intent) in enumerate(rows, start=2):
        assert text == text.lower() == text.strip(), (split, n)
        assert "  " not in text, (split, n)
        words, labels = text.split(" "), tags.split(" ")
        assert len(words) == len(labels), (split, n, text)
        assert intent.startswith("atis_"), (split, n)
        previous = "O"
        for label in labels:
            assert TAG_RE.match(label), (split, n, label)
            if label.startswith("I-"):
                # I-x only continues a B-x or I-x of the same slot
                assert previous[2:] == label[2:] and previous != "O", (split, n, text)
            previous = label


@pytest.mark.parametrize("split", ["train.csv", "test.csv"])
def test_lecture_pair_is_present(split):
    rows = read_rows(split)
    arrive = find_phrase(rows, "arrive taipei on november 2nd")
    leave = find_phrase(rows, "leave taipei on november 2nd")
    assert arrive and leave
    for labels, i in arrive:
        assert labels[i : i + 5] == [
            "O",
            "B-toloc.city_name",
            "O",
            "B-arrive_date.month_name",
            "B-arrive_date.day_number",
        ]
    for labels, i in leave:
        assert labels[i : i + 5] == [
            "O",
            "B-fromloc.city_name",
            "O",
            "B-depart_date.month_name",
            "B-depart_date.day_number",
        ]


def test_test_split_has_unseen_names(train, test):
    train_vocab = {w for text, _, _ in train for w in text.split()}
    city_slots = ["fromloc.city_name", "toloc.city_name", "stoploc.city_name", "city_name"]
    train_cities = {c for s in city_slots for c in entities(train, s)}
    test_cities = {c for s in city_slots for c in entities(test, s)}
    unseen_cities = test_cities - train_cities
    assert len(unseen_cities) >= 5
    # word hashing matters: some of them are made of words train never has
    assert sum(any(w not in train_vocab for w in c.split()) for c in unseen_cities) >= 5
    # and test mixes them with seen names
    assert len(test_cities & train_cities) >= 20

    unseen_airlines = set(entities(test, "airline_name")) - set(entities(train, "airline_name"))
    assert unseen_airlines
    assert any(w not in train_vocab for a in unseen_airlines for w in a.split())


def test_no_test_utterance_is_in_train(train, test):
    train_texts = {text for text, _, _ in train}
    assert not [text for text, _, _ in test if text in train_texts]
    assert len({text for text, _, _ in test}) == len(test)
    assert len(train_texts) == len(train)


def test_inventory(train):
    intents = [intent for _, _, intent in train]
    assert intents.count("atis_flight") / len(intents) > 0.5
    assert len(set(intents)) >= 10
    slots = {label[2:] for _, tags, _ in train for label in tags.split() if label != "O"}
    for slot in [
        "fromloc.city_name",
        "toloc.city_name",
        "stoploc.city_name",
        "depart_date.month_name",
        "depart_date.day_number",
        "depart_date.day_name",
        "depart_date.date_relative",
        "arrive_date.month_name",
        "arrive_date.day_number",
        "arrive_date.day_name",
        "depart_time.period_of_day",
        "depart_time.time",
        "arrive_time.time",
        "arrive_time.period_of_day",
        "airline_name",
        "airline_code",
        "class_type",
        "round_trip",
        "cost_relative",
        "fare_amount",
        "flight_number",
        "aircraft_code",
        "meal",
        "city_name",
        "airport_name",
    ]:
        assert slot in slots, slot


def test_the_smart_home_example_reads_as_commands_with_rooms_devices_and_levels():
    from collections import Counter

    from slotkeras.data import read_utterances
    from slotkeras.tag_schemes import iob_spans

    utterances = read_utterances(DATA / "smart_home.md")
    assert len(utterances) == 60 and len({u.text for u in utterances}) == 60
    assert Counter(u.intent for u in utterances) == {"turn_on": 20, "turn_off": 20, "set_level": 20}
    slots = Counter(slot for u in utterances for slot, _, _ in iob_spans(u.tags))
    assert set(slots) == {"room", "device", "level"} and slots["device"] == 60
    assert all(slot != "level" for u in utterances if u.intent != "set_level"
               for slot, _, _ in iob_spans(u.tags))  # fmt: skip
    assert any(u.text.endswith("please!") for u in utterances)  # typed, with marks
