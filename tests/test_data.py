"""Tests for slotkeras.data: readers, validation, writers and spans."""

import ast
import pickle
import shutil
from pathlib import Path

import pytest
from conftest import ATIS, write

from slotkeras.data import (
    DataError,
    Utterance,
    convert,
    read_splits,
    read_utterances,
    write_utterance_csv,
)
from slotkeras.tag_schemes import iob_spans

READERS = Path(__file__).parent / "data" / "readers"
BOM = b"\xef\xbb\xbf"

# The same three utterances are in every fixture of tests/data/readers/.
EXPECTED = [
    Utterance(
        ("i", "want", "to", "fly", "to", "boston"),
        ("O", "O", "O", "O", "O", "B-toloc.city_name"),
        "atis_flight",
    ),
    Utterance(
        ("show", "fares", "from", "台北", "to", "東京", "😀"),
        ("O", "O", "O", "B-fromloc.city_name", "O", "B-toloc.city_name", "O"),
        "atis_airfare#atis_flight",
    ),
    Utterance(
        ("fly", "on", "june", "5th", ",", "please"),
        ("O", "O", "I-depart_date.month_name", "B-depart_date.day_number", "O", "O"),
        "atis_flight",
    ),
]
NO_INTENTS = [Utterance(u.tokens, u.tags) for u in EXPECTED]
FIXTURES = {
    "utterance_csv": ("utterances.csv", EXPECTED),
    "token_csv": ("tokens.csv", EXPECTED),
    "folder": ("folder", EXPECTED),
    "conll": ("sample.conll", NO_INTENTS),
}


def data_error(path, **options):
    with pytest.raises(DataError) as info:
        read_utterances(path, **options)
    return info.value


# ---------------------------------------------------------------------------
# Each reader on the fixtures
# ---------------------------------------------------------------------------


@pytest.mark.parametrize("format", sorted(FIXTURES))
@pytest.mark.parametrize("explicit", [False, True], ids=["auto", "explicit"])
def test_reads_fixture(format, explicit):
    name, expected = FIXTURES[format]
    options = {"format": format} if explicit else {}
    assert read_utterances(READERS / name, **options) == expected


def test_auto_detects_token_csv_by_header_with_custom_names(tmp_path):
    path = write(
        tmp_path / "t.csv",
        b"sid,word,label,extra\n1,hi,O,x\n1,boston,B-city,y\n2,bye,O,z\n",
    )
    assert read_utterances(
        path, sentence_id_column="sid", token_column="word", tag_column="label"
    ) == [
        Utterance(("hi", "boston"), ("O", "B-city")),
        Utterance(("bye",), ("O",)),
    ]
    # With the default names the same header is an utterance CSV without `text`.
    assert "missing column 'text'" in str(data_error(path))


def test_utterance_csv_custom_column_names(tmp_path):
    path = write(tmp_path / "u.csv", b"utterance,slots,label\nto boston,O B-city,flight\n")
    got = read_utterances(path, text_column="utterance", tags_column="slots", intent_column="label")
    assert got == [Utterance(("to", "boston"), ("O", "B-city"), "flight")]


def test_tsv_is_read_with_tabs(tmp_path):
    path = write(tmp_path / "u.tsv", b"text\ttags\nto boston, ma\tO B-city O\n")
    assert read_utterances(path) == [Utterance(("to", "boston,", "ma"), ("O", "B-city", "O"))]


def test_conll_fields_and_tabs(tmp_path):
    path = write(tmp_path / "c.txt", b"1\tto\tO\tx\n2\tboston\tB-city\ty\n\n1\tbye\tO\tz\n")
    got = read_utterances(path, conll_token_field=1, conll_tag_field=2)
    assert got == [Utterance(("to", "boston"), ("O", "B-city")), Utterance(("bye",), ("O",))]


def test_conll_without_trailing_newline_and_docstart_between(tmp_path):
    path = write(tmp_path / "c", b"a O\n-DOCSTART- O\nb B-x\nc I-x")
    assert read_utterances(path) == [
        Utterance(("a",), ("O",)),
        Utterance(("b", "c"), ("B-x", "I-x")),
    ]


