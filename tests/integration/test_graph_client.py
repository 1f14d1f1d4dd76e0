"""The identity and Graph client module_utils, with real msal and requests against the emulator."""

import time

import pytest
import trustme
from cryptography.hazmat.primitives import serialization

from ansible_collections.exchangeonline.mail.plugins.module_utils._graph import GraphClient, GraphError
from ansible_collections.exchangeonline.mail.plugins.module_utils._identity import (
    Identity,
    IdentityError,
)
from tests.integration.conftest import m365_args

USERS = ('User.Read.All', 'MailboxSettings.Read')


def client(m365, app, **extra):
    params = m365_args(m365, app, **extra)
    params.setdefault('timeout', 10.0)
    return GraphClient(Identity(params), max_retry_time=30.0)


def test_paging_follows_next_link(m365):
    m365.generate_users(250, domain=m365.tenant_domain)
    graph = client(m365, m365.add_app(secret='s1', roles=USERS))
    users = graph.get_all('/users', params={'$top': '100', '$select': 'id,userPrincipalName'})
    assert len(users) == len(set(u['id'] for u in users)) >= 250
    pages = [r for r in m365.requests if r['resource'] == 'graph' and r['path'] == '/v1.0/users']
    assert len(pages) == 3


def test_batch_of_45_with_throttled_items(m365):
    m365.generate_users(45, domain=m365.tenant_domain)
    graph = client(m365, m365.add_app(secret='s2', roles=USERS))
    users = graph.get_all('/users', params={'$top': '999'})
    m365.inject('GET', r'/mailboxSettings$', 429, count=7, retry_after=1)
    m365.clear_log()
    requests_ = [{'id': str(i), 'method': 'GET', 'url': '/users/%s/mailboxSettings' % u['id']}
                 for i, u in enumerate(users)]
    results = graph.batch(requests_)
    assert sorted(results, key=int) == [str(i) for i in range(45)]
    assert all(status in (200, 404) for status, body in results.values())
    batches = [r for r in m365.requests if r['path'] == '/v1.0/$batch']
    assert all(len(b['batch_items']) <= 20 for b in batches)
    assert len(batches) >= 4  # 3 batches of <= 20, plus the retries of throttled items
    assert sum(1 for b in batches for item in b['batch_items'] if item['status'] == 429) == 7


def test_throttling_beyond_the_time_bound_fails_cleanly(m365):
    graph = client(m365, m365.add_app(secret='s3', roles=USERS))
    graph.max_retry_time = 2.0
    m365.inject('GET', r'/v1\.0/users$', 429, count=50, retry_after=1)
    with pytest.raises(GraphError) as err:
        graph.get('/users')
    assert err.value.status == 429 and err.value.request_id
    assert 'request-id' in str(err.value)


def test_ca_path_holds_against_requests_ca_bundle(m365, monkeypatch, tmp_path):
    """A CA bundle from the environment must not replace ca_path (NOTES: requests lets it)."""
    other = tmp_path / 'other-ca.pem'
    other.write_bytes(trustme.CA().cert_pem.bytes())
    monkeypatch.setenv('REQUESTS_CA_BUNDLE', str(other))
    monkeypatch.setenv('CURL_CA_BUNDLE', str(other))
    graph = client(m365, m365.add_app(secret='s4', roles=USERS))
    assert graph.get('/users')['value'] is not None
    # and without ca_path the lab's certificate is not trusted: a clear message, no traceback
    params = m365_args(m365, m365.add_app(secret='s5', roles=USERS))
    params.pop('ca_path')
    with pytest.raises(IdentityError) as err:
        GraphClient(Identity(params)).get('/users')
    assert 'TLS check' in str(err.value) and 'ca_path' in str(err.value)


