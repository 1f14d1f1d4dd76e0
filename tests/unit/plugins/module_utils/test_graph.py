"""The pure parts of the Microsoft 365 clients: path segments, Retry-After, the retry bound,
answer shapes, endpoint options (issue 10, items 2, 6, 7, 8 and 9)."""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import math

import pytest

from ansible_collections.exchangeonline.mail.plugins.module_utils import _graph
from ansible_collections.exchangeonline.mail.plugins.module_utils._domains import (
    domain_name,
    record_problem,
)
from ansible_collections.exchangeonline.mail.plugins.module_utils._graph import (
    NULL,
    STR_LIST,
    Retry,
    batch_problem,
    path_segment,
    retry_after,
    shape_problem,
)
from ansible_collections.exchangeonline.mail.plugins.module_utils._identity import (
    IdentityError,
    endpoint_url,
    excerpt,
    origin,
)
from ansible_collections.exchangeonline.mail.plugins.module_utils._errors import InputError
from ansible_collections.exchangeonline.mail.plugins.module_utils._records import RecordError
from tests.unit.plugins.module_utils.fake_clock import FakeClock


@pytest.mark.parametrize('name, segment', [
    ('alice@contoso.com', 'alice@contoso.com'),
    ('alice@contoso.com?$expand=manager#', 'alice@contoso.com%3F%24expand%3Dmanager%23'),
    ('../../domains/x', '..%2F..%2Fdomains%2Fx'),
    ("o'brien@contoso.com", 'o%27brien@contoso.com'),
    ('50%@contoso.com', '50%25@contoso.com'),
    ('a b', 'a%20b'),
    ('jörg@bücher.test', 'j%C3%B6rg@b%C3%BCcher.test'),
    ('users(\'x\')', 'users%28%27x%27%29'),
])
def test_path_segment_encodes_everything_but_unreserved_and_at(name, segment):
    assert path_segment(name, 'mailboxes') == segment
    assert '/' not in segment and '?' not in segment and '#' not in segment


@pytest.mark.parametrize('name, says', [
    ('', 'non-empty'), ('  ', 'non-empty'), (None, 'non-empty'), (5, 'non-empty'),
    ('.', 'is not a name'), ('..', 'is not a name'),
    ('a\x00b', 'control character'), ('a\nb', 'control character'),
    ('a\x85b', 'control character'), ('x' * 1025, 'longer than 1024'),
])
def test_path_segment_refuses_what_cannot_be_a_name(name, says):
    with pytest.raises(InputError) as err:
        path_segment(name, 'mailboxes')
    assert str(err.value).startswith('input: mailboxes: ') and says in str(err.value)
    assert err.value.phase == 'input'


@pytest.mark.parametrize('headers, seconds', [
    ({'Retry-After': '0'}, 0.0), ({'retry-after': '120'}, 120.0), ({'Retry-After': 7}, 7.0),
    ({'Retry-After': '-5'}, None), ({'Retry-After': 'soon'}, None), ({'Retry-After': ''}, None),
    ({'Retry-After': '1.5'}, None), ({'Retry-After': True}, None), ({}, None), (None, None),
    ('Retry-After: 5', None), ({'Retry-After': '9' * 400}, math.inf),
    ({'Retry-After': 'Wed, 21 Oct 2015 07:28:00 GMT'}, 0.0),  # in the past
])
def test_retry_after_reads_delta_seconds_and_dates(headers, seconds):
    assert retry_after(headers) == seconds


def test_retry_after_date_in_the_future():
    import email.utils
    import time
    value = email.utils.formatdate(time.time() + 60, usegmt=True)
    assert 55 <= retry_after({'Retry-After': value}) <= 61


@pytest.mark.parametrize('asked, retry, low, high', [
    (0.0, 1, 1.0, 1.25), (None, 1, 1.0, 1.25), (None, 2, 2.0, 2.5), (None, 4, 8.0, 10.0),
    (None, 9, 30.0, 37.5), (0.2, 3, 1.0, 1.25), (60.0, 1, 60.0, 75.0),
])
def test_every_delay_has_a_floor_and_jitter(asked, retry, low, high):
    bound = Retry(10 ** 6)
    bound.retries = retry - 1
    delays = [bound.delay(asked) for dummy in range(200)]
    assert all(low <= d <= high for d in delays)
    assert len(set(delays)) > 100  # jitter


def test_retry_bound_counts_retries_and_time():
    fake = FakeClock()
    retry = Retry(10 ** 6, clock=fake.clock, sleep=fake.sleep)
    while retry.pause(0.0):
        pass
    assert retry.retries == len(fake.slept) == _graph.MAX_RETRIES
    assert min(fake.slept) >= 1.0
    assert retry.summary() == (
        'gave up after 11 attempts in %.1f s (the server asked to wait 0 s); the bound is 10 '
        'retries within 1000000 s (4 x timeout)' % sum(fake.slept))

    fake = FakeClock()
    retry = Retry(20.0, clock=fake.clock, sleep=fake.sleep)
    assert retry.pause(19.5) is False and fake.slept == []  # what is asked exceeds what is left
    assert retry.summary() == ('gave up after 1 attempt in 0.0 s (the server asked to wait 20 s);'
                               ' the bound is 10 retries within 20 s (4 x timeout)')
    retry = Retry(20.0, clock=fake.clock, sleep=fake.sleep)
    assert retry.pause(math.inf) is False
    assert 'asked to wait forever' in retry.summary()


