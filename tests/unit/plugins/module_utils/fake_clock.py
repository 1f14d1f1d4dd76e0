# Copyright (c) exchangeonline.mail contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The fake monotonic clock of the unit tests of everything that waits (_poll, _graph's
Retry, the checks' wait loop): pass ``clock=fake.clock, sleep=fake.sleep``."""

from __future__ import absolute_import, division, print_function
__metaclass__ = type


class FakeClock:
    """A monotonic clock that moves only when the code under test sleeps (or ``advance``).
    ``slept``: every pause asked for, in order."""

    def __init__(self, now=5000.0):
        self.now = now
        self.slept = []

    def clock(self):
        return self.now

    def sleep(self, seconds):
        assert seconds >= 0
        assert len(self.slept) < 100000, 'an unbounded series of pauses'
        self.slept.append(seconds)
        self.now += seconds

    def advance(self, seconds):
        self.now += seconds
