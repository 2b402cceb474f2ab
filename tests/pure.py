"""For test modules that touch no Docker engine: they make no sandbox, so nothing to clean up.

Importing ``no_sandbox_cleanup`` into such a module replaces the session-wide autouse cleanup of
``tests/fixtures/docker.py`` there: a pure test then never depends on the engine answering (a
container another session removes between listing and inspecting it answers 404).
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest


@pytest.fixture(autouse=True, name="_remove_sandboxes_the_test_made")
def no_sandbox_cleanup() -> Iterator[None]:
    yield
