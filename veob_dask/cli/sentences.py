"""``veob sentences``: build the §6.5 sentence embedding and query nearest sentences.

Subcommands::

    veob sentences build SOURCE -o MODEL [--corpus CORPUS] [--words WORDMODEL] [--limit N]
    veob sentences neighbors "TEXT" --model MODEL [-n 7] [--metric sqeuclidean|cosine] [--json]

``SOURCE`` is the IMDB review table (``imdb_labeled_50k.tsv.xz``), an unpacked ``aclImdb/``
folder, or a corpus store. Raw reviews are tokenised into ``--corpus`` (default ``MODEL`` with
``.corpus.zarr`` appended to its name). Without ``--words`` the §6.3 context embedding is built
from the same corpus first (raw bag frequencies, 50 dims, as the paper).

``neighbors`` prints the paper's layout: the query, then one line per sentence with its
squared Euclidean distance and its source file. A query whose words are all unknown exits with
status 2 and spelling suggestions.
"""

from __future__ import annotations

import argparse

from ._common import Stages, check_text, computing
from ._options import (
    add_deprecated_alias,
    add_json,
    add_n_components,
    add_neighbors,
    add_output,
    add_overwrite,
    add_scheduler,
    output_path,
    positive_int,
)

__all__ = ["register"]


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "sentences", help="sentence embedding (§6.5): build, nearest sentences",
        description="Build the paper's sentence embedding (word context vectors of each "
        "sentence -> cosine spectral transform, N=15, m<=6, contributions summed -> SVD 200) "
        "from IMDB reviews, and print the nearest sentences of a text with distances and "
        "sources.")
    ssub = p.add_subparsers(dest="sentences_command", metavar="ACTION", required=True)

    nb = ssub.add_parser("neighbors", help="nearest sentences of TEXT, with distances")
    nb.add_argument("text", help="query sentence")
    nb.add_argument("--model", required=True, help="sentence model store")
    add_neighbors(nb, 7, what="sentences to print", legacy_k=True)
    nb.add_argument("--metric", choices=("sqeuclidean", "cosine"), default="sqeuclidean",
                    help="distance (default squared Euclidean, as the paper's table)")
    add_json(nb)
    nb.set_defaults(func=run_neighbors)

    bd = ssub.add_parser("build", help="build a sentence model from raw reviews")
    bd.add_argument("source", help="imdb_labeled_50k.tsv[.xz], an aclImdb/ folder or a corpus "
                    "store")
    add_output(bd, "sentence model store to write", metavar="MODEL")
    bd.add_argument("--corpus", help="corpus store to write/reuse (default: MODEL.corpus.zarr)")
    bd.add_argument("--words", help="word-vector model (default: build the §6.3 context "
                    "embedding from the corpus)")
    bd.add_argument("--weighting", choices=("raw", "ppmi"), default="raw",
                    help="context weighting when --words is not given (default raw, the paper)")
    bd.add_argument("--limit", type=positive_int, help="use only the first N reviews")
    add_n_components(bd, 200, fraction=False, what="dimensions")
    bd.add_argument("--max-words", type=positive_int, default=32,
                    help="longest sentence (default 32)")
    bd.add_argument("--basis-length", type=positive_int, default=15, metavar="N",
                    help="basis length N of the cosine transform (default 15)")
    bd.add_argument("--harmonics", type=positive_int, default=6, metavar="M",
                    help="harmonics kept, m (default 6)")
    add_deprecated_alias(bd, "--n", dest="basis_length", type=positive_int,
                         instead="--basis-length N (-n means neighbours)")
    add_deprecated_alias(bd, "--m", dest="harmonics", type=positive_int,
                         instead="--harmonics M")
    bd.add_argument("--basis", choices=("paper", "dct2"), default="paper",
                    help="cosine basis (default: the paper's)")
    add_scheduler(bd)
    add_overwrite(bd, "the model store (and a corpus store built on the way)")
    add_json(bd)
    bd.set_defaults(func=run_build)



def run_neighbors(args: argparse.Namespace) -> int:
    """Print the nearest sentences of ``args.text``."""
    from ..text.sentences import SentenceModel

    out = Stages(json=args.json)
    check_text(args.text, "TEXT")
    model = SentenceModel.load(args.model)
    hits = model.neighbors(args.text, k=args.neighbors, metric=args.metric)
    _, unknown = model.tokens(args.text)
    out.show(f"{args.text} (input)")
    if unknown:
        out.show(f"  (words without a vector, ignored: {', '.join(unknown)})")
    for text, dist, source in hits:
        out.show(f">> {text}  {dist:.6g} - {source}")
    out.emit({"query": args.text, "model": args.model, "metric": args.metric,
              "unknown_words": unknown,
              "neighbors": [{"text": t, "distance": d, "source": s} for t, d, s in hits]})
    return 0


def run_build(args: argparse.Namespace) -> int:
    """Build (corpus →) word vectors → sentence model, and save it."""
    from ..errors import InvalidParameterError
    from ..io import check_output
    from ..text.context import build_context
    from ..text.corpus import ensure_corpus
    from ..text.sentences import build_sentences
    from ..text.wordvectors import WordVectors

    output_path(args)
    if args.harmonics > args.basis_length:
        raise InvalidParameterError(
            f"--harmonics (kept) must be at most --basis-length ({args.basis_length}); got "
            f"--harmonics {args.harmonics}.")
    stages = Stages(json=args.json)
    out = check_output(args.out, overwrite=args.overwrite, inputs=[args.source, args.words])
    corpus_path = args.corpus or out.sibling(out.name + ".corpus.zarr")
    with stages.stage("corpus", f"corpus of {args.source}"):
        corpus = ensure_corpus(args.source, corpus_path, limit=args.limit,
                               overwrite=args.overwrite)
    stages.show(f"corpus: {corpus}")
    with computing(args, stages):
        if args.words:
            words = WordVectors.load(args.words)
        else:
            with stages.stage("context", "§6.3 context embedding of the corpus"):
                words, _ = build_context(corpus, weighting=args.weighting)
            stages.show(f"context embedding: {len(words)} words x {words.dim} dims")
        with stages.stage("sentences", "spectral transform, SVD and projection to Zarr"):
            model, secs = build_sentences(
                corpus, words, n_components=args.n_components, max_words=args.max_words,
                n=args.basis_length, m=args.harmonics, basis=args.basis, out=args.out,
                overwrite=args.overwrite)
    stages.show(f"built sentence model: {len(model)} sentences x {model.embedding.shape[1]} "
                f"dims -> {args.out} (" + " ".join(f"{k}={v:.2f}s" for k, v in secs.items())
                + f"; everything with save {stages.total:.2f}s)")
    stages.emit({"source": args.source, "model": args.out, "corpus": str(corpus_path),
                 "words": args.words, "n_sentences": len(model),
                 "n_components": int(model.embedding.shape[1]), "seconds": stages.total,
                 "stage_seconds": stages.seconds})
    return 0