def test_folder_without_label_has_no_intent(tmp_path):
    folder = write(tmp_path / "f", {"seq.in": b"a b\n", "seq.out": b"O B-x\n"})
    assert read_utterances(folder) == [Utterance(("a", "b"), ("O", "B-x"))]


def test_folder_ignores_trailing_blank_lines(tmp_path):
    folder = write(tmp_path / "f", {"seq.in": b"a b\n\n\n", "seq.out": b"O B-x\n", "label": b"i\n"})
    assert read_utterances(folder) == [Utterance(("a", "b"), ("O", "B-x"), "i")]


def test_whitespace_runs_and_unicode_spaces_split_tokens(tmp_path):
    path = write(tmp_path / "u.csv", "text,tags\n  a \t b\u3000c ,O  O O\n".encode())
    assert read_utterances(path) == [Utterance(("a", "b", "c"), ("O", "O", "O"))]


# ---------------------------------------------------------------------------
# Prediction input: require_tags=False
# ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "name, content, expected",
    [
        ("u.csv", b"text\na b\nc\n", [Utterance(("a", "b")), Utterance(("c",))]),
        ("u.csv", b"text,tags\na b,\nc,\n", [Utterance(("a", "b")), Utterance(("c",))]),
        ("u.csv", b"id,text,intent\n7,a b,x\n", [Utterance(("a", "b"), None, "x")]),
        (
            "t.csv",
            b"sentence_id,token\n1,a\n1,b\n2,c\n",
            [Utterance(("a", "b")), Utterance(("c",))],
        ),
        ("f", {"seq.in": b"a b\nc\n"}, [Utterance(("a", "b")), Utterance(("c",))]),
        ("f", {"seq.in": b"a\n", "label": b"x\n"}, [Utterance(("a",), None, "x")]),
        ("c.conll", b"a\nb\n\nc\n", [Utterance(("a", "b")), Utterance(("c",))]),
        ("c.conll", b"a O\nb B-x\n", [Utterance(("a", "b"), ("O", "B-x"))]),
    ],
)
def test_require_tags_false_reads_tokens_only(tmp_path, name, content, expected):
    path = write(tmp_path / name, content)
    assert read_utterances(path, require_tags=False) == expected


@pytest.mark.parametrize(
    "name, content, row",
    [
        ("u.csv", b"text,tags\na b,O X\n", 2),
        ("t.csv", b"sentence_id,token,tag\n1,a,O\n1,b,Y\n", 3),
        ("c.conll", b"a O\nb Y\n", 2),
    ],
)
def test_require_tags_false_still_validates_present_tags(tmp_path, name, content, row):
    error = data_error(write(tmp_path / name, content), require_tags=False)
    assert error.row == row
    assert "invalid tag" in error.reason


def test_require_tags_false_folder_still_validates_seq_out(tmp_path):
    folder = write(tmp_path / "f", {"seq.in": b"a\nb c\n", "seq.out": b"O\nO\n"})
    error = data_error(folder, require_tags=False)
    assert (Path(error.path).name, error.row, error.unit) == ("seq.out", 2, "line")
    assert error.reason == "2 tokens but 1 tag"


# ---------------------------------------------------------------------------
# ATIS, read from the shared folder (never copied into the project)
# ---------------------------------------------------------------------------


@pytest.mark.skipif(not ATIS.is_dir(), reason="../shared/data/atis is not there")
def test_atis_splits():
    splits = read_splits(ATIS)
    assert list(splits) == ["train", "valid", "test"]
    assert {name: len(split) for name, split in splits.items()} == {
        "train": 4478,
        "valid": 500,
        "test": 893,
    }
    first = splits["train"][0]
    assert first.tokens[:4] == ("i", "want", "to", "fly")
    assert first.tags[5] == "B-fromloc.city_name"
    assert first.intent == "atis_flight"
    assert all(len(u.tokens) == len(u.tags) and u.intent for s in splits.values() for u in s)
    assert any("#" in u.intent for u in splits["train"])


@pytest.mark.skipif(not ATIS.is_dir(), reason="../shared/data/atis is not there")
def test_atis_root_is_not_one_split():
    error = data_error(ATIS)
    assert error.row is None
    assert "no seq.in" in error.reason and "read_splits" in error.reason


