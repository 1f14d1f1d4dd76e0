"""The lab's Microsoft 365 emulator, driven by real msal and real requests (nothing patched)."""

import datetime
import json
import os
import re
import signal
import smtplib
import ssl
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor

import jwt
import msal
import pytest
import requests

from tests.lab.m365.client import session_for
from tests.lab.m365.emulator import M365Emulator, make_client_certificate

ALL_ROLES = ('Domain.ReadWrite.All', 'User.Read.All', 'MailboxSettings.Read')
GRAPH_SCOPE = ['https://graph.microsoft.com/.default']
REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


@pytest.fixture(scope='module')
def client_cert():
    return make_client_certificate()


def msal_app(emu, client_id, credential, tenant=None):
    return msal.ConfidentialClientApplication(
        client_id, client_credential=credential,
        authority='%s/%s' % (emu.url, tenant or emu.tenant_id),
        instance_discovery=False, http_client=session_for(emu))


def token(emu, app, scope=None):
    result = msal_app(emu, app['client_id'], app['secret']).acquire_token_for_client(
        scope or GRAPH_SCOPE)
    assert 'access_token' in result, result
    return result['access_token']


class Graph:
    def __init__(self, emu, app):
        self.emu = emu
        self.session = session_for(emu)
        self.session.headers['Authorization'] = 'Bearer ' + token(emu, app)

    def __getattr__(self, method):
        def call(path, **kwargs):
            url = path if path.startswith('https://') else self.emu.url + '/v1.0' + path
            return self.session.request(method.upper(), url, timeout=10, **kwargs)
        return call


def assert_graph_error(r, status, code):
    assert r.status_code == status, r.text
    err = r.json()['error']
    assert err['code'] == code
    assert set(err['innerError']) == {'date', 'request-id', 'client-request-id'}
    assert r.headers['request-id'] == err['innerError']['request-id']
    assert 'Date' in r.headers
    return err


# -- identity ---------------------------------------------------------------------------------
def test_msal_gets_tokens_with_secret_and_certificate(emu, client_cert):
    cert_pem, key_pem, thumb = client_cert
    app = emu.add_app(certificate_pem=cert_pem, roles=ALL_ROLES)
    # (the JWT header the emulator logs: alg, thumbprint, certificates in x5c)
    creds = {
        'secret': (app['secret'], None),
        'cert RS256 x5t': ({'private_key': key_pem, 'thumbprint': thumb}, ('RS256', 'x5t', 0)),
        # a given thumbprint is SHA-1 on every msal, also with the certificate (then as x5c)
        'cert RS256 x5t x5c': ({'private_key': key_pem, 'thumbprint': thumb,
                                'public_certificate': cert_pem}, ('RS256', 'x5t', 1)),
    }
    if tuple(int(n) for n in msal.__version__.split('.')[:2]) >= (1, 35):
        # msal 1.35 (PR #835): no thumbprint, the certificate: its SHA-256 thumbprint, PS256
        creds['cert PS256 x5t#S256'] = ({'private_key': key_pem, 'public_certificate': cert_pem},
                                        ('PS256', 'x5t#S256', 1))
    for label, (cred, header) in creds.items():
        for tenant in (emu.tenant_id, emu.tenant_domain):
            emu.clear_log()
            result = msal_app(emu, app['client_id'], cred, tenant).acquire_token_for_client(
                GRAPH_SCOPE)
            assert result.get('token_type') == 'Bearer', (label, result)
            [request] = [e for e in emu.requests if e['resource'] == 'token']
            assert (request['client_id'], request['status']) == (app['client_id'], 200)
            if header is None:
                assert 'assertion' not in request
            else:
                logged = request['assertion']
                assert (logged['alg'], logged['x5c']) == (header[0], header[2]), (label, logged)
                assert [k for k in ('x5t', 'x5t#S256') if logged[k]] == [header[1]], label
            assert result['expires_in'] == 3600
            claims = jwt.decode(result['access_token'], options={'verify_signature': False})
            assert claims['aud'] == 'https://graph.microsoft.com'
            assert claims['tid'] == emu.tenant_id and claims['appid'] == app['client_id']
            assert claims['roles'] == list(ALL_ROLES)
            assert claims['appidacr'] == ('1' if label == 'secret' else '2')
            assert claims['exp'] - claims['iat'] == 3600
    # The access token verifies against the published JWKS.
    s = session_for(emu)
    conf = s.get('%s/%s/v2.0/.well-known/openid-configuration' % (emu.url, emu.tenant_domain)
                 ).json()
    assert conf['token_endpoint'] == '%s/%s/oauth2/v2.0/token' % (emu.url, emu.tenant_id)
    assert conf['issuer'] == '%s/%s/v2.0' % (emu.url, emu.tenant_id)
    key = jwt.PyJWKSet(s.get(conf['jwks_uri']).json()['keys']).keys[0]
    jwt.decode(result['access_token'], key.key, algorithms=['RS256'],
               audience='https://graph.microsoft.com')


