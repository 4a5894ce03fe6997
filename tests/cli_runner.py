"""``deskbot`` commands run in the test process, answering what a subprocess would.

A subprocess per command cost ~1.3 s of CPU before the command did anything (Python's start,
then deskbot's imports: SQLAlchemy, pydantic, Alembic); the CLI tests ran ~60 of them. Here
``bot.cli.main.main`` runs with the command's arguments and environment, its stdout, stderr
and stdin redirected, its exit status returned, in a thread of its own (it calls
``asyncio.run``, which cannot nest in a test's event loop) — what a process gives, except
the process. What only a process shows (the console script, the exit on a signal, a stray
import at start-up) stays with tests that start one: ``test_cli.py``'s
``test_the_console_script_runs_as_a_process``, ``test_cli_secrets.py`` and the serving tests.

The logging set-up a command makes (root handlers and levels) is put back afterwards, so
pytest's capture keeps working for the tests that follow.
"""

from __future__ import annotations

import contextlib
import io
import logging
import os
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from bot.cli.main import main
from bot.logs import QUIET_LOGGERS

ROOT = Path(__file__).resolve().parents[1]


def run_deskbot(env: dict[str, str], *args: str, stdin: str = "", cwd: Path = ROOT) -> subprocess.CompletedProcess[str]:
    """``deskbot *args`` with ``env`` as its environment, run from ``cwd``."""

    def call() -> subprocess.CompletedProcess[str]:
        out, err = io.StringIO(), io.StringIO()
        root = logging.getLogger()
        saved_handlers, saved_level = root.handlers[:], root.level
        saved_levels = {name: logging.getLogger(name).level for name in QUIET_LOGGERS}
        saved_cwd, saved_stdin = Path.cwd(), sys.stdin
        try:
            os.chdir(cwd)
            sys.stdin = io.StringIO(stdin)
            with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
                try:
                    code = main(list(args), environ=dict(env))
                except SystemExit as exc:  # argparse's usage errors
                    code = exc.code if isinstance(exc.code, int) else 1
        finally:
            sys.stdin = saved_stdin
            os.chdir(saved_cwd)
            root.handlers[:] = saved_handlers
            root.setLevel(saved_level)
            for name, level in saved_levels.items():
                logging.getLogger(name).setLevel(level)
        return subprocess.CompletedProcess(["deskbot", *args], code, out.getvalue(), err.getvalue())

    with ThreadPoolExecutor(1, thread_name_prefix="deskbot-cli") as executor:
        return executor.submit(call).result(timeout=300)