def test_read_splits_subset(tmp_path):
    shutil.copytree(READERS / "folder", tmp_path / "train")
    shutil.copytree(READERS / "folder", tmp_path / "test")
    splits = read_splits(tmp_path)
    assert list(splits) == ["train", "test"]
    assert splits["test"] == EXPECTED


def test_read_splits_passes_options(tmp_path):
    write(tmp_path / "train", {"seq.in": b"a b\n"})
    assert read_splits(tmp_path, require_tags=False) == {"train": [Utterance(("a", "b"))]}


def test_read_splits_needs_train(tmp_path):
    shutil.copytree(READERS / "folder", tmp_path / "valid")
    with pytest.raises(DataError, match=r"no train/ .*found: valid/"):
        read_splits(tmp_path)
    with pytest.raises(DataError, match="no such folder"):
        read_splits(tmp_path / "missing")
    with pytest.raises(DataError, match="is a file"):
        read_splits(READERS / "utterances.csv")


def test_read_splits_reports_the_bad_split(tmp_path):
    shutil.copytree(READERS / "folder", tmp_path / "train")
    write(tmp_path / "valid", {"seq.in": b"a\nb\n", "seq.out": b"O\nZ\n"})
    with pytest.raises(DataError) as info:
        read_splits(tmp_path)
    assert info.value.path == str(tmp_path / "valid" / "seq.out")
    assert info.value.row == 2


# ---------------------------------------------------------------------------
# Malformed input: every case names the right file, row and reason
# ---------------------------------------------------------------------------