def test_attempt_timeout_is_cut_to_what_is_left():
    retry = Retry(5.0)
    assert retry.timeout(30.0) <= 5.0
    assert Retry(100.0).timeout(30.0) == 30.0


@pytest.mark.parametrize('obj, says', [
    ({'id': 'x', 'n': 1, 'b': True, 'l': ['a']}, None),
    ({'id': 'x', 'n': 1, 'b': True, 'l': ['a'], 'o': None}, None),
    ([], 'a JSON array where an object belongs'),
    ('x', 'a JSON string where an object belongs'),
    ({'n': 1, 'b': True, 'l': []}, 'the object has no id'),
    ({'id': None, 'n': 1, 'b': True, 'l': []}, 'the object has no id'),
    ({'id': 'x', 'n': True, 'b': True, 'l': []}, 'n is a JSON boolean'),
    ({'id': 'x', 'n': 1.5, 'b': True, 'l': []}, 'n is a JSON number'),
    ({'id': 'x', 'n': '3', 'b': True, 'l': []}, 'n is a JSON string ("3")'),
    ({'id': 'x', 'n': 1, 'b': 'true', 'l': []}, 'b is a JSON string'),
    ({'id': 'x', 'n': 1, 'b': True, 'l': [1]}, 'l is a JSON array'),
    ({'id': 'x', 'n': 1, 'b': True, 'l': [], 'o': 'y'}, 'o is a JSON string'),
])
def test_shape_problem(obj, says):
    shape = {'id': str, 'n': int, 'b': bool, 'l': STR_LIST, 'o': (dict, NULL)}
    problem = shape_problem(obj, shape)
    assert (problem is None) if says is None else (says in problem), problem


@pytest.mark.parametrize('body, says', [
    ({'responses': [{'id': '1', 'status': 200}, {'id': 0, 'status': 404}]}, None),
    ({}, 'no "responses"'),
    ({'responses': [{'id': '1', 'status': 200}]}, 'no response for the id 0'),
    ({'responses': []}, 'no response for the ids 0, 1'),
    ({'responses': [{'id': '1', 'status': 200}] * 2}, 'came twice'),
    ({'responses': [{'id': 1.0, 'status': 200}]}, 'id is a JSON number'),
    ({'responses': [{'id': '1', 'status': 999}, {'id': '0', 'status': 200}]},
     'is not an HTTP status'),
    ({'responses': [None]}, 'a JSON null where an object belongs'),
])
def test_batch_problem(body, says):
    problem = batch_problem(body, ['0', '1'])
    assert (problem is None) if says is None else (says in problem), problem


@pytest.mark.parametrize('value, url', [
    ('https://graph.microsoft.com', 'https://graph.microsoft.com'),
    ('https://graph.microsoft.com/', 'https://graph.microsoft.com'),
    (' HTTPS://127.0.0.1:8443/proxy/ ', 'HTTPS://127.0.0.1:8443/proxy'),
    ('https://[::1]:8443', 'https://[::1]:8443'),
])
def test_endpoint_url_accepts_https_roots(value, url):
    assert endpoint_url(value, 'graph_endpoint') == url


@pytest.mark.parametrize('value, says', [
    ('file:///etc/passwd', 'must be an https:// URL'), ('http://graph.microsoft.com', 'https'),
    ('graph.microsoft.com', 'https'), ('https://', 'names no host'),
    ('https://:443', 'names no host'), ('https://h:0x50', 'invalid port'),
    ('https://h:70000', 'invalid port'), ('https://u@h', 'user name'),
    ('https://h/?a=b', 'query'), ('https://h/#x', 'fragment'), ('https://h?', 'query'),
    ('https://h /x', 'white space'), ('https://h\x00', 'control'), ('', 'https://'),
    (None, 'https://'), ('https://' + 'h' * 3000, '2048'),
])
def test_endpoint_url_refuses_the_rest(value, says):
    with pytest.raises(IdentityError) as err:
        endpoint_url(value, 'exo_endpoint')
    assert str(err.value).startswith('input: exo_endpoint ') and says in str(err.value)


@pytest.mark.parametrize('a, b, same', [
    ('https://graph.microsoft.com/v1.0/users', 'https://GRAPH.microsoft.com:443/x', True),
    ('https://graph.microsoft.com/', 'http://graph.microsoft.com/', False),
    ('https://graph.microsoft.com/', 'https://graph.microsoft.com:8443/', False),
    ('https://127.0.0.1:1/', 'https://localhost:1/', False),
    ('https://graph.microsoft.com/', 'https://graph.microsoft.com.evil.test/', False),
    ('https://graph.microsoft.com/', 'https://graph.microsoft.com@evil.test/', False),
])
def test_origin(a, b, same):
    assert (origin(a) == origin(b)) is same
    assert origin('/v1.0/users') is None and origin('https://h:99999/') is None


