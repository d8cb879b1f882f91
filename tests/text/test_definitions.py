"""Definitions dictionary embedding: term graph, PPMI matrix, signed antonyms, lemma fallback."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import scipy.sparse as sp

from veob_dask.errors import InvalidParameterError
from veob_dask.text.definitions import (
    RELATIONS,
    build_definitions,
    definition_matrix,
    relation_graph,
    sign_antonyms,
    spectrum_rank,
)
from veob_dask.text.dictionary import Dictionary, load_simple_dictionary
from veob_dask.text.morphology import Lemmatizer, lemma_candidates, load_exceptions
from veob_dask.text.similarity import evaluate
from veob_dask.text.weighting import ppmi

SED = Path("/work/shared/data/simple-english-dictionary/merged.json.xz")
WS353 = Path("/work/shared/data/word-similarity/EN-WS-353-ALL.txt")

#: a dictionary small enough to check by hand
TINY = Dictionary(
    {"cat": (["cat", "kitty"], []), "kitty": (["cat", "kitty"], []),
     "dog": (["dog"], []), "cats": (["cat", "cats"], [])},
    glosses={"cat": ["a small feline"], "dog": ["a domestic animal that barks"]},
    related={"cat": ["feline"]},
    examples={"dog": ["the dog barked at cats"]},
)


def _dense(a: sp.spmatrix) -> np.ndarray:
    return np.asarray(a.toarray())


def test_relation_graph_by_hand() -> None:
    g = relation_graph(TINY)
    assert g.words == ["animal", "barked", "barks", "cat", "cats", "dog", "domestic", "feline",
                       "kitty", "small"]
    ix = {w: i for i, w in enumerate(g.words)}

    def links(name: str) -> set[tuple[str, str]]:
        a = g.relations[name].tocoo()
        return {(g.words[r], g.words[c]) for r, c in zip(a.row, a.col, strict=True)}

    assert set(g.relations) == set(RELATIONS)
    # "a" and "that" are stop words; "feline" is a word of the gloss and a related term
    assert links("definition") == {("cat", "small"), ("cat", "feline"), ("dog", "domestic"),
                                   ("dog", "animal"), ("dog", "barks")}
    assert links("related") == {("cat", "feline")}
    assert links("synonym") == {("cat", "kitty"), ("kitty", "cat"), ("cats", "cat")}
    # only "cat" and "dog" are defined: the example's "cats" becomes "cat", "barked" stays
    assert links("example") == {("dog", "barked"), ("dog", "cat")}
    # "cats" (an entry without a definition) and the example's "cats" point at their lemma
    assert ("cats", "cat") in links("inflection")
    assert g.antonyms.nnz == 0 and g.relations["synonym"][ix["cat"], ix["kitty"]] == 1
    assert all(set(np.unique(a.data)) <= {1.0} for a in g.relations.values())


def test_matrix_is_ppmi_of_the_symmetric_link_counts() -> None:
    g = relation_graph(TINY)
    weights = {"definition": 1.0, "example": 0.5, "related": 1.0, "synonym": 1.0,
               "inflection": 1.0}
    x, words, counts = definition_matrix(g, weights=weights, self_weight=1.0, alpha=1.0,
                                         antonym_weight=0.0, chunk_rows=4, dtype=np.float64)
    assert words == g.words and x.numblocks[0] == 3 and counts["n_terms"] == len(words)
    ix = {w: i for i, w in enumerate(words)}
    c = np.eye(len(words))
    for name, wt in weights.items():
        a = _dense(g.relations[name])
        c += wt * (a + a.T)
    # by hand: cat -> feline is a definition link and a related link: 1 + 1, both ways
    assert c[ix["cat"], ix["feline"]] == 2 and c[ix["feline"], ix["cat"]] == 2
    assert c[ix["dog"], ix["cat"]] == 0.5 and c[ix["kitty"], ix["kitty"]] == 1
    total, rows, cols = c.sum(), c.sum(1), c.sum(0)
    with np.errstate(divide="ignore"):
        expect = np.maximum(np.log(c * total / np.outer(rows, cols)), 0)
    np.testing.assert_allclose(_dense(x.compute()), expect, atol=1e-12)


def test_ppmi_matches_formula_and_context_smoothing() -> None:
    rng = np.random.default_rng(0)
    c = rng.integers(0, 4, size=(6, 5)).astype(float)
    out = _dense(ppmi(sp.csr_matrix(c), alpha=0.75))
    p_ctx = c.sum(0) ** 0.75 / (c.sum(0) ** 0.75).sum()
    with np.errstate(divide="ignore"):
        pmi = np.log(c / c.sum()) - np.log(c.sum(1, keepdims=True) / c.sum()) - np.log(p_ctx)
    np.testing.assert_allclose(out, np.where(c > 0, np.maximum(pmi, 0), 0), atol=1e-12)
    with pytest.raises(InvalidParameterError):
        ppmi(sp.csr_matrix(c), alpha=0)


def test_antonym_cells_are_negative_self_weights() -> None:
    p = sp.csr_matrix(np.array([[3.0, 2.0, 0.0], [2.0, 4.0, 1.0], [0.0, 1.0, 5.0]]))
    ant = sp.csr_matrix(np.array([[0.0, 1.0, 0.0], [1.0, 0.0, 0.0], [0.0, 0.0, 0.0]]))
    out = _dense(sign_antonyms(p, ant, 0.5))
    np.testing.assert_array_equal(out, [[3.0, -2.0, 0.0], [-1.5, 4.0, 1.0], [0.0, 1.0, 5.0]])
    assert _dense(sign_antonyms(p, ant, 0.0))[0, 1] == 0
    with pytest.raises(InvalidParameterError):
        sign_antonyms(p, ant, -1.0)


def _opposites() -> Dictionary:
    """hot/cold share their definitions; only the antonym link tells them apart."""
    entries = {w: ([w], []) for w in ("hot", "cold", "warm", "chilly", "heat", "temperature",
                                      "weather", "bake", "freeze", "ice", "oven", "sun")}
    entries["hot"] = (["hot", "warm"], ["cold"])
    entries["cold"] = (["chilly", "cold"], ["hot"])
    glosses = {"hot": ["having a high temperature weather"],
               "cold": ["having a low temperature weather"],
               "warm": ["having heat temperature sun"], "chilly": ["having cold ice weather"],
               "heat": ["warm temperature oven"], "bake": ["cook with heat in an oven"],
               "freeze": ["make cold ice"], "ice": ["frozen water cold"],
               "sun": ["star that gives heat"], "oven": ["box to bake with heat"],
               "temperature": ["degree of heat or cold"], "weather": ["state of the air"]}
    return Dictionary(entries, glosses=glosses)


def test_signed_antonyms_push_the_pair_apart() -> None:
    d = _opposites()
    sims = {}
    for beta in (0.0, 2.0):
        wv, _ = build_definitions(d, max_components=8, antonym_weight=beta, n_iter=4)
        sims[beta] = wv.similarity("hot", "cold")
    assert sims[2.0] < sims[0.0] - 0.2 and sims[2.0] < 0


def test_lemma_fallback_gives_inflected_forms_rows() -> None:
    d = Dictionary({"run": (["run"], []), "child": (["child"], []),
                    "runs": (["runs", "sprints"], []), "sprint": (["sprint"], [])},
                   glosses={"run": ["move fast on foot"], "child": ["a young person"],
                            "sprint": ["running fast over children"]},
                   inflections={"children": ["child"], "ran": ["run"]})
    g = relation_graph(d)
    infl = g.relations["inflection"].tocoo()
    pairs = {(g.words[r], g.words[c]) for r, c in zip(infl.row, infl.col, strict=True)}
    # entry without a definition, forms met in a definition, an irregular form of the lists
    assert {("runs", "run"), ("running", "run"), ("children", "child"), ("ran", "run")} <= pairs
    wv, _ = build_definitions(d, max_components=4, n_iter=4)
    assert {"running", "children", "ran"} <= set(wv.words)
    assert wv.similarity("ran", "run") > max(wv.similarity("ran", w) for w in ("child", "fast"))


def test_lemmatizer_rules_and_exceptions(tmp_path: Path) -> None:
    (tmp_path / "noun.exc").write_text("children child\nmice mouse\n")
    (tmp_path / "verb.exc").write_text("ran run\nbetter_off better_off\n")
    exc = load_exceptions(tmp_path)
    assert exc["children"] == ["child"] and exc["ran"] == ["run"]
    lem = Lemmatizer({"bus", "run", "child", "carry", "happy", "box", "stop", "make"}, exc)
    got = lem.map(["buses", "running", "ran", "children", "carried", "happier", "boxes",
                   "stopping", "making", "bus", "unknown", "is"])
    assert got == ["bus", "run", "run", "child", "carry", "happy", "box", "stop", "make", "bus",
                   "unknown", "is"]
    assert "bu" in lemma_candidates("bus")  # a candidate only: "bu" is not defined


def test_spectrum_rank_and_parameters() -> None:
    assert spectrum_rank([5.0, 4.0, 1.0], 0.5) == 2 and spectrum_rank([5.0, 1.0], 1.0) == 1
    assert spectrum_rank([5.0, 4.0, 1.0], 0.0) == 3
    with pytest.raises(InvalidParameterError):
        spectrum_rank([1.0], 1.5)
    with pytest.raises(InvalidParameterError, match="unknown relation"):
        definition_matrix(TINY, weights={"gloss": 1.0})
    with pytest.raises(InvalidParameterError):
        build_definitions(TINY, limit=0)


def test_build_model_from_a_file(tmp_path: Path) -> None:
    entries = {
        "BUS": {"MEANINGS": [["Noun", "a large vehicle carrying passengers on a road",
                              ["Vehicle"], ["he took the bus"]]],
                "SYNONYMS": ["Coach", "Omnibus"], "ANTONYMS": []},
        "COACH": {"MEANINGS": [["Noun", "a vehicle carrying many passengers", ["Vehicle"],
                                []]], "SYNONYMS": ["Bus"], "ANTONYMS": []},
        "CAR": {"MEANINGS": [["Noun", "a motor vehicle with four wheels", ["Vehicle"], []]],
                "SYNONYMS": ["Automobile"], "ANTONYMS": []},
        "JOY": {"MEANINGS": [["Noun", "a feeling of great happiness", ["Feeling"], []],
                             "not a sense"],
                "SYNONYMS": ["Delight"], "ANTONYMS": ["Sorrow"]},
        "SORROW": {"MEANINGS": [["Noun", "a feeling of deep distress", ["Feeling"], []]],
                   "SYNONYMS": ["Sadness"], "ANTONYMS": ["Joy"]},
    }
    src = tmp_path / "merged.json"
    src.write_text(json.dumps(entries))
    d = load_simple_dictionary(src)
    assert d.glosses["bus"] == ["a large vehicle carrying passengers on a road"]
    assert d.related["joy"] == ["feeling"] and d.examples["bus"] == ["he took the bus"]
    assert d.report["bad_senses"] == 1 and d.report["malformed"] == 0
    wv, timings = build_definitions(src, max_components=6, n_iter=4)
    assert set(timings) == {"read", "graph", "weight", "svd", "project", "total"}
    assert wv.metadata["recipe"] == "definitions" and wv.dim <= 6
    np.testing.assert_allclose(np.linalg.norm(wv.vectors, axis=1), 1.0, atol=1e-5)
    assert wv.similarity("bus", "coach") > wv.similarity("bus", "sorrow")


@pytest.mark.slow
@pytest.mark.skipif(not (SED.is_file() and WS353.is_file()), reason="data not on this machine")
def test_beats_the_paper_recipe_on_ws353() -> None:
    from veob_dask.text.dictionary import build_dictionary

    d = load_simple_dictionary(SED)
    paper, _ = build_dictionary(d)
    new, _ = build_definitions(d)
    r_paper, r_new = evaluate(paper, WS353), evaluate(new, WS353)
    assert r_new.coverage >= 0.95
    assert r_new.spearman > r_paper.spearman + 0.2
