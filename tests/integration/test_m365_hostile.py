"""What a broken or hostile Microsoft 365 endpoint gets from the collection (issue 10, items 2,
6, 7, 8 and 9), through real ansible-playbook, msal and requests against the lab emulator.

- a nextLink elsewhere is not followed and no token goes there; a repeated one stops paging;
- a success answer that is not the documented JSON fails, naming the endpoint and showing it;
- malformed $batch answers, wrong value types and unusable endpoint options are clear errors;
- throttling and a hung endpoint end within the bound derived from ``timeout``;
- names reach Graph as one encoded path segment.
"""

import time
from urllib.parse import quote

import pytest

from tests.integration.conftest import APP_ROLES, m365_args, task
from tests.lab.m365.client import session_for

DOMAIN = 'contoso.test'
SECRET = 'hostile-lab-secret-4711'
MAX_ATTEMPTS = 11  # the request and MAX_RETRIES (10) retries


@pytest.fixture
def tenant(m365):
    """The emulator with contoso.test verified for Email, a few mailboxes and an app."""
    m365.add_domain(DOMAIN, verified=True, services=['Email'])
    for upn in ('licensed@contoso.test', 'other@contoso.test'):
        m365.add_user(upn, licensed=True, mailbox=True)
    return m365_args(m365, m365.add_app(secret=SECRET, roles=APP_ROLES))


def no_traceback(run):
    text = run.stdout + run.stderr
    assert 'Traceback' not in text and 'MODULE FAILURE' not in text, text[-3000:]


def probe_records(listener, m365):
    """The listener logs what reaches it (so an empty log means something)."""
    session_for(m365).get(listener.url + '/probe', timeout=5,
                          headers={'Authorization': 'Bearer probe'})
    assert listener.requests[-1]['authorization'] == 'Bearer probe'


# -- item 2: links elsewhere ----------------------------------------------------------------
LINK_TARGETS = {
    # another host name (localhost, not 127.0.0.1) and port, HTTPS with a certificate the lab
    # CA signed: a client that followed the link would talk to it and send the token
    'https, other host and port': dict(tls=True, host='localhost'),
    'plain http, other port': dict(tls=False, host='127.0.0.1'),
    'https, same host, other port': dict(tls=True, host='127.0.0.1'),
}


@pytest.mark.parametrize('api', ['graph', 'exchange'])
@pytest.mark.parametrize('target', sorted(LINK_TARGETS))
def test_next_link_elsewhere_is_refused_and_gets_no_token(m365, tenant, play, api, target):
    other = m365.listener(**LINK_TARGETS[target])
    if api == 'graph':
        link = other.url + '/v1.0/users?$top=999&$skiptoken=X%274453707402000100000017%27'
        m365.inject('GET', r'/v1\.0/users$', next_link=link)
    else:
        link = '%s/adminapi/beta/%s/InvokeCommand?$skiptoken=eyJvIjogMTAwMH0' % (
            other.url, m365.tenant_id)
        m365.inject('POST', r'/InvokeCommand$', next_link=link)
    run = play([task('mailbox_info', dict(tenant, all=True))])
    result = run.last['result']
    assert run.last['status'] == 'failed'
    assert link in result['msg'] and 'UntrustedLink' in result['msg']
    assert 'not followed' in result['msg']
    assert result['code'] == 'UntrustedLink'
    assert other.requests == []  # nothing at all, so no Authorization either
    probe_records(other, m365)
    no_traceback(run)


def test_next_link_to_plain_http_on_the_same_host_and_port(m365, tenant, play):
    link = m365.url.replace('https://', 'http://') + '/v1.0/users?$skiptoken=abc'
    m365.inject('GET', r'/v1\.0/users$', next_link=link)
    run = play([task('mailbox_info', dict(tenant, all=True))])
    assert run.last['status'] == 'failed'
    assert link in run.last['result']['msg'] and 'UntrustedLink' in run.last['result']['msg']
    assert len([r for r in m365.requests if r['path'] == '/v1.0/users']) == 1


