"""Fixtures shared by the whole suite: one throw-away PostgreSQL cluster per session."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import ExitStack

import pytest


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    """``postgresql+psycopg://postgres@127.0.0.1:PORT/testbed`` of a cluster shared by the session.

    Started on first use and stopped at the end of the session. Fails (never skips) where
    PostgreSQL is not installed, naming the Debian package to install.
    """
    from tests.pg import PostgresMissingError, postgres_cluster  # only where a test asks for it

    with ExitStack() as stack:
        try:
            url = stack.enter_context(postgres_cluster())
        except PostgresMissingError as err:
            raise pytest.fail.Exception(str(err), pytrace=False) from None
        yield url


@pytest.fixture
def postgres_db(postgres_url: str) -> Iterator[str]:
    """The URL of a new, empty database on the session's cluster, dropped after the test."""
    from tests.pg import fresh_database

    with fresh_database(postgres_url) as url:
        yield url
