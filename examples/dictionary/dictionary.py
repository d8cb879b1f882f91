"""Dictionary embeddings: the definitions recipe (default) and the paper's §6.4 recipe.

    python examples/dictionary/dictionary.py [--source merged.json.xz [/usr/share/wordnet]]
                                             [--recipe definitions|paper] [--limit N]

Reads the Simple English Dictionary the paper used (default), WordNet, or both, builds the
embedding (definitions: term graph of definitions, related terms, synonyms and signed antonyms
→ PPMI → SVD, k from the spectrum; paper: the 121,340 x 153,429 matrix of 30 spelling dims
divided by ‖σ‖ and one-hot synonym and antonym slots → SVD 300), prints per-stage timings and
the neighbours of the paper's query words and of ``--words``, and saves the model
(``veob words neighbors WORD --model OUT``).
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

from veob_dask.text.definitions import build_definitions
from veob_dask.text.dictionary import build_dictionary

SED = "/work/shared/data/simple-english-dictionary/merged.json.xz"
#: The paper's §6.4 table (Lu 2023), for comparison.
PAPER = {
    "bus": [
        "buses", "charabanc", "motorcoach", "double-decker", "omnibus", "jitney", "charabancs",
        "autobusses", "motorbuses",
    ],
    "happiness": [
        "felicity", "felicities", "dizzied", "dizzies", "dizzying", "dignifies", "broached",
        "authenticity", "lavalliere",
    ],
}


def main(argv: list[str] | None = None) -> dict[str, object]:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--source", nargs="+", default=[SED],
                   help="merged.json[.xz] and/or a WordNet dict folder (several: combined)")
    p.add_argument("--recipe", choices=("definitions", "paper"), default="definitions")
    p.add_argument("--limit", type=int, default=None, help="size knob: first N entry words")
    p.add_argument("--n-components", type=int, default=300)
    p.add_argument("--n-iter", type=int, default=1, help="randomized SVD steps")
    p.add_argument("--out", default=None, help="model store (default: a temp folder)")
    p.add_argument("--words", nargs="*", default=[], help="more query words")
    p.add_argument("-k", type=int, default=10)
    args = p.parse_args(argv)
    if args.recipe == "paper":
        model, timings = build_dictionary(args.source, n_components=args.n_components,
                                          n_iter=args.n_iter, limit=args.limit)
    else:
        model, timings = build_definitions(args.source, max_components=args.n_components,
                                           n_iter=args.n_iter, limit=args.limit)
    out = Path(args.out or Path(tempfile.mkdtemp(prefix="veob-dictionary-")) / "dict.zarr")
    model.save(out, overwrite=True)
    meta = model.metadata
    print(f"{len(model)} words x {model.dim} dims ({args.recipe} recipe)")
    if args.recipe == "paper":
        print(f"{meta['n_synonym_slots']} synonym slots, {meta['n_antonym_slots']} antonym slots "
              f"(paper: 147,202 and 6,199); {meta['truncated_words']} words longer than "
              f"N = {meta['n']}")
    else:
        print("links: " + ", ".join(f"{k[2:]} {v}" for k, v in meta.items()
                                    if k.startswith("n_") and k.endswith("_links")))
    print("input report:", meta["read_report"])
    print("stages: " + ", ".join(f"{k} {v:.2f} s" for k, v in timings.items())
          + " (paper: 15.1 s on an M1)")
    found = {}
    for word in [*PAPER, *args.words]:
        if word not in model:
            print(f"\n{word}: not in this (limited) vocabulary")
            continue
        rows = model.neighbors(word, args.k)
        paper = PAPER.get(word, [])
        found[word] = [w for w, _ in rows]
        print(f"\n{word} (input)")
        for w, d in rows:
            print(f"  {w} {d:.7g}" + ("   [paper]" if w in paper else ""))
    print(f"\nmodel saved to {out}")
    return {"n_words": len(model), "timings": timings, "neighbors": found, "model": str(out)}


if __name__ == "__main__":
    main()
