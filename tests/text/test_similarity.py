"""Word-pair files and the Spearman / coverage evaluation."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import scipy.stats

from veob_dask.errors import DataError
from veob_dask.text.similarity import evaluate, load_word_pairs, spearman
from veob_dask.text.wordvectors import WordVectors

DATA = Path("/work/shared/data/word-similarity")


def test_spearman_matches_scipy_with_ties(rng: np.random.Generator) -> None:
    a = rng.integers(0, 6, 200).astype(float)
    b = a + rng.normal(size=200)
    assert spearman(a, b) == pytest.approx(scipy.stats.spearmanr(a, b).statistic, abs=1e-12)
    assert np.isnan(spearman([1.0, 1.0, 1.0], [1.0, 2.0, 3.0]))


def test_load_tabs_spaces_crlf_comments_and_malformed(tmp_path: Path) -> None:
    f = tmp_path / "pairs.txt"
    f.write_bytes(b"\xef\xbb\xbfcat\tdog\t7.5\r\n\r\n# comment\nsun  moon 3\n"
                  b"only two\nbad\tscore\tx\nnan\tnan\tnan\n\xff\xfe\tdog\t2\ncar car 10\n")
    pairs = load_word_pairs(f)
    assert pairs.word1 == ["cat", "sun", "car"] and pairs.word2 == ["dog", "moon", "car"]
    np.testing.assert_array_equal(pairs.scores, [7.5, 3.0, 10.0])
    lines = [m[0] for m in pairs.malformed]
    assert lines == [5, 6, 7, 8]
    assert "UTF-8" in pairs.malformed[-1][2]
    with pytest.raises(DataError, match="line 5"):
        load_word_pairs(f, strict=True)


def test_empty_and_missing_files(tmp_path: Path) -> None:
    f = tmp_path / "empty.txt"
    f.write_text("\n\n")
    with pytest.raises(DataError, match="no valid"):
        load_word_pairs(f)
    with pytest.raises(FileNotFoundError):
        load_word_pairs(tmp_path / "absent.txt")


def test_evaluate_coverage_and_correlation(tmp_path: Path) -> None:
    # 2-D vectors at known angles: cosine similarity decreases with angle.
    angles = {"a": 0.0, "b": 0.2, "c": 0.7, "d": 1.4, "e": 2.5}
    wv = WordVectors(list(angles), [[np.cos(t), np.sin(t)] for t in angles.values()])
    f = tmp_path / "p.txt"
    f.write_text("a b 9\nA c 6\na d 3\na e 1\na zzz 5\n")  # "A" found lower-cased
    res = evaluate(wv, f)
    assert res.n_pairs == 5 and res.n_covered == 4 and res.coverage == pytest.approx(0.8)
    assert res.spearman == pytest.approx(1.0)
    assert res.missing_words == ["zzz"]
    f.write_text("a b 1\na c 3\na d 6\na e 9\n")
    assert evaluate(wv, f).spearman == pytest.approx(-1.0)
    assert evaluate(wv, f, lowercase=False).n_covered == 4


@pytest.mark.skipif(not DATA.is_dir(), reason="word-similarity data not on this machine")
def test_shipped_files_parse_cleanly() -> None:
    for path in sorted(DATA.glob("EN-*.txt")):
        pairs = load_word_pairs(path)
        assert len(pairs) >= 30 and not pairs.malformed