UTF8_BAD = "not valid UTF-8"
MALFORMED = {
    # utterance CSV
    "csv missing column": ("u.csv", b"text,intent\na,x\n", {}, 1, "row", "missing column 'tags'"),
    "csv columns listed": ("u.csv", b"txt,tags\na,O\n", {}, 1, "row", "found: 'txt', 'tags'"),
    "csv empty file": ("u.csv", b"", {}, None, "row", "empty file"),
    "csv blank file": ("u.csv", b"\r\n \n\n", {}, None, "row", "empty file"),
    "csv header only": ("u.csv", b"text,tags\n", {}, None, "row", "no data rows"),
    "csv header only blank rows": ("u.csv", b"text,tags\n\n,\n", {}, None, "row", "no data rows"),
    "csv count mismatch": (
        "u.csv",
        b"text,tags\na b,O O\nc d e,O O O O\n",
        {},
        3,
        "row",
        "3 tokens but 4 tags",
    ),
    "csv empty text": ("u.csv", b"text,tags\na,O\n   ,O\n", {}, 3, "row", "empty text"),
    "csv nan text": ("u.csv", b"text,tags\na,O\nnan,O\n", {}, 3, "row", "missing value 'nan'"),
    "csv empty tags": ("u.csv", b"text,tags\na,O\nb,\n", {}, 3, "row", "empty tags"),
    "csv NaN tags": ("u.csv", b"text,tags\nb,NaN\n", {}, 2, "row", "missing value 'NaN'"),
    "csv None tags": ("u.csv", b"text,tags\nb,None\n", {}, 2, "row", "missing value 'None'"),
    "csv bad utf8": ("u.csv", b"text,tags\na,O\nb\xff,O\n", {}, 3, "line", UTF8_BAD),
    "csv bad utf8 latin1": (
        "u.csv",
        "text,tags\nzürich,O\n".encode("latin-1"),
        {},
        2,
        "line",
        UTF8_BAD,
    ),
    "csv bad utf8 CR only": ("u.csv", b"text,tags\ra,O\r\xe9,O\r", {}, 3, "line", UTF8_BAD),
    "csv binary": (
        "u.csv",
        b"text,tags\na,O\n\x00\x01\x02",
        {},
        None,
        "row",
        "binary file, not text",
    ),
    "csv xlsx": ("u.csv", b"PK\x03\x04\x14\x00\x06\x00", {}, None, "row", "binary file, not text"),
    "csv utf16": ("u.csv", "text,tags\n".encode("utf-16"), {}, None, "row", "UTF-16"),
    "csv invalid tag": ("u.csv", b"text,tags\na b,O X-city\n", {}, 2, "row", "'X-city'"),
    "csv bare B-": ("u.csv", b"text,tags\na,O\nb,B-\n", {}, 3, "row", "invalid tag 'B-'"),
    "csv lowercase o": ("u.csv", b"text,tags\na,o\n", {}, 2, "row", "invalid tag 'o'"),
    "csv stray quote": ("u.csv", b'text,tags\na,O\n"b"c,O\n', {}, 3, "row", "quoting"),
    "csv unclosed quote": ("u.csv", b'text,tags\na,O\n"b,O\nc,O\n', {}, 3, "row", "quoting"),
    "csv more fields": (
        "u.csv",
        b"text,tags\na,O\nb,O,extra\n",
        {},
        3,
        "row",
        "3 fields but the header has 2 columns",
    ),
    "csv fewer fields": ("u.csv", b"text,tags,intent\na,O,x\nb,O\n", {}, 3, "row", "2 fields"),
    "csv multiline record": (
        "u.csv",
        b'text,tags\n"a\nb",O O\nc,O O\n',
        {},
        4,
        "row",
        "1 token but 2 tags",
    ),
    "csv blank lines counted": ("u.csv", b"text,tags\n\na,O\n\nb c,O\n", {}, 5, "row", "2 tokens"),
    "csv crlf row": ("u.csv", b"text,tags\r\na,O\r\nb,I-\r\n", {}, 3, "row", "'I-'"),
    "csv bom header": ("u.csv", BOM + b"text,tag\na,O\n", {}, 1, "row", "missing column 'tags'"),
    "csv mixed intents": (
        "u.csv",
        b"text,tags,intent\na,O,x\nb,O,\n",
        {},
        3,
        "row",
        "empty intent",
    ),
    "csv duplicate column": ("u.csv", b"text,tags,text\na,O,b\n", {}, 1, "row", "appears 2 times"),
    "csv header later": ("u.csv", b"\n\ntxt,tags\na,O\n", {}, 3, "row", "missing column 'text'"),
    "csv mixed tags no require": (
        "u.csv",
        b"text,tags\na,O\nb,\n",
        {"require_tags": False},
        3,
        "row",
        "empty tags",
    ),
    # token CSV
    "tok intent disagree": (
        "t.csv",
        b"sentence_id,token,tag,intent\n1,a,O,x\n1,b,O,x\n1,c,O,y\n",
        {},
        4,
        "row",
        "intent 'y' differs from intent 'x' on row 2",
    ),
    "tok intent missing in sentence": (
        "t.csv",
        b"sentence_id,token,tag,intent\n1,a,O,x\n1,b,O,\n",
        {},
        3,
        "row",
        "empty intent differs",
    ),
    "tok mixed intents": (
        "t.csv",
        b"sentence_id,token,tag,intent\n1,a,O,x\n2,b,O,\n",
        {},
        3,
        "row",
        "empty intent",
    ),
    "tok not contiguous": (
        "t.csv",
        b"sentence_id,token,tag\n1,a,O\n2,b,O\n2,c,O\n1,d,O\n",
        {},
        5,
        "row",
        "'1' reappears",
    ),
    "tok empty token": (
        "t.csv",
        b"sentence_id,token,tag\n1,a,O\n1,,O\n",
        {},
        3,
        "row",
        "empty token",
    ),
    "tok nan token": ("t.csv", b"sentence_id,token,tag\n1,nan,O\n", {}, 2, "row", "missing value"),
    "tok space token": (
        "t.csv",
        b"sentence_id,token,tag\n1,new york,O\n",
        {},
        2,
        "row",
        "whitespace",
    ),
    "tok empty id": (
        "t.csv",
        b"sentence_id,token,tag\n1,a,O\n ,b,O\n",
        {},
        3,
        "row",
        "empty sentence_id",
    ),
    "tok empty tag": ("t.csv", b"sentence_id,token,tag\n1,a,O\n1,b,\n", {}, 3, "row", "empty tag"),
    "tok invalid tag": ("t.csv", b"sentence_id,token,tag\n1,a,O\n1,b,B_x\n", {}, 3, "row", "'B_x'"),
    "tok missing tag column": (
        "t.csv",
        b"sentence_id,token,intent\n1,a,x\n",
        {},
        1,
        "row",
        "missing column 'tag'",
    ),
    "tok header only": ("t.csv", b"sentence_id,token,tag\n", {}, None, "row", "no data rows"),
    "tok more fields": (
        "t.csv",
        b"sentence_id,token,tag\n1,a,O\n1,,,O\n",
        {},
        3,
        "row",
        "4 fields",
    ),
    "tok stray quote": (
        "t.csv",
        b'sentence_id,token,tag\n1,a,O\n1,"b"",O\n',
        {},
        3,
        "row",
        "quoting",
    ),
    # CoNLL
    "conll one field": ("c.conll", b"a O\n\nb\n", {}, 3, "line", "expected a token and a tag"),
    "conll invalid tag": ("c.conll", b"a O\nb PER\n", {}, 2, "line", "invalid tag 'PER'"),
    "conll bad utf8": ("c.conll", b"a O\n\n\x80 O\n", {}, 3, "line", UTF8_BAD),
    "conll binary": ("c.conll", b"\x7fELF\x02\x01\x00\x00", {}, None, "row", "binary file"),
    "conll empty": ("c.conll", b"\n \n", {}, None, "row", "empty file"),
    "conll docstart only": ("c.conll", b"-DOCSTART- O\n\n", {}, None, "row", "no sentences"),
    "conll missing field": (
        "c.conll",
        b"a x O\nb O\n",
        {"conll_token_field": 0, "conll_tag_field": 2},
        2,
        "line",
        "expected a token and a tag",
    ),
    "conll token field": ("c.conll", b"a O\n", {"conll_token_field": 5}, 1, "line", "no field 5"),
    "conll mixed tags": (
        "c.conll",
        b"a\nb\n\nc O\n",
        {"require_tags": False},
        4,
        "line",
        "a tag on this line, but line 1 has none",
    ),
}