def test_token_errors_are_aad_shaped(emu, client_cert):
    cert_pem, key_pem, thumb = client_cert
    app = emu.add_app(roles=ALL_ROLES)  # no certificate registered

    def failing(client_id, cred):
        result = msal_app(emu, client_id, cred).acquire_token_for_client(GRAPH_SCOPE)
        assert 'access_token' not in result
        assert set(result) >= {'error', 'error_description', 'error_codes', 'timestamp',
                               'trace_id', 'correlation_id', 'error_uri'}
        assert result['error_description'].startswith('AADSTS%d: ' % result['error_codes'][0])
        return result

    assert failing(app['client_id'], 'wrong')['error_codes'] == [7000215]
    r = failing(app['client_id'], {'private_key': key_pem, 'thumbprint': thumb})
    assert r['error_codes'] == [700027] and r['error'] == 'invalid_client'
    assert thumb in r['error_description']
    r = failing('00000000-1111-2222-3333-444444444444', 'whatever')
    assert r['error_codes'] == [700016] and r['error'] == 'unauthorized_client'
    # A certificate registered on the app, but the assertion signed with another key.
    other_cert, other_key, dummy = make_client_certificate('other')
    emu.add_app(client_id=app['client_id'], secret=app['secret'], certificate_pem=cert_pem)
    r = failing(app['client_id'], {'private_key': other_key, 'thumbprint': thumb})
    assert r['error_codes'] == [700027] and 'signature validation' in r['error_description']
    assert other_cert
    s = session_for(emu)
    form = {'grant_type': 'client_credentials', 'client_id': app['client_id'],
            'client_secret': app['secret']}
    r = s.post(emu.url + '/not-a-tenant.example/oauth2/v2.0/token',
               data=dict(form, scope=GRAPH_SCOPE[0]))
    assert r.status_code == 400 and r.json()['error_codes'] == [90002]
    r = s.post('%s/%s/oauth2/v2.0/token' % (emu.url, emu.tenant_id),
               data=dict(form, scope='https://graph.microsoft.com/User.Read'))
    assert r.status_code == 400 and r.json()['error'] == 'invalid_scope'
    assert r.json()['error_codes'] == [1002012]
    # The three scope forms the client may use, and the audience each token carries.
    for scope, aud in ((emu.url + '/.default', emu.url),
                       ('https://outlook.office365.com/.default', 'https://outlook.office365.com')):
        r = s.post('%s/%s/oauth2/v2.0/token' % (emu.url, emu.tenant_id),
                   data=dict(form, scope=scope))
        assert r.status_code == 200, r.text
        assert set(r.json()) == {'token_type', 'expires_in', 'ext_expires_in', 'access_token'}
        assert jwt.decode(r.json()['access_token'], options={'verify_signature': False}
                          )['aud'] == aud


