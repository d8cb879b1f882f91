"""Spectral transform of ragged sequences: paper formula, DCT-II, accumulation, sparse == dense."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.fft
import scipy.sparse as sp

from veob_dask.errors import DataError, InvalidParameterError
from veob_dask.io.ragged import Ragged, write_ragged
from veob_dask.spectral.basis import cosine_basis, paper_cos
from veob_dask.spectral.sequence import (
    SequenceTransform,
    extended_basis,
    letter_codes,
    sequence_transform,
    transform_block_dense,
    transform_block_symbols,
)


def _naive_paper(seq: np.ndarray, n: int, m: int) -> np.ndarray:
    """f_m = Σ_k s(N, m, k) x_k over positions k = 1..min(L, N), written as the paper does."""
    out = np.zeros((m, seq.shape[1]))
    for mm in range(1, m + 1):
        for k in range(1, min(len(seq), n) + 1):
            out[mm - 1] += paper_cos(n, mm, k) * seq[k - 1]
    return out.ravel()


def _random_ragged(rng: np.random.Generator, n_seq: int, dim: int, max_len: int) -> Ragged:
    return Ragged.from_sequences([rng.normal(size=(int(rng.integers(0, max_len)), dim))
                                  for _ in range(n_seq)], dtype=np.float64)


def test_dense_matches_paper_formula(rng: np.random.Generator) -> None:
    rag = _random_ragged(rng, 40, 5, 22)  # some sequences longer than N = 15: truncated
    out = sequence_transform(rag, chunk_sequences=7).compute()
    assert out.shape == (40, 30)
    for i in range(len(rag)):
        np.testing.assert_allclose(out[i], _naive_paper(rag[i], 15, 6), atol=1e-12)
    assert SequenceTransform(chunk_sequences=7).count_truncated(rag) == int(
        (rag.lengths() > 15).sum())


def test_dct2_matches_scipy_for_full_length(rng: np.random.Generator) -> None:
    x = rng.normal(size=(3 * 8, 4))
    offsets = np.array([0, 8, 16, 24])
    out = sequence_transform((x, offsets), n=8, m=5, basis="dct2").compute()
    for i in range(3):
        ref = scipy.fft.dct(x[8 * i:8 * i + 8], axis=0, norm="ortho")[:5]
        np.testing.assert_allclose(out[i].reshape(5, 4), ref, atol=1e-12)
    # a shorter sequence is zero padded to N
    short = sequence_transform((x[:3], np.array([0, 3])), n=8, m=8, basis="dct2").compute()
    padded = np.vstack([x[:3], np.zeros((5, 4))])
    np.testing.assert_allclose(short[0].reshape(8, 4),
                               scipy.fft.dct(padded, axis=0, norm="ortho"), atol=1e-12)


def test_repeated_items_accumulate_not_overwrite() -> None:
    # "abab": each letter twice. Overwriting would keep only the last occurrence.
    codes, offsets, _ = letter_codes(["abab"])
    w = SequenceTransform(n_symbols=127).weights
    got = transform_block_symbols(codes, offsets, w, 127).toarray()[0].reshape(6, 127)
    a = ord("a") - 1
    np.testing.assert_allclose(got[:, a], w[:, 0] + w[:, 2])
    assert not np.allclose(got[:, a], w[:, 2])
    # same for a sentence of token ids with a repeated word
    emb = np.eye(3)
    out = transform_block_dense(np.array([0, 1, 0]), np.array([0, 3]), w, embedding=emb)
    np.testing.assert_allclose(out[0].reshape(6, 3)[:, 0], w[:, 0] + w[:, 2])


def test_sparse_symbols_equal_dense_one_hot(rng: np.random.Generator) -> None:
    words = ["frowning", "frown", "twighlight", "a", "", "zz", "mississippi-river-boats"]
    codes, offsets, dropped = letter_codes(words)
    assert dropped == 0
    sparse = sequence_transform((codes, offsets), n_symbols=127, chunk_sequences=3).compute()
    assert sp.issparse(sparse)
    one_hot = np.eye(127)[codes.astype(int)]
    dense = sequence_transform((one_hot, offsets), chunk_sequences=3).compute()
    np.testing.assert_allclose(sparse.toarray(), dense, atol=1e-12)
    assert sparse[4].nnz == 0  # the empty word


def test_token_ids_with_embedding_equal_vectors(rng: np.random.Generator) -> None:
    emb = rng.normal(size=(20, 6))
    ids = rng.integers(0, 20, size=50)
    offsets = np.array([0, 5, 5, 32, 50])
    a = sequence_transform((ids, offsets), embedding=emb, chunk_sequences=2).compute()
    b = sequence_transform((emb[ids], offsets), chunk_sequences=2).compute()
    np.testing.assert_allclose(a, b, atol=1e-12)
    # unknown tokens (id -1) keep their position but add nothing
    ids2 = ids.copy()
    ids2[0] = -1
    c = sequence_transform((ids2, offsets), embedding=emb).compute()
    x = emb[ids].copy()
    x[0] = 0
    np.testing.assert_allclose(c, sequence_transform((x, offsets)).compute(), atol=1e-12)


def test_zarr_backed_blocks_equal_in_memory(tmp_path, rng: np.random.Generator) -> None:
    rag = _random_ragged(rng, 30, 3, 10)
    write_ragged(rag, tmp_path / "r.zarr", chunk_values=16, chunk_offsets=8)
    path = str(tmp_path / "r.zarr")
    lazy = sequence_transform(path, chunk_sequences=4, basis="dct2")
    assert lazy.numblocks[0] == 8
    np.testing.assert_allclose(lazy.compute(),
                               sequence_transform(rag, basis="dct2").compute(), atol=1e-12)


def test_long_policy_and_bad_input() -> None:
    codes, offsets, _ = letter_codes(["abcdefghijklmnopqrstuvwxyz"])
    with pytest.raises(DataError, match="more than N=15"):
        sequence_transform((codes, offsets), n_symbols=127, long="error").compute()
    trunc = sequence_transform((codes, offsets), n_symbols=127).compute()
    first15 = sequence_transform(letter_codes(["abcdefghijklmno"])[:2], n_symbols=127).compute()
    np.testing.assert_allclose(trunc.toarray(), first15.toarray())
    with pytest.raises(DataError, match=r"\[0, 10\)"):
        sequence_transform((codes, offsets), n_symbols=10).compute()
    with pytest.raises(InvalidParameterError):
        sequence_transform((codes, offsets), basis="fft")
    with pytest.raises(InvalidParameterError):
        sequence_transform((codes, offsets), n=5, m=6)
    with pytest.raises(InvalidParameterError):
        sequence_transform((codes, offsets), n_symbols=127, embedding=np.eye(3))
    with pytest.raises(DataError, match="NaN"):
        sequence_transform((np.array([[np.nan]]), np.array([0, 1]))).compute()
    with pytest.raises(DataError, match="out of range"):
        sequence_transform((np.array([5]), np.array([0, 1])), embedding=np.eye(3)).compute()
    with pytest.raises(DataError):
        sequence_transform(["not", "ragged"])
    with pytest.raises(DataError):
        transform_block_dense(np.ones((3, 2)), np.array([0, 5]), np.ones((2, 4)))


def test_extend_continues_the_basis_past_n(rng: np.random.Generator) -> None:
    rag = _random_ragged(rng, 12, 3, 30)
    out = sequence_transform(rag, long="extend", chunk_sequences=5).compute()
    for i in range(len(rag)):  # the paper formula at every position, no truncation
        np.testing.assert_allclose(out[i], _naive_extended(rag[i], 15, 6), atol=1e-12)
    np.testing.assert_allclose(extended_basis(8, 5, "dct2", 12)[:, :8],
                               cosine_basis(8, "dct2", keep=5), atol=1e-15)
    np.testing.assert_allclose(extended_basis(15, 6, "paper", 3), cosine_basis(15, "paper", 6))
    short = Ragged.from_sequences([rng.normal(size=(9, 3))])
    np.testing.assert_allclose(sequence_transform(short, long="extend").compute(),
                               sequence_transform(short).compute(), atol=1e-12)


def _naive_extended(seq: np.ndarray, n: int, m: int) -> np.ndarray:
    out = np.zeros((m, seq.shape[1]))
    for mm in range(1, m + 1):
        for k in range(1, len(seq) + 1):
            out[mm - 1] += paper_cos(n, mm, k) * seq[k - 1]
    return out.ravel()


def test_letter_codes_drops_non_ascii() -> None:
    codes, offsets, dropped = letter_codes(["café", "naïve", "ok"])
    assert dropped == 2
    assert offsets.tolist() == [0, 3, 7, 9]
    assert bytes((codes + 1).tolist()).decode() == "cafnaveok"


@pytest.mark.cluster
def test_zarr_path_on_process_cluster(tmp_path, rng: np.random.Generator, process_client) -> None:
    rag = _random_ragged(rng, 25, 3, 20)
    write_ragged(rag, tmp_path / "r.zarr", chunk_values=32, chunk_offsets=8)
    lazy = sequence_transform(str(tmp_path / "r.zarr"), chunk_sequences=6)
    np.testing.assert_allclose(process_client.compute(lazy).result(),
                               sequence_transform(rag).compute(), atol=1e-12)
    codes, offsets, _ = letter_codes(["frowning", "frown", "twig"] * 5)
    sparse = sequence_transform((codes, offsets), n_symbols=127, chunk_sequences=4)
    np.testing.assert_allclose(process_client.compute(sparse).result().toarray(),
                               sparse.compute().toarray())


def test_letter_codes_with_an_alphabet_beyond_ascii() -> None:
    codes, offsets, dropped = letter_codes(["café", "straße", "ok", "ø"], alphabet="éß")
    assert dropped == 1  # "ø" is in neither ASCII nor the alphabet
    assert offsets.tolist() == [0, 4, 10, 12, 12]
    assert codes[3] == 127 and codes[8] == 128  # alphabet slots follow the 127 ASCII ones
    with pytest.raises(InvalidParameterError, match="alphabet"):
        letter_codes(["a"], alphabet="éé")
