"""Spans over raw text: the readers of jsonl, inline markup (CSV, Markdown), Rasa YAML
and Label Studio JSON, and how spans become tags (misaligned, overlapping, trimmed)."""

import json

import pytest
from conftest import write

from slotkeras.data import DataError, Utterance, read_utterances
from slotkeras.markup import parse_markup, render_markup
from slotkeras.raw_text import TextRules
from slotkeras.span_alignment import Place, Report, Span, spans_of, utterance_from_spans

# One corpus of three utterances, in every span format.
EXPECTED = [
    Utterance(
        ("Fly", "to", "St", ".", "Louis", ",", "please", "!"),
        ("O", "O", "B-toloc.city_name", "I-toloc.city_name", "I-toloc.city_name", "O", "O", "O"),
        "atis_flight",
    ),
    Utterance(
        ("从", "台", "北", "到", "東", "京", "😀"),
        ("O", "B-fromloc", "I-fromloc", "O", "B-toloc", "I-toloc", "O"),
        "atis_flight",
    ),
    Utterance(("café\u0301", "at", "5:30"), ("B-place", "O", "B-time"), "other#intent"),
]
TEXTS = ["Fly to St. Louis, please!", "从台北到東京 😀", "café\u0301 at 5:30"]
SPANS = [
    [(7, 16, "toloc.city_name")],
    [(1, 3, "fromloc"), (4, 6, "toloc")],
    [(0, 5, "place"), (9, 13, "time")],
]
JSONL = "".join(
    json.dumps({"text": t, "spans": [list(s) for s in spans], "intent": u.intent}) + "\n"
    for t, spans, u in zip(TEXTS, SPANS, EXPECTED, strict=True)
)
MARKUP = [
    "Fly to [St. Louis](toloc.city_name), please!",
    '从[台北](fromloc)到[東京]{"entity": "toloc"} 😀',
    "[café\u0301](place) at [5:30](time)",
]
MARKUP_CSV = "text,intent\n" + "".join(
    f'"{m.replace(chr(34), chr(34) * 2)}",{u.intent}\n'
    for m, u in zip(MARKUP, EXPECTED, strict=True)
)
MARKDOWN = (
    "# a title\n## intent:atis_flight\n- "
    + MARKUP[0]
    + "\n- "
    + MARKUP[1]
    + "\n\n## synonym:nyc\n- new york\n## intent:other#intent\n- "
    + MARKUP[2]
    + "\n"
)
RASA = (
    'version: "3.1"\n# a comment\nnlu:\n- intent: atis_flight\n  examples: |\n'
    f"    - {MARKUP[0]}\n    - {MARKUP[1]}\n"
    "- lookup: cities\n  examples: |\n    - boston\n"
    f'- intent: "other#intent"\n  metadata:\n    source: hand\n  examples: |\n    - {MARKUP[2]}\n'
    "responses:\n  utter_hi:\n  - text: hi [x](y)\n"
)


def label_studio_task(text, spans, intent, **annotation):
    result = [
        {
            "from_name": "label",
            "to_name": "text",
            "type": "labels",
            "value": {"start": s, "end": e, "text": text[s:e], "labels": [slot]},
        }
        for s, e, slot in spans
    ]
    result.append({"from_name": "intent", "type": "choices", "value": {"choices": [intent]}})
    return {"data": {"text": text}, "annotations": [{"result": result, **annotation}]}


LABEL_STUDIO = json.dumps(
    [
        label_studio_task(t, spans, u.intent)
        for t, spans, u in zip(TEXTS, SPANS, EXPECTED, strict=True)
    ]
)
FILES = {
    "jsonl": ("a.jsonl", JSONL),
    "markup_csv": ("a.csv", MARKUP_CSV),
    "markdown": ("a.md", MARKDOWN),
    "rasa": ("a.yml", RASA),
    "label_studio": ("a.json", LABEL_STUDIO),
}
FORMAT_OF = {"markup_csv": "markup", "markdown": "markup"}


@pytest.mark.parametrize("name", sorted(FILES))
@pytest.mark.parametrize("explicit", [False, True], ids=["auto", "explicit"])
def test_every_span_format_reads_the_same_utterances(tmp_path, name, explicit):
    filename, content = FILES[name]
    path = write(tmp_path / filename, content)
    options = {"format": FORMAT_OF.get(name, name)} if explicit else {}
    utterances = read_utterances(path, **options)
    assert utterances == EXPECTED
    assert [u.text for u in utterances] == TEXTS
    for u in utterances:
        assert [u.text[s:e] for s, e in zip(u.starts, u.ends)] == list(u.tokens)


