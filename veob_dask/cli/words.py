"""``veob words``: build word-vector models (§6.2-6.4), query neighbours, evaluate similarity.

Subcommands::

    veob words build spelling SOURCE -o MODEL      # corpus store or word-list file
    veob words build dictionary SOURCE... -o MODEL # merged.json[.xz] and/or a WordNet dict/
                                                   # (--recipe paper: the §6.4 recipe)
    veob words build context SOURCE -o MODEL       # corpus store, IMDB table or aclImdb/
    veob words neighbors WORD --model MODEL [-n 10] [--metric sqeuclidean|cosine]
    veob words evaluate FILE [FILE...] --model MODEL  # word1 word2 score files

``neighbors`` prints the paper's table layout (``word - distance``). An unknown word exits with
status 2 and a message listing vocabulary words close in spelling; a spelling model embeds an
unknown word from its letters instead (that is what a spelling model is for).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import TYPE_CHECKING

from ..errors import DataError, InvalidParameterError
from ..io import check_output
from ._common import Stages, check_text, computing
from ._options import (
    add_json,
    add_n_components,
    add_neighbors,
    add_output,
    add_overwrite,
    add_scheduler,
    nonnegative_int,
    output_path,
    positive_int,
)

if TYPE_CHECKING:
    from ..text.wordvectors import WordVectors

__all__ = ["register"]


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "words", help="word-vector models: build (spelling, dictionary, context), neighbors, "
        "evaluate",
        description="Build word embeddings from raw files (the paper's §6.2 spelling, §6.3 "
        "context and §6.4 dictionary examples), print a word's nearest words with distances, "
        "and evaluate a model on word-similarity files (Spearman correlation of cosine "
        "similarity with human scores, and coverage).")
    wsub = p.add_subparsers(dest="words_command", metavar="ACTION", required=True)

    nb = wsub.add_parser("neighbors", help="nearest words of WORD, with distances")
    nb.add_argument("word", help="query word")
    nb.add_argument("--model", required=True, help="word-vector model store")
    add_neighbors(nb, 10, what="neighbours to print", legacy_k=True)
    nb.add_argument("--metric", choices=("sqeuclidean", "cosine"), default="sqeuclidean",
                    help="distance (default squared Euclidean, as the paper's tables)")
    nb.add_argument("--cells", action="store_true",
                    help="search only the query's nearest cell of the §5 partition tree "
                    "(max_level 9, min_samples 100), as the paper's tables were made")
    add_json(nb)
    nb.set_defaults(func=run_neighbors)

    ev = wsub.add_parser("evaluate", help="Spearman correlation and coverage on word-pair files")
    ev.add_argument("files", nargs="+", help="word-pair files (word1 word2 score) or folders")
    ev.add_argument("--model", required=True, help="word-vector model store")
    ev.add_argument("--case-sensitive", action="store_true",
                    help="do not fall back to the lower-cased word")
    add_json(ev)
    ev.set_defaults(func=run_evaluate)

    bd = wsub.add_parser("build", help="build a model from raw files")
    bsub = bd.add_subparsers(dest="kind", metavar="KIND", required=True)
    sp = bsub.add_parser("spelling", help="§6.2 spelling embedding (letters → DCT → SVD 40)")
    sp.add_argument("source", help="corpus store, or word-list file (one word per line)")
    add_n_components(sp, 40, fraction=False)
    sp.add_argument("--layout", choices=("blocks", "summed"), default="blocks",
                    help="6x127 features (paper text, default) or harmonics summed per letter "
                    "(author's code)")
    sp.add_argument("--basis", choices=("paper", "dct2"), default="paper")
    sp.add_argument("--limit", type=positive_int, default=None,
                    help="use only the first LIMIT words")
    dc = bsub.add_parser("dictionary", help="dictionary embedding: definitions, related terms, "
                         "synonyms, signed antonyms → PPMI → SVD (default), or the paper's §6.4 "
                         "recipe (spelling + synonyms + antonyms → SVD 300)")
    dc.add_argument("source", nargs="+", help="merged.json[.xz] of simple-english-dictionary, "
                    "or a WordNet folder with data.* files (e.g. /usr/share/wordnet); several "
                    "sources are combined into one dictionary")
    dc.add_argument("--recipe", choices=("definitions", "paper"), default="definitions",
                    help="definitions (default) or the paper's §6.4 recipe")
    add_n_components(dc, 300, fraction=False)
    dc.add_argument("--n-iter", type=nonnegative_int, default=1, help="randomized SVD steps (default 1)")
    dc.add_argument("--limit", type=positive_int, default=None,
                    help="use only the first LIMIT words")
    dc.add_argument("--strict", action="store_true", help="fail on a malformed entry")
    cx = bsub.add_parser("context", help="§6.3 context embedding (two bags of neighbouring "
                         "words → SVD 50)")
    cx.add_argument("source", help="corpus store, imdb_labeled_50k.tsv[.xz] or an aclImdb/ folder")
    cx.add_argument("--corpus", help="corpus store written from raw SOURCE (default "
                    "OUT.corpus.zarr)")
    add_n_components(cx, 50, fraction=False)
    cx.add_argument("--weighting", choices=("raw", "ppmi"), default="raw",
                    help="bag frequencies (paper, default) or PPMI")
    cx.add_argument("--min-count", type=positive_int, default=None,
                    help="drop rarer words (default 1 for raw, 5 for ppmi)")
    cx.add_argument("--limit", type=positive_int, default=None,
                    help="use only the first LIMIT reviews")
    for q in (sp, dc, cx):
        add_output(q, "model store to write", metavar="MODEL")
        add_overwrite(q, "the model store (and a corpus store built on the way)")
        add_scheduler(q)
        add_json(q)
        q.set_defaults(func=run_build)



def _load(path: str) -> WordVectors:
    from ..text.wordvectors import WordVectors

    return WordVectors.load(path)


def run_neighbors(args: argparse.Namespace) -> int:
    """Print the nearest words of ``args.word``."""
    from ..text.spelling import paper_cells, spelling_neighbors

    out = Stages(json=args.json)
    check_text(args.word, "WORD")
    if args.cells and args.metric != "sqeuclidean":
        raise InvalidParameterError("--cells searches by squared Euclidean distance; "
                                    "drop --metric cosine.")
    model = _load(args.model)
    is_spelling = model.metadata.get("model") == "spelling" and "components" in model.extras
    note = ""
    if args.word not in model and is_spelling:
        note = " (not in the vocabulary: embedded from its letters)"
    elif args.word not in model:
        model.index(args.word)  # raises UnknownWordError with spelling suggestions
    cells = paper_cells(model) if args.cells else None
    if cells is not None:
        note += f" (nearest cell of {cells.n_cells_})"
    if is_spelling or cells is not None:
        rows = spelling_neighbors(model, args.word, args.neighbors, args.metric, cells=cells)
    else:
        rows = model.neighbors(args.word, args.neighbors, args.metric)
    out.show(f"{args.word} (input){note}")
    for w, d in rows:
        out.show(f"{w} - {d:.8g}")
    out.emit({"word": args.word, "model": args.model, "metric": args.metric,
              "cells": bool(args.cells), "note": note.strip(),
              "neighbors": [{"word": w, "distance": d} for w, d in rows]})
    return 0


def _pair_files(items: list[str]) -> list[tuple[Path, bool]]:
    """Files to evaluate, each with whether it came from a folder (then non-pair files are
    skipped instead of failing the command)."""
    out: list[tuple[Path, bool]] = []
    for item in items:
        p = Path(item)
        if p.is_dir():
            out.extend((f, True) for f in sorted(p.glob("*.txt")) if f.is_file())
        else:
            out.append((p, False))
    return out


def run_evaluate(args: argparse.Namespace) -> int:
    """Print Spearman correlation and coverage for each word-pair file."""
    from ..text.similarity import evaluate, load_word_pairs

    out = Stages(json=args.json)
    model = _load(args.model)
    results = []
    for f, from_folder in _pair_files(args.files):
        try:
            pairs = load_word_pairs(f)
        except DataError:
            if not from_folder:
                raise
            out.say(f"skipped {f.name}: not a word-pair file")
            continue
        results.append(evaluate(model, pairs, lowercase=not args.case_sensitive))
    out.show(f"{'file':<22} {'spearman':>9} {'coverage':>9} {'pairs':>11} {'malformed':>9}")
    for r in results:
        out.show(f"{r.name:<22} {r.spearman:>9.4f} {r.coverage:>9.1%} "
                 f"{f'{r.n_covered}/{r.n_pairs}':>11} {r.n_malformed:>9}")
    out.emit([r.as_dict() for r in results])
    return 0


def _build(args: argparse.Namespace) -> tuple[WordVectors, dict[str, float]]:
    if args.kind == "spelling":
        from ..text.spelling import build_spelling

        return build_spelling(args.source, n_components=args.n_components, layout=args.layout,
                              basis=args.basis, limit=args.limit)
    if args.kind == "context":
        from ..text.context import build_context
        from ..text.corpus import ensure_corpus

        corpus = ensure_corpus(args.source, args.corpus or f"{args.out}.corpus.zarr",
                               limit=args.limit, overwrite=args.overwrite)
        return build_context(corpus, n_components=args.n_components,
                             weighting=args.weighting, min_count=args.min_count)
    if args.recipe == "paper":
        from ..text.dictionary import build_dictionary

        return build_dictionary(args.source, n_components=args.n_components,
                                n_iter=args.n_iter, limit=args.limit, strict=args.strict)
    from ..text.definitions import build_definitions

    # n_components: singular triplets computed; k then comes from the spectrum
    return build_definitions(args.source, max_components=args.n_components,
                             n_iter=args.n_iter, limit=args.limit, strict=args.strict)


def run_build(args: argparse.Namespace) -> int:
    """Build a spelling, dictionary or context model and save it."""
    output_path(args)
    out = Stages(json=args.json)
    sources = args.source if isinstance(args.source, list) else [args.source]
    check_output(args.out, overwrite=args.overwrite, inputs=sources)
    with computing(args, out), out.stage("build", f"{args.kind} model"):
        model, timings = _build(args)
    with out.stage("save", f"saving model to {args.out}"):
        model.save(args.out, overwrite=args.overwrite)
    steps = " ".join(f"{k}={v:.2f}s" for k, v in timings.items())
    out.show(f"built {args.kind} model: {len(model)} words x {model.dim} dims -> {args.out} "
             f"({steps}; with save {out.total:.2f}s)")
    report = model.metadata.get("read_report")
    if report:
        out.show(f"input report: {json.dumps(report)}")
    out.emit({"kind": args.kind, "source": args.source, "model": args.out,
              "n_words": len(model), "n_components": model.dim,
              "seconds": {k: round(v, 3) for k, v in timings.items()}, "total": out.total,
              "read_report": report, "stage_seconds": out.seconds})
    return 0
