"""``veob sentences``: build the §6.5 sentence embedding and query nearest sentences.

Subcommands::

    veob sentences build SOURCE --out MODEL [--corpus CORPUS] [--words WORDMODEL] [--limit N]
    veob sentences neighbors "TEXT" --model MODEL [-k 7] [--metric sqeuclidean|cosine] [--json]

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
import json
import time

__all__ = ["register", "run"]


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "sentences", help="sentence embedding (§6.5): build, nearest sentences",
        description="Build the paper's sentence embedding (word context vectors of each "
        "sentence -> cosine spectral transform, N=15, m<=6, contributions summed -> SVD 200) "
        "from IMDB reviews, and print the nearest sentences of a text with distances and "
        "sources.")
    ssub = p.add_subparsers(dest="sentences_command", metavar="ACTION")

    nb = ssub.add_parser("neighbors", help="nearest sentences of TEXT, with distances")
    nb.add_argument("text", help="query sentence")
    nb.add_argument("--model", required=True, help="sentence model store")
    nb.add_argument("-k", "--k", type=int, default=7, help="sentences to print (default 7)")
    nb.add_argument("--metric", choices=("sqeuclidean", "cosine"), default="sqeuclidean",
                    help="distance (default squared Euclidean, as the paper's table)")
    nb.add_argument("--json", action="store_true", help="print JSON instead of a table")
    nb.set_defaults(func=run_neighbors)

    bd = ssub.add_parser("build", help="build a sentence model from raw reviews")
    bd.add_argument("source", help="imdb_labeled_50k.tsv[.xz], an aclImdb/ folder or a corpus "
                    "store")
    bd.add_argument("--out", required=True, help="model store to write")
    bd.add_argument("--corpus", help="corpus store to write/reuse (default: OUT.corpus.zarr)")
    bd.add_argument("--words", help="word-vector model (default: build the §6.3 context "
                    "embedding from the corpus)")
    bd.add_argument("--weighting", choices=("raw", "ppmi"), default="raw",
                    help="context weighting when --words is not given (default raw, the paper)")
    bd.add_argument("--limit", type=int, help="use only the first N reviews")
    bd.add_argument("--n-components", type=int, default=200, help="dimensions (default 200)")
    bd.add_argument("--max-words", type=int, default=32, help="longest sentence (default 32)")
    bd.add_argument("--n", type=int, default=15, help="basis length N (default 15)")
    bd.add_argument("--m", type=int, default=6, help="harmonics kept (default 6)")
    bd.add_argument("--basis", choices=("paper", "dct2"), default="paper",
                    help="cosine basis (default: the paper's)")
    bd.add_argument("--scheduler", default="threads",
                    help="dask scheduler: threads, sync, local or an address (default threads)")
    bd.add_argument("--overwrite", action="store_true", help="replace existing stores")
    bd.set_defaults(func=run_build)
    p.set_defaults(func=run, _parser=p)


def run(args: argparse.Namespace) -> int:
    """No action given: print the help."""
    args._parser.print_help()
    return 2


def run_neighbors(args: argparse.Namespace) -> int:
    """Print the nearest sentences of ``args.text``."""
    from ..errors import InvalidParameterError
    from ..text.sentences import SentenceModel

    if args.k < 1:
        raise InvalidParameterError(f"-k must be >= 1; got {args.k}.")
    model = SentenceModel.load(args.model)
    hits = model.neighbors(args.text, k=args.k, metric=args.metric)
    _, unknown = model.tokens(args.text)
    if args.json:
        print(json.dumps({"query": args.text, "unknown_words": unknown,
                          "neighbors": [{"text": t, "distance": d, "source": s}
                                        for t, d, s in hits]}, indent=1))
        return 0
    print(f"{args.text} (input)")
    if unknown:
        print(f"  (words without a vector, ignored: {', '.join(unknown)})")
    for text, dist, source in hits:
        print(f">> {text}  {dist:.6g} - {source}")
    return 0


def run_build(args: argparse.Namespace) -> int:
    """Build (corpus →) word vectors → sentence model, and save it."""
    from ..io import check_output
    from ..runtime import scheduler_context
    from ..text.context import build_context
    from ..text.corpus import ensure_corpus
    from ..text.sentences import build_sentences
    from ..text.wordvectors import WordVectors

    out = check_output(args.out, overwrite=args.overwrite, inputs=[args.source, args.words])
    t0 = time.perf_counter()
    corpus_path = args.corpus or out.sibling(out.name + ".corpus.zarr")
    corpus = ensure_corpus(args.source, corpus_path, limit=args.limit, overwrite=args.overwrite)
    t1 = time.perf_counter()
    print(f"corpus: {corpus} ({t1 - t0:.2f}s)")
    with scheduler_context(args.scheduler):
        if args.words:
            words = WordVectors.load(args.words)
        else:
            words, secs = build_context(corpus, weighting=args.weighting)
            print(f"context embedding: {len(words)} words x {words.dim} dims ("
                  + " ".join(f"{k}={v:.2f}s" for k, v in secs.items()) + ")")
        model, secs = build_sentences(corpus, words, n_components=args.n_components,
                                      max_words=args.max_words, n=args.n, m=args.m,
                                      basis=args.basis, out=args.out,
                                      overwrite=args.overwrite)
    print(f"built sentence model: {len(model)} sentences x {model.embedding.shape[1]} dims -> "
          f"{args.out} (" + " ".join(f"{k}={v:.2f}s" for k, v in secs.items())
          + f"; everything with save {time.perf_counter() - t0:.2f}s)")
    return 0
