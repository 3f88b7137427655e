from __future__ import annotations

from collections.abc import Iterator

import pytest
import structlog


@pytest.fixture(autouse=True)
def _fresh_structlog() -> Iterator[None]:
    """A test that runs the CLI configures structlog process-wide (at WARNING for `ask`);
    the next test must not inherit it, whichever order the tree puts them in."""
    yield
    structlog.reset_defaults()
