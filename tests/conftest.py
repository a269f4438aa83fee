"""Shared fixtures: a real Mosquitto per test module, started on a free loopback port."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))

from support import Mosquitto, mosquitto  # noqa: E402

DATA = Path(__file__).parent / "data"
REPO = Path(__file__).parent.parent


@pytest.fixture(scope="module")
def broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Mosquitto]:
    with mosquitto(tmp_path_factory.mktemp("mosquitto")) as running:
        yield running


@pytest.fixture(autouse=True)
def _root_logging_restored() -> Iterator[None]:
    """An in-process `seatbox` command installs its handler on the root logger, bound to the
    stderr pytest had captured for that test; put the root logger back so a later test's
    threads do not log into a closed stream."""
    import logging

    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    yield
    root.handlers[:] = handlers
    root.setLevel(level)