def test_repeated_next_link_stops_paging(m365, tenant, play):
    m365.inject('GET', r'/v1\.0/users$', next_link='repeat', count=50)
    run = play([task('mailbox_info', dict(tenant, all=True))])
    result = run.last['result']
    assert run.last['status'] == 'failed'
    assert 'RepeatedLink' in result['msg'] and 'came twice' in result['msg']
    assert len([r for r in m365.requests if r['path'] == '/v1.0/users']) == 2


def test_redirect_is_not_followed(m365, tenant, play):
    other = m365.listener(tls=True, host='localhost')
    m365.inject('GET', r'/v1\.0/domains/contoso\.test$', 302,
                headers={'Location': other.url + '/v1.0/domains/contoso.test'})
    m365.inject('GET', r'/v1\.0/domains/contoso\.test$', 307, body=b'',
                headers={'Location': m365.url.replace('https', 'http') + '/v1.0/domains/x'})
    run = play([task('domain_info', dict(tenant, domain=DOMAIN), 'one'),
                task('domain_info', dict(tenant, domain=DOMAIN), 'two')])
    for name, location in (('one', other.url), ('two', m365.url.replace('https', 'http'))):
        msg = run.task(name)['result']['msg']
        assert run.task(name)['status'] == 'failed'
        assert 'redirect (to %s/v1.0/domains/' % location in msg and 'never followed' in msg
    assert other.requests == []
    probe_records(other, m365)


def test_identity_endpoint_sending_the_secret_elsewhere(m365, tenant, play):
    """The OpenID configuration names the token endpoint; one on another host gets nothing."""
    from tests.lab.m365 import identity
    other = m365.listener(tls=True, host='localhost')
    config = identity.openid_configuration(m365, m365.tenant_id)
    config['token_endpoint'] = other.url + '/%s/oauth2/v2.0/token' % m365.tenant_id
    m365.inject('GET', r'/openid-configuration$', 200, body=config)
    run = play([task('domain_info', dict(tenant, domain=DOMAIN))])
    msg = run.last['result']['msg']
    assert run.last['status'] == 'failed'
    assert config['token_endpoint'] in msg and 'sent the token request elsewhere' in msg
    assert other.requests == []
    probe_records(other, m365)


# -- item 6: success answers that are not the documented JSON ---------------------------------
@pytest.mark.parametrize('path, fault, says', [
    (r'/openid-configuration$', dict(body=b'<html>Sign in</html>', content_type='text/html'),
     'answered 200 with text/html, not a JSON object: "<html>Sign in</html>"'),
    (r'/oauth2/v2\.0/token$', dict(body=b'{"access_token": "ey', content_type='application/json'),
     'not a JSON object: "{\\"access_token\\": \\"ey"'),
    (r'/oauth2/v2\.0/token$', dict(body=['a', 'list']), 'not a JSON object: "[\\"a\\"'),
    (r'/oauth2/v2\.0/token$', dict(body={'token_type': 'Bearer'}), 'holds no access_token'),
])
def test_identity_answer_that_is_not_the_documented_json(m365, tenant, play, path, fault, says):
    m365.inject('*', path, 200, **fault)
    run = play([task('domain_info', dict(tenant, domain=DOMAIN))])
    msg = run.last['result']['msg']
    assert run.last['status'] == 'failed'
    assert says in msg and 'authority_host' in msg, msg
    no_traceback(run)


SHAPES = {
    'html': (dict(body=b'<!DOCTYPE html><html><body>Sign in to continue</body></html>',
                  content_type='text/html; charset=utf-8'), 'Sign in to continue'),
    'truncated json': (dict(body=b'{"id": "contoso.test", "isVerified": tr',
                            content_type='application/json'), 'isVerified'),
    'json list': (dict(body=[{'id': 'contoso.test'}]), 'JSON array'),
    'json string': (dict(body='contoso.test is fine'), 'contoso.test is fine'),
    'object without the fields': (dict(body={'@odata.context': 'lab#nothing'}),
                                  'lab#nothing'),
}


