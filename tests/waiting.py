"""Waiting for something another task does, without betting on the speed of the machine."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

# Generous: on a loaded machine (CI shares its cores) a few event-loop turns and a database
# thread can take seconds; a passing test returns as soon as the condition holds.
PATIENCE = 20.0
# A new Python process importing everything, then starting a server: measured over 60 s while
# other jobs kept the machine's load average at 16 on 2 cores.
STARTUP = 300.0


async def eventually(condition: Callable[[], object], patience: float = PATIENCE) -> None:
    """Return once ``condition()`` is true; fail the test if it is still false after
    ``patience`` seconds."""
    try:
        async with asyncio.timeout(patience):
            while not condition():  # noqa: ASYNC110 (no event to wait on: a poll)
                await asyncio.sleep(0.01)
    except TimeoutError:
        raise AssertionError(f"still not true after {patience:.0f} s: {condition}") from None