def test_encrypted_certificate_key(m365, tmp_path):
    from tests.lab.m365.emulator import make_client_certificate
    cert, key, thumb = make_client_certificate()
    app = m365.add_app(certificate_pem=cert, roles=USERS)
    private = serialization.load_pem_private_key(key.encode(), password=None)
    encrypted = private.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
        serialization.BestAvailableEncryption(b'pem-pass-phrase')).decode()
    pem = tmp_path / 'app.pem'
    pem.write_text(cert + encrypted)
    params = m365_args(m365, app, client_certificate_path=str(pem))
    params.pop('client_secret', None)
    with pytest.raises(IdentityError) as err:
        Identity(params)
    assert 'client_certificate_password' in str(err.value)
    params['client_certificate_password'] = 'pem-pass-phrase'
    identity = Identity(params)
    assert identity.thumbprint == thumb.upper()
    assert GraphClient(identity).get('/users')['value'] is not None
    params['client_certificate_send_chain'] = True  # x5c: subject name / issuer auth (PS256)
    assert GraphClient(Identity(params)).get('/users')['value'] is not None


def test_paging_stops_at_the_page_and_object_bounds(m365):
    """The bounds are 10,000 pages and 1,000,000 objects; lowered here to see them hold."""
    m365.generate_users(250, domain=m365.tenant_domain)
    graph = client(m365, m365.add_app(secret='s6', roles=USERS))
    graph.max_pages = 2
    with pytest.raises(GraphError) as err:
        graph.get_all('/users', params={'$top': '100'})
    assert err.value.code == 'TooManyPages' and 'more than 2 pages; stopped' in str(err.value)
    assert len([r for r in m365.requests if r['path'] == '/v1.0/users']) == 2
    graph.max_pages, graph.max_items = 100, 150
    with pytest.raises(GraphError) as err:
        graph.get_all('/users', params={'$top': '100'})
    assert err.value.code == 'TooManyItems' and 'more than 150 objects' in str(err.value)


def test_exchange_paging_refuses_a_repeated_link(m365):
    from ansible_collections.exchangeonline.mail.plugins.module_utils._exo_admin import (
        ExoAdminClient)
    m365.generate_users(20, domain=m365.tenant_domain)
    app = m365.add_app(secret='s7', roles=('Exchange.ManageAsApp',))
    exo = ExoAdminClient(Identity(dict(m365_args(m365, app), timeout=10.0)))
    m365.inject('POST', r'/InvokeCommand$', next_link='repeat', count=10)
    with pytest.raises(GraphError) as err:
        exo.invoke('Get-CASMailbox', {'ResultSize': 'Unlimited'})
    assert err.value.code == 'RepeatedLink' and 'InvokeCommand' in str(err.value)
    # the link is the URL just POSTed to: not even a second request
    assert len([r for r in m365.requests if r.get('cmdlet') == 'Get-CASMailbox']) == 1


def exo_client(m365, app, **extra):
    from ansible_collections.exchangeonline.mail.plugins.module_utils._exo_admin import (
        ExoAdminClient)
    return ExoAdminClient(Identity(dict(m365_args(m365, app), timeout=10.0, **extra)),
                          max_retry_time=20.0)


def test_exchange_uses_the_tenant_guid_when_tenant_id_is_a_domain(m365):
    """tenant_id as a verified domain (which Entra takes): URL and anchor carry the token's tid
    on every page, so the follow-up pages the emulator refuses for a domain work."""
    m365.add_domain('contoso.test', verified=True, services=['Email'])
    m365.generate_users(7, domain=m365.tenant_domain, licensed_ratio=1, mailbox_ratio=1,
                        mail_domain='contoso.test')
    app = m365.add_app(secret='s8', roles=('Exchange.ManageAsApp',))
    exo = exo_client(m365, app, tenant_id='contoso.test')
    objects = exo.invoke('Get-CASMailbox', {'ResultSize': 'Unlimited'}, page_size=3)
    assert len(objects) == 7
    pages = [r for r in m365.requests if r.get('cmdlet') == 'Get-CASMailbox']
    assert [r['status'] for r in pages] == [200, 200, 200]
    assert all(r['path'] == '/adminapi/beta/%s/InvokeCommand' % m365.tenant_id for r in pages)