# -- Graph: domains ---------------------------------------------------------------------------
def test_domain_add_verify_through_real_dns(bind, tmp_path):
    with M365Emulator(workdir=str(tmp_path / 'm365'),
                      dns_server=('127.0.0.1', bind.port)) as emu:
        g = Graph(emu, emu.add_app(roles=ALL_ROLES))
        r = g.post('/domains', json={'id': 'contoso.test'})
        assert r.status_code == 201, r.text
        dom = r.json()
        assert dom['isVerified'] is False and dom['supportedServices'] == []
        assert dom['id'] == 'contoso.test' and dom['authenticationType'] == 'Managed'
        assert_graph_error(g.post('/domains', json={'id': 'contoso.test'}), 400,
                           'Request_BadRequest')
        records = g.get('/domains/contoso.test/verificationDnsRecords').json()['value']
        txt = [x for x in records if x['recordType'] == 'Txt'][0]
        mx = [x for x in records if x['recordType'] == 'Mx'][0]
        assert txt['@odata.type'] == '#microsoft.graph.domainDnsTxtRecord'
        assert re.fullmatch(r'MS=ms\d{8}', txt['text'])
        assert {k: txt[k] for k in ('label', 'isOptional', 'supportedService', 'ttl')} == {
            'label': 'contoso.test', 'isOptional': False, 'supportedService': 'Email',
            'ttl': 3600}
        assert mx['mailExchange'] == txt['text'][3:] + '.msv1.invalid'
        # Email needs a verified domain; verify needs the TXT in DNS.
        assert_graph_error(g.patch('/domains/contoso.test', json={'supportedServices': ['Email']}),
                           400, 'Request_BadRequest')
        err = assert_graph_error(g.post('/domains/contoso.test/verify'), 400, 'Request_BadRequest')
        assert err['message'].startswith('Domain verification failed with the following error:')
        assert bind.update('contoso.test', lambda u: u.add('contoso.test.', 300, 'TXT',
                                                           '"%s"' % txt['text'])) == 'NOERROR'
        r = g.post('/domains/contoso.test/verify')
        assert r.status_code == 200, r.text
        assert r.json()['isVerified'] is True and r.json()['isRoot'] is True
        assert r.json()['availabilityStatus'] == 'AvailableImmediately'
        assert_graph_error(g.post('/domains/contoso.test/verify'), 400, 'Request_BadRequest')
        assert g.get('/domains/contoso.test/serviceConfigurationRecords').json()['value'] == []
        r = g.patch('/domains/contoso.test', json={'supportedServices': ['Email']})
        assert r.status_code == 204 and r.content == b''
        assert g.get('/domains/contoso.test').json()['supportedServices'] == ['Email']
        ids = [d['id'] for d in g.get('/domains').json()['value']]
        assert ids == [emu.tenant_domain, 'contoso.test']
        assert_graph_error(g.get('/domains/nope.test'), 404, 'Request_ResourceNotFound')


def test_service_configuration_records_shape(emu):
    emu.add_domain('contoso.example', verified=True, services=('Email',), added='2026-03-02')
    emu.add_domain('fabrikam.example', verified=True, services=('Email',))  # added today
    g = Graph(emu, emu.add_app(roles=('Domain.Read.All',)))
    value = g.get('/domains/contoso.example/serviceConfigurationRecords').json()['value']
    common = {'isOptional': False, 'supportedService': 'Email', 'ttl': 3600}
    for rec in value:
        assert set(rec) >= {'@odata.type', 'id', 'isOptional', 'label', 'recordType',
                            'supportedService', 'ttl'}
        assert {k: rec[k] for k in common} == common
    by_type = {r['recordType']: r for r in value}
    assert sorted(by_type) == ['CName', 'Mx', 'Txt']
    assert by_type['Mx']['@odata.type'] == '#microsoft.graph.domainDnsMxRecord'
    assert (by_type['Mx']['label'], by_type['Mx']['mailExchange'], by_type['Mx']['preference']) \
        == ('contoso.example', 'contoso-example.mail.protection.outlook.com', 0)
    assert by_type['Txt']['text'] == 'v=spf1 include:spf.protection.outlook.com -all'
    assert by_type['CName']['@odata.type'] == '#microsoft.graph.domainDnsCnameRecord'
    assert (by_type['CName']['label'], by_type['CName']['canonicalName']) == (
        'autodiscover.contoso.example', 'autodiscover.outlook.com')
    value = g.get('/domains/fabrikam.example/serviceConfigurationRecords').json()['value']
    mx = [r for r in value if r['recordType'] == 'Mx'][0]
    assert re.fullmatch(r'fabrikam-example\.[a-z]-v1\.mx\.microsoft', mx['mailExchange'])
    # Domain.Read.All may read but not write.
    assert_graph_error(g.post('/domains', json={'id': 'x.example'}), 403,
                       'Authorization_RequestDenied')


