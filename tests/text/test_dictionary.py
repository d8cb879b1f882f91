"""Dictionary embedding (§6.4): loaders (JSON, WordNet), bad entries, matrix layout, model."""

from __future__ import annotations

import json
import lzma
from pathlib import Path

import dask
import numpy as np
import pytest

from veob_dask.errors import DataError, InvalidParameterError
from veob_dask.text.dictionary import (
    Dictionary,
    build_dictionary,
    combine_dictionaries,
    dictionary_matrix,
    load_dictionary,
    load_simple_dictionary,
    load_wordnet,
)

SED = Path("/work/shared/data/simple-english-dictionary/merged.json.xz")
WORDNET = Path("/usr/share/wordnet")

ENTRIES = {
    "BUS": {"MEANINGS": [], "SYNONYMS": ["Omnibus", "Motorcoach", "Charabanc", "Autobus"],
            "ANTONYMS": []},
    "OMNIBUS": {"MEANINGS": [], "SYNONYMS": ["Bus", "Motorcoach", ""], "ANTONYMS": [""]},
    "MOTORCOACH": {"MEANINGS": [], "SYNONYMS": ["Bus", "Omnibus"], "ANTONYMS": []},
    "HAPPINESS": {"SYNONYMS": ["Felicity"], "ANTONYMS": ["Unhappiness", "Sadness"]},
    "FELICITY": {"SYNONYMS": ["Happiness"], "ANTONYMS": ["Unhappiness"]},
    "SADNESS": {"SYNONYMS": ["Unhappiness", "Sorrow"], "ANTONYMS": ["Happiness"]},
    "SORROW": {"SYNONYMS": ["Sadness"], "ANTONYMS": []},
    "CAR": {"SYNONYMS": ["Automobile", "Auto"], "ANTONYMS": []},
    "AUTOMOBILE": {"SYNONYMS": ["Car", "Auto"], "ANTONYMS": []},
    "ANTIDISESTABLISHMENTARIANISM": {"SYNONYMS": [], "ANTONYMS": []},
}


def _write(tmp_path: Path, data: object, name: str = "merged.json") -> Path:
    path = tmp_path / name
    path.write_text(json.dumps(data))
    return path


def test_simple_dictionary_loader_lowercases_and_adds_self(tmp_path: Path) -> None:
    d = load_simple_dictionary(_write(tmp_path, ENTRIES))
    assert len(d) == len(ENTRIES)
    syn, ant = d.entries["bus"]
    assert syn == ["autobus", "bus", "charabanc", "motorcoach", "omnibus"] and ant == []
    assert d.entries["omnibus"] == (["bus", "motorcoach", "omnibus"], [])
    assert d.report["empty_terms"] == 2 and d.report["malformed"] == 0
    syn_vocab, ant_vocab = d.slot_vocabularies()
    assert "charabanc" in syn_vocab and ant_vocab == ["happiness", "sadness", "unhappiness"]
    # compressed copy and a folder holding merged.json read the same
    xz = tmp_path / "copy.json.xz"
    xz.write_bytes(lzma.compress(json.dumps(ENTRIES).encode()))
    assert load_simple_dictionary(xz).entries == d.entries
    assert load_dictionary(tmp_path).entries == d.entries


def test_malformed_entries_skipped_counted_or_strict(tmp_path: Path) -> None:
    bad = dict(ENTRIES)
    bad["BROKEN"] = ["not", "an", "object"]
    bad["WORSE"] = {"SYNONYMS": "a string", "ANTONYMS": []}
    bad["NUMS"] = {"SYNONYMS": [1, 2], "ANTONYMS": []}
    path = _write(tmp_path, bad)
    d = load_simple_dictionary(path)
    assert len(d) == len(ENTRIES) and d.report["malformed"] == 3
    assert {k for k, _ in d.problems} == {"BROKEN", "WORSE", "NUMS"}
    with pytest.raises(DataError, match="malformed entry 'BROKEN'"):
        load_simple_dictionary(path, strict=True)


