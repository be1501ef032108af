"""The ``parlswarm`` command line: thin over the library, it parses, calls and prints."""

from __future__ import annotations

import logging
import sys

import typer

from parlswarm.cli.common import UserError, console_err
from parlswarm.security import install_log_redaction

app = typer.Typer(
    name="parlswarm",
    help="Agent Swarm and PARL: run, measure and train orchestrators of parallel sub-agents.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


@app.callback()
def _root() -> None:
    """Agent Swarm and PARL: run, measure and train orchestrators of parallel sub-agents."""


# Sub-command modules register themselves on `app` when imported, in the order `--help` lists them.
# isort: off
from parlswarm.cli import run as _run  # noqa: E402,F401
from parlswarm.cli import runs as _runs  # noqa: E402,F401
from parlswarm.cli import trace as _trace  # noqa: E402,F401
from parlswarm.cli import eval as _eval  # noqa: E402,F401
from parlswarm.cli import world as _world  # noqa: E402,F401
from parlswarm.cli import bench as _bench  # noqa: E402,F401
from parlswarm.cli import ui as _ui  # noqa: E402,F401
from parlswarm.cli import train as _train  # noqa: E402,F401
from parlswarm.cli import parl as _parl  # noqa: E402,F401
# isort: on


def main() -> None:
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    install_log_redaction()  # no key reaches a log
    try:
        app()
    except UserError as exc:
        console_err.print(f"[red]error:[/red] {exc}", highlight=False)
        sys.exit(2)
    except KeyboardInterrupt:
        console_err.print("interrupted")
        sys.exit(130)
