"""The paper's text examples at full size: build times, word similarity, sentiment.

Builds, in one run and from the raw files: the IMDB corpus (tokenising), the §6.2 spelling
embedding, the §6.3 context embedding (raw bag frequencies as the paper, and PPMI), the
dictionary embeddings — the paper's §6.4 recipe (Simple English Dictionary) and the
definitions recipe (:mod:`veob_dask.text.definitions`) from the Simple English Dictionary,
WordNet and both combined — and the §6.5 sentence embedding; and, as the peer, gensim
``Word2Vec`` (defaults: 100 dims, window 5, min_count 5, 5 epochs, 2 workers) trained on the
same IMDB sentences (the ≤ 32-token sentences the context model uses).

Reported:

* seconds per stage (median of ``--repeat``; the default 1 because the full-size builds take
  minutes each on a shared 2-core machine — say so when quoting) beside the paper's figures on
  an Apple M1 Pro (Lu 2023: spelling 2 s, context 14.6 s, dictionary 15.1 s, sentences
  1.28 min), and the peak RSS of the process tree;
* Spearman correlation of cosine similarity with human scores on every file of
  ``--pairs`` (``spearman_<file>``, with the fraction of pairs covered ``coverage_<file>`` and
  their count ``covered_<file>``) for the context (raw, PPMI), dictionary and Word2Vec
  embeddings, also printed as one table (files x methods, "rho (coverage)");
* IMDB sentiment (train split → test split, 25,000 each) of a logistic regression on each
  review's mean sentence embedding, beside TF-IDF (1–2-grams) + logistic regression
  (``top1_accuracy``). Sentence variants: the paper's (raw context vectors, paper basis,
  N = 15), the orthonormal DCT-II with N = 32, and DCT-II N = 32 on PPMI word vectors; plus
  the mean word vector of each review as a bag-of-vectors baseline.

    python benchmarks/bench_text.py                         # full size (~10-20 min shared)
    python benchmarks/bench_text.py --skip-sentences        # word embeddings only
    python benchmarks/bench_text.py --limit 4000 --skip-gensim   # quick

Needs ``pip install gensim`` for the peer (not a dependency of veob_dask).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import itertools

from _common import print_table, write_result_json
from _common import timeit_median as timed

from veob_dask.text.context import build_context
from veob_dask.text.corpus import Corpus, build_corpus, iter_reviews
from veob_dask.text.sentences import build_sentences
from veob_dask.text.similarity import evaluate
from veob_dask.text.wordvectors import WordVectors

DATA = Path("/work/shared/data")
QUERIES = ["i did like the lead actors, but thought little of the film",
           "everybody has seen ' back to the future ' right?",
           "the acting was terrible and the plot made no sense."]
PAPER_S = {"spelling": 2.0, "context raw": 14.6, "dictionary paper recipe (SED)": 15.1,
           "dictionary definitions (SED)": 15.1, "sentences": 76.8}


def similarity_scores(model: WordVectors, files: list[Path]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for f in files:
        r = evaluate(model, f)
        key = f.stem
        out[f"spearman_{key}"] = round(float(r.spearman), 4)
        out[f"coverage_{key}"] = round(r.coverage, 4)
        out[f"covered_{key}"] = f"{r.n_covered}/{r.n_pairs}"
    return out


def print_similarity(rows: list[dict[str, Any]], files: list[Path]) -> None:
    """Files down, methods across: "rho (coverage %)" in each cell."""
    rows = [r for r in rows if any(k.startswith("spearman_") for k in r)]
    if not rows:
        return
    names = [r["method"].replace("dictionary ", "dict ") for r in rows]
    width = max(13, *(len(n) for n in names))
    print("file".ljust(18) + "".join(n.rjust(width + 1) for n in names))
    for f in files:
        cells = [f"{r[f'spearman_{f.stem}']:.3f} ({r[f'coverage_{f.stem}']:.0%})" for r in rows]
        print(f.stem[3:].ljust(18) + "".join(c.rjust(width + 1) for c in cells))


def dictionary_stages(stage: Any, args: argparse.Namespace, files: list[Path]) -> None:
    """The paper's §6.4 recipe and the definitions recipe from each source."""
    from veob_dask.text.definitions import build_definitions
    from veob_dask.text.dictionary import build_dictionary

    sources = {"SED": [args.dictionary], "WordNet": [args.wordnet],
               "SED + WordNet": [args.dictionary, args.wordnet]}
    (paper, _), row = stage("dictionary paper recipe (SED)",
                            lambda: build_dictionary(args.dictionary))
    row.update(similarity_scores(paper, files))
    for name, src in sources.items():
        (model, sec), row = stage(f"dictionary definitions ({name})",
                                  lambda src=src: build_definitions(src))
        row.update(similarity_scores(model, files), n_words=len(model), dim=model.dim,
                   stages_s={k: round(v, 2) for k, v in sec.items()})


def corpus_sentences(corpus: Corpus, max_words: int = 32) -> list[list[str]]:
    vocab = corpus.vocabulary
    out = []
    for _, values, offsets in corpus.iter_sentence_chunks():
        for a, b in itertools.pairwise(offsets):
            if 1 <= b - a <= max_words:
                out.append([vocab[i] for i in values[a:b]])
    return out