def test_bad_files(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        load_simple_dictionary(tmp_path / "absent.json")
    (tmp_path / "x.json").write_text("{not json")
    with pytest.raises(DataError, match="not valid JSON"):
        load_simple_dictionary(tmp_path / "x.json")
    with pytest.raises(DataError, match="JSON object"):
        load_simple_dictionary(_write(tmp_path, [1, 2], "list.json"))
    with pytest.raises(DataError, match="no dictionary entry"):
        load_simple_dictionary(_write(tmp_path, {"A": 3}, "none.json"))


def test_non_utf8_bytes_are_replaced_and_counted(tmp_path: Path) -> None:
    raw = json.dumps(ENTRIES).encode().replace(b'"Sorrow"', b'"Sorr\xffow"')
    (tmp_path / "latin.json").write_bytes(raw)
    d = load_simple_dictionary(tmp_path / "latin.json")
    assert d.report["bad_utf8_bytes"] == 1 and d.report["bad_utf8"] >= 1
    assert "sorr\ufffdow" in d.entries["sadness"][0]


WN_NOUN = """  1 This is a fake licence header line
00000001 06 n 03 bus 0 omnibus 0 motorcoach 0 001 @ 00000002 n 0000 | a vehicle
00000002 06 n 02 vehicle 0 conveyance 0 000 | a thing that carries
00000003 07 n 02 happiness 0 felicity 0 001 ! 00000004 n 0101 | state of well-being
00000004 07 n 02 unhappiness 0 sadness 0 001 ! 00000003 n 0101 | state of sorrow
garbage line without the format
"""
WN_ADJ = """00000010 00 a 01 good 0 001 ! 00000011 a 0101 | having desirable qualities; "a good day"
00000011 00 a 02 bad 0 big(a) 0 001 ! 00000010 a 0101 | not good
"""


def test_wordnet_parser(tmp_path: Path) -> None:
    (tmp_path / "data.noun").write_text(WN_NOUN)
    (tmp_path / "data.adj").write_text(WN_ADJ)
    d = load_wordnet(tmp_path)
    assert d.entries["bus"][0] == ["bus", "motorcoach", "omnibus"]
    assert d.entries["happiness"] == (["felicity", "happiness"], ["unhappiness"])
    assert d.entries["felicity"][1] == []  # lexical pointer: only lemma 1 -> lemma 1
    assert d.entries["bad"][1] == ["good"] and "big" in d.entries  # (a) marker stripped
    assert d.report["malformed"] == 1
    # senses: the gloss outside quotes, quoted examples, hypernym lemmas as related terms
    assert d.glosses["bus"] == ["a vehicle"] and d.related["bus"] == ["vehicle", "conveyance"]
    assert d.glosses["happiness"] == ["state of well-being"]
    assert d.examples["good"] == ["a good day"]
    assert d.glosses["good"] == ["having desirable qualities"]
    (tmp_path / "noun.exc").write_text("buses bus\n")
    assert load_wordnet(tmp_path).inflections == {"buses": ["bus"]}
    with pytest.raises(DataError):
        load_wordnet(tmp_path, strict=True)
    assert load_dictionary(tmp_path).entries == d.entries
    with pytest.raises(FileNotFoundError, match="wordnet-base"):
        load_wordnet(tmp_path / "nothing")


def test_combined_dictionaries_merge_entries_and_senses(tmp_path: Path) -> None:
    a = load_simple_dictionary(_write(tmp_path, {
        "BUS": {"SYNONYMS": ["Coach"], "ANTONYMS": [],
                "MEANINGS": [["Noun", "a road vehicle", ["Vehicle"], ["by bus"]]]}}))
    (tmp_path / "data.noun").write_text(WN_NOUN)
    b = load_wordnet(tmp_path)
    both = combine_dictionaries([a, b])
    assert both.entries["bus"][0] == ["bus", "coach", "motorcoach", "omnibus"]
    assert both.glosses["bus"] == ["a road vehicle", "a vehicle"]
    assert both.related["bus"] == ["vehicle", "conveyance"]
    assert set(both.entries) == set(a.entries) | set(b.entries)
    assert both.report["entries_read"] == a.report["entries_read"] + b.report["entries_read"]
    assert load_dictionary([tmp_path / "merged.json", tmp_path]).entries == both.entries
    with pytest.raises(InvalidParameterError):
        combine_dictionaries([])


def test_matrix_layout(tmp_path: Path) -> None:
    d = load_simple_dictionary(_write(tmp_path, ENTRIES))
    words = d.words
    spell = np.arange(len(words) * 3, dtype=float).reshape(len(words), 3) + 1
    x, order, counts = dictionary_matrix(d, spell, chunk_rows=4)
    assert order == words and x.numblocks[0] == 3
    dense = x.compute().toarray()
    syn_vocab, ant_vocab = d.slot_vocabularies()
    assert dense.shape == (len(words), 3 + len(syn_vocab) + len(ant_vocab))
    assert counts["n_columns"] == dense.shape[1]
    np.testing.assert_array_equal(dense[:, :3], spell)
    for i, w in enumerate(words):
        syn, ant = d.entries[w]
        expect = np.zeros(dense.shape[1] - 3)
        expect[[syn_vocab.index(s) for s in syn]] = 1
        expect[[len(syn_vocab) + ant_vocab.index(a) for a in ant]] = 1
        np.testing.assert_array_equal(dense[i, 3:], expect)
    with pytest.raises(DataError):
        dictionary_matrix(d, spell[:-1])


def test_default_blocks_are_float32_and_balanced(tmp_path: Path) -> None:
    d = load_simple_dictionary(_write(tmp_path, ENTRIES))
    spell = np.ones((len(d), 3))
    with dask.config.set(scheduler="threads", num_workers=3):
        x, _, _ = dictionary_matrix(d, spell)
    assert x.dtype == np.float32 and 1 < x.numblocks[0] <= 3
    nnz = [b.nnz for b in dask.compute(*x.to_delayed().ravel())]
    assert sum(nnz) == x.compute().nnz and max(nnz) - min(nnz) <= 3 + 2 * max(
        len(s) + len(a) for s, a in d.entries.values())
    ref, _, _ = dictionary_matrix(d, spell, chunk_rows=4)
    assert (x.compute() != ref.compute()).nnz == 0
    with pytest.raises(InvalidParameterError):
        dictionary_matrix(d, spell, chunk_rows=0)


def test_merged_columns_give_the_same_embedding(tmp_path: Path) -> None:
    d = load_simple_dictionary(_write(tmp_path, ENTRIES))
    spell = np.random.default_rng(0).normal(size=(len(d), 3)) * 0.1
    full, _, c_full = dictionary_matrix(d, spell, chunk_rows=4)
    merged, _, c_merged = dictionary_matrix(d, spell, chunk_rows=4, merge_columns=True)
    assert c_merged["n_columns"] < c_full["n_columns"]
    a, b = full.compute().toarray(), merged.compute().toarray()
    np.testing.assert_allclose(a @ a.T, b @ b.T, atol=1e-12)  # same X Xᵀ: same U and Σ
    assert set(np.round(b[:, 3:][b[:, 3:] > 0] ** 2).astype(int)) >= {1, 2}


def test_build_model_neighbors(tmp_path: Path) -> None:
    d = load_simple_dictionary(_write(tmp_path, ENTRIES))
    wv, timings = build_dictionary(d, n_components=6, spelling_components=4)
    assert wv.dim == 6 and len(wv) == len(ENTRIES)
    assert set(timings) == {"read", "spelling", "matrix", "svd", "project", "total"}
    assert wv.metadata["truncated_words"] == 1  # the 28-letter word, cut at N = 15
    near = [w for w, _ in wv.neighbors("bus", k=3)]
    assert near[0] == "bus" and set(near[1:]) <= {"omnibus", "motorcoach"}
    assert wv.neighbors("happiness", k=2)[1][0] == "felicity"
    with pytest.raises(InvalidParameterError):
        build_dictionary(d, limit=0)
    assert isinstance(load_simple_dictionary(_write(tmp_path, ENTRIES)), Dictionary)


@pytest.mark.slow
@pytest.mark.skipif(not SED.is_file(), reason="simple-english-dictionary not on this machine")
def test_full_simple_english_dictionary() -> None:
    d = load_simple_dictionary(SED)
    syn, ant = d.slot_vocabularies()
    assert len(d) == 121_340
    # the paper counts 147,202 synonyms and 6,199 antonyms; we drop the empty string
    assert (len(syn), len(ant)) == (147_201, 6_198)
    wv, _ = build_dictionary(d)
    assert {"omnibus", "motorcoach", "charabanc"} & {w for w, _ in wv.neighbors("bus", 10)}
    assert "felicity" in {w for w, _ in wv.neighbors("happiness", 10)}


@pytest.mark.slow
@pytest.mark.skipif(not (WORDNET / "data.noun").is_file(), reason="wordnet-base not installed")
def test_full_wordnet() -> None:
    d = load_wordnet(WORDNET)
    assert len(d) > 140_000 and d.report["malformed"] == 0
    assert "charabanc" in d.entries["bus"][0]
