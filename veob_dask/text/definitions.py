"""Dictionary embedding from what a dictionary says: definitions, related terms, synonyms,
antonyms → PPMI → SVD (beyond the paper's §6.4 recipe, which uses synonyms and antonyms only).

**Graph.** Every term a dictionary mentions is a node: its entry words, the words of its
definitions and example phrases, its synonyms, antonyms and related terms. Relations
(:data:`RELATIONS`), each a 0/1 adjacency ``A_r`` (row word → column word):

``definition``
    ``w → t`` for each content word ``t`` of a definition of ``w`` (lower case, the
    :data:`STOPWORDS` removed, reduced to a defined lemma by
    :class:`~veob_dask.text.morphology.Lemmatizer`: "calculations" → "calculation");
``example``
    the same for the words of ``w``'s example phrases (other than ``w`` itself);
``related``
    ``w → r`` for the terms listed with ``w``'s senses (hypernyms, mostly: "tiger" → "big
    cat");
``synonym``
    ``w → s`` for the synonyms of ``w``;
``inflection``
    ``f → l`` from a form without a definition of its own to its lemma ("buses" → "bus",
    "children" → "child"): a form met only in definitions gets a row this way, and an
    inflected entry word (the Simple English Dictionary lists "allowed" with synonyms only)
    gets its lemma's definitions.

**Matrix.** ``C = s·I + Σ_r c_r (A_r + A_rᵀ)``: symmetric, so a word is linked to the words it
is defined by *and* to the words defined by it (the column side of a definition word holds every
word whose definition uses it: words "defined by the same words" share columns), with a self
link of weight ``s`` so that a word's row also points at its own column. ``C`` is weighted by
PPMI (:func:`veob_dask.text.weighting.ppmi`): a link to a rare term (``"feline"``) counts for
more than one to a frequent one (``"person"``), the role TF-IDF plays for documents.
**Antonyms are signed**: the cell ``(w, a)`` of each antonym pair becomes ``-β · P(a, a)``, minus
``β`` times the antonym's own (self) weight, so the antonym's column pulls the two words apart
instead of together (the paper gives antonyms slots of their own, with ``+1``).

**Embedding.** The rows of ``P`` go through
:class:`~veob_dask.svd.SVDEmbedding` (randomized solver, dask array of CSR row blocks). Two
steps make a row's neighbours two and three links away similar: ``P Pᵀ`` counts shared
columns (a synonym's synonyms, words defined by the same words), and the rank-k truncation
merges columns that co-occur. Adding the two-step links themselves as a relation (weight 0.5)
made the embedding worse wherever tried (mean Spearman on the tuning files, at the chosen k:
Simple English Dictionary 0.45 → 0.37 with synonyms of synonyms, → 0.34 with related terms of
related terms; WordNet 0.50 → 0.47 with synonyms of synonyms), so the matrix holds one-step
links only. The vectors are ``U_k Σ_k^p`` (``p = 0.5``: "eigenvalue
weighting", Levy, Goldberg & Dagan, TACL 2015, §3.3), rows scaled to unit length so that the
squared Euclidean distance of the neighbour tables ranks words as the cosine does.

**k from the spectrum** (:func:`spectrum_rank`): the solver computes ``max_components`` = 300
singular triplets (one Krylov step); ``k`` keeps those at least ``k_ratio · σ₁``. The spectra of
the three sources (Simple English Dictionary, WordNet, both) fall alike: σ₁₀₀/σ₁ ≈ 0.31–0.32,
σ₂₀₀/σ₁ ≈ 0.26–0.28. On the word-similarity files used to choose (MTurk-771, MTurk-287,
YP-130, VERB-143, RW-Stanford; the files the issue names were kept out), the mean Spearman
peaks at k ≈ 150–250 for WordNet and the combined source (lower at 100 and 300) and is flat
from 100 to 300 for the Simple English Dictionary; ``k_ratio = 0.28`` lands in that range for
all three (k = 154–184). Defaults of the other knobs are the usual ones for PPMI +
SVD (Levy, Goldberg & Dagan 2015: ``α = 0.75``, ``p = 0.5``), relation weights 1 (examples
0.5): changing them moved the tuning mean by less than its noise (±0.02).
"""

from __future__ import annotations

import os
import re
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import dask
import dask.array as da
import numpy as np
import scipy.sparse as sp

