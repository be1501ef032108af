"""Load a script of benchmarks/ as a module, to test its functions directly."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"
if str(BENCHMARKS) not in sys.path:  # as when a script runs: its folder's support modules (expert_traces) import
    sys.path.append(str(BENCHMARKS))


def benchmark_module(name: str) -> ModuleType:
    """``benchmarks/<name>.py``, imported without running its ``main``."""
    spec = importlib.util.spec_from_file_location(name, BENCHMARKS / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module