@pytest.mark.parametrize("case", sorted(MALFORMED))
def test_malformed_file(tmp_path, case):
    name, content, options, row, unit, reason = MALFORMED[case]
    path = write(tmp_path / name, content)
    error = data_error(path, **options)
    assert error.path == str(path)
    assert error.row == row
    assert reason in error.reason
    if row is None:
        assert str(error) == f"{path}: {error.reason}"
    else:
        assert error.unit == unit
        assert str(error) == f"{path}, {unit} {row}: {error.reason}"
    assert "\n" not in str(error)


MALFORMED_FOLDERS = {
    "no seq.in": ({"seq.out": b"O\n"}, {}, "", None, "no seq.in in this folder (found: seq.out)"),
    "empty folder": ({}, {}, "", None, "found: nothing"),
    "no seq.out": ({"seq.in": b"a\n", "label": b"x\n"}, {}, "", None, "no seq.out"),
    "seq.in empty": ({"seq.in": b"", "seq.out": b""}, {}, "seq.in", None, "empty file"),
    "seq.out longer": ({"seq.in": b"a\nb\n", "seq.out": b"O\nO\nO\n"}, {}, "seq.out", 3, "3 lines"),
    "seq.in longer": (
        {"seq.in": b"a\nb\nc\n", "seq.out": b"O\nO\n"},
        {},
        "seq.in",
        3,
        "seq.out has 2",
    ),
    "label shorter": (
        {"seq.in": b"a\nb\n", "seq.out": b"O\nO\n", "label": b"x\n"},
        {},
        "seq.in",
        2,
        "seq.in has 2 lines but label has 1",
    ),
    "count mismatch": (
        {"seq.in": b"a\nb c d\n", "seq.out": b"O\nO O O O\n"},
        {},
        "seq.out",
        2,
        "3 tokens but 4 tags",
    ),
    "empty text line": ({"seq.in": b"a\n \nb\n", "seq.out": b"O\n\nO\n"}, {}, "seq.in", 2, "empty"),
    "invalid tag": ({"seq.in": b"a\nb c\n", "seq.out": b"O\nO I_x\n"}, {}, "seq.out", 2, "'I_x'"),
    "empty label": (
        {"seq.in": b"a\nb\nc\n", "seq.out": b"O\nO\nO\n", "label": b"x\n \ny\n"},
        {},
        "label",
        2,
        "empty intent",
    ),
    "label bad utf8": (
        {"seq.in": b"a\nb\n", "seq.out": b"O\nO\n", "label": b"x\n\xc3\x28\n"},
        {},
        "label",
        2,
        UTF8_BAD,
    ),
    "seq.out binary": ({"seq.in": b"a\n", "seq.out": b"\x00O\n"}, {}, "seq.out", None, "binary"),
    "seq.out is a folder": ({"seq.in": b"a\n", "seq.out/x": b"O\n"}, {}, "seq.out", None, "folder"),
}


