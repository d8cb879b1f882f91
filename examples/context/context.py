"""The paper's §6.3 context embedding: IMDB sentences → two bags of neighbours → SVD 50.

    python examples/context/context.py [--reviews TSV|aclImdb/] [--limit N] [--weighting raw|ppmi]

Tokenises the reviews (``imdb_labeled_50k.tsv.xz`` or an unpacked ``aclImdb/`` folder) into a
corpus store, counts the two words before and the two after every token of the sentences of at
most 32 tokens (vocabulary x 2·vocabulary, sparse), weights the counts (``raw``: each bag sums
to 1, the paper; ``ppmi``: positive PMI, beyond the paper) and keeps 50 SVD dimensions. Prints
the stage timings, the neighbours of the paper's two query words, the Spearman correlation on
WS-353 and MEN, and saves the model (``veob words neighbors WORD --model OUT``).
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from veob_dask.text.context import build_context
from veob_dask.text.corpus import ensure_corpus
from veob_dask.text.similarity import evaluate

DATA = Path("/work/shared/data")
#: The paper's §6.3 table (Lu 2023), for comparison (smaller is closer).
PAPER = {
    "physicist": ["schoolteacher", "reader", "correspondence", "gasps", "reception",
                  "procedural", "secretary", "devious", "lens"],
    "twists": ["lawyers", "planes", "businessmen", "bells", "sweetness", "blades", "intrigues",
               "tortures", "jews"],
}
PAIRS = ["EN-WS-353-ALL.txt", "EN-MEN-TR-3k.txt"]


def main(argv: list[str] | None = None) -> dict[str, object]:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--reviews", default=str(DATA / "imdb-aclImdb" / "imdb_labeled_50k.tsv.xz"),
                   help="review table or aclImdb folder, or an existing corpus store")
    p.add_argument("--limit", type=int, default=None, help="size knob: first N reviews")
    p.add_argument("--weighting", choices=["raw", "ppmi"], default="raw")
    p.add_argument("--n-components", type=int, default=50)
    p.add_argument("--work", default=None, help="folder for the corpus and model (default: temp)")
    p.add_argument("-k", type=int, default=10)
    args = p.parse_args(argv)
    work = Path(args.work or tempfile.mkdtemp(prefix="veob-context-"))
    t0 = time.perf_counter()
    corpus = ensure_corpus(args.reviews, work / "corpus.zarr", limit=args.limit, overwrite=True)
    t_corpus = time.perf_counter() - t0
    print(f"{corpus}\ncorpus built in {t_corpus:.1f} s (tokenising; not part of the paper's "
          "figure)")
    model, seconds = build_context(corpus, weighting=args.weighting,
                                   n_components=args.n_components)
    out = work / f"context_{args.weighting}.zarr"
    model.save(out, overwrite=True)
    shape = model.metadata["shape"]
    print(f"matrix {shape[0]} x {shape[1]}, nnz {model.metadata['nnz']}; {len(model)} words x "
          f"{model.dim} dims; stages: " + ", ".join(f"{k} {v:.2f} s" for k, v in seconds.items())
          + " (paper: 14.6 s on an M1)")
    for word, paper in PAPER.items():
        if word not in model:
            print(f"\n{word}: not in the vocabulary")
            continue
        print(f"\n{word} (input)")
        for w, d in model.neighbors(word, args.k):
            print(f"  {w} - {d:.7g}" + ("   [paper]" if w in paper else ""))
    scores = {}
    for name in PAIRS:
        path = DATA / "word-similarity" / name
        if path.exists():
            r = evaluate(model, path)
            scores[name] = r.spearman
            print(f"{name}: Spearman {r.spearman:.3f} on {r.n_covered}/{r.n_pairs} pairs")
    print(f"\nmodel saved to {out}")
    return {"n_words": len(model), "seconds": seconds, "spearman": scores, "model": str(out)}


if __name__ == "__main__":
    main()