@pytest.mark.parametrize('shape', sorted(SHAPES))
def test_answer_that_is_not_the_documented_json_fails(m365, tenant, play, shape):
    fault, shown = SHAPES[shape]
    m365.inject('GET', r'/v1\.0/domains/contoso\.test$', 200, count=2, **fault)
    m365.inject('POST', r'/v1\.0/\$batch$', 200, **fault)
    m365.inject('GET', r'/v1\.0/users/other@contoso\.test$', 200, **fault)  # inside $batch
    m365.inject('GET', r'/v1\.0/users$', 200, **fault)
    m365.inject('POST', r'/InvokeCommand$', 200, **fault)
    one = ['licensed@contoso.test']
    run = play([
        task('domain_info', dict(tenant, domain=DOMAIN), 'domain_info'),
        task('domain', dict(tenant, domain=DOMAIN, supported_services=['Email', 'Intune']),
             'domain'),
        task('mailbox_info', dict(tenant, mailboxes=one), 'batch answer'),
        task('mailbox_info', dict(tenant, mailboxes=['other@contoso.test']), 'batch item'),
        # the users page only: with mailbox or protocols, the Exchange read at the same time
        # would take the InvokeCommand fault meant for mailbox_protocols
        task('mailbox_info', dict(tenant, all=True, include=['license', 'routing']),
             'users page'),
        task('mailbox_protocols', dict(tenant, mailboxes=one, pop=False), 'InvokeCommand'),
    ])
    no_traceback(run)
    endpoints = {'domain_info': '/v1.0/domains/contoso.test',
                 'domain': '/v1.0/domains/contoso.test', 'batch answer': '/v1.0/$batch',
                 'batch item': '/v1.0/$batch (/users/other@contoso.test',
                 'users page': '/v1.0/users',
                 'InvokeCommand': '/adminapi/beta/%s/InvokeCommand' % m365.tenant_id}
    for name, endpoint in endpoints.items():
        entry = run.task(name)
        msg = entry['result']['msg']
        assert entry['status'] == 'failed', (name, entry['result'])
        assert 'InvalidResponse' in msg and 'not the documented JSON' in msg, (name, msg)
        assert m365.url + endpoint in msg, (name, msg)
        if name != 'batch item':  # there a body that is not JSON comes base64-encoded
            assert shown in msg, (name, msg)
        assert len(msg) < 2000, (name, msg)
    assert run.task('domain_info')['result'].get('exists') is not True
    assert run.task('domain')['result']['changed'] is False
    assert not [r for r in m365.requests if r['method'] in ('PATCH', 'DELETE')]
    assert not [r for r in m365.requests if r.get('cmdlet') == 'Set-CASMailbox']
    assert m365.cas_mailbox('licensed@contoso.test')['PopEnabled'] is True


def test_answer_larger_than_the_bound_fails(m365, tenant, play):
    m365.inject('GET', r'/v1\.0/domains/contoso\.test$', 200,
                body=b'{"id": "' + b'x' * (33 * 1024 * 1024) + b'"}',
                content_type='application/json')
    run = play([task('domain_info', dict(tenant, domain=DOMAIN))])
    assert run.last['status'] == 'failed'
    assert 'AnswerTooLarge' in run.last['result']['msg']
    assert 'longer than 33554432 bytes' in run.last['result']['msg']


# -- item 7: malformed answers and unusable options -------------------------------------------
def mx(**fields):
    record = {'@odata.type': '#microsoft.graph.domainDnsMxRecord', 'id': 'x', 'isOptional': False,
              'label': DOMAIN, 'recordType': 'Mx', 'supportedService': 'Email', 'ttl': 3600,
              'mailExchange': 'contoso-test.mail.protection.outlook.com', 'preference': 0}
    record.update(fields)
    return dict((k, v) for k, v in record.items() if v is not None)


RECORDS = [
    (mx(ttl='abc'), 'ttl is a JSON string ("abc")'),
    (mx(label=None), 'the object has no label'),
    (mx(label='mail.example.org'), "the owner mail.example.org. (label 'mail.example.org') is not in the domain"),
    (mx(preference='10'), 'preference is a JSON string'),
    (mx(ttl=-1), 'ttl -1 is not a DNS TTL'),
    ('just text', 'a JSON string where an object belongs'),
]


