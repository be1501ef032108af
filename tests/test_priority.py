"""Lowering a job's CPU priority (parlswarm.priority): in a child process of its own session, so
that neither the test process nor the session that runs the suite is lowered."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from parlswarm.priority import autogroup_niceness, lower_priority

CHILD = """
import json, os
from parlswarm.priority import autogroup_niceness, lower_priority
first = lower_priority(7)
again = lower_priority(3)  # asks for a higher priority than it has: left as it is
print(json.dumps({"first": first, "again": again, "nice": os.getpriority(os.PRIO_PROCESS, 0),
                  "group": autogroup_niceness()}))
"""


def run_child(code: str) -> dict:
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60,
                          start_new_session=True, check=True)
    return json.loads(done.stdout)


def test_lowers_the_process_and_its_sessions_autogroup_and_never_raises_back() -> None:
    base = os.getpriority(os.PRIO_PROCESS, 0)
    if base >= 7:
        pytest.skip(f"the suite already runs at nice {base}")
    out = run_child(CHILD)
    assert out["nice"] == 7
    assert out["first"][0] == f"process nice {base} → 7"
    assert out["again"] == []
    if Path("/proc/self/autogroup").exists():
        # A session of its own starts its own autogroup at nice 0; root or not, lowering is allowed.
        assert out["group"] == 7
        assert out["first"][1] == "session's autogroup nice 0 → 7"


def test_the_test_process_is_not_lowered() -> None:
    before = os.getpriority(os.PRIO_PROCESS, 0), autogroup_niceness()
    run_child(CHILD)
    assert (os.getpriority(os.PRIO_PROCESS, 0), autogroup_niceness()) == before


def test_zero_changes_nothing() -> None:
    assert lower_priority(0) == []


@pytest.mark.parametrize("bad", [-1, 20])
def test_out_of_range_is_refused_by_name(bad: int) -> None:
    with pytest.raises(ValueError, match=rf"niceness .* not {bad}"):
        lower_priority(bad)
