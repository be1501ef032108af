"""Worlds and task sets built once per test session, in a temporary cache folder.

The world, expert and bench tests share them: building a world's search index takes a few
seconds, loading it from the cache well under one.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from parlswarm.world.factbook import Factbook
from parlswarm.world.tasks import Split, WorldTask, make_tasks
from parlswarm.world.world import World

_real: list[Factbook] = []
_worlds: dict[int, World] = {}
_tasks: dict[tuple[str, int], list[WorldTask]] = {}


def cache_dir(factory: pytest.TempPathFactory) -> Path:
    return factory.getbasetemp() / "parlswarm-cache"


def real_factbook() -> Factbook:
    if not _real:
        _real.append(Factbook.load())
    return _real[0]


def world(seed: int, factory: pytest.TempPathFactory) -> World:
    if seed not in _worlds:
        _worlds[seed] = World.load(seed, cache_dir(factory), base=real_factbook())
    return _worlds[seed]


def tasks(split: Split, seed: int, factory: pytest.TempPathFactory) -> list[WorldTask]:
    if (split, seed) not in _tasks:
        _tasks[(split, seed)] = make_tasks(split, world(seed, factory).factbook, real_factbook(), seed)
    return _tasks[(split, seed)]