def run_cases(play, cases):
    """One playbook, one task per case: [(name, module, args)] -> the run (each case fails on
    its own; the faults are injected in the same order, one per task)."""
    return play([task(module, args, name) for name, module, args in cases])


def test_service_records_of_the_wrong_type(m365, tenant, play):
    for record, dummy in RECORDS:
        m365.inject('GET', r'/serviceConfigurationRecords$', 200,
                    body={'@odata.context': 'x', 'value': [record]})
    run = run_cases(play, [(says, 'domain_info', dict(tenant, domain=DOMAIN))
                           for dummy, says in RECORDS])
    no_traceback(run)
    for dummy, says in RECORDS:
        msg = run.task(says)['result']['msg']
        assert run.task(says)['status'] == 'failed'
        assert says in msg and 'InvalidResponse' in msg, msg
        assert m365.url + '/v1.0/domains/contoso.test/serviceConfigurationRecords' in msg


BATCHES = [
    ({'responses': [{'status': 200, 'body': {}}]}, 'a response item: the object has no id'),
    ({'responses': [{'id': '0', 'body': {}}]}, 'a response item: the object has no status'),
    ({'responses': ['0']}, 'a response item: a JSON string where an object belongs'),
    ({'responses': []}, 'no response for the id 0'),
    ({'responses': [{'id': '7', 'status': 200}]}, 'a response for the id 7, which was not asked'),
    ({'responses': {'0': {}}}, 'no "responses": [...]'),
    ({'responses': [{'id': '0', 'status': 'OK'}]}, 'status is a JSON string'),
]


def test_malformed_batch_answers(m365, tenant, play):
    for body, dummy in BATCHES:
        m365.inject('POST', r'/v1\.0/\$batch$', 200, body=body)
    run = run_cases(play, [(says, 'mailbox_info', dict(tenant, mailboxes=['licensed@contoso.test']))
                           for dummy, says in BATCHES])
    no_traceback(run)
    for dummy, says in BATCHES:
        msg = run.task(says)['result']['msg']
        assert run.task(says)['status'] == 'failed'
        assert says in msg and m365.url + '/v1.0/$batch' in msg, msg


OPTIONS = [
    ('graph_endpoint', 'file:///etc/passwd', 'must be an https:// URL'),
    ('graph_endpoint', 'http://127.0.0.1:1', 'must be an https:// URL'),
    ('graph_endpoint', 'https://', 'names no host'),
    ('graph_endpoint', 'https:///v1.0', 'names no host'),
    ('graph_endpoint', 'https://127.0.0.1:99999', 'has an invalid port'),
    ('graph_endpoint', 'https://user:pw@127.0.0.1', 'must not carry a user name'),
    ('authority_host', 'http://127.0.0.1', 'must be an https:// URL'),
    ('exo_endpoint', 'ftp://127.0.0.1', 'must be an https:// URL'),
    ('exo_endpoint', 'https://exo.example/?x=1', 'must not carry a query'),
    ('ca_path', '/nonexistent/lab-ca.pem', 'ca_path /nonexistent/lab-ca.pem does not exist'),
]


def test_unusable_endpoint_options(m365, tenant, play):
    run = run_cases(play, [(value, 'mailbox_info', dict(tenant, mailboxes=['licensed@contoso.test'],
                                                        **{option: value}))
                           for option, value, dummy in OPTIONS])
    no_traceback(run)
    for option, value, says in OPTIONS:
        msg = run.task(value)['result']['msg']
        assert run.task(value)['status'] == 'failed'
        assert option in msg and says in msg, msg
    assert m365.requests == []  # refused before anything is sent


def test_ca_path_that_is_not_a_certificate(m365, tenant, play, tmp_path):
    junk = tmp_path / 'ca.pem'
    junk.write_text('not a certificate\n')
    run = play([task('domain_info', dict(tenant, domain=DOMAIN, ca_path=str(junk)))])
    assert run.last['status'] == 'failed'
    assert 'ca_path %s holds no usable PEM CA certificate' % junk in run.last['result']['msg']
    assert m365.requests == []


