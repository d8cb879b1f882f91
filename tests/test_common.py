"""The import weight (scikit-learn's checks over every estimator are in test_contract.py)."""

from __future__ import annotations

import subprocess
import sys


def test_import_is_light():
    code = ("import sys, veob_dask; "
            "print(sorted(m for m in ('distributed', 'dask_ml') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"

