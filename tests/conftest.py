"""Shared fixtures. Tests are offline; servers they need run on 127.0.0.1 and stop with the test."""

from __future__ import annotations

import os
import tempfile

import pytest

# No test may reach a real provider: make sure no real key leaks into the environment.
for _var in ("OPENAI_API_KEY", "MOONSHOT_API_KEY", "KIMI_API_KEY"):
    os.environ.pop(_var, None)

# `parlswarm run` journals every run; tests keep their journals out of the working tree.
os.environ.setdefault("PARLSWARM_RUNS", tempfile.mkdtemp(prefix="parlswarm-test-runs-"))


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"