# -- item 8: throttling and hung endpoints end within the bound -------------------------------
def attempts(m365, path):
    return [r for r in m365.requests if r['path'] == path]


@pytest.mark.parametrize('retry_after, timeout', [(0, 5), (-5, 3)])
def test_retry_after_zero_or_negative_has_a_floor(m365, tenant, play, retry_after, timeout):
    """At most 4 x timeout of retries, each delay at least 1 s (before: 410 requests in 20 s
    with Retry-After 0). A negative value is not valid: exponential back-off from 1 s."""
    path = '/v1.0/domains/contoso.test'
    m365.inject('GET', r'/v1\.0/domains/contoso\.test$', 429, count=1000,
                retry_after=retry_after)
    run = play([task('domain_info', dict(tenant, domain=DOMAIN, timeout=timeout))])
    result = run.last['result']
    assert run.last['status'] == 'failed'
    assert result['status'] == 429 and 'gave up after' in result['msg']
    tries = attempts(m365, path)
    gaps = [b['time'] - a['time'] for a, b in zip(tries, tries[1:])]
    assert 2 <= len(tries) <= MAX_ATTEMPTS, len(tries)
    assert min(gaps) >= 0.95, gaps
    assert tries[-1]['time'] - tries[0]['time'] <= 4 * timeout, gaps


def test_absurd_retry_after_fails_at_once(m365, tenant, play):
    m365.inject('GET', r'/v1\.0/domains/contoso\.test$', 429, count=10, retry_after=10 ** 9)
    run = play([task('domain_info', dict(tenant, domain=DOMAIN))])
    assert run.last['status'] == 'failed'
    assert 'the server asked to wait 1000000000 s' in run.last['result']['msg']
    assert len(attempts(m365, '/v1.0/domains/contoso.test')) == 1


def test_hung_endpoint_fails_within_four_times_timeout(m365, tenant, play):
    """timeout: 2 against a Graph that accepts and never answers (today: 118 s)."""
    m365.inject('GET', r'/v1\.0/domains/contoso\.test$', hang=60, count=100)
    run = play([task('domain_info', dict(tenant, domain=DOMAIN, timeout=2))])
    ended = time.time()
    result = run.last['result']
    assert run.last['status'] == 'failed'
    assert result['status'] == 'no answer' and 'gave up after' in result['msg']
    tries = attempts(m365, '/v1.0/domains/contoso.test')
    assert all(r['status'] == 'hung' for r in tries)
    assert 2 <= len(tries) <= MAX_ATTEMPTS
    assert ended - tries[0]['time'] <= 4 * 2 + 2.0  # the bound, plus ansible's exit
    assert run.seconds < 30


def test_connection_errors_are_retried_within_the_bound(m365, tenant, play):
    import socket
    with socket.socket() as s:  # a port nobody listens on
        s.bind(('127.0.0.1', 0))
        closed = s.getsockname()[1]
    run = play([task('domain_info', dict(tenant, domain=DOMAIN, timeout=2,
                                         graph_endpoint='https://127.0.0.1:%d' % closed))])
    result = run.last['result']
    assert run.last['status'] == 'failed'
    assert result['code'] == 'NetworkError' and 'gave up after' in result['msg']
    assert 'attempts' in result['msg']
    assert run.seconds < 30


def test_lost_answer_to_adding_a_domain_is_settled_by_reading_it_back(m365, tenant, play):
    """POST /domains creates something: it is never sent twice. Its answer is lost (the
    connection closes after the domain was added); the module reads the domain back."""
    m365.inject('POST', r'/v1\.0/domains$', lose_answer=True)
    run = play([task('domain', dict(tenant, domain='fabrikam.test', verify=False))])
    result = run.last['result']
    assert run.last['status'] == 'ok', result.get('msg')
    assert result['changed'] is True and result['actions'] == ['add']
    assert 'reading it back shows it was added' in run.stdout + run.stderr
    posts = [r for r in m365.requests if r['method'] == 'POST' and r['path'] == '/v1.0/domains']
    assert [r['status'] for r in posts] == ['lost']  # one POST, no retry
    assert 'fabrikam.test' in m365.domains


