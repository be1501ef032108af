"""The ``parlswarm`` command line in child processes that start in milliseconds.

Tests that start the CLI dozens of times (kill-and-resume) would spend most of their time
importing ``openai``. Here a *forkserver* imports parlswarm once; each child is forked from
it and runs ``parlswarm.cli.main`` with its own arguments, stdout and stderr files — a real
separate process, which the test may SIGKILL or SIGINT, but no interpreter start-up.
"""

from __future__ import annotations

import multiprocessing
import os
import sys
from multiprocessing.process import BaseProcess
from pathlib import Path

# What a run imports: the CLI, the SDK and the parts of it loaded on first call, and the
# model plugins that load_model imports on first use.
_PRELOAD = [
    "parlswarm.cli",
    "openai",
    "openai.resources.chat",
    "openai.lib.streaming",
    "httpcore2",
    "h11",
    "anyio",
    "jiter",
    "truststore",
    "parlswarm.world.expert",
    "parlswarm.models.local",
    "parlswarm.testing.fault_workload",
]


def _child(argv: list[str], stdout: str, stderr: str) -> None:
    for fd, path in ((1, stdout), (2, stderr)):
        target = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        os.dup2(target, fd)
        os.close(target)
    sys.argv = ["parlswarm", *argv]
    from parlswarm.cli import main

    main()


class CliProcesses:
    """Start ``parlswarm ARGS...`` in forked children; outputs go to files in ``folder``."""

    def __init__(self, folder: str | Path) -> None:
        self.folder = Path(folder)
        self.folder.mkdir(parents=True, exist_ok=True)
        self._ctx = multiprocessing.get_context("forkserver")
        self._ctx.set_forkserver_preload(_PRELOAD)
        self._count = 0

    def start(self, *argv: str) -> tuple[BaseProcess, Path, Path]:
        """The started process and the paths of its stdout and stderr."""
        self._count += 1
        stdout = self.folder / f"{self._count}.out"
        stderr = self.folder / f"{self._count}.err"
        proc = self._ctx.Process(target=_child, args=(list(argv), str(stdout), str(stderr)), daemon=True)
        proc.start()
        return proc, stdout, stderr

    def run(self, *argv: str, timeout: float = 120) -> tuple[int, str, str]:
        """Run to the end: (exit code, stdout, stderr)."""
        proc, stdout, stderr = self.start(*argv)
        proc.join(timeout)
        if proc.exitcode is None:
            proc.kill()
            proc.join()
            raise TimeoutError(f"parlswarm {' '.join(argv)} ran past {timeout}s")
        return proc.exitcode, stdout.read_text(), stderr.read_text()
