"""``make demo``: the main job, offline, in a minute or two.

Builds the offline world (World Factbook pages and their search index, cached after the
first run), then benches four test tasks of 6 to 56 rows with the scripted expert, as a
single agent and as a swarm, through the same runtime and tools an LLM would use. Every
model call is delayed by 0.1 s to stand in for a remote LLM, so wall-clock means something.
It prints the table and writes the full reports.

The runtime's own fan-out overhead is measured separately: ``make bench-fanout``
(``benchmarks/fanout.py``).
"""

from __future__ import annotations

import asyncio
import time

from parlswarm.bench import BenchConfig, BenchResult, LatencyModel, finish, load_bench_tasks, run_bench, write_reports
from parlswarm.cli.bench import print_result
from parlswarm.world.expert import ExpertModel
from parlswarm.world.factbook import Factbook
from parlswarm.world.tasks import WorldTask, make_tasks, write_tasks
from parlswarm.world.tools import world_tools
from parlswarm.world.world import World, default_cache_dir

LATENCY = 0.1


def demo_tasks(tasks: list[WorldTask]) -> list[WorldTask]:
    """Two small tasks, the first of 20 rows or more, and the widest."""
    by_rows = sorted(tasks, key=lambda t: (len(t.rows), t.instance_id))
    wide = next(t for t in by_rows if len(t.rows) >= 20)
    chosen = {t.instance_id: t for t in (by_rows[0], by_rows[1], wide, by_rows[-1])}
    return sorted(chosen.values(), key=lambda t: t.instance_id)


def main() -> None:
    out = default_cache_dir() / "demo"
    print("parlswarm demo: the offline wide-search world, single agent vs swarm (scripted expert)")
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
    print(f"model: scripted expert, every model call delayed {LATENCY:g}s (emulated remote LLM); running ...")
    model = LatencyModel(ExpertModel(), LATENCY)
    config = BenchConfig()
    runs = asyncio.run(run_bench(bench_tasks, [model], world_tools(world), config=config))
    result = finish(
        BenchResult(
            tasks_file=str(tasks_file), gold_dir=str(gold), world_seed=0, models=[model.name],
            modes=["single", "swarm"], trials=1, latency=LATENCY, config=config, runs=runs,
        )  # fmt: skip
    )
    paths = write_reports(result, out)
    print()
    print_result(result)
    print(f"\nreports: {paths['md']} and {paths['plot']} · total {time.perf_counter() - t0:.0f}s")
    print("more: parlswarm bench --split test --out DIR (all test tasks); make bench-fanout (runtime overhead)")


if __name__ == "__main__":
    main()