def test_mx_form_follows_the_date_the_domain_was_added(emu):
    """MC1048624: accepted domains provisioned after 1 July 2026 get *.mx.microsoft MX hosts
    (gradually during July); older ones keep <dashed>.mail.protection.outlook.com. The date is
    the emulator's clock when Graph adds the domain (POST /domains)."""
    g = Graph(emu, emu.add_app(roles=('Domain.ReadWrite.All',)))
    classic = re.compile(r'[a-z0-9-]+\.mail\.protection\.outlook\.com')
    new = re.compile(r'[a-z0-9-]+\.[a-z]-v1\.mx\.microsoft')

    # the lab's clock (LAB_NOW, 2026-12-01) is after the switch-over: new domains get the new form
    assert emu.clock() == datetime.datetime(2026, 12, 1, 12, 0, tzinfo=datetime.timezone.utc)
    assert new.fullmatch(emu.mx_host(emu.add_domain('today.example')))

    def added_at(name, when):
        emu.clock = lambda: datetime.datetime.fromisoformat(when)
        assert g.post('/domains', json={'id': name}).status_code == 201
        emu.domains[name].update(isVerified=True, supportedServices=['Email'])
        value = g.get('/domains/%s/serviceConfigurationRecords' % name).json()['value']
        return [r['mailExchange'] for r in value if r['recordType'] == 'Mx'][0]

    assert classic.fullmatch(added_at('before.example', '2026-06-30T23:59:59+00:00'))
    assert new.fullmatch(added_at('after.example', '2026-08-01T00:00:00+00:00'))
    assert new.fullmatch(added_at('later.example', '2026-12-01T09:00:00+00:00'))
    # emu.add_domain takes the date as a test gives it; forms can also be forced
    assert classic.fullmatch(emu.mx_host(emu.add_domain('old.example', added='2025-01-15')))
    assert new.fullmatch(emu.mx_host(emu.add_domain('forced.example', added='2025-01-15',
                                                    mx_format='mx_microsoft')))
    # July 2026: a growing share of the domains added each day, all by 1 August
    forms = [emu.mx_format_on('d%d.example' % i, datetime.datetime(
        2026, 7, day, tzinfo=datetime.timezone.utc)) for day in (2, 30) for i in range(200)]
    early, late = forms[:200].count('mx_microsoft'), forms[200:].count('mx_microsoft')
    assert 0 < early < 40 and 160 < late < 200, (early, late)
    # a domain keeps its host: the date is the day it was added, not today
    emu.clock = lambda: datetime.datetime(2027, 3, 1, tzinfo=datetime.timezone.utc)
    value = g.get('/domains/before.example/serviceConfigurationRecords').json()['value']
    assert classic.fullmatch([r for r in value if r['recordType'] == 'Mx'][0]['mailExchange'])


def test_srv_records_give_service_protocol_and_label_apart(emu):
    """resources/domaindnssrvrecord: label is the record's name, service and protocol apart
    (the DNS owner is _service._protocol.label, RFC 2782)."""
    emu.add_domain('contoso.example', verified=True, services=('OfficeCommunicationsOnline',))
    g = Graph(emu, emu.add_app(roles=('Domain.Read.All',)))
    value = g.get('/domains/contoso.example/serviceConfigurationRecords').json()['value']
    srv = [r for r in value if r['recordType'] == 'Srv']
    assert [(r['label'], r['service'], r['protocol'], r['priority'], r['weight'], r['port'],
             r['nameTarget']) for r in srv] == [
        ('contoso.example', '_sip', '_tls', 100, 1, 443, 'sipdir.online.lync.com'),
        ('contoso.example', '_sipfederationtls', '_tcp', 100, 1, 5061, 'sipfed.online.lync.com')]
    assert all(r['@odata.type'] == '#microsoft.graph.domainDnsSrvRecord' for r in srv)


