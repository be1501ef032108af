"""``make demo``: the main job, offline, in a few minutes.

Builds the offline world (World Factbook pages and their search index, cached after the
first run), then runs three parts through the same runtime and tools an LLM would use:

1. **The scripted expert**, as a single agent and as a swarm, on four test tasks of 6 to 56
   rows. Every model call is delayed by 0.1 s to stand in for a remote LLM, so wall-clock
   means something.
2. **The built-in model** (``builtin:smollm2``, the shipped SmolLM2-135M-Instruct adapter)
   as the swarm's frozen sub-agents, decoding on this machine's CPU, on the two smallest of
   those tasks. The orchestrator is the scripted expert handing out one place a sub-agent,
   the form the model was trained on: the built-in model does not yet orchestrate or solve a
   task alone well enough to show (docs/local-model.md has its figures).
3. **The PARL orchestrator** (``builtin:smollm2-parl``, SmolLM2 trained by PARL to decide
   and delegate) on the same two tasks, run as it was trained (``prefixed:``): the scripted
   expert finds the places, the model decides, creates and assigns the sub-agents (the
   expert's find reader) and merges their tables (docs/parl.md has its figures).

It prints the tables and writes the full reports. ``python -m parlswarm.demo --expert-only``
skips the second and third parts. The runtime's own fan-out overhead is measured separately: ``make
bench-fanout`` (``benchmarks/fanout.py``).
"""

from __future__ import annotations

import argparse
import asyncio
import time
from collections.abc import Sequence
from pathlib import Path

from parlswarm.bench import (
    BenchConfig,
    BenchResult,
    BenchTask,
    LatencyModel,
    Mode,
    finish,
    load_bench_tasks,
    run_bench,
    write_reports,
)
from parlswarm.cli.bench import print_result
from parlswarm.models import load_model
from parlswarm.models.base import Model
from parlswarm.world.expert import ExpertModel
from parlswarm.world.factbook import Factbook
from parlswarm.world.tasks import WorldTask, make_tasks, write_tasks
from parlswarm.world.tools import offer_check, world_tools
from parlswarm.world.world import World, default_cache_dir

LATENCY = 0.1
BUILTIN = "builtin:smollm2"
# The form of sub-task the built-in model was trained on: the expert's find reader, one place a sub-agent.
BUILTIN_ORCHESTRATOR = "expert:find,rows=1"
PARL = "prefixed:builtin:smollm2-parl"
PARL_SUBAGENTS = "expert:find"  # the sub-agents it was trained and evaluated with


def demo_tasks(tasks: list[WorldTask]) -> list[WorldTask]:
    """Two small tasks, the first of 20 rows or more, and the widest."""
    by_rows = sorted(tasks, key=lambda t: (len(t.rows), t.instance_id))
    wide = next(t for t in by_rows if len(t.rows) >= 20)
    chosen = {t.instance_id: t for t in (by_rows[0], by_rows[1], wide, by_rows[-1])}
    return sorted(chosen.values(), key=lambda t: t.instance_id)


def quiet_model_loading() -> None:
    """Loading a local model prints progress bars and library deprecation warnings; a demo's reader needs neither."""
    import functools
    import warnings

    import tqdm
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()
    # transformers' GGUF reader uses tqdm directly, past its own progress-bar switch.
    tqdm.tqdm.__init__ = functools.partialmethod(tqdm.tqdm.__init__, disable=True)  # type: ignore[method-assign]
    hf_logging.set_verbosity_error()
    warnings.filterwarnings("ignore", category=FutureWarning)
    warnings.filterwarnings("ignore", message="Could not find a config file")


def bench(
    tasks: list[BenchTask], tasks_file: Path, gold: Path, world: World, model: Model, modes: Sequence[Mode],
    out: Path, *, subagent_model: Model | None = None,
) -> BenchResult:  # fmt: skip
    """One bench part: run, score, print the table and write the reports under ``out``."""
    config = BenchConfig()
    latency = model.seconds if isinstance(model, LatencyModel) else None  # recorded in the reports
    runs = asyncio.run(run_bench(tasks, [model], offer_check(world_tools(world), model, subagent_model), modes=modes, config=config, subagent_model=subagent_model))
    result = finish(
        BenchResult(
            tasks_file=str(tasks_file), gold_dir=str(gold), world_seed=0, models=[model.name], modes=list(modes),
            trials=1, latency=latency, config=config, runs=runs,
            subagent_model=subagent_model.name if subagent_model else None,
        )  # fmt: skip
    )
    paths = write_reports(result, out)
    print()
    print_result(result)
    print(f"reports: {paths['md']} and {paths['plot']}")
    return result


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m parlswarm.demo", description="parlswarm's offline demo (make demo).")
    parser.add_argument("--expert-only", action="store_true", help=f"skip the parts that run local models ({BUILTIN}, {PARL})")
    args = parser.parse_args(argv)
    out = default_cache_dir() / "demo"
    print("parlswarm demo: the offline wide-search world, single agent vs swarm")
    t0 = time.perf_counter()
    real = Factbook.load()
    world = World.load(0, base=real)
    print(
        f"world: {len(world.factbook)} places of the CIA World Factbook, {len(world.docs)} pages, "
        f"BM25 index ready in {time.perf_counter() - t0:.1f}s (cached in {default_cache_dir()})"
    )
    chosen = demo_tasks(make_tasks("test", real))
    tasks_file, gold = write_tasks(chosen, out / "tasks")
    bench_tasks, errors, _ = load_bench_tasks(tasks_file, gold)
    assert not errors, errors
    print(f"tasks: {', '.join(f'{t.instance_id} ({len(t.rows)} rows)' for t in chosen)}")

    print(f"\n1. the scripted expert, every model call delayed {LATENCY:g}s (emulated remote LLM); running ...")
    bench(bench_tasks, tasks_file, gold, world, LatencyModel(ExpertModel(), LATENCY), ("single", "swarm"), out / "expert")

    if not args.expert_only:
        small = sorted(bench_tasks, key=lambda t: (t.rows, t.task.instance_id))[:2]
        print(
            f"\n2. the built-in model {BUILTIN} as the swarm's sub-agents, decoding on this CPU, "
            f"under the scripted orchestrator ({BUILTIN_ORCHESTRATOR}), on {' and '.join(t.task.instance_id for t in small)}; "
            "loading and running (a minute or two) ..."
        )
        quiet_model_loading()
        orchestrator, subagents = load_model(BUILTIN_ORCHESTRATOR), load_model(BUILTIN)
        bench(small, tasks_file, gold, world, orchestrator, ("swarm",), out / "builtin", subagent_model=subagents)
        print(
            f"\n3. the PARL-trained orchestrator {PARL} with {PARL_SUBAGENTS} sub-agents, on the same tasks; "
            "loading and running (a minute or two) ..."
        )
        bench(small, tasks_file, gold, world, load_model(PARL), ("swarm",), out / "parl", subagent_model=load_model(PARL_SUBAGENTS))
    print(f"\ntotal {time.perf_counter() - t0:.0f}s")
    print("more: parlswarm bench --split test --out DIR (all test tasks); make bench-fanout (runtime overhead)")


if __name__ == "__main__":
    main()
