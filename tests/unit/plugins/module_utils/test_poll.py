# Copyright (c) exchangeonline.mail contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The one wait helper (_poll, issue 13 item 3) on a fake monotonic clock: every series of
retries is bounded in time and in count, no pause is under the floor or past the deadline,
jitter stays in its range, and what the server asks for (Retry-After) is what is waited."""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import math

import pytest

from ansible_collections.exchangeonline.mail.plugins.module_utils._poll import Backoff, poll
from tests.unit.plugins.module_utils.fake_clock import FakeClock


def backoff(fake, seconds, **kwargs):
    return Backoff(seconds, clock=fake.clock, sleep=fake.sleep, **kwargs)


def test_backoff_grows_from_the_floor_to_the_cap_with_jitter():
    fake = FakeClock()
    bound = backoff(fake, 10 ** 6, floor=1.0, cap=30.0, jitter=0.25)
    while bound.pause():
        pass
    assert bound.max_retries is None and len(fake.slept) > 20  # only time bounds it
    for index, pause in enumerate(fake.slept):
        step = min(30.0, 2.0 ** min(index, 10))
        assert step <= pause <= step * 1.25, (index, pause)
    assert max(fake.slept) <= 37.5
    assert len(set(fake.slept)) == len(fake.slept)  # jitter: no two pauses alike


def test_backoff_never_waits_past_its_deadline():
    for seconds in (0.0, 0.5, 1.0, 3.0, 17.0, 100.0, 1234.5):
        fake = FakeClock()
        bound = backoff(fake, seconds, floor=1.0, cap=30.0, jitter=0.25)
        while bound.pause():
            pass
        assert sum(fake.slept) <= seconds
        # room for the next attempt is left too: the floor by default
        assert not fake.slept or sum(fake.slept) + 1.0 <= seconds
        assert bound.left() >= 0 and bound.elapsed() == pytest.approx(sum(fake.slept))


def test_backoff_counts_its_retries():
    fake = FakeClock()
    bound = backoff(fake, 10 ** 6, max_retries=3)
    assert [bound.pause(0) for dummy in range(5)] == [True, True, True, False, False]
    assert bound.retries == len(fake.slept) == 3
    assert bound.summary().startswith('gave up after 4 attempts in ')
    assert bound.summary().endswith('; the bound is 3 retries within 1000000 s')


@pytest.mark.parametrize('asked, low, high', [
    (0.0, 1.0, 1.25), (-3.0, 1.0, 1.25), (0.2, 1.0, 1.25),  # under the floor: the floor
    (7.0, 7.0, 8.75), (60.0, 60.0, 75.0),  # Retry-After honoured, beyond the cap too
])
def test_what_the_server_asks_is_waited_never_under_the_floor(asked, low, high):
    for dummy in range(50):
        fake = FakeClock()
        bound = backoff(fake, 1000.0, floor=1.0, cap=30.0, jitter=0.25)
        assert bound.pause(asked) is True
        [pause] = fake.slept
        assert low <= pause <= high
        assert bound.asked == asked


def test_an_asked_wait_beyond_the_deadline_fails_at_once():
    fake = FakeClock()
    bound = backoff(fake, 20.0)
    assert bound.pause(19.5) is False and fake.slept == []
    assert 'the server asked to wait 20 s' in bound.summary()  # '%.0f' of 19.5
    assert bound.pause(math.inf) is False and fake.slept == []
    assert 'the server asked to wait forever' in bound.summary()


def test_room_zero_allows_a_pause_that_ends_at_the_deadline():
    fake = FakeClock()
    bound = backoff(fake, 15.0, floor=5.0, cap=60.0, jitter=0.0)
    while bound.pause(room=0.0):
        pass
    assert fake.slept == [5.0, 10.0]  # 5 + 10 = 15; the next, 20 s, would overshoot


def test_attempt_timeout_is_cut_to_what_is_left():
    fake = FakeClock()
    bound = backoff(fake, 5.0)
    assert bound.timeout(30.0) == 5.0
    fake.advance(4.0)
    assert bound.timeout(30.0) == 1.0
    fake.advance(10.0)
    assert bound.timeout(30.0) == 0.1 and bound.left() < 0
    assert backoff(fake, 100.0).timeout(30.0) == 30.0


def test_poll_stops_when_done():
    fake = FakeClock()
    answers = iter([(False, 1), (False, 2), (True, 3)])
    assert poll(lambda: next(answers), 60, clock=fake.clock, sleep=fake.sleep)[:2] == (3, 3)
    assert len(fake.slept) == 2


def test_poll_makes_its_last_attempt_at_the_deadline_never_after():
    for seconds in (0, 0.3, 1, 2.5, 10, 61, 300):
        fake = FakeClock()
        calls = []

        def attempt():
            calls.append(fake.now)
            return False, len(calls)
        value, rounds, elapsed = poll(attempt, seconds, interval=1.0, max_interval=10.0,
                                      jitter=0.1, clock=fake.clock, sleep=fake.sleep)
        assert rounds == value == len(calls) >= 1
        assert calls[-1] - calls[0] == pytest.approx(seconds)  # the last one at the deadline
        assert elapsed == pytest.approx(seconds) and sum(fake.slept) == pytest.approx(seconds)
        assert all(p <= 10.0 * 1.1 for p in fake.slept)


def test_poll_pauses_double_within_their_jitter():
    fake = FakeClock()
    poll(lambda: (False, None), 10 ** 5, interval=1.0, max_interval=10.0, jitter=0.1,
         clock=fake.clock, sleep=fake.sleep)
    for index, pause in enumerate(fake.slept[:-1]):  # the last one is cut to the deadline
        step = min(10.0, 2.0 ** min(index, 10))
        assert step * 0.9 <= pause <= step * 1.1, (index, pause)
    assert len(set(fake.slept)) > len(fake.slept) // 2


def test_poll_attempts_once_even_without_time():
    fake = FakeClock()
    assert poll(lambda: (False, 'x'), -5, clock=fake.clock, sleep=fake.sleep) == ('x', 1, 0.0)
    assert fake.slept == []


def test_poll_min_rounds_waits_full_pauses_however_slow_the_attempts():
    """The reads after a lost UPDATE answer: three of them after pauses of 0.2, 1 and 2 s even
    when each read takes 2 s (the deadline counts the reads' time; the pauses must not)."""
    fake = FakeClock()
    calls = []

    def slow_attempt():
        calls.append(fake.now)
        fake.advance(2.0)
        return False, len(calls)
    value, rounds, elapsed = poll(slow_attempt, 3.2, 1.0, 2.0, jitter=0.0, clock=fake.clock,
                                  sleep=fake.sleep, first=0.2, min_rounds=3)
    assert rounds == value == 3
    assert fake.slept == pytest.approx([0.2, 1.0, 2.0])
    assert elapsed == pytest.approx(0.2 + 2 + 1.0 + 2 + 2.0 + 2)


def test_poll_min_rounds_with_fast_attempts_keeps_the_deadline():
    fake = FakeClock()
    calls = []

    def attempt():
        calls.append(fake.now)
        return False, None
    poll(attempt, 3.2, 1.0, 2.0, jitter=0.0, clock=fake.clock, sleep=fake.sleep, first=0.2,
         min_rounds=3)
    assert [c - 5000.0 for c in calls] == pytest.approx([0.2, 1.2, 3.2])
