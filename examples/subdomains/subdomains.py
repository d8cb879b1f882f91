"""§9.2 subdomains: one embedding per subdomain, metadata, routing, one index per subdomain.

    python examples/subdomains/subdomains.py [--path DIR] [--limit N] [-k 30] [--imdb]

Fashion-MNIST, one subdomain per class in training: the images go to Zarr stores, one 30-d basis
per class is fitted in one pass (the class label is the subdomain key, with each class's name and
kind as metadata), and

* every test image is routed by content to the class whose basis holds the most of its energy —
  a subspace classifier — beside the 1-NN of one global 30-d embedding;
* one exact index per class answers "the nearest training images among footwear" (a metadata
  filter) and "the nearest among the 2 classes that describe it best" (routing by content), as
  one merged list ranked by the squared distance to each row's reconstruction in its subdomain.

``--imdb`` adds the IMDB sentences (§6.5 features) with subdomains by review rating band,
queried with a filter on the band's metadata.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import dask.array as da
import numpy as np

from veob_dask import SVDEmbedding, save
from veob_dask.datasets import DEFAULT_FASHION_MNIST, idx_files
from veob_dask.index import SubdomainIndex, exact_kneighbors
from veob_dask.io import read_array
from veob_dask.io.ingest import ingest
from veob_dask.subdomain import SubdomainEmbedding

CLASSES = {0: ("T-shirt/top", "clothing"), 1: ("Trouser", "clothing"),
           2: ("Pullover", "clothing"), 3: ("Dress", "clothing"), 4: ("Coat", "clothing"),
           5: ("Sandal", "footwear"), 6: ("Shirt", "clothing"), 7: ("Sneaker", "footwear"),
           8: ("Bag", "accessory"), 9: ("Ankle boot", "footwear")}
IMDB = Path("/work/shared/data/imdb-aclImdb/imdb_labeled_50k.tsv.xz")
BANDS = {"1-2": (1, 2, "neg"), "3-4": (3, 4, "neg"), "7-8": (7, 8, "pos"), "9-10": (9, 10, "pos")}


def fashion(args: argparse.Namespace, work: Path) -> dict[str, object]:
    files = idx_files(args.path)
    ingest(files["train_images"], work / "train.zarr", labels=files["train_labels"],
           overwrite=True)
    ingest(files["test_images"], work / "test.zarr", labels=files["test_labels"], overwrite=True)
    x = read_array(work / "train.zarr")
    x = x.reshape(x.shape[0], -1)
    y = read_array(work / "train.zarr", "y")
    xt = read_array(work / "test.zarr")
    xt = np.asarray(xt.reshape(xt.shape[0], -1)[: args.limit or None].compute(), np.float64)
    yt = read_array(work / "test.zarr", "y")[: args.limit or None].compute()
    meta = {str(c): {"name": n, "kind": kind} for c, (n, kind) in CLASSES.items()}

    t0 = time.perf_counter()
    model = SubdomainEmbedding(args.k, metadata=meta).fit(x, domains=y)
    t_fit = time.perf_counter() - t0
    save(model, work / "subdomains.zarr", overwrite=True)
    acc = float((model.predict(xt) == yt).mean())
    t0 = time.perf_counter()
    glob = SVDEmbedding(args.k).fit(x)
    t_glob = time.perf_counter() - t0
    nn, _ = exact_kneighbors(glob.transform(xt), glob.transform(x).compute(), 1)
    y_np = y.compute()
    acc_nn = float((y_np[nn[:, 0]] == yt).mean())
    print(f"{model.domains_.size} class subdomains x {args.k} components ({model.solver_}, "
          f"{model.n_passes_} pass) in {t_fit:.1f} s; one global basis in {t_glob:.1f} s")
    print(f"test images routed by content to their class: accuracy {acc:.4f} "
          f"(global {args.k}-d embedding, 1-NN: {acc_nn:.4f})")
    own = 1 - (model.singular_values_**2).sum(1) / model.energy_
    print("residual energy per class, own basis: " + ", ".join(
        f"{CLASSES[int(c)][0]} {e:.3f}" for c, e in zip(model.domains_, own, strict=True)))

    index = SubdomainIndex("exact").fit(model, x, y)
    q = xt[:3]
    shoes = index.search(q, 5, where="kind=footwear")
    routed = index.search(q, 5, routes=2)
    for i in range(q.shape[0]):
        print(f"test image {i} ({CLASSES[int(yt[i])][0]}): routes "
              + ", ".join(f"{CLASSES[int(r)][0]} {s:.3f}"
                          for r, s in zip(routed.routes[i], routed.shares[i], strict=True)))
        print("  nearest (2 routes): " + ", ".join(
            f"#{j} {CLASSES[int(c)][0]} {d:.4g}"
            for j, c, d in zip(routed.indices[i], routed.domains[i], routed.sq_distances[i],
                               strict=True)))
        print("  nearest footwear:   " + ", ".join(
            f"#{j} {CLASSES[int(c)][0]} {d:.4g}"
            for j, c, d in zip(shoes.indices[i], shoes.domains[i], shoes.sq_distances[i],
                               strict=True)))
    return {"accuracy": acc, "accuracy_global_1nn": acc_nn, "fit_s": t_fit, "global_s": t_glob,
            "footwear_only": bool(np.isin(shoes.domains, [5, 7, 9]).all())}


def imdb(args: argparse.Namespace, work: Path) -> dict[str, object]:
    from veob_dask.text.context import build_context
    from veob_dask.text.corpus import ensure_corpus
    from veob_dask.text.sentences import corpus_embedding_matrix, sentence_features

    corpus = ensure_corpus(args.reviews, work / "corpus.zarr", limit=args.imdb_limit,
                           overwrite=True)
    words, _ = build_context(corpus)
    feats = sentence_features(corpus, corpus_embedding_matrix(corpus, words)[0])
    rating = np.asarray(corpus.group["reviews/rating"][:])[corpus.sentence_review]
    band = np.full(rating.shape, "", dtype="<U4")
    for name, (lo, hi, _) in BANDS.items():
        band[(rating >= lo) & (rating <= hi)] = name
    lengths = corpus.sentence_lengths
    keep = np.flatnonzero((lengths >= 1) & (lengths <= 32) & (band != ""))
    mask = np.zeros(lengths.size, dtype=bool)
    mask[keep] = True
    x, keys = feats[mask], band[keep]
    meta = {b: {"sentiment": s, "min_rating": lo, "max_rating": hi}
            for b, (lo, hi, s) in BANDS.items()}
    model = SubdomainEmbedding(args.k, metadata=meta).fit(x, domains=da.from_array(
        keys, chunks=(x.chunks[0],)))
    index = SubdomainIndex("exact").fit(model, x, keys)
    q = np.asarray(x[:1].compute())
    res = index.search(q, 3, where=["sentiment=pos", "min_rating>=9"])
    text = corpus.sentence_text(keep[[0, *res.indices[0].tolist()]])
    print(f"\nIMDB: {keep.size} sentences in {model.domains_.size} rating bands "
          f"{model.domains_.tolist()} ({model.solver_}, {model.n_passes_} pass)")
    print(f"query: {text[0]}\n  nearest in band 9-10: " + " | ".join(text[1:]))
    return {"imdb_sentences": int(keep.size),
            "imdb_bands_ok": bool(np.all(res.domains == "9-10"))}


def main(argv: list[str] | None = None) -> dict[str, object]:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--path", default=DEFAULT_FASHION_MNIST, help="directory of the 4 IDX files")
    p.add_argument("--limit", type=int, default=0, help="use only the first N test images")
    p.add_argument("-k", type=int, default=30)
    p.add_argument("--imdb", action="store_true", help="also the IMDB rating bands")
    p.add_argument("--reviews", default=str(IMDB))
    p.add_argument("--imdb-limit", type=int, default=None, help="first N reviews")
    p.add_argument("--workdir", default=None)
    args = p.parse_args(argv)
    work = Path(args.workdir or tempfile.mkdtemp(prefix="veob-subdomains-"))
    out = fashion(args, work)
    if args.imdb:
        out.update(imdb(args, work))
    print(f"\nstores in {work}")
    return out


if __name__ == "__main__":
    main()