@pytest.mark.parametrize("case", sorted(MALFORMED_FOLDERS))
def test_malformed_folder(tmp_path, case):
    files, options, offending, row, reason = MALFORMED_FOLDERS[case]
    folder = tmp_path / "split"
    folder.mkdir()
    write(folder, files)
    error = data_error(folder, **options)
    assert error.path == str(folder / offending if offending else folder)
    assert error.row == row
    assert reason in error.reason
    if row is not None:
        assert error.unit == "line"
        assert str(error) == f"{error.path}, line {row}: {error.reason}"


def test_missing_path(tmp_path):
    error = data_error(tmp_path / "nope.csv")
    assert (error.row, error.reason) == (None, "no such file or folder")
    assert str(error) == f"{tmp_path / 'nope.csv'}: no such file or folder"


@pytest.mark.parametrize("format", ["utterance_csv", "token_csv", "conll"])
def test_folder_where_file_expected(tmp_path, format):
    error = data_error(READERS / "folder", format=format)
    assert error.row is None and "is a folder, expected a file" in error.reason


def test_seq_in_file_points_to_its_folder():
    error = data_error(READERS / "folder" / "seq.in")
    assert error.row is None and "pass the folder" in error.reason


def test_file_where_folder_expected():
    error = data_error(READERS / "utterances.csv", format="folder")
    assert error.row is None and "is a file, expected a folder" in error.reason


def test_invalid_arguments():
    with pytest.raises(ValueError, match="argument `format`.*got 'json'"):
        read_utterances(READERS / "utterances.csv", format="json")
    with pytest.raises(ValueError, match="argument `conll_tag_field`"):
        read_utterances(READERS / "sample.conll", conll_tag_field="3")
    with pytest.raises(ValueError, match="argument `text_column`"):
        read_utterances(READERS / "utterances.csv", text_column="")


# ---------------------------------------------------------------------------
# Accepted variations: BOM, CRLF
# ---------------------------------------------------------------------------


@pytest.mark.parametrize("format", sorted(FIXTURES))
@pytest.mark.parametrize("ending", [b"\r\n", b"\r"], ids=["crlf", "cr"])
def test_bom_and_crlf_accepted(tmp_path, format, ending):
    name, expected = FIXTURES[format]
    source = READERS / name

    def transform(data):
        return BOM + data.replace(b"\n", ending)

    if source.is_dir():
        target = write(
            tmp_path / name, {f.name: transform(f.read_bytes()) for f in source.iterdir()}
        )
    else:
        target = write(tmp_path / name, transform(source.read_bytes()))
    assert b"\r" in (target / "seq.in" if target.is_dir() else target).read_bytes()
    assert read_utterances(target) == expected


def test_crlf_inside_quoted_cell_counts_rows(tmp_path):
    path = write(tmp_path / "u.csv", b'text,tags\r\n"a\r\nb",O O\r\nc,O X\r\n')
    assert data_error(path).row == 4


# ---------------------------------------------------------------------------
# Round trips through the utterance CSV writer
# ---------------------------------------------------------------------------


@pytest.mark.parametrize("format", sorted(FIXTURES))
def test_round_trip(tmp_path, format):
    name, expected = FIXTURES[format]
    original = read_utterances(READERS / name)
    out = tmp_path / "out.csv"
    write_utterance_csv(original, out)
    again = read_utterances(out)
    assert again == original == expected
    header = out.read_text(encoding="utf-8").splitlines()[0]
    assert header == ("text,tags,intent" if expected[0].intent else "text,tags")