TRANSIENT = [
    dict(status=500), dict(status=408), dict(status=503), dict(status=504),
    dict(status=429, retry_after=2),
    # ExoHelper retries this text whatever the status (none recorded): here a 400 and a 403
    dict(status=400, body=b'You have reached the maximum number of concurrent requests per '
                          b'tenant. Please wait and try again.', content_type='text/plain'),
    dict(status=403, body={'error': {'code': 'ServerBusy', 'message': 'You have reached the '
                                     'maximum number of concurrent requests per tenant. Please '
                                     'wait and try again.'}}),
]


def test_exchange_retries_each_transient_answer_and_not_a_permanent_one(m365):
    app = m365.add_app(secret='s9', roles=('Exchange.ManageAsApp',))
    exo = exo_client(m365, app)
    for fault in TRANSIENT:
        m365.clear_log()
        m365.inject('POST', r'/InvokeCommand$', count=1, **fault)
        started = time.monotonic()
        assert exo.invoke('Get-TransportConfig')[0]['SmtpClientAuthenticationDisabled'] is True
        assert [r['status'] for r in m365.requests if r['resource'] == 'exo'] == \
            [fault['status'], 200], fault
        assert time.monotonic() - started >= (2 if fault.get('retry_after') else 1)
    m365.clear_log()
    m365.inject('POST', r'/InvokeCommand$', 400, count=1)
    with pytest.raises(GraphError) as err:
        exo.invoke('Get-TransportConfig')
    assert err.value.status == 400
    assert len([r for r in m365.requests if r['resource'] == 'exo']) == 1


@pytest.mark.parametrize('fault, fix', [
    (dict(status=500), 'Exchange Online did not recover: run again later'),
    (TRANSIENT[5], 'other clients of this tenant hold Exchange Online\'s concurrent requests: '
                   'run again later, or fewer runs against the tenant at once'),
])
def test_exchange_retries_end_at_the_bound_with_phase_answer_and_fix(m365, fault, fix):
    app = m365.add_app(secret='s10', roles=('Exchange.ManageAsApp',))
    exo = exo_client(m365, app)
    exo.max_retry_time = 3.0
    m365.inject('POST', r'/InvokeCommand$', count=50, **fault)
    with pytest.raises(GraphError) as err:
        exo.invoke('Get-TransportConfig')
    text = str(err.value)
    assert text.startswith('Get-TransportConfig: Exchange Online answered %d ' % fault['status'])
    assert 'gave up after ' in text and 'the bound is 10 retries within 3 s' in text, text
    assert text.endswith(fix) or (fix + ' (request-id') in text, text
    attempts = len([r for r in m365.requests if r['resource'] == 'exo'])
    assert 2 <= attempts <= 3


def test_exchange_paging_has_its_own_time_bound(m365):
    m365.generate_users(5, domain=m365.tenant_domain, licensed_ratio=1, mailbox_ratio=1)
    app = m365.add_app(secret='s11', roles=('Exchange.ManageAsApp',))
    exo = exo_client(m365, app)
    from ansible_collections.exchangeonline.mail.plugins.module_utils._exo_admin import PAGING_TIME
    assert exo.max_paging_time == PAGING_TIME == 1800  # the cursor's "00:30:00"
    exo.max_paging_time = 0.0
    with pytest.raises(GraphError) as err:
        exo.invoke('Get-CASMailbox', {'ResultSize': 'Unlimited'}, page_size=2)
    assert err.value.code == 'PagingTimeout'
    assert 'more than the paging bound of 0 s; stopped' in str(err.value)
    assert 'the Exchange Online paging cursor expires' in str(err.value)


OTHER_TENANT = '0b1e5c3a-7d2f-4e8a-9c6b-5a4d3e2f1a0b'