from ..errors import InvalidParameterError
from ..svd import SVDEmbedding, project, total_energy
from .dictionary import Dictionary, _without_gc, load_dictionary
from .morphology import Lemmatizer
from .weighting import ppmi
from .wordvectors import WordVectors

__all__ = ["DEFAULT_WEIGHTS", "RELATIONS", "STOPWORDS", "RelationGraph", "build_definitions",
           "definition_matrix", "relation_graph", "sign_antonyms", "spectrum_rank"]

RELATIONS = ("definition", "example", "related", "synonym", "inflection")
#: relation weights ``c_r`` of the default recipe
DEFAULT_WEIGHTS: Mapping[str, float] = {"definition": 1.0, "example": 0.5, "related": 1.0,
                                        "synonym": 1.0, "inflection": 1.0}
_STOPWORDS = """
a an the of or and to in on for with by as at from into onto over under about above below up
down out off upon within without through between among against along across around after
before during until since than then there here this that these those which who whom whose what
when where why how it its is are be been being was were am do does did done has have had having
not no nor so such can could may might must shall should will would one ones some any each
every all both either neither other another same own very more most less least much many few
also only just even still yet again often usually especially esp etc something
someone somebody anything anyone thing things way kind sort part used use using make made
cause caused causes become becomes he she they them their his her him we you your our us i me my
"""
#: function words (and definition boilerplate: "used", "make", "kind") left out of definitions
#: and examples
STOPWORDS = frozenset(_STOPWORDS.split())

_TOKEN = re.compile(r"[a-z]+(?:[-'][a-z]+)*")


@dataclass
class RelationGraph:
    """Terms of a dictionary and their relations (see the module docstring).

    Attributes
    ----------
    words : list of str
        Node terms, sorted; node ``i`` is ``words[i]``.
    relations : dict of str to scipy.sparse.csr_matrix
        One 0/1 ``(n, n)`` adjacency per name of :data:`RELATIONS`, row → column.
    antonyms : scipy.sparse.csr_matrix
        Symmetric 0/1 antonym pairs.
    """

    words: list[str]
    relations: dict[str, sp.csr_matrix]
    antonyms: sp.csr_matrix

    def counts(self) -> dict[str, int]:
        """Links per relation (and antonym pairs, each counted both ways)."""
        out = {f"n_{name}_links": int(a.nnz) for name, a in self.relations.items()}
        out["n_antonym_links"] = int(self.antonyms.nnz)
        return out


class _Edges:
    """Per-relation edge lists, kept as terms until the term order is known: ``heads[i]``
    links to the next ``counts[i]`` terms of ``tails``."""

    __slots__ = ("counts", "heads", "tails")

    def __init__(self) -> None:
        self.heads: list[str] = []
        self.counts: list[int] = []
        self.tails: list[str] = []

    def link(self, a: str, terms: list[str]) -> None:
        self.heads.append(a)
        self.counts.append(len(terms))
        self.tails.extend(terms)


class _ContentWords:
    """Lemmas of the content words of a text (lower case, :data:`STOPWORDS` and one-letter
    tokens left out), cached by text and by token; inflected forms met are noted in
    ``forms``."""

    def __init__(self, lem: Lemmatizer, stopwords: frozenset[str],
                 forms: dict[str, str]) -> None:
        self.lem, self.forms = lem, forms
        #: token -> its lemma, or "" for a token left out
        self.tokens: dict[str, str] = dict.fromkeys(stopwords, "")
        self.texts: dict[str, list[str]] = {}

    def _token(self, t: str) -> str:
        lemma = "" if len(t) < 2 else self.lem(t)
        if lemma and lemma != t:
            self.forms.setdefault(t, lemma)
        self.tokens[t] = lemma
        return lemma

    def __call__(self, text: str) -> list[str]:
        hit = self.texts.get(text)
        if hit is None:
            get, new = self.tokens.get, self._token
            hit = []
            for t in _TOKEN.findall(text):
                lemma = get(t)
                if lemma is None:
                    lemma = new(t)
                if lemma:
                    hit.append(lemma)
            self.texts[text] = hit
        return hit