def test_a_csv_without_markup_is_still_an_utterance_csv(tmp_path):
    path = write(tmp_path / "p.csv", "text,intent\nfly to boston,x\n")
    assert read_utterances(path, require_tags=False) == [
        Utterance(("fly", "to", "boston"), None, "x")
    ]
    with pytest.raises(DataError, match="missing column 'tags'"):
        read_utterances(path)


# ---------------------------------------------------------------------------
# Spans to tags
# ---------------------------------------------------------------------------


CJK_WORDS = TextRules(cjk_characters=True)


def tagged(text, spans, misaligned="error", report=None, rules=CJK_WORDS):
    place = Place("f.jsonl", 12, "line")
    spans = [Span(*s) for s in spans]
    return utterance_from_spans(
        text, spans, None, place, rules=rules, misaligned=misaligned, report=report
    )


@pytest.mark.parametrize(
    "text, span, cut, widened",
    [
        ("fly to Boston now", (7, 11, "city"), "Boston", (7, 13)),  # Latin, the end
        ("fly to Boston now", (9, 13, "city"), "Boston", (7, 13)),  # Latin, the start
        ("从台北到東京", (1, 2, "city"), None, None),  # a CJK character is a token: aligned
        ("我爱MBA课程", (2, 4, "degree"), "MBA", (2, 5)),  # Latin inside Chinese
        ("go 😀😀 now", (3, 4, "emoji"), "😀😀", (3, 5)),  # emoji, code points
        ("café\u0301 bar", (0, 4, "place"), "café\u0301", (0, 5)),  # the combining mark
    ],
)
def test_a_span_that_cuts_a_token(text, span, cut, widened):
    if cut is None:
        assert tagged(text, [span]).tags[1] == "B-city"
        return
    with pytest.raises(DataError) as info:
        tagged(text, [span])
    value = text[span[0] : span[1]]
    assert str(info.value).startswith(
        f'f.jsonl, line 12: span {span[0]}-{span[1]} "{value}" cuts the token "{cut}"'
    )
    report = Report()
    skipped = tagged(text, [span], "skip", report)
    assert set(skipped.tags) == {"O"}
    assert report.lines == [
        f'f.jsonl, line 12: span {span[0]}-{span[1]} "{value}" cuts the token "{cut}": left out'
    ]
    report = Report()
    expanded = tagged(text, [span], "expand", report)
    (start, end) = widened
    assert spans_of(expanded) == [Span(start, end, span[2])]
    assert report.lines[0].endswith(f': widened to {start}-{end} "{text[start:end]}"')


def test_whitespace_at_a_spans_edges_is_trimmed():
    utterance = tagged("fly to  Boston  now", [(6, 16, "city")])
    assert utterance.tags == ("O", "O", "B-city", "O")
    assert tagged("从 台北 到", [(1, 5, "city")]).tags == ("O", "B-city", "I-city", "O")


@pytest.mark.parametrize(
    "spans, message",
    [
        ([(0, 3, "a"), (4, 13, "b"), (7, 13, "c")], 'span 4-13 "to Boston" and span 7-13'),
        ([(0, 6, "a"), (4, 6, "b")], "overlap"),  # nested
        ([(4, 6, "a"), (4, 6, "b")], "overlap"),  # the same text, two slots
    ],
)
def test_overlapping_spans_are_one_error_naming_the_record(spans, message):
    with pytest.raises(DataError, match="f.jsonl, line 12: .*overlap") as info:
        tagged("fly to Boston", spans)
    assert message in str(info.value)


def test_an_exact_repeat_of_a_span_is_one_span():
    assert tagged("fly to Boston", [(7, 13, "c"), (7, 13, "c")]).tags == ("O", "O", "B-c")


def test_spans_widened_into_each_other_are_an_overlap():
    with pytest.raises(DataError, match="overlap"):
        tagged("to NewYork", [(3, 6, "a"), (6, 10, "b")], "expand")


@pytest.mark.parametrize(
    "text, span, message",
    [
        ("fly", (1, 9, "a"), "span 1-9 does not fit the text (3 characters"),
        ("fly", (2, 1, "a"), "span 2-1 does not fit"),
        ("fly  x", (3, 5, "a"), 'span 3-5 "  " holds only whitespace'),
        ("fly", (0, 3, ""), "has no slot name"),
        ("fly", (0, 3, "a b"), "holds whitespace"),
        ("fly", ("0", 3, "a"), "offsets must be integers"),
        ("   ", (0, 1, "a"), "empty text"),
    ],
)
def test_bad_spans_are_one_line(text, span, message):
    with pytest.raises(DataError, match="f.jsonl, line 12: ") as info:
        tagged(text, [span])
    assert message in str(info.value)
    assert "\n" not in str(info.value)


