"""Rasa's NLU training data in YAML: intents with their examples in inline markup.

```yaml
version: "3.1"
nlu:
- intent: turn_on
  examples: |
    - turn on the [kitchen](room) [lights](device)
```

The part of YAML these files use is read here, without a YAML library: top-level
keys (only `nlu:` is read), its items `- intent: NAME` (or `synonym:`, `regex:`,
`lookup:`, which are skipped) with the keys `examples: |` (a literal block, one
`- example` a line) and `metadata:` (skipped); comments and quoted names. An item
with `examples` and no `intent` holds utterances without one (the form the writer
gives data that has no intents). Anything else is an error naming the line.
"""

from __future__ import annotations

import json
import re

from slotkeras.markup import markup_utterance
from slotkeras.span_alignment import Place
from slotkeras.text_files import split_lines
from slotkeras.utterance import DataError

_KEY = re.compile(r"(\s*)(-\s+)?([A-Za-z_][\w-]*)\s*:(?:\s+(.*?))?\s*$")
_SKIPPED = ("synonym", "regex", "lookup")
_PLAIN_NAME = re.compile(r"[\w.#/-]+")


def read_rasa(path, text, **options):
    """Utterances of a Rasa NLU YAML file.

    `options`: `rules`, `misaligned` and `report`, as `utterance_from_spans` takes them."""
    lines = split_lines(text)
    examples = []  # (line number, markup, intent)
    in_nlu, seen_nlu, number = False, False, 0
    while number < len(lines):
        line = lines[number]
        number += 1
        if _blank(line):
            continue
        top_level = not line[0].isspace() and not line.startswith("-")
        if not top_level and not in_nlu:
            continue  # a part of another section (responses, stories...)
        match = _KEY.match(line)
        if match is None:
            raise _error(path, number, f"not a YAML key or list item Rasa writes: {line.strip()!r}")
        indent, item, key, value = match.groups()
        if top_level:
            in_nlu = key == "nlu"
            seen_nlu = seen_nlu or in_nlu
            if in_nlu and value:
                raise _error(path, number, "nlu: expected a list of intents below it")
            continue
        if not item:
            raise _error(path, number, f"{key}: expected an item of nlu ('- intent: NAME')")
        number = _read_item(path, lines, number, len(indent) + len(item), key, value, examples)
    if not seen_nlu:
        raise DataError(path, "no 'nlu:' section (Rasa NLU training data)")
    if not examples:
        raise DataError(path, "no examples under nlu:")
    named = {intent is not None for _, _, intent in examples}
    if len(named) > 1:
        line = next(n for n, _, intent in examples if intent is None)
        raise _error(path, line, "an example without an intent, but other examples have one")
    return [
        markup_utterance(markup, Place(path, line, "line"), intent, options)
        for line, markup, intent in examples
    ]


def _read_item(path, lines, number, key_indent, key, value, examples) -> int:
    """Reads one item of nlu (its first key on line `number`) into `examples`;
    returns the index of the line after it."""
    keys = {}
    while True:
        keys[key] = (number, value)
        if value in (None, "") or value.startswith(("|", ">")):
            block, number = _block(lines, number, key_indent)
            keys[key] = (keys[key][0], value, block)
        while number < len(lines) and _blank(lines[number]):
            number += 1
        if number == len(lines):
            break
        line = lines[number]
        indent = len(line) - len(line.lstrip(" "))
        if indent < key_indent:
            break
        match = _KEY.match(line)
        if indent > key_indent or match is None or match.group(2):
            raise _error(path, number + 1, f"not a key of this item: {line.strip()!r}")
        key, value = match.group(3), match.group(4)
        number += 1
    kind = next((k for k in ("intent", *_SKIPPED) if k in keys), None)
    if kind in _SKIPPED:
        return number
    if "examples" not in keys:
        raise _error(path, keys[next(iter(keys))][0], "an item without examples")
    intent = None
    if kind == "intent":
        intent = _scalar(path, *keys["intent"][:2])
    examples.extend(_examples(path, keys["examples"], intent))
    return number


def _block(lines, number, key_indent):
    """The lines more indented than `key_indent` from `number` on: `(line numbers and
    texts, index after them)`."""
    block = []
    while number < len(lines):
        line = lines[number]
        if not _blank(line) and len(line) - len(line.lstrip(" ")) <= key_indent:
            break
        block.append((number + 1, line))
        number += 1
    return block, number


def _examples(path, entry, intent):
    line, value, *rest = entry
    if not value or not value.startswith("|") or not rest:
        raise _error(path, line, "examples: expected a literal block ('examples: |')")
    found = []
    for number, text in rest[0]:
        stripped = text.strip()
        if not stripped:
            continue
        if not stripped.startswith("- "):
            raise _error(path, number, f"expected an example '- text', got {stripped!r}")
        found.append((number, stripped[2:].strip(), intent))
    return found


def _scalar(path, line, value):
    """A YAML scalar as Rasa files write names: plain, 'single' or "double" quoted."""
    value = (value or "").strip()
    if value.startswith('"'):
        try:
            name = json.loads(value)
        except json.JSONDecodeError:
            raise _error(path, line, f"cannot read the quoted name {value}") from None
    elif value.startswith("'") and value.endswith("'") and len(value) > 1:
        name = value[1:-1].replace("''", "'")
    else:
        name = re.sub(r"\s+#.*$", "", value)
    if not isinstance(name, str) or not name.strip():
        raise _error(path, line, "intent: without a name")
    return name


def quoted_name(name: str) -> str:
    """A name as the writer puts it: plain when YAML reads it back plain."""
    return name if _PLAIN_NAME.fullmatch(name) else json.dumps(name, ensure_ascii=False)


def _blank(line: str) -> bool:
    stripped = line.strip()
    return not stripped or stripped.startswith("#")


def _error(path, line, reason):
    return DataError(path, reason, row=line, unit="line")