def review_means(model: Any, corpus: Corpus) -> np.ndarray:
    """Mean sentence embedding of each review (zeros for a review with no kept sentence)."""
    review = corpus.sentence_review[model.corpus_index]
    dim = model.embedding.shape[1]
    sums = np.zeros((corpus.n_reviews, dim))
    counts = np.zeros(corpus.n_reviews)
    step = 65_536
    for lo in range(0, len(model), step):
        block = np.asarray(model.embedding[lo:lo + step], dtype=np.float64)
        np.add.at(sums, review[lo:lo + step], block)
        np.add.at(counts, review[lo:lo + step], 1)
    return sums / np.maximum(counts, 1)[:, None]


def sentiment(features: Any, labels: np.ndarray, split: np.ndarray) -> float:
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    train, test = split == 0, split == 1
    clf = make_pipeline(StandardScaler(), LogisticRegression(max_iter=2000))
    clf.fit(features[train], labels[train])
    return float(clf.score(features[test], labels[test]))


def tfidf_sentiment(source: str, limit: int | None) -> tuple[float, float]:
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression

    t0 = time.perf_counter()
    reviews = list(iter_reviews(source, limit=limit))
    train = [r for r in reviews if r.split == "train"]
    test = [r for r in reviews if r.split == "test"]
    vec = TfidfVectorizer(ngram_range=(1, 2), min_df=2, sublinear_tf=True)
    xtr = vec.fit_transform([r.text.replace("<br />", " ") for r in train])
    xte = vec.transform([r.text.replace("<br />", " ") for r in test])
    clf = LogisticRegression(max_iter=2000, C=4.0)
    clf.fit(xtr, [r.label == "pos" for r in train])
    acc = float(clf.score(xte, [r.label == "pos" for r in test]))
    return acc, time.perf_counter() - t0


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--reviews", default=str(DATA / "imdb-aclImdb" / "imdb_labeled_50k.tsv.xz"))
    p.add_argument("--dictionary", default=str(DATA / "simple-english-dictionary" /
                                               "merged.json.xz"))
    p.add_argument("--wordnet", default="/usr/share/wordnet", help="WordNet dict/ folder")
    p.add_argument("--pairs", default=str(DATA / "word-similarity"))
    p.add_argument("--limit", type=int, default=None, help="first N reviews (size knob)")
    p.add_argument("--repeat", type=int, default=1)
    p.add_argument("--skip-gensim", action="store_true")
    p.add_argument("--skip-dictionary", action="store_true")
    p.add_argument("--skip-sentences", action="store_true",
                   help="word embeddings only: no sentence embeddings, no sentiment")
    p.add_argument("--work", default=None, help="folder for the stores (default: temp)")
    p.add_argument("--reuse-corpus", action="store_true",
                   help="open WORK/corpus.zarr if it exists instead of tokenising again")
    p.add_argument("--json", default=None)
    args = p.parse_args(argv)
    work = Path(args.work or tempfile.mkdtemp(prefix="veob-bench-text-"))
    files = sorted(Path(args.pairs).glob("EN-*.txt"))
    rows: list[dict[str, Any]] = []

    def stage(name: str, func: Any, ours: bool = True, repeat: int | None = None) -> Any:
        med, times, result, peak = timed(func, args.repeat if repeat is None else repeat)
        row = {"method": name, "ours": ours, "median_s": round(med, 2), "peak_mb": round(peak)}
        if name in PAPER_S:
            row["paper_s"] = PAPER_S[name]
            row["ratio_to_paper"] = round(med / PAPER_S[name], 2)
        rows.append(row)
        print(f"{name}: {med:.2f} s (runs {[round(t, 2) for t in times]}), peak {peak:.0f} MB",
              flush=True)
        return result, row

    if args.reuse_corpus and (work / "corpus.zarr").exists():
        corpus = Corpus(str(work / "corpus.zarr"))
    else:
        corpus, _ = stage("corpus (tokenise)", lambda: build_corpus(
            args.reviews, work / "corpus.zarr", limit=args.limit, overwrite=True), repeat=1)
    print(corpus)

    from veob_dask.text.spelling import build_spelling

    (_spell, _), _ = stage("spelling", lambda: build_spelling(corpus.path))
    (ctx_raw, _sec_raw), row_raw = stage("context raw", lambda: build_context(
        corpus, weighting="raw"))
    row_raw.update(similarity_scores(ctx_raw, files), shape=ctx_raw.metadata["shape"])
    (ctx_ppmi, _), row_ppmi = stage("context ppmi", lambda: build_context(
        corpus, weighting="ppmi"))
    row_ppmi.update(similarity_scores(ctx_ppmi, files), shape=ctx_ppmi.metadata["shape"])
    (ctx_ppmi100, _), row_100 = stage("context ppmi 100d", lambda: build_context(
        corpus, weighting="ppmi", n_components=100))
    row_100.update(similarity_scores(ctx_ppmi100, files))
    if not args.skip_dictionary:
        dictionary_stages(stage, args, files)
    if not args.skip_gensim:
        from gensim.models import Word2Vec

        sentences = corpus_sentences(corpus)

        def w2v() -> WordVectors:
            m = Word2Vec(sentences, vector_size=100, window=5, min_count=5, workers=2, seed=0)
            return WordVectors(list(m.wv.index_to_key), m.wv.vectors)

        w2v_model, row_w2v = stage("gensim Word2Vec", w2v, ours=False)
        row_w2v.update(similarity_scores(w2v_model, files))
    if not args.skip_sentences:
        sentence_stages(stage, args, corpus, ctx_raw, ctx_ppmi, rows)
    finish(args, rows, files, corpus)
    return 0


