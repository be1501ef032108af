"""Running a job at a lower CPU priority, so that it takes only the cores another job leaves idle.

A PARL run on CPU decodes its rollouts on about one core and updates on all of its
``torch_threads``: two runs side by side at equal priority share the update's cores and each
waits on its own threads' barriers (measured on two cores: an update 3–9× slower, docs/parl.md,
thirty-third look). A second run at the lowest priority instead runs on the core the first
one's decoding leaves idle, and stands aside during its updates.

``nice`` alone does not do that on Linux with scheduler autogroups (``/proc/sys/kernel/
sched_autogroup_enabled``): every session (a terminal, a ``setsid``) is a group, the groups
share the CPU equally, and a process's nice orders it only within its own group. So the
session's group is lowered as well; that lowers every process of the session, which is why
the job to lower is best started in a session of its own.
"""

from __future__ import annotations

import os
from pathlib import Path

AUTOGROUP = Path("/proc/self/autogroup")
LOWEST = 19


def lower_priority(niceness: int) -> list[str]:
    """Set this process's nice value (and its session's autogroup's, where there is one) to
    ``niceness`` (1–19; 0 leaves them), never raising a priority already lower. Threads and
    processes started afterwards inherit it. Returns what was lowered, in words, for a log line;
    raises ``ValueError`` for a niceness out of range and ``OSError`` if the process's own nice
    value cannot be set."""
    if not 0 <= niceness <= LOWEST:
        raise ValueError(f"niceness takes a number from 0 (as it is) to {LOWEST} (lowest priority), not {niceness}")
    if niceness == 0:
        return []
    done = []
    current = os.getpriority(os.PRIO_PROCESS, 0)
    if niceness > current:
        os.setpriority(os.PRIO_PROCESS, 0, niceness)
        done.append(f"process nice {current} → {niceness}")
    group = autogroup_niceness()
    if group is not None and niceness > group:
        try:
            AUTOGROUP.write_text(f"{niceness}\n", encoding="ascii")
            done.append(f"session's autogroup nice {group} → {niceness}")
        except OSError as exc:
            # The process's own nice still holds against jobs of the same session.
            done.append(f"session's autogroup left at nice {group} ({exc.strerror or exc})")
    return done


def autogroup_niceness() -> int | None:
    """The nice value of this process's scheduler autogroup, or None where the kernel has none."""
    try:
        text = AUTOGROUP.read_text(encoding="ascii")  # "/autogroup-34 nice 0"
    except OSError:
        return None
    words = text.split()
    if len(words) != 3 or words[1] != "nice":
        return None
    return int(words[2])
