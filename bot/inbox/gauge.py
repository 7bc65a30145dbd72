"""Whether answers are competing with after-ack work for this process, so that work can give way.

Answering WeChat in time comes first; the work after the answer is durable in the inbox and can wait. It waits
only when the two really compete: callbacks keep arriving and either this process is out of CPU or callbacks
pile up waiting for their commit. With CPU to spare it runs at once, so moderate traffic never leaves it behind.
"""

from __future__ import annotations

import asyncio
import time


class CpuMeter:
    """This process's CPU time per wall-clock second over the last completed window (1.0: one core busy).

    A single event loop is out of CPU near 1.0.
    """

    def __init__(self, window_s: float = 0.1) -> None:
        self._window_s = window_s
        self._mark = (time.monotonic(), time.process_time())
        self._last = 0.0

    def utilisation(self) -> float:
        wall, cpu = time.monotonic(), time.process_time()
        elapsed = wall - self._mark[0]
        if elapsed >= self._window_s:
            self._last = (cpu - self._mark[1]) / elapsed
            self._mark = (wall, cpu)
        return self._last


class IngestGauge:
    def __init__(self, *, busy: float = 0.9, calm: float = 0.6, crowd: int = 16, quiet_s: float = 0.02) -> None:
        self._busy = busy  # CPU use at which answers need all of it
        self._calm = calm  # CPU use that ends a flood
        self._crowd = crowd  # callbacks waiting for their commit at once that show answers piling up
        self._quiet_s = quiet_s  # no callback for this long is a pause in the traffic
        self._cpu = CpuMeter()
        self._last_arrival = float("-inf")
        self._waiting = 0
        self._flood = False

    def arrived(self) -> None:
        """A callback is waiting for its commit."""
        self._last_arrival = time.monotonic()
        self._waiting += 1

    def settled(self) -> None:
        self._waiting -= 1

    def piling_up(self) -> bool:
        """Answers are queueing right now: work in progress should stop at its next step."""
        return self._waiting >= self._crowd and time.monotonic() - self._last_arrival < self._quiet_s

    async def wait_for_room(self, limit_s: float) -> bool:
        """Wait while answers compete (at most ``limit_s``).

        False when the wait ran out with answers still competing: that is a flood, and the work should take as
        little as it can until traffic pauses or CPU use falls well below ``busy`` (a dip between two group
        commits does not end it).
        """
        deadline = time.monotonic() + limit_s
        while (now := time.monotonic()) < deadline:
            if now - self._last_arrival >= self._quiet_s:
                self._flood = False
                return True
            cpu = self._cpu.utilisation()
            if self._flood and cpu < self._calm:
                self._flood = False
            if not self._flood and self._waiting < self._crowd and cpu < self._busy:
                return True
            await asyncio.sleep(min(0.005, deadline - now))
        self._flood = True
        return False