@pytest.mark.parametrize('tid', [OTHER_TENANT, None, 'contoso.test'])
def test_exchange_url_keeps_a_guid_tenant_id_whatever_the_token_says(m365, tid):
    """tenant_id given as a GUID decides the InvokeCommand URL and anchor. A token whose tid is
    another tenant's (an identity endpoint that is not the tenant's) is refused before anything
    goes to Exchange Online: the token must not move a playbook's changes to another tenant.
    A tid that is missing or no GUID leaves tenant_id as it is (Exchange then judges the
    token)."""
    app = m365.add_app(secret='s12', roles=('Exchange.ManageAsApp',))
    m365.token_claims = {'tid': tid}
    exo = exo_client(m365, app)
    if tid == OTHER_TENANT:
        with pytest.raises(IdentityError) as err:
            exo.invoke('Get-TransportConfig')
        assert str(err.value) == (
            'token: the Exchange Online token is for the tenant %s (its tid claim), not for '
            'tenant_id %s; nothing was sent to Exchange Online. Check authority_host: tokens '
            'must come from the identity platform of the tenant_id tenant.'
            % (OTHER_TENANT, m365.tenant_id))
        assert not [r for r in m365.requests if r['resource'] == 'exo']
        return
    with pytest.raises(GraphError) as err:  # the emulator, like Exchange, judges the token
        exo.invoke('Get-TransportConfig')
    assert err.value.status == 401
    paths = set(r['path'] for r in m365.requests if r['resource'] == 'exo')
    assert paths == {'/adminapi/beta/%s/InvokeCommand' % m365.tenant_id}


def test_exchange_401_with_the_rbac_words_in_user_data_still_refreshes_the_token(m365):
    """A 401 without a challenge whose cmdlet error quotes a name holding "not allowed to call"
    is no RBAC refusal: the token is renewed once and the call goes through."""
    app = m365.add_app(secret='s13', roles=('Exchange.ManageAsApp',))
    exo = exo_client(m365, app)
    exo.invoke('Get-TransportConfig')
    m365.clear_log()
    m365.inject('POST', r'/InvokeCommand$', 401, count=1, body={'error': {
        'code': 'Unauthorized', 'message': 'Error executing cmdlet', 'details': [{
            'message': "Ex6F9304|Microsoft.Exchange.Configuration.Tasks."
                       "ManagementObjectNotFoundException|The operation couldn't be performed "
                       "because object 'not allowed to call Set-CASMailbox' couldn't be found."}]}})
    assert exo.invoke('Get-TransportConfig')[0]['Identity'] == 'Transport Settings'
    assert [r['resource'] for r in m365.requests] == ['exo', 'token', 'exo']


def test_exchange_403_of_nul_bytes_reads_as_their_count(m365):
    """Exchange answers some refusals 403 with a body of NUL bytes (graph2otel's live notes):
    the message says so in words, not as a wall of \\u0000."""
    app = m365.add_app(secret='s14', roles=('Exchange.ManageAsApp',))
    exo = exo_client(m365, app)
    m365.inject('POST', r'/InvokeCommand$', 403, count=1, body=b'\0' * 5000,
                content_type='application/octet-stream')
    with pytest.raises(GraphError) as err:
        exo.invoke('Get-TransportConfig')
    text = str(err.value)
    assert 'answered 403 NonJsonResponse to POST ' in text and '5000 NUL bytes' in text, text
    assert '\\u0000' not in text and 'Exchange.ManageAsApp' in text


def test_exchange_token_for_another_resource_names_exo_token_resource(m365):
    """A token of the wrong audience (exo_token_resource naming Graph, or exo_endpoint moved to
    another host without it) gets Exchange's 401 InvalidAudienceForResource: the task says
    which option to set."""
    app = m365.add_app(secret='s15', roles=('Exchange.ManageAsApp',))
    exo = exo_client(m365, app, exo_token_resource='https://graph.microsoft.com')
    with pytest.raises(GraphError) as err:
        exo.invoke('Get-TransportConfig')
    text = str(err.value)
    assert 'answered 401 InvalidAudienceForResource' in text, text
    assert ("-- the token is for https://graph.microsoft.com, which this Exchange Online "
            "endpoint does not take: set exo_token_resource to the resource of exo_endpoint "
            "(for the clouds of the README's table, its root), or leave both to cloud") in text