def test_round_trip_awkward_tokens(tmp_path):
    utterances = [
        Utterance(('"quoted"', "a,b", "it's", "😀🎉", "中文", "#"), ("O",) * 6, "x#y"),
        Utterance(("nan-ish", "None"), ("B-a", "I-a"), "x"),
    ]
    out = tmp_path / "deep" / "out.csv"
    write_utterance_csv(utterances, out)
    assert read_utterances(out) == utterances


def test_round_trip_without_tags(tmp_path):
    utterances = [Utterance(("a", "b")), Utterance(("c",))]
    out = tmp_path / "out.csv"
    write_utterance_csv(utterances, out)
    assert out.read_text(encoding="utf-8") == "text,tags\na b,\nc,\n"
    assert read_utterances(out, require_tags=False) == utterances
    assert data_error(out).row == 2  # tags are required by default


def test_intent_column_only_when_some_intent(tmp_path):
    out = tmp_path / "out.csv"
    write_utterance_csv([Utterance(("a",), ("O",), "x")], out)
    assert out.read_text(encoding="utf-8") == "text,tags,intent\na,O,x\n"
    write_utterance_csv([Utterance(("a",), ("O",))], out)
    assert out.read_text(encoding="utf-8") == "text,tags\na,O\n"


@pytest.mark.parametrize(
    "utterances, message",
    [
        ([Utterance(("a",), ("O",)), Utterance(("b",))], "utterance 2 has no tags"),
        ([Utterance(("a",), ("O",), "x"), Utterance(("b",), ("O",))], "utterance 2 has no intent"),
        ([Utterance(("a b",), ("O",))], "holds whitespace"),
        ([Utterance(("",), ("O",))], "holds whitespace"),
        ([Utterance((), ())], "no tokens"),
        ([Utterance(("a",), ("X",))], "invalid tag 'X'"),
        ([Utterance(("a",), ("O",), " x")], "would not read back"),
        ([("a",)], "expected Utterance"),
    ],
)
def test_writer_rejects_what_would_not_read_back(tmp_path, utterances, message):
    out = tmp_path / "out.csv"
    with pytest.raises(ValueError, match=message):
        write_utterance_csv(utterances, out)
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("format", sorted(FIXTURES))
def test_convert(tmp_path, format):
    name, expected = FIXTURES[format]
    out = tmp_path / "converted.csv"
    assert convert(READERS / name, out) == 3
    assert read_utterances(out, format="utterance_csv") == expected
    assert [p.name for p in tmp_path.iterdir()] == ["converted.csv"]


def test_convert_passes_options(tmp_path):
    src = write(tmp_path / "c.txt", b"x a O\nx b B-k\n")
    out = tmp_path / "out.csv"
    assert convert(src, out, conll_token_field=1) == 1
    assert read_utterances(out) == [Utterance(("a", "b"), ("O", "B-k"))]


def test_convert_leaves_destination_alone_on_bad_input(tmp_path):
    bad = write(tmp_path / "bad.csv", b"text,tags\na,O\nb,Q\n")
    out = tmp_path / "out.csv"
    with pytest.raises(DataError):
        convert(bad, out)
    assert not out.exists()
    out.write_text("keep me\n", encoding="utf-8")
    with pytest.raises(DataError):
        convert(bad, out)
    assert out.read_text(encoding="utf-8") == "keep me\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bad.csv", "out.csv"]


def test_convert_replaces_destination(tmp_path):
    out = write(tmp_path / "out.csv", b"old content that is longer than the new one " * 100)
    assert convert(READERS / "folder", out) == 3
    assert read_utterances(out) == EXPECTED
    assert [p.name for p in tmp_path.iterdir()] == ["out.csv"]


def test_convert_onto_its_own_source(tmp_path):
    path = tmp_path / "u.csv"
    shutil.copy(READERS / "utterances.csv", path)
    assert convert(path, path) == 3
    assert read_utterances(path) == EXPECTED