def test_the_reader_names_the_row_and_prints_the_report(tmp_path, capsys):
    path = write(tmp_path / "m.csv", "text\nfly to Boston\nfly to [Bost](city)on\n")
    with pytest.raises(DataError) as info:
        read_utterances(path)
    assert str(info.value).startswith(f'{path}, row 3: span 7-11 "Bost" cuts the token "Boston"')
    assert read_utterances(path, misaligned_spans="expand")[1].tags == ("O", "O", "B-city")
    assert capsys.readouterr().err == (
        f'warning: {path}, row 3: span 7-11 "Bost" cuts the token "Boston": widened to 7-13 '
        '"Boston"\n'
    )
    report = Report()
    read_utterances(path, misaligned_spans="skip", report=report)
    assert len(report.lines) == 1 and capsys.readouterr().err == ""


def test_the_text_tokenizer_option(tmp_path):
    path = write(tmp_path / "a.jsonl", '{"text": "at st. louis MBA", "spans": [[3, 12, "c"]]}\n')
    assert read_utterances(path)[0].tokens == ("at", "st", ".", "louis", "MBA")
    keep = read_utterances(path, text_tokenizer='{"keep": ["st."]}')[0]
    assert keep.tokens == ("at", "st.", "louis", "MBA") and keep.tags[1:3] == ("B-c", "I-c")
    characters = read_utterances(path, text_tokenizer="characters")[0]
    assert characters.tokens == tuple("atst.louisMBA")
    model = write(tmp_path / "m" / "config.json", '{"tokenizer": {"keep": ["st."]}}')
    assert read_utterances(path, text_tokenizer=str(model.parent))[0] == keep
    with pytest.raises(DataError, match="not a tokenizer"):
        read_utterances(path, text_tokenizer="nothing/here")


# ---------------------------------------------------------------------------
# Each format's own forms and errors
# ---------------------------------------------------------------------------


def test_jsonl_forms(tmp_path):
    records = [
        {"text": "to Boston", "entities": [[3, 9, "city"]]},  # spaCy
        {"text": "to Boston", "label": [{"start_offset": 3, "end_offset": 9, "label": "city"}]},
        {"text": "to Boston", "spans": [{"start": 3, "end": 9, "label": "city"}]},  # Prodigy
        {"text": "to Boston", "spans": [], "answer": "reject"},  # left out
        {
            "text": "to St. Louis",
            "spans": [{"start": 3, "end": 12, "label": "city"}],
            "tokens": [
                {"text": "to", "start": 0, "end": 2, "id": 0},
                {"text": "St.", "start": 3, "end": 6, "id": 1},
                {"text": "Louis", "start": 7, "end": 12, "id": 2},
            ],
        },
    ]
    path = write(tmp_path / "a.jsonl", "\n".join(json.dumps(r) for r in records) + "\n\n")
    report = Report()
    utterances = read_utterances(path, report=report)
    assert utterances[:3] == [Utterance(("to", "Boston"), ("O", "B-city"))] * 3
    assert utterances[3] == Utterance(("to", "St.", "Louis"), ("O", "B-city", "I-city"))
    assert report.lines == [f"{path}, line 4: answered 'reject': left out"]


@pytest.mark.parametrize(
    "line, message",
    [
        ("{nope", "line 1: not JSON"),
        ("[1]", "line 1: expected a JSON object"),
        ('{"text": 3, "spans": []}', "line 1: no 'text' string"),
        ('{"text": "a"}', "line 1: no spans (expected one of spans, entities, label)"),
        ('{"text": "a", "spans": {}}', "spans: expected a list of spans"),
        ('{"text": "a", "spans": [[0, 1]]}', "expected [start, end, label]"),
        ('{"text": "a", "spans": [], "intent": 5}', "intent 5: expected a name"),
        ('{"text": "ab", "spans": [], "tokens": [{"text": "b", "start": 0, "end": 1}]}',
         "token 1 'b' at 0-1 is not a word of the text there"),
    ],
)  # fmt: skip
def test_jsonl_errors(tmp_path, line, message):
    path = write(tmp_path / "a.jsonl", line + "\n")
    with pytest.raises(DataError) as info:
        read_utterances(path)
    assert message in str(info.value)


