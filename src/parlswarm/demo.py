"""``make demo``: the main job, offline.

Until the offline world lands, the demo runs the fan-out benchmark against the local stub
server and says so.
"""

from __future__ import annotations

import runpy
import sys
from pathlib import Path


def main() -> None:
    root = Path(__file__).resolve().parents[2]
    script = root / "benchmarks" / "fanout.py"
    print("parlswarm demo: fan-out benchmark (100 sub-agents x 14 tool calls against a local "
          "OpenAI-compatible stub server, 100 ms per model call), swarm runtime vs plain openai loop")
    sys.argv = [str(script), "--repeats", "1"]
    runpy.run_path(str(script), run_name="__main__")


if __name__ == "__main__":
    main()
