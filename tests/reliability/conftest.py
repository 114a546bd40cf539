"""Fixtures of the reliability suites: a private PostgreSQL schema per test, and the
figures each load run reports at the end of the session."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.conftest import fresh_database

#: ``make reliability`` sets it: the PostgreSQL restart disturbs every other test using
#: the same cluster, so it runs only when nothing else does.
PG_RESTART = os.environ.get("CMO_TEST_PG_RESTART") == "1"

_FIGURES: list[str] = []


@pytest.fixture
def pg_database(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """An empty PostgreSQL schema for one deployment of ``cmo-ledger serve``."""
    with fresh_database("postgres", request, tmp_path) as url:
        yield url


@pytest.fixture(scope="module")
def module_pg_database(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[str]:
    """An empty PostgreSQL schema shared by the tests of one module."""
    with fresh_database("postgres", request, tmp_path_factory.mktemp("pg")) as url:
        yield url


@pytest.fixture
def report() -> Callable[[str, str], None]:
    """``report(name, summary)`` prints the run's figures at the end of the session."""

    def add(name: str, summary: str) -> None:
        _FIGURES.append(f"{name}: {summary}")

    return add


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if _FIGURES:
        terminalreporter.section("reliability figures")
        for line in _FIGURES:
            terminalreporter.write_line(line)
