"""Shared pytest fixtures for the suanli Python tests.

suanli_bin     the built CLI: $SUANLI_BIN, else build/release/suanli.
default_model  the default model's path, fetched once into the real model
               cache by `suanli pull default --print-path`.
"""

import os
import subprocess

# numpy's bundled OpenBLAS starts a thread per core; on a small shared machine
# the numpy reference tests run several times faster single-threaded. Set
# before any test module imports numpy.
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="session")
def suanli_bin() -> str:
    path = Path(os.environ.get("SUANLI_BIN") or REPO_ROOT / "build" / "release" / "suanli")
    if not path.is_absolute():
        path = REPO_ROOT / path
    if not (path.is_file() and os.access(path, os.X_OK)):
        pytest.skip(f"suanli binary not found at {path}; build it (make build) or set SUANLI_BIN")
    return str(path)


@pytest.fixture(scope="session")
def default_model(suanli_bin) -> str:
    # stderr is left alone so pip's progress and errors show up in the log.
    proc = subprocess.run(
        [suanli_bin, "pull", "default", "--print-path"],
        stdout=subprocess.PIPE,
        text=True,
        timeout=1800,
    )
    assert proc.returncode == 0, f"suanli pull default failed (exit {proc.returncode})"
    lines = proc.stdout.splitlines()
    assert len(lines) == 1, f"expected exactly one path on stdout, got {proc.stdout!r}"
    path = lines[0]
    assert os.path.isabs(path) and os.path.isfile(path), path
    return path
