# -*- coding: utf-8 -*-
# Copyright (c) exchangeonline.mail contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# Private to this collection: may change without notice.
"""The one way the collection waits: bounded, on the monotonic clock, with a floor and jitter.

* :class:`Backoff` is the bound of one series of retries: at most ``max_retries`` pauses, all
  within ``seconds``; each pause is what the server asked for (``Retry-After``) or the next step of
  an exponential back-off from ``floor`` up to ``cap``, never under ``floor``, stretched by up to
  ``jitter`` (so many hosts retrying at once spread out), and never past the deadline.
* :func:`poll` calls ``attempt()`` until it is done or the time is up.

``clock`` and ``sleep`` are parameters so that unit tests run without waiting; nothing else
passes them.
"""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import random
import time
from typing import Any, Callable, Optional, Tuple


class Backoff:
    """The retry bound of one operation."""

    def __init__(self, seconds: float, floor: float = 1.0, cap: float = 30.0,
                 jitter: float = 0.25, max_retries: Optional[int] = None,
                 clock: Callable[[], float] = time.monotonic,
                 sleep: Callable[[float], Any] = time.sleep) -> None:
        self.seconds = max(0.0, float(seconds))
        self.floor, self.cap, self.jitter = floor, max(cap, floor), jitter
        self.max_retries = max_retries
        self.clock, self.sleep = clock, sleep
        self.started = clock()
        self.deadline = self.started + self.seconds
        self.retries = 0
        self.asked = None  # type: Optional[float]  # what the server last asked to wait (s)

    def left(self) -> float:
        """Seconds until the deadline (negative once it has passed)."""
        return self.deadline - self.clock()

    def elapsed(self) -> float:
        return self.clock() - self.started

    def timeout(self, timeout: float) -> float:
        """The socket timeout of the next attempt: ``timeout``, cut to what is left, at least
        0.1 s."""
        return max(0.1, min(timeout, self.left()))

    def delay(self, asked: Optional[float] = None) -> float:
        """The pause before the next retry, without waiting: ``asked`` or the back-off step,
        never under ``floor``, stretched by up to ``jitter``."""
        # the exponent stops growing at 64 (far past any cap) so that the float never overflows
        base = asked if asked is not None else min(self.cap,
                                                   self.floor * 2.0 ** min(self.retries, 64))
        return max(self.floor, base) * random.uniform(1.0, 1.0 + self.jitter)

    def pause(self, asked: Optional[float] = None, room: Optional[float] = None) -> bool:
        """Wait before the next attempt and return True, or return False at once when the bound
        does not allow another one: the retries are used up, or the wait would leave less than
        ``room`` seconds (``floor`` when not given) for the attempt."""
        self.asked = asked
        if self.max_retries is not None and self.retries >= self.max_retries:
            return False
        wait = self.delay(asked)
        if wait + (self.floor if room is None else room) > self.left():
            return False
        self.retries += 1
        self.sleep(wait)
        return True

    def summary(self) -> str:
        """How the series ended, for a message: ``gave up after N attempts in T s``, what the
        server last asked to wait, and the bound."""
        text = 'gave up after %d attempt%s in %.1f s' % (
            self.retries + 1, '' if self.retries == 0 else 's', self.elapsed())
        if self.asked is not None:
            text += ' (the server asked to wait %s)' % ('%.0f s' % self.asked
                                                        if self.asked < 1e15 else 'forever')
        if self.max_retries is None:
            return text + '; the bound is %.0f s' % self.seconds
        return text + '; the bound is %d retries within %.0f s' % (self.max_retries, self.seconds)


def poll(attempt: Callable[[], Tuple[bool, Any]], seconds: float, interval: float = 1.0,
         max_interval: float = 10.0, jitter: float = 0.1,
         clock: Callable[[], float] = time.monotonic,
         sleep: Callable[[float], Any] = time.sleep, first: float = 0.0,
         min_rounds: int = 1) -> Tuple[Any, int, float]:
    """Call ``attempt() -> (done, value)`` until it is done or ``seconds`` have passed; the pause
    doubles from ``interval`` up to ``max_interval``, each stretched or shrunk by up to
    ``jitter``, and is cut so that it never overshoots the deadline: the last attempt is made at
    the deadline. ``first``: a pause before the first attempt (for a server that needs a moment
    after a request whose answer was lost), within ``seconds`` too. ``min_rounds``: at least
    this many attempts, each after its full pause, however long the attempts themselves take
    (slow attempts then stretch the deadline, bounded by ``min_rounds`` attempts). Returns
    ``(value, rounds, elapsed seconds)``; ``attempt`` is called at least once."""
    start = clock()
    deadline = start + max(seconds, 0)
    delay = interval
    rounds = 0
    if first > 0:
        sleep(min(first, max(seconds, 0)))
    while True:
        rounds += 1
        done, value = attempt()
        now = clock()
        if done or now >= deadline and rounds >= min_rounds:
            return value, rounds, now - start
        pause = delay * random.uniform(1.0 - jitter, 1.0 + jitter)
        sleep(pause if rounds < min_rounds else max(0.0, min(pause, deadline - now)))
        delay = min(delay * 2, max_interval)
