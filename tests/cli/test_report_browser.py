"""Reports opened in a real headless browser (Debian's chromium): every image must load.

These tests start browser processes, so they carry the ``cluster`` marker (run with
``--runcluster``, as CI does); they are skipped where chromium is not installed.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

from veob_dask.cli import main

pytest.importorskip("matplotlib")
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
WORDS = Path("/usr/share/dict/american-english")

pytestmark = [pytest.mark.cluster,
              pytest.mark.skipif(CHROMIUM is None, reason="needs chromium (apt-get install "
                                                          "chromium)")]

FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
         "--disable-component-update", "--disable-sync", "--no-first-run", "--hide-scrollbars"]
#: Injected into a copy of the page: after load, mark each image loaded (decoded, non-empty).
PROBE = ("<script>window.addEventListener('load',()=>{for(const i of document.images){"
         "i.setAttribute('data-loaded',i.complete&&i.naturalWidth>0?'yes':'no')}"
         "document.body.setAttribute('data-probed','done')})</script>")


def _browser(tmp: Path, *args: str) -> str:
    proc = subprocess.run([CHROMIUM, *FLAGS, f"--user-data-dir={tmp / 'profile'}", *args],
                          capture_output=True, text=True, timeout=180, check=False)
    assert proc.returncode == 0, proc.stderr[-2000:]
    return proc.stdout


def _open(page: Path, tmp: Path, shot: Path) -> tuple[int, str]:
    """Load ``page``: return (number of images, DOM after load) and save a screenshot."""
    html = page.read_text(encoding="utf-8")
    assert "http://" not in html and "https://" not in html  # nothing to fetch
    probe = tmp / "probe.html"
    probe.write_text(html.replace("</body>", PROBE + "</body>"), encoding="utf-8")
    dom = _browser(tmp, "--virtual-time-budget=15000", "--dump-dom", probe.as_uri())
    _browser(tmp, "--window-size=1200,2600", f"--screenshot={shot}", page.as_uri())
    return html.count("<img "), dom


def _check(n_images: int, dom: str, shot: Path) -> None:
    assert "data-probed=\"done\"" in dom
    assert dom.count("data-loaded=\"yes\"") == n_images > 0
    assert "data-loaded=\"no\"" not in dom
    import matplotlib.image

    pixels = matplotlib.image.imread(shot)
    assert pixels.shape[:2] == (2600, 1200)
    assert float(np.std(pixels[..., :3])) > 0.05  # not a blank page


def test_digits_demo_report_opens_in_chromium(tmp_path: Path, capsys) -> None:
    page = tmp_path / "digits.html"
    assert main(["demo", "--scheduler", "threads", "--json", "--report", str(page)]) == 0
    res = json.loads(capsys.readouterr().out)
    assert res["report"] == str(page.resolve())
    n_images, dom = _open(page, tmp_path, tmp_path / "digits.png")
    assert n_images == 5  # spectrum, reconstruction error, map, rebuilt images, components
    _check(n_images, dom, tmp_path / "digits.png")
    assert "coloured by y" in dom and "right, t-SNE" in dom


@pytest.mark.skipif(not WORDS.is_file(), reason="needs wamerican (/usr/share/dict)")
def test_word_model_report_opens_in_chromium(tmp_path: Path) -> None:
    model, page = tmp_path / "spell.zarr", tmp_path / "words.html"
    assert main(["words", "build", "spelling", str(WORDS), "--out", str(model), "--limit",
                 "2000", "--n-components", "20"]) == 0
    assert main(["report", str(model), "--out", str(page), "--sample", "500", "--map-rows",
                 "300", "--query", "abandon", "--query", "absolutely"]) == 0
    n_images, dom = _open(page, tmp_path, tmp_path / "words.png")
    assert n_images == 2  # spectrum and map
    _check(n_images, dom, tmp_path / "words.png")
    assert "abandon (input)" in dom and "absolutely (input)" in dom