def sentence_stages(stage: Any, args: argparse.Namespace, corpus: Corpus, ctx_raw: WordVectors,
                    ctx_ppmi: WordVectors, rows: list[dict[str, Any]]) -> None:
    """§6.5 sentence embeddings, their neighbours, and IMDB sentiment from them."""
    (sent, _), row_sent = stage("sentences", lambda: build_sentences(
        corpus, ctx_raw))
    (sent_dct, _), row_dct = stage("sentences dct2 N=32", lambda: build_sentences(
        corpus, ctx_raw, n=32, basis="dct2"))
    (sent_ppmi, _), row_sp = stage("sentences ppmi-words dct2 N=32", lambda: build_sentences(
        corpus, ctx_ppmi, n=32, basis="dct2"))
    variants = (("sentences", sent, row_sent), ("sentences dct2 N=32", sent_dct, row_dct),
                ("sentences ppmi-words dct2 N=32", sent_ppmi, row_sp))
    for _, model, row in variants:
        row["n_sentences"] = len(model)
        row["truncated"] = model.metadata["truncated"]
        row["neighbors"] = {}
        for query in QUERIES:
            hits = model.neighbors(query, k=7)
            row["neighbors"][query] = [[t, round(d, 6), src] for t, d, src in hits]
            print(f"\n[{row['method']}] {query} (input)")
            for t, d, src in hits:
                print(f"  >> {t}  {d:.6g} - {src}")
    # sentiment: mean sentence embedding per review vs TF-IDF
    rev = corpus.reviews()
    labels, split = rev["label"], rev["split"]
    if (split == 0).any() and (split == 1).any():
        for name, model, _ in variants:
            t0 = time.perf_counter()
            acc = sentiment(review_means(model, corpus), labels, split)
            rows.append({"method": f"{name} mean + logreg", "ours": True,
                         "top1_accuracy": round(acc, 4),
                         "median_s": round(time.perf_counter() - t0, 2)})
        for name, wv in (("context raw", ctx_raw), ("context ppmi", ctx_ppmi)):
            # mean word vector per review (a bag-of-vectors baseline from the same corpus)
            emb = np.zeros((corpus.vocab_size, wv.dim))
            for i, w in enumerate(corpus.vocabulary):
                if w in wv:
                    emb[i] = wv.vectors[wv.index(w)]
            feats = np.zeros((corpus.n_reviews, wv.dim))
            counts = np.zeros(corpus.n_reviews)
            owner = corpus.sentence_review
            for start, values, offsets in corpus.iter_sentence_chunks():
                tok_owner = np.repeat(owner[start:start + offsets.size - 1], np.diff(offsets))
                np.add.at(feats, tok_owner, emb[values])
                np.add.at(counts, tok_owner, 1)
            acc_w = sentiment(feats / np.maximum(counts, 1)[:, None], labels, split)
            rows.append({"method": f"{name} word mean + logreg", "ours": True,
                         "top1_accuracy": round(acc_w, 4)})
        acc_t, sec_t = tfidf_sentiment(args.reviews, args.limit)
        rows.append({"method": "TF-IDF 1-2gram + logreg", "ours": False,
                     "top1_accuracy": round(acc_t, 4), "median_s": round(sec_t, 2)})



def finish(args: argparse.Namespace, rows: list[dict[str, Any]], files: list[Path],
           corpus: Corpus) -> None:
    """Print the tables and write the JSON."""
    cols = ["method", "ours", "median_s", "paper_s", "ratio_to_paper", "peak_mb",
            "spearman_EN-WS-353-ALL", "spearman_EN-MEN-TR-3k", "top1_accuracy"]
    print()
    print_table(rows, cols)
    print("\nSpearman (coverage of the pairs) per word-similarity file")
    print_similarity(rows, files)
    config = {"reviews": args.reviews, "limit": args.limit, "repeat": args.repeat,
              "n_reviews": corpus.n_reviews, "n_sentences": corpus.n_sentences,
              "vocab_size": corpus.vocab_size, "pair_files": [f.name for f in files],
              "dictionary": args.dictionary, "wordnet": args.wordnet,
              "machine_note": "2 cores shared with other engineers during the run",
              "paper_figures": "Lu 2023, Apple M1 Pro 16 GB"}
    out = write_result_json("bench_text", config, rows, args.json)
    print(f"\nwrote {out}")


if __name__ == "__main__":
    raise SystemExit(main())