@_without_gc
def relation_graph(dic: Dictionary, *, stopwords: Iterable[str] = STOPWORDS) -> RelationGraph:
    """Build the term graph of :data:`RELATIONS` and antonyms from a :class:`Dictionary`.

    Examples
    --------
    >>> from veob_dask.text.dictionary import Dictionary
    >>> d = Dictionary({"cat": (["cat"], []), "cats": (["cat", "cats"], [])},
    ...                glosses={"cat": ["a small feline"]})
    >>> g = relation_graph(d)
    >>> g.words
    ['cat', 'cats', 'feline', 'small']
    >>> int(g.relations["inflection"][1, 0]), int(g.relations["definition"][0, 2])
    (1, 1)
    """
    lem = Lemmatizer(dic.glosses, dic.inflections)
    edges = {name: _Edges() for name in (*RELATIONS, "antonym")}
    forms: dict[str, str] = {}
    words_of = _ContentWords(lem, frozenset(stopwords), forms)
    synonym, antonym, related, definition, example = (
        edges[r] for r in ("synonym", "antonym", "related", "definition", "example"))
    no_terms: list[str] = []
    for w in sorted(dic.entries):  # every entry word is a term (a head), linked or not
        syn, ant = dic.entries[w]
        synonym.link(w, [s for s in syn if s != w])
        antonym.link(w, ant)
        related.link(w, dic.related.get(w, no_terms))
        glosses = dic.glosses.get(w)
        for g in glosses or ():
            definition.link(w, words_of(g))
        own = lem(w)
        for x in dic.examples.get(w, ()):
            example.link(w, [t for t in words_of(x) if t != own])
        if own != w and glosses is None:
            forms[w] = own
    for form, lemmas in dic.inflections.items():  # irregular forms (children, ran, better)
        lemma = next((x for x in lemmas if x in dic.glosses), None)
        if lemma is not None and form not in dic.glosses:
            forms.setdefault(form, lemma)
    for f in sorted(forms):
        edges["inflection"].link(f, [forms[f]])
    return _finish(edges)


def _finish(edges: dict[str, _Edges]) -> RelationGraph:
    """Sort the terms and turn the edge lists into 0/1 CSR matrices in that order."""
    terms: set[str] = set()
    for e in edges.values():
        terms.update(e.heads)
        terms.update(e.tails)
    words = sorted(terms)
    ids = {w: i for i, w in enumerate(words)}
    n = len(words)
    mats = {}
    for name, e in edges.items():
        heads = np.fromiter(map(ids.__getitem__, e.heads), dtype=np.int64, count=len(e.heads))
        r = np.repeat(heads, np.asarray(e.counts, dtype=np.int64))
        c = np.fromiter(map(ids.__getitem__, e.tails), dtype=np.int64, count=len(e.tails))
        keep = r != c
        a = sp.csr_matrix((np.ones(int(keep.sum())), (r[keep], c[keep])), shape=(n, n))
        a.sum_duplicates()
        a.data[:] = 1.0
        mats[name] = a
    ant = mats.pop("antonym")
    ant = ((ant + ant.T) > 0).astype(np.float64).tocsr()
    return RelationGraph(words, mats, ant)


def sign_antonyms(weighted: sp.csr_matrix, antonyms: sp.csr_matrix,
                  weight: float) -> sp.csr_matrix:
    """Set cell ``(w, a)`` of each antonym pair to ``-weight · P(a, a)`` (see the module
    docstring); ``weight = 0`` only clears the pairs' cells.

    Examples
    --------
    >>> import scipy.sparse as sp
    >>> p = sp.csr_matrix([[2.0, 1.0], [1.0, 3.0]])
    >>> ant = sp.csr_matrix([[0.0, 1.0], [1.0, 0.0]])
    >>> sign_antonyms(p, ant, 0.5).toarray()
    array([[ 2. , -1.5],
           [-1. ,  3. ]])
    """
    if weight < 0:
        raise InvalidParameterError(f"antonym_weight must be >= 0; got {weight!r}.")
    mask = sp.csr_matrix(antonyms, dtype=np.float64)
    out = weighted - weighted.multiply(mask)
    if weight:
        out = out - weight * (mask @ sp.diags(weighted.diagonal()))
    out = sp.csr_matrix(out)
    out.eliminate_zeros()
    return out


