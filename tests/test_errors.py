"""The error hierarchy: every error is a VeobError *and* the builtin a caller would catch."""

from __future__ import annotations

import pytest

from veob_dask import errors

_ROOTS = {"VeobError", "StoreError", "VeobWarning", "NotFittedError", "Terminated"}
_BUILTINS = (ValueError, LookupError, OSError, ConnectionError, ImportError)


@pytest.mark.parametrize("name", sorted(set(errors.__all__) - _ROOTS))
def test_each_error_is_ours_and_a_builtin(name):
    cls = getattr(errors, name)
    if issubclass(cls, Warning):
        assert issubclass(cls, errors.VeobWarning)
        return
    assert issubclass(cls, errors.VeobError)
    assert issubclass(cls, _BUILTINS), f"{name} should also be a builtin exception"


def test_builtin_handlers_catch_ours():
    with pytest.raises(FileNotFoundError):
        raise errors.StoreNotFoundError("x")
    with pytest.raises(FileExistsError):
        raise errors.StoreExistsError("x")
    with pytest.raises(ValueError):
        raise errors.UnknownChunksError("x")


def test_termination_is_not_a_failure():
    """SIGTERM becomes an interrupt: ``except Exception`` / ``except VeobError`` do not see it."""
    assert issubclass(errors.Terminated, KeyboardInterrupt)
    assert not issubclass(errors.Terminated, Exception)


def test_a_missing_optional_package_is_an_import_error():
    with pytest.raises(ImportError):
        raise errors.MissingDependencyError("x")