# -- Graph: users -----------------------------------------------------------------------------
def test_users_paging_select_filter(emu):
    emu.generate_users(250)
    g = Graph(emu, emu.add_app(roles=ALL_ROLES))
    url, pages, seen = '/users?$top=100&$select=id,userPrincipalName,mail', [], []
    while url:
        body = g.get(url).json()
        pages.append(len(body['value']))
        seen += [u['userPrincipalName'] for u in body['value']]
        assert all(set(u) == {'id', 'userPrincipalName', 'mail'} for u in body['value'])
        url = body.get('@odata.nextLink')
    assert pages == [100, 100, 50]
    assert len(set(seen)) == 250
    default = g.get('/users').json()
    assert len(default['value']) == 100 and '@odata.nextLink' in default
    assert set(default['value'][0]) == {'businessPhones', 'displayName', 'givenName', 'jobTitle',
                                        'mail', 'mobilePhone', 'officeLocation',
                                        'preferredLanguage', 'surname', 'userPrincipalName', 'id'}
    assert_graph_error(g.get('/users?$top=1000'), 400, 'Request_UnsupportedQuery')
    upn = 'user00007@' + emu.tenant_domain
    hit = g.get('/users', params={'$filter': "userPrincipalName eq '%s'" % upn.upper()}).json()
    assert [u['userPrincipalName'] for u in hit['value']] == [upn]
    hit = g.get('/users', params={'$filter': "startswith(userPrincipalName,'user0001')",
                                  '$count': 'true'}).json()
    assert len(hit['value']) == 10
    assert g.get('/users/' + upn).json()['userPrincipalName'] == upn


def test_mailbox_settings_and_license_details(emu):
    dom = 'contoso.example'
    emu.add_domain(dom, verified=True, services=('Email',))
    emu.add_user('ann@' + dom, licensed='SPE_E3')
    emu.add_user('bob@' + dom, licensed=True, mailbox=False)
    emu.add_user('cid@' + dom, licensed=False, mailbox=False)
    g = Graph(emu, emu.add_app(roles=ALL_ROLES))
    ann = g.get('/users/ann@' + dom + '/mailboxSettings')
    assert ann.status_code == 200
    assert set(ann.json()) >= {'archiveFolder', 'timeZone', 'automaticRepliesSetting',
                               'language', 'workingHours', 'userPurpose'}
    err = assert_graph_error(g.get('/users/bob@%s/mailboxSettings' % dom), 404,
                             'MailboxNotEnabledForRESTAPI')
    assert err['message']
    assert_graph_error(g.get('/users/nobody@%s/mailboxSettings' % dom), 404,
                       'Request_ResourceNotFound')
    lic = g.get('/users/ann@%s/licenseDetails' % dom).json()['value']
    assert [x['skuPartNumber'] for x in lic] == ['SPE_E3']
    assert lic[0]['skuId'] == '05e9a617-0261-4cee-bb44-138d3ef5d965'
    plan = [p for p in lic[0]['servicePlans'] if p['servicePlanName'] == 'EXCHANGE_S_ENTERPRISE']
    assert set(plan[0]) == {'servicePlanId', 'servicePlanName', 'provisioningStatus', 'appliesTo'}
    assert [x['skuPartNumber'] for x in g.get('/users/bob@%s/licenseDetails' % dom
                                              ).json()['value']] == ['EXCHANGESTANDARD']
    assert g.get('/users/cid@%s/licenseDetails' % dom).json()['value'] == []
    proxies = g.get('/users/ann@%s?$select=proxyAddresses' % dom).json()['proxyAddresses']
    assert proxies == ['SMTP:ann@' + dom, 'smtp:ann@contosolab.mail.onmicrosoft.com']


def test_sku_catalogue_has_microsofts_plan_ids(emu):
    """Every Exchange plan of the lab's SKUs is one the collection's data decides, with the same
    servicePlanId (both from Microsoft's licensing list), and the kiosk, government and legacy
    plans are there to test against."""
    from ansible_collections.exchangeonline.mail.plugins.module_utils import _service_plans
    from tests.lab.m365.emulator import SKUS
    known = dict((name, plan_id) for name, plan_id, dummy in _service_plans.MAILBOX_PLANS)
    known.update((p[0], p[1]) for p in _service_plans.NO_MAILBOX_PLANS)
    exchange = set()
    for sku_id, plans in SKUS.values():
        for plan_id, name in plans:
            if name.startswith('EXCHANGE'):
                assert known.get(name) == plan_id, (name, plan_id)
                exchange.add(name)
    assert {'EXCHANGE_S_DESKLESS_GOV', 'EXCHANGE_S_DESKLESS', 'EXCHANGE_L_STANDARD',
            'EXCHANGE_B_STANDARD', 'EXCHANGE_S_FOUNDATION', 'EXCHANGE_S_ARCHIVE_ADDON'} <= exchange
    emu.add_user('kiosk@' + emu.tenant_domain, licensed='M365_F1_GOV')
    g = Graph(emu, emu.add_app(roles=ALL_ROLES))
    lic = g.get('/users/kiosk@%s/licenseDetails' % emu.tenant_domain).json()['value']
    assert (lic[0]['skuPartNumber'], lic[0]['skuId']) == (
        'M365_F1_GOV', '2a914830-d700-444a-b73c-e3f31980d833')
    assert {'servicePlanId': '88f4d7ef-a73b-4246-8047-516022144c9f',
            'servicePlanName': 'EXCHANGE_S_DESKLESS_GOV', 'provisioningStatus': 'Success',
            'appliesTo': 'User'} in lic[0]['servicePlans']