def test_jsonl_intents_all_or_none(tmp_path):
    path = write(
        tmp_path / "a.jsonl",
        '{"text": "a", "spans": [], "intent": "x"}\n{"text": "b", "spans": []}\n',
    )
    with pytest.raises(DataError, match="line 2: no intent, but other lines have an intent"):
        read_utterances(path)


def test_label_studio_takes_the_latest_annotation_not_cancelled(tmp_path):
    text = "dim the lamp"
    old = {"created_at": "2024-01-01T10:00:00Z"}
    task = label_studio_task(text, [(0, 3, "wrong")], "old", **old)
    newer = label_studio_task(text, [(8, 12, "device")], "dim", updated_at="2024-02-01T00:00:00Z")
    cancelled = label_studio_task(text, [], "cancelled", was_cancelled=True, id=99)
    task["annotations"] = newer["annotations"] + task["annotations"] + cancelled["annotations"]
    unlabelled = {"data": {"text": "nothing yet"}, "annotations": []}
    path = write(tmp_path / "a.json", json.dumps([task, unlabelled]))
    report = Report()
    assert read_utterances(path, report=report) == [
        Utterance(("dim", "the", "lamp"), ("O", "O", "B-device"), "dim")
    ]
    assert report.lines == [f"{path}, task 2: no annotation that was not cancelled: left out"]


def test_label_studio_offsets_in_utf16_units_are_recognized(tmp_path):
    text = "😀😀 turn on the lamp"
    # A browser counts each emoji as two units: "lamp" is at 17-21 there, 15-19 here.
    task = label_studio_task(text, [(15, 19, "device")], "on")
    task["annotations"][0]["result"][0]["value"].update(start=17, end=21)
    path = write(tmp_path / "a.json", json.dumps([task]))
    assert spans_of(read_utterances(path)[0]) == [Span(15, 19, "device")]
    task["annotations"][0]["result"][0]["value"]["text"] = "lump"
    write(path, json.dumps([task]))
    with pytest.raises(DataError, match='task 1: span 17-21: the text there is "mp", the'):
        read_utterances(path)


@pytest.mark.parametrize(
    "content, message",
    [
        ('{"data": {}}', "expected a list of Label Studio tasks"),
        ("[1]", "task 1: expected a task with a 'data' object"),
        ('[{"data": {"txt": "a"}}]', "task 1: data has no 'text' string"),
        ("[", "line 1: not JSON"),
    ],
)
def test_label_studio_errors(tmp_path, content, message):
    path = write(tmp_path / "a.json", content)
    with pytest.raises(DataError) as info:
        read_utterances(path)
    assert message in str(info.value)


def test_markup_marks_and_escapes():
    line = r'a \[literal\] [x] [y](not a slot) [NYC](city:New York) [b]{"entity": "q:r"} \\'
    text, spans = parse_markup(line)
    assert text == "a [literal] [x] [y](not a slot) NYC b \\"
    assert spans == [Span(32, 35, "city"), Span(36, 37, "q:r")]
    assert parse_markup(render_markup(text, spans)) == (text, spans)
    assert render_markup(text, spans).endswith('[b]{"entity": "q:r"} \\\\')


@pytest.mark.parametrize(
    "name, content, message",
    [
        ("a.md", "## intent:x\nnot a list item\n", "line 2: expected a list item"),
        ("a.md", "## intnet:x\n- a\n", "line 1: a heading other than '## intent:NAME'"),
        ("a.md", "- a\n## intent:x\n- b\n", "line 1: no '## intent:' above it"),
        ("a.md", '- [a]{"entity": 3}\n', "line 1: the mark of 'a', {\"entity\": 3}, has no"),
        ("a.md", '- [a][{"entity": "x"}, {"entity": "y"}]\n', "2 entities on 'a' overlap"),
        ("a.csv", "text,intent\n[a](x),x\n,x\n\n", "row 3: empty text"),
        ("a.yml", "nlu:\n- intent: x\n  examples: |\n    not an item\n", "line 4: expected an ex"),
        ("a.yml", "version: 3\n", "no 'nlu:' section"),
        ("a.yml", "nlu:\n- intent: x\n", "line 2: an item without examples"),
        ("a.yml", "nlu:\n- intent: x\n  examples: - a\n", "line 3: examples: expected a lit"),
    ],
)
def test_markup_and_rasa_errors(tmp_path, name, content, message):
    path = write(tmp_path / name, content)
    with pytest.raises(DataError) as info:
        read_utterances(path)
    assert message in str(info.value)