def test_excerpt_is_bounded_and_escaped():
    shown = excerpt(b'\x00\x1b[31m' + b'x' * 10000)
    assert len(shown) < 300 and '\\u0000' in shown and '10006 bytes in all' in shown
    assert excerpt({'a': 1}) == '"{\\"a\\": 1}"'


def mx(**fields):
    record = {'recordType': 'Mx', 'label': 'contoso.com', 'ttl': 3600, 'preference': 0,
              'mailExchange': 'contoso-com.mail.protection.outlook.com'}
    record.update(fields)
    return record


@pytest.mark.parametrize('record, says', [
    (mx(), None), (mx(label='autodiscover.contoso.com'), None), (mx(isOptional=None), None),
    (mx(ttl='abc'), 'ttl is a JSON string'), (mx(ttl=True), 'ttl is a JSON boolean'),
    (mx(ttl=2 ** 31), 'not a DNS TTL'), (mx(label=''), 'label: '),
    (mx(label='contoso.com.evil.test'), 'is not in the domain'),
    (mx(label='notcontoso.com'), 'is not in the domain'),
    (mx(mailExchange=None), 'no mailExchange'), (mx(recordType=5), 'recordType is a JSON'),
    ({'recordType': 'Srv', 'label': 'contoso.com', 'ttl': 1, 'nameTarget': 'x', 'port': 443,
      'priority': 1, 'weight': '1'}, 'weight is a JSON string'),
])
def test_record_problem(record, says):
    problem = record_problem(record, 'contoso.com')
    assert (problem is None) if says is None else (says in problem), problem


@pytest.mark.parametrize('value, name', [
    ('contoso.com', 'contoso.com'), ('Contoso.COM.', 'contoso.com'),
    ('bücher.test', 'xn--bcher-kva.test'),
])
def test_domain_name(value, name):
    assert domain_name(value) == name


@pytest.mark.parametrize('value', ['contoso.com/../x', 'contoso.com?$x', 'com', 'a..b',
                                   '-a.com', 'a b.com', ''])
def test_domain_name_refuses_what_is_not_a_host_name(value):
    with pytest.raises((RecordError, InputError)) as err:  # 'com': InputError
        domain_name(value)
    assert 'domain' in str(err.value)


@pytest.mark.parametrize('option, example', [
    ('authority_host', 'https://login.microsoftonline.com'),
    ('graph_endpoint', 'https://graph.microsoft.com'),
    ('exo_endpoint', 'https://outlook.office365.com'),
    ('exo_token_resource', 'https://outlook.office365.com'),
])
def test_endpoint_url_refusal_gives_an_example_of_that_option(option, example):
    with pytest.raises(IdentityError) as err:
        endpoint_url('outlook.office365.com', option)
    assert str(err.value).endswith('for example %s' % example), str(err.value)
    if option == 'exo_token_resource':  # it names an audience: nothing goes there
        assert 'go there' not in str(err.value)


def test_graph_and_identity_errors_are_task_errors_with_todays_failed_result():
    """GraphError and IdentityError are TaskErrors: ``str()`` is 'phase: message' as before, and
    ``.result()`` is the failed result _run.run_work makes of them (msg, phase, changed false,
    status, code and request_id; aadsts)."""
    from ansible_collections.exchangeonline.mail.plugins.module_utils._errors import TaskError
    from ansible_collections.exchangeonline.mail.plugins.module_utils._run import run_work
    graph = _graph.GraphError('read domain', 403, 'Authorization_RequestDenied', 'Insufficient',
                              'req-1', 'Mon, 01 Dec 2026', 'GET', '/domains/x', 'grant it')
    assert str(graph) == ('read domain: Graph answered 403 Authorization_RequestDenied to GET '
                          '/domains/x: Insufficient -- grant it (request-id req-1, date Mon, 01 '
                          'Dec 2026)')
    assert (graph.phase, graph.status, graph.code, graph.graph_message, graph.request_id,
            graph.date) == ('read domain', 403, 'Authorization_RequestDenied', 'Insufficient',
                            'req-1', 'Mon, 01 Dec 2026')
    token = IdentityError('no token for x', aadsts=7000215)
    connect = IdentityError('cannot reach', phase='connect')
    for error, extra in ((graph, {'status': 403, 'code': 'Authorization_RequestDenied',
                                  'request_id': 'req-1'}),
                         (token, {'aadsts': 7000215}), (connect, {'aadsts': None})):
        assert isinstance(error, TaskError)
        expected = dict(failed=True, changed=False, msg=str(error), phase=error.phase, **extra)
        assert error.result() == expected

        def work():
            raise error
        assert run_work(work) == expected
    assert str(token) == 'token: no token for x' and str(connect) == 'connect: cannot reach'
