"""``parlswarm world``: the offline wide-search world — fields, tasks, index, pages."""

from __future__ import annotations

import json
import statistics
import time
from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape
from rich.table import Table

from parlswarm.cli import app
from parlswarm.cli.common import console, user_errors

world_app = typer.Typer(
    name="world",
    help="The offline wide-search world: World Factbook pages, search index, fields and tasks.",
    no_args_is_help=True,
)
app.add_typer(world_app, name="world")

SeedOption = Annotated[int, typer.Option("--world-seed", help="0 = the real Factbook; N = a counterfactual world.", min=0)]
CacheOption = Annotated[Path | None, typer.Option(help="Cache folder ($PARLSWARM_CACHE or ~/.cache/parlswarm).")]


@world_app.command("fields")
def fields(as_json: Annotated[bool, typer.Option("--json", help="Print the registry as JSON.")] = False) -> None:
    """The answerable fields: id, label, source path in the Factbook JSON, type, normalisation."""
    from parlswarm.world.fields import FIELDS

    if as_json:
        console.print_json(json.dumps([f.describe() for f in FIELDS], ensure_ascii=False))
        return
    table = Table(title=f"{len(FIELDS)} fields")
    for col in ("id", "label", "type", "normalisation", "source path"):
        table.add_column(col)
    for f in FIELDS:
        table.add_row(f.id, escape(f.label), f.type, f.parser, escape(" / ".join(f.path)))
    console.print(table)


@world_app.command("tasks")
def tasks(
    out: Annotated[Path, typer.Option(help="Folder for tasks.jsonl and gold/<instance_id>.csv.")],
    split: Annotated[str, typer.Option(help="train, dev, test or all.")] = "test",
    world_seed: SeedOption = 0,
) -> None:
    """Write a split's tasks in WideSearch's format, with gold tables of the chosen world."""
    from parlswarm.world.counterfactual import counterfactual
    from parlswarm.world.factbook import Factbook
    from parlswarm.world.tasks import make_tasks, write_tasks

    with user_errors():
        real = Factbook.load()
        made = make_tasks(split, counterfactual(real, world_seed), real, world_seed)  # type: ignore[arg-type]
        tasks_file, gold = write_tasks(made, out)
    rows = [len(t.rows) for t in made]
    console.print(
        f"{len(made)} {split} task(s) for world seed {world_seed}: rows min {min(rows)}, median "
        f"{statistics.median(rows):g}, max {max(rows)}; {sum(r >= 20 for r in rows)} of 20 rows or more"
    )
    console.print(f"tasks: {tasks_file}\ngold:  {gold}/")


@world_app.command("build")
def build(world_seed: SeedOption = 0, cache_dir: CacheOption = None) -> None:
    """Build (or load) a world's search index in the cache and say what is in it."""
    from parlswarm.world.world import World, default_cache_dir

    with user_errors():
        t0 = time.perf_counter()
        world = World.load(world_seed, cache_dir)
        seconds = time.perf_counter() - t0
    pages = sum(world.page_count(d) for d in world.docs)
    where = (cache_dir or default_cache_dir()) / "world" / World.cache_key(world_seed)
    console.print(
        f"world seed {world_seed}: {len(world.factbook)} places in {len(world.factbook.regions)} regions, "
        f"{len(world.docs)} documents, {pages} pages; ready in {seconds:.1f}s\nindex: {where}"
    )


@world_app.command("search")
def search(
    query: Annotated[str, typer.Argument(help="Keywords.")],
    k: Annotated[int, typer.Option(help="Hits to show.", min=1, max=20)] = 5,
    world_seed: SeedOption = 0,
    cache_dir: CacheOption = None,
) -> None:
    """Search the world's pages as an agent's search tool does."""
    from parlswarm.world.world import World

    with user_errors():
        world = World.load(world_seed, cache_dir)
    for hit in world.search(query, k):
        console.print(f"[bold]{escape(hit.doc_id)}[/bold]  {escape(hit.title)}\n    {escape(hit.snippet)}", highlight=False)


@world_app.command("open")
def open_page(
    doc_id: Annotated[str, typer.Argument(help="A doc id, e.g. fr/government or region/europe.")],
    page: Annotated[int, typer.Option(help="Page number, from 1.", min=1)] = 1,
    world_seed: SeedOption = 0,
    cache_dir: CacheOption = None,
) -> None:
    """Print one page of a document as an agent's open_page tool returns it."""
    from parlswarm.world.world import World

    with user_errors():
        world = World.load(world_seed, cache_dir)
        try:
            text = world.open_page(doc_id, page)
        except (KeyError, IndexError) as exc:
            raise ValueError(str(exc.args[0])) from None
    console.print(text, markup=False, highlight=False)