# -- item 9: names into URLs -------------------------------------------------------------------
def graph_urls(m365):
    """Every Graph request path and $batch item url the emulator saw."""
    urls = [r['path'] + ('?' + r['query'] if r['query'] else '') for r in m365.requests
            if r['resource'] == 'graph']
    urls += [item['url'] for r in m365.requests for item in r['batch_items'] or []]
    return urls


def test_mailbox_names_reach_graph_as_one_segment(m365, tenant, play):
    hostile = ['alice@contoso.test?$expand=manager#', '../../domains/contoso.test',
               'x/../../v1.0/domains']
    run = play([task('mailbox_info', dict(tenant, mailboxes=hostile + ['licensed@contoso.test'],
                                          include=['license']))])
    result = run.last['result']
    assert run.last['status'] == 'ok', result.get('msg')
    exists = dict((m['upn'], m['exists']) for m in result['mailboxes'])
    assert exists == dict([(name, False) for name in hostile]
                          + [('licensed@contoso.test', True)])
    urls = graph_urls(m365)
    for name in hostile:
        segment = quote(name, safe='@')
        assert '/' not in segment and '?' not in segment and '#' not in segment
        assert [u for u in urls if u.startswith('/users/%s?$select=' % segment)], urls
    assert not [u for u in urls if '/domains' in u.split('?')[0]], urls
    assert not [u for u in urls if '$expand' in u], urls


NAMES = [
    ('mailbox_info', dict(mailboxes=['..']), "mailboxes: '..' is not a name"),
    ('mailbox_info', dict(mailboxes=['a\x07b@contoso.test']), 'holds a control character'),
    ('domain_info', dict(domain='contoso.test/../x'), "domain 'contoso.test/../x' is not"),
    ('domain_info', dict(domain='contoso.test?$select=id'), "domain 'contoso.test?$select=id'"),
    ('domain_info', dict(domain='localhost'), 'at least two labels'),
    ('domain', dict(domain='../../users'), "domain '../../users' is not"),
]


def test_names_that_cannot_be_one_segment_are_input_errors(m365, tenant, play):
    run = run_cases(play, [(says, module, dict(tenant, **args)) for module, args, says in NAMES])
    no_traceback(run)
    for dummy, dummy2, says in NAMES:
        result = run.task(says)['result']
        assert run.task(says)['status'] == 'failed'
        assert says in result['msg'] and result['phase'] == 'input', result['msg']
    assert not [r for r in m365.requests if r['resource'] == 'graph']


# -- secrets stay out of -vvv, also on the new failure paths -----------------------------------
def test_no_secret_in_verbose_output_of_the_new_failures(m365, tenant, play):
    other = m365.listener(tls=False, host='127.0.0.1')
    m365.inject('GET', r'/v1\.0/users$', next_link=other.url + '/v1.0/users?$skiptoken=1')
    m365.inject('GET', r'/v1\.0/domains/contoso\.test$', 200, body=b'<html>proxy</html>',
                content_type='text/html')
    # Exchange's RBAC 401 (the app's service principal holds no Exchange role)
    m365.set_exchange_role(tenant['client_id'], 'none')
    run = play([task('mailbox_info', dict(tenant, all=True), 'link'),
                task('domain_info', dict(tenant, domain=DOMAIN), 'html'),
                task('mailbox_protocols', dict(tenant, mailboxes=['licensed@contoso.test'],
                                               pop=True), 'rbac')], verbosity=3)
    assert run.task('link')['status'] == 'failed' and run.task('html')['status'] == 'failed'
    assert 'UntrustedLink' in run.task('link')['result']['msg']
    assert 'InvalidResponse' in run.task('html')['result']['msg']
    assert run.task('rbac')['status'] == 'failed'
    assert 'User is not allowed to call Get-CASMailbox' in run.task('rbac')['result']['msg']
    text = run.stdout + run.stderr
    assert SECRET not in text
    assert 'eyJ' not in text  # no JWT access token either
    assert other.requests == []