def test_403_without_role_and_401_on_bad_tokens(emu):
    emu.add_user('ann@' + emu.tenant_domain)
    g = Graph(emu, emu.add_app(roles=('Domain.Read.All',)))
    err = assert_graph_error(g.get('/users'), 403, 'Authorization_RequestDenied')
    assert err['message'] == 'Insufficient privileges to complete the operation.'
    assert_graph_error(g.get('/users/ann@%s/mailboxSettings' % emu.tenant_domain), 403,
                       'ErrorAccessDenied')
    assert g.get('/domains').status_code == 200
    emu.expire_tokens()
    r = g.get('/domains')
    err = assert_graph_error(r, 401, 'InvalidAuthenticationToken')
    assert 'expired' in err['message'] and r.headers['WWW-Authenticate'].startswith('Bearer ')
    s = session_for(emu)
    assert_graph_error(s.get(emu.url + '/v1.0/domains'), 401, 'InvalidAuthenticationToken')
    forged = jwt.encode({'aud': 'https://graph.microsoft.com', 'tid': emu.tenant_id,
                         'exp': time.time() + 60, 'roles': ['Domain.ReadWrite.All']},
                        make_client_certificate()[1], algorithm='RS256')
    assert_graph_error(s.get(emu.url + '/v1.0/domains',
                             headers={'Authorization': 'Bearer ' + forged}),
                       401, 'InvalidAuthenticationToken')
    app = emu.add_app(roles=ALL_ROLES)
    exo = token(emu, app, ['https://outlook.office365.com/.default'])
    err = assert_graph_error(s.get(emu.url + '/v1.0/domains',
                                   headers={'Authorization': 'Bearer ' + exo}),
                             401, 'InvalidAuthenticationToken')
    assert 'audience' in err['message']
    # A new token after expiry works again (the client's refresh path).
    g2 = Graph(emu, app)
    assert g2.get('/domains').status_code == 200


# -- $batch, faults, latency, log -------------------------------------------------------------
def test_batch_with_injected_inner_429(emu):
    emu.add_user('ann@' + emu.tenant_domain)
    emu.add_user('bob@' + emu.tenant_domain)
    g = Graph(emu, emu.add_app(roles=ALL_ROLES))
    emu.clear_log()
    emu.inject('GET', r'^/v1\.0/users/bob@[^/]+/mailboxSettings$', 429, retry_after=7)
    reqs = [{'id': str(i), 'method': 'GET', 'url': '/users/%s@%s/mailboxSettings'
             % (who, emu.tenant_domain)} for i, who in enumerate(('ann', 'bob', 'zed'), 1)]
    reqs.append({'id': '4', 'method': 'GET', 'url': '/domains'})
    r = g.post('/$batch', json={'requests': reqs})
    assert r.status_code == 200, r.text
    out = {x['id']: x for x in r.json()['responses']}
    assert [out[i]['status'] for i in '1234'] == [200, 429, 404, 200]
    assert out['2']['headers']['Retry-After'] == '7'
    assert out['2']['body']['error']['code'] == 'TooManyRequests'
    assert set(out['1']) == {'id', 'status', 'headers', 'body'}
    # The fault was used up: the retry of the item succeeds.
    r = g.post('/$batch', json={'requests': [reqs[1]]})
    assert r.json()['responses'][0]['status'] == 200
    log = [e for e in emu.requests if e['path'] == '/v1.0/$batch']
    assert len(log) == 2 and [i['status'] for i in log[0]['batch_items']] == [200, 429, 404, 200]
    r = g.post('/$batch', json={'requests': [dict(reqs[3], id=str(i)) for i in range(21)]})
    assert_graph_error(r, 400, 'BadRequest')


