"""Fixtures of the fault suite: the fake Bot API, a fresh backend per test, the process harness.

- ``fake`` — a started fake Telegram server that outlives every ``deskbot serve`` of the test.
- ``backend`` — ``sqlite`` (a file + memory state) or ``postgres`` (a database of its own,
  created on the shared server and dropped after, + Redis state and bus under a key prefix
  of its own, deleted after). Tests choose with ``indirect`` parametrisation.
- ``deskbot`` — a factory for :class:`~tests.faults.harness.DeskbotProcess` on that backend
  with the session's trained model; every process it made is stopped at the end.

Every test here is marked ``faults``; the full matrix's extra cases (``FULL``) run only
when asked for (``pytest -m faults tests/faults``), the representative ones with the suite.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import _create_database, _delete_keys, _drop_database
from tests.fakes.telegram_server import FakeTelegram
from tests.faults.harness import Backend, DeskbotProcess, Ledger


@pytest.hookimpl(tryfirst=True)  # before ``-m`` selects: every test here is a ``faults`` test
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    here = Path(__file__).parent
    asked = "faults" in (config.option.markexpr or "")
    skip = pytest.mark.skip(reason="of the full fault matrix: run it with `pytest -m faults tests/faults`")
    for item in items:
        if here not in item.path.parents:
            continue
        item.add_marker(pytest.mark.faults)
        if not asked and any(mark.kwargs.get("full") for mark in item.iter_markers("faults")):
            item.add_marker(skip)


@pytest.fixture
async def fake() -> AsyncIterator[FakeTelegram]:
    async with FakeTelegram() as server:
        yield server


@pytest.fixture(params=["sqlite", "postgres"])
async def backend(request: pytest.FixtureRequest, tmp_path: Path, redis_prefix: str) -> AsyncIterator[Backend]:
    if request.param == "sqlite":
        yield Backend("sqlite", f"sqlite+aiosqlite:///{tmp_path / 'deskbot.db'}")
        return
    admin_url: str = request.getfixturevalue("postgres_server")
    redis_url: str = request.getfixturevalue("redis_server")
    url = await _create_database(admin_url)
    try:
        yield Backend("postgres", url, redis_url, redis_prefix)
    finally:
        await _drop_database(admin_url, url)
        await _delete_keys(redis_url, redis_prefix)


@pytest.fixture
async def ledger(backend: Backend) -> AsyncIterator[Ledger]:
    reader = Ledger(backend.storage_url)
    yield reader
    await reader.close()


@pytest.fixture
async def deskbot(
    fake: FakeTelegram, backend: Backend, trained_model_path: Path, tmp_path: Path
) -> AsyncIterator[Callable[..., DeskbotProcess]]:
    made: list[DeskbotProcess] = []

    def make(**kwargs: Any) -> DeskbotProcess:
        log_dir = tmp_path / f"logs-{len(made)}"
        log_dir.mkdir()
        process = DeskbotProcess(fake, backend, trained_model_path, log_dir, **kwargs)
        made.append(process)
        return process

    yield make
    for process in made:
        await process.stop()


@pytest.fixture(scope="session")
def fault_report() -> Iterator[list[str]]:
    """Lines each run adds (its counts); printed at the end of the session with ``-s``."""
    lines: list[str] = []
    yield lines
    if lines:
        print("\n" + "\n".join(lines))