def test_convert_into_a_folder_writes_a_seq_folder_only_where_there_is_one(tmp_path):
    assert convert(READERS / "utterances.csv", tmp_path / "new") == 3
    assert read_utterances(tmp_path / "new") == EXPECTED
    write(tmp_path / "other" / "notes.txt", "mine")
    with pytest.raises(DataError, match="holds other files and no seq.in"):
        convert(READERS / "utterances.csv", tmp_path / "other")
    with pytest.raises(DataError, match="is a folder"):
        convert(READERS / "utterances.csv", tmp_path / "other", output_format="jsonl")


# ---------------------------------------------------------------------------
# Spans
# ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "tags, spans",
    [
        ([], []),
        (["O", "O"], []),
        (["B-a"], [("a", 0, 1)]),
        (["B-a", "I-a", "I-a"], [("a", 0, 3)]),
        (["I-a", "I-a", "O"], [("a", 0, 2)]),  # I- opens a span at the start
        (["O", "I-a"], [("a", 1, 2)]),  # ... and after O
        (["B-a", "I-b"], [("a", 0, 1), ("b", 1, 2)]),  # ... and after another type
        (["I-a", "I-b", "I-b"], [("a", 0, 1), ("b", 1, 3)]),
        (["B-a", "B-a"], [("a", 0, 1), ("a", 1, 2)]),  # B- always starts a new span
        (["B-a", "O", "I-a"], [("a", 0, 1), ("a", 2, 3)]),
        (["B-a", "I-a", "B-b", "I-b", "O"], [("a", 0, 2), ("b", 2, 4)]),
        (
            ["B-fromloc.city_name", "I-fromloc.city_name", "B-toloc.city_name"],
            [("fromloc.city_name", 0, 2), ("toloc.city_name", 2, 3)],
        ),
        (["B-a-b", "I-a-b"], [("a-b", 0, 2)]),  # the type may contain '-'
        (["B-a", "", "I-a"], [("a", 0, 1), ("a", 2, 3)]),  # padding counts as O
        (["B-a", "[UNK]", "B-"], [("a", 0, 1)]),  # unknown tags count as O
        ([b"B-a", b"I-a"], [("a", 0, 2)]),  # bytes, as from TensorFlow
    ],
)
def test_iob_spans(tags, spans):
    assert iob_spans(tags) == spans


def test_iob_spans_accepts_a_generator():
    assert iob_spans(t for t in ("O", "B-x", "I-x")) == [("x", 1, 3)]


# ---------------------------------------------------------------------------
# Classes and module
# ---------------------------------------------------------------------------


def test_data_error_message_and_pickle():
    error = DataError(Path("a/b.csv"), "empty text", row=3)
    assert (error.path, error.reason, error.row, error.unit) == ("a/b.csv", "empty text", 3, "row")
    assert str(error) == "a/b.csv, row 3: empty text"
    assert isinstance(error, ValueError)
    assert str(DataError("seq.out", "bad", row=2, unit="line")) == "seq.out, line 2: bad"
    assert str(DataError("x.csv", "empty file")) == "x.csv: empty file"
    copy = pickle.loads(pickle.dumps(DataError("f", "r", 4, "line")))
    assert (copy.path, copy.reason, copy.row, copy.unit, str(copy)) == (
        "f",
        "r",
        4,
        "line",
        "f, line 4: r",
    )


def test_utterance_is_frozen_and_coerces_lists():
    utterance = Utterance(["a", "b"], ["O", "B-x"], "i")
    assert utterance == Utterance(("a", "b"), ("O", "B-x"), "i")
    assert hash(utterance) == hash(Utterance(("a", "b"), ("O", "B-x"), "i"))
    with pytest.raises(AttributeError):
        utterance.intent = "j"
    with pytest.raises(ValueError, match="2 tokens but 1 tag"):
        Utterance(("a", "b"), ("O",))
    with pytest.raises(TypeError, match="argument `tokens`"):
        Utterance("a b")


def test_module_imports_no_heavy_library():
    source = Path(__file__).resolve().parents[1] / "slotkeras" / "data.py"
    imported = set()
    for node in ast.walk(ast.parse(source.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            imported.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            imported.add((node.module or "").split(".")[0])
    assert not imported & {"tensorflow", "keras", "pandas", "numpy", "sklearn"}