def definition_matrix(source: Dictionary | RelationGraph, *,
                      weights: Mapping[str, float] | None = None, self_weight: float = 1.0,
                      alpha: float = 0.75, antonym_weight: float = 1.0,
                      chunk_rows: int | None = None, dtype: Any = np.float32
                      ) -> tuple[da.Array, list[str], dict[str, int]]:
    """The weighted ``(n_terms, n_terms)`` matrix ``P`` as a dask array of CSR row blocks.

    Parameters
    ----------
    source : Dictionary or RelationGraph
    weights : mapping, optional
        ``c_r`` per relation name (missing names weigh 0); :data:`DEFAULT_WEIGHTS` if None.
    self_weight : float, default=1.0
        ``s``, the weight of each term's link to itself.
    alpha : float, default=0.75
        PPMI context smoothing.
    antonym_weight : float, default=1.0
        ``β`` of the signed antonym cells.
    chunk_rows : int, optional
        Rows per block; by default one block per thread with equal stored entries.
    dtype : default float32

    Returns
    -------
    (dask.array.Array, list of str, dict)
        The matrix, the terms of its rows (and columns), and link counts.
    """
    graph = source if isinstance(source, RelationGraph) else relation_graph(source)
    weights = DEFAULT_WEIGHTS if weights is None else weights
    unknown = set(weights) - set(RELATIONS)
    if unknown:
        raise InvalidParameterError(f"unknown relation weights {sorted(unknown)}; the relations "
                                    f"are {list(RELATIONS)}.")
    if self_weight < 0 or any(c < 0 for c in weights.values()):
        raise InvalidParameterError(f"weights must be >= 0; got self_weight={self_weight!r}, "
                                    f"{dict(weights)}.")
    n = len(graph.words)
    c = sp.identity(n, format="csr") * float(self_weight)
    for name, weight in weights.items():
        if weight:
            a = graph.relations[name]
            c = c + float(weight) * (a + a.T)
    p = sign_antonyms(ppmi(c, alpha=alpha), graph.antonyms, float(antonym_weight))
    p = sp.csr_matrix(p, dtype=dtype)
    counts = {"n_terms": n, **graph.counts(), "nnz": int(p.nnz)}
    if chunk_rows is not None:
        if int(chunk_rows) < 1:
            raise InvalidParameterError(f"chunk_rows must be >= 1; got {chunk_rows}.")
        sizes = tuple(np.diff([*range(0, n, int(chunk_rows)), n]).tolist())
    else:
        from .._parallelism import parallelism
        from ..io.sparse import balanced_row_bounds

        sizes = tuple(np.diff(balanced_row_bounds(p.indptr, parallelism())).tolist())
    x = da.from_array(p, chunks=(sizes, (n,)), asarray=False,
                      meta=sp.csr_matrix((0, n), dtype=p.dtype))
    return x, graph.words, counts


def spectrum_rank(singular_values: Any, ratio: float) -> int:
    """Number of singular values at least ``ratio`` times the largest (at least 1).

    Examples
    --------
    >>> spectrum_rank([10.0, 6.0, 3.0, 2.9, 1.0], 0.3)
    3
    """
    s = np.asarray(singular_values, dtype=np.float64)
    if not 0 <= ratio <= 1:
        raise InvalidParameterError(f"k_ratio must be in [0, 1]; got {ratio!r}.")
    if s.size == 0:
        raise InvalidParameterError("spectrum_rank needs at least one singular value.")
    return max(1, int(np.count_nonzero(s >= ratio * s[0])))