def test_injected_top_level_fault_latency_and_log(emu):
    g = Graph(emu, emu.add_app(roles=ALL_ROLES))
    emu.clear_log()
    emu.inject('GET', r'^/v1\.0/domains$', 503, count=2, retry_after=1)
    for dummy in range(2):
        r = g.get('/domains')
        assert_graph_error(r, 503, 'serviceNotAvailable')
        assert r.headers['Retry-After'] == '1'
    assert g.get('/domains').status_code == 200
    emu.inject('POST', r'/oauth2/v2.0/token$', 429, retry_after=2)
    s = session_for(emu)
    r = s.post('%s/%s/oauth2/v2.0/token' % (emu.url, emu.tenant_id), data={})
    assert r.status_code == 429 and r.headers['Retry-After'] == '2'
    assert 'error_codes' in r.json()
    emu.latency = 0.2
    started = time.monotonic()
    assert g.get('/domains', headers={'client-request-id': 'abc'}).headers[
        'client-request-id'] == 'abc'
    assert time.monotonic() - started >= 0.2
    emu.latency = 0.0
    assert [e['status'] for e in emu.requests] == [503, 503, 200, 429, 200]
    assert {e['resource'] for e in emu.requests} == {'graph', 'token'}
    assert set(emu.requests[0]) == {'time', 'method', 'path', 'query', 'status', 'client_id',
                                    'resource', 'batch_items'}
    emu.clear_log()
    assert emu.requests == []


def test_standalone_process(tmp_path):
    state = tmp_path / 'state'
    state.mkdir()
    proc = subprocess.Popen([sys.executable, '-m', 'tests.lab.m365.emulator', '--port', '0',
                             '--state-dir', str(state), '--dns-server', '127.0.0.1:53',
                             '--users', '3', '--smtp'], cwd=REPO)
    try:
        deadline = time.monotonic() + 20
        while not (state / 'emulator.json').exists():
            assert proc.poll() is None and time.monotonic() < deadline
            time.sleep(0.05)
        info = json.loads((state / 'emulator.json').read_text())
        s = requests.Session()
        s.trust_env = False
        s.verify = info['ca_path']
        cca = msal.ConfidentialClientApplication(
            info['app']['client_id'], client_credential=info['app']['secret'],
            authority='%s/%s' % (info['url'], info['tenant_id']), instance_discovery=False,
            http_client=s)
        result = cca.acquire_token_for_client(GRAPH_SCOPE)
        r = s.get(info['url'] + '/v1.0/users',
                  headers={'Authorization': 'Bearer ' + result['access_token']})
        # --users 3, and the two users whose primary address is not their UPN
        users = r.json()['value']
        assert len(users) == 5
        mails = {u['mail'] for u in users}
        assert mails >= {'adele.vance@fabrikamlab.test', 'alex.wilber@fabrikamlab.test'}
        assert all(u['userPrincipalName'].endswith('.onmicrosoft.com') for u in users), users
        # --smtp: the submission listener answers, offering AUTH only after STARTTLS.
        with smtplib.SMTP('127.0.0.1', info['smtp']['port'], timeout=10) as smtp:
            smtp.ehlo()
            assert smtp.has_extn('starttls') and not smtp.has_extn('auth')
            smtp.starttls(context=ssl.create_default_context(cafile=info['ca_path']))
            smtp.ehlo()
            assert 'XOAUTH2' in smtp.esmtp_features['auth']
        assert set(info['smtp']) >= {'port', 'wrong_name_port', 'implicit_port'}
    finally:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=10) == 0


def test_faults_and_log_are_thread_safe(emu):
    g = Graph(emu, emu.add_app(roles=ALL_ROLES))
    emu.clear_log()
    emu.inject(None, r'^/v1\.0/domains$', 429, count=7, retry_after=1)

    def one(dummy):
        s = session_for(emu)
        return s.get(emu.url + '/v1.0/domains', timeout=10,
                     headers={'Authorization': g.session.headers['Authorization']}).status_code
    with ThreadPoolExecutor(max_workers=8) as pool:
        statuses = list(pool.map(one, range(40)))
    assert statuses.count(429) == 7 and statuses.count(200) == 33
    assert sorted(e['status'] for e in emu.requests) == sorted(statuses)