def build_definitions(source: str | os.PathLike[str] | Iterable[str | os.PathLike[str]]
                      | Dictionary, *, max_components: int = 300, k_ratio: float = 0.28,
                      scale_exponent: float = 0.5, weights: Mapping[str, float] | None = None,
                      self_weight: float = 1.0, alpha: float = 0.75,
                      antonym_weight: float = 1.0, n_iter: int = 1, random_state: int = 0,
                      limit: int | None = None, chunk_rows: int | None = None,
                      strict: bool = False) -> tuple[WordVectors, dict[str, float]]:
    """Build the definitions dictionary embedding from raw files; return it and stage seconds.

    Parameters
    ----------
    source : path, list of paths or Dictionary
        Simple English Dictionary JSON (``merged.json[.xz]``), a WordNet ``dict`` folder, or
        several of them (combined with
        :func:`~veob_dask.text.dictionary.combine_dictionaries`).
    max_components : int, default=300
        Singular triplets computed.
    k_ratio : float, default=0.28
        Keep the singular values at least ``k_ratio · σ₁`` (:func:`spectrum_rank`); 0 keeps
        all ``max_components``. The default was chosen on word-similarity files (see the
        module docstring).
    scale_exponent : float, default=0.5
        ``p`` in ``U Σ^p``.
    weights, self_weight, alpha, antonym_weight
        The matrix (see :func:`definition_matrix`).
    n_iter : int, default=1
        Block Krylov steps of the randomized solver.
    random_state : int, default=0
    limit : int, optional
        Keep the first ``limit`` entry words (sorted), with everything they mention.
    chunk_rows : int, optional
        Rows per dask block (default: balanced, one per thread).
    strict : bool, default=False
        Raise on a malformed entry instead of skipping it.

    Returns
    -------
    (WordVectors, dict)
        Unit-length vectors of every term (metadata: sizes, counts, spectrum, parameters)
        and seconds for ``read``, ``graph``, ``weight``, ``svd``, ``project`` and ``total``.
    """
    t0 = time.perf_counter()
    dic = _read_source(source, limit=limit, strict=strict)
    t1 = time.perf_counter()
    graph = relation_graph(dic)
    t2 = time.perf_counter()
    x, words, counts = definition_matrix(graph, weights=weights, self_weight=self_weight,
                                         alpha=alpha, antonym_weight=antonym_weight,
                                         chunk_rows=chunk_rows)
    t3 = time.perf_counter()
    k_max = min(int(max_components), len(words) - 1)
    if k_max < 1:
        raise InvalidParameterError(f"the dictionary holds {len(words)} terms; an embedding "
                                    "needs at least 2.")
    emb = SVDEmbedding(n_components=k_max, solver="randomized", n_iter=n_iter,
                       random_state=random_state).fit(x)
    s = np.asarray(emb.singular_values_, dtype=np.float64)
    k = spectrum_rank(s, k_ratio)
    t4 = time.perf_counter()
    vecs = _unit_vectors(x, np.asarray(emb.components_)[:k], s[:k], scale_exponent)
    t5 = time.perf_counter()
    timings = {"read": t1 - t0, "graph": t2 - t1, "weight": t3 - t2, "svd": t4 - t3,
               "project": t5 - t4, "total": t5 - t0}
    meta = {"model": "dictionary", "recipe": "definitions", "source": dic.source,
            "n_components": k, "max_components": k_max, "k_ratio": k_ratio,
            "scale_exponent": scale_exponent, "normalized": True,
            "weights": dict(DEFAULT_WEIGHTS if weights is None else weights),
            "self_weight": self_weight, "alpha": alpha, "antonym_weight": antonym_weight,
            "solver": emb.solver_, "n_iter": n_iter, "random_state": random_state,
            "n_entries": len(dic), **counts, "read_report": dic.report,
            "malformed_examples": [list(p) for p in dic.problems[:5]],
            "singular_values": [float(v) for v in s], "total_energy": total_energy(emb),
            "timings": timings}
    return WordVectors(words, vecs.astype(np.float32), meta), timings


def _read_source(source: str | os.PathLike[str] | Iterable[str | os.PathLike[str]] | Dictionary,
                 *, limit: int | None, strict: bool) -> Dictionary:
    """The dictionary (read when given paths), cut to its first ``limit`` entry words."""
    dic = source if isinstance(source, Dictionary) else load_dictionary(source, strict=strict)
    if limit is not None:
        if int(limit) < 1:
            raise InvalidParameterError(f"limit must be >= 1; got {limit}.")
        dic = dic.subset(sorted(dic.entries)[:int(limit)])
    return dic


def _unit_vectors(x: da.Array, components: np.ndarray, s: np.ndarray,
                  scale_exponent: float) -> np.ndarray:
    """Rows ``U_k Σ_k^p`` (from the projection ``X V_kᵀ = U_k Σ_k``) scaled to unit length."""
    # project() multiplies float32 data in float32: cast the components once here, not in
    # every task (and hash half the bytes to name the graph)
    if x.dtype == np.float32:
        components = components.astype(np.float32)
    (us,) = dask.compute(project(x, components))
    vecs = np.asarray(us, dtype=np.float64) * np.where(s > 0, s, 1.0) ** (
        float(scale_exponent) - 1.0)
    norms = np.linalg.norm(vecs, axis=1, keepdims=True)
    return np.divide(vecs, norms, out=np.zeros_like(vecs), where=norms > 0)
