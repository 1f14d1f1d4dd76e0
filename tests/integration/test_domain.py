"""domain and domain_info with real msal and requests against the lab's Microsoft 365 emulator.

The emulator verifies a domain by asking the lab BIND for its TXT record through real DNS.
"""

import datetime
import os
import re
import stat

from tests.integration.conftest import ZONE, dns_args, m365_args

WRITE = ('Domain.ReadWrite.All',)
UNKNOWN_APP = '00000000-0000-0000-0000-000000000001'


def task(module, args, name=None, **extra):
    t = {'name': name or module, 'exchangeonline.mail.%s' % module: args,
         'register': 'out', 'ignore_errors': True}
    t.update(extra)
    return t


def test_whole_domain_flow_in_one_playbook(bind, m365, play):
    """add -> verification TXT -> publish in BIND -> verify -> service records -> full pattern.

    The domain is added in December 2026, so Graph gives it a *.mx.microsoft MX host
    (MC1048624): what lands in DNS is Graph's host, never the computed classic one."""
    m365.clock = lambda: datetime.datetime(2026, 12, 1, 9, 0, tzinfo=datetime.timezone.utc)
    app = m365.add_app(secret='lab-secret-1', roles=WRITE)
    m = m365_args(m365, app)
    services = ['Email', 'OfficeCommunicationsOnline']
    tasks = [
        task('domain', dict(m, domain=ZONE, verify=False), 'add'),
        task('domain_info', dict(m, domain=ZONE), 'expected before verification'),
        task('mail_dns', dns_args(bind, domain=ZONE, pattern='none',
                                  verification_txt='{{ out.verification_txt }}'),
             'publish verification TXT'),
        task('domain', dict(m, domain=ZONE, supported_services=services), 'verify'),
        task('domain_info', dict(m, domain=ZONE, services=['OfficeCommunicationsOnline']),
             'skype records'),
        task('domain_info', dict(m, domain=ZONE), 'expected records'),
        task('mail_dns', dns_args(bind, domain=ZONE, pattern='full',
                                  records='{{ out.records }}'), 'apply full'),
    ]
    run = play(tasks)
    for r in run.results:
        assert r['status'] == 'ok', (r['task'], r['result'].get('msg'), run.stderr[-2000:])
    added = run.task('add')['result']
    assert added['changed'] is True and added['actions'] == ['add']
    txt = run.task('expected before verification')['result']['verification_txt']
    assert txt.startswith('MS=ms')
    assert txt in ''.join(bind.rrset(ZONE, 'TXT')[1])
    verified = run.task('verify')['result']
    assert verified['actions'] == ['verify', 'set supported services']
    assert verified['domain']['is_verified'] is True
    assert verified['domain']['supported_services'] == services
    records = run.task('expected records')['result']['records']
    mx = [r for r in records if r['type'] == 'MX'][0]
    assert mx['values'] == ['0 %s' % m365.mx_host(ZONE)]
    assert re.fullmatch(r'0 contoso-test\.[a-z]-v1\.mx\.microsoft\.', bind.rrset(ZONE, 'MX')[1][0])
    assert bind.rrset(ZONE, 'MX')[1] == [v.rstrip('.') + '.' for v in mx['values']]
    assert bind.rrset('autodiscover.' + ZONE, 'CNAME')[1] == ['autodiscover.outlook.com.']
    # SRV records at _service._protocol.<domain> (RFC 2782), each its own rrset
    skype = run.task('skype records')['result']['records']
    assert [(r['name'], r['type'], r['values']) for r in skype if r['type'] == 'SRV'] == [
        ('_sip._tls.contoso.test.', 'SRV', ['100 1 443 sipdir.online.lync.com']),
        ('_sipfederationtls._tcp.contoso.test.', 'SRV', ['100 1 5061 sipfed.online.lync.com'])]
    assert not [r for r in skype if r['type'] == 'MX']

    again = play([task('domain', dict(m, domain=ZONE, supported_services=services))])
    assert again.last['result']['changed'] is False


def test_domain_check_mode_changes_nothing(bind, m365, play):
    app = m365.add_app(secret='lab-secret-2', roles=WRITE)
    m = m365_args(m365, app)
    run = play([task('domain', dict(m, domain=ZONE, supported_services=['Email']))],
               check=True, diff=True)
    result = run.last['result']
    assert result['changed'] is True
    assert result['actions'] == ['add', 'verify', 'set supported services']
    assert not [r for r in m365.requests if r['method'] in ('POST', 'PATCH', 'DELETE')
                and r['resource'] == 'graph']
    info = play([task('domain_info', dict(m, domain=ZONE))])
    assert info.last['result']['exists'] is False


def test_verify_before_publishing_names_the_txt(bind, m365, play):
    app = m365.add_app(secret='lab-secret-3', roles=WRITE)
    m = m365_args(m365, app)
    run = play([task('domain', dict(m, domain=ZONE, verify=False), 'add'),
                task('domain', dict(m, domain=ZONE), 'verify')])
    result = run.task('verify')['result']
    assert run.task('verify')['status'] == 'failed'
    txt = run.task('add')['result']['verification_txt']
    assert result['phase'] == 'verify domain'
    assert txt in result['msg'] and 'publish the TXT record' in result['msg']


def test_certificate_credentials(bind, m365, play, tmp_path):
    from tests.lab.m365.emulator import make_client_certificate
    cert, key, thumb = make_client_certificate()
    app = m365.add_app(certificate_pem=cert, roles=WRITE)
    pem = tmp_path / 'app.pem'
    pem.write_text(cert + key)
    m = m365_args(m365, app, client_certificate_path=str(pem))
    m.pop('client_secret', None)
    m365.add_domain(ZONE, verified=True, services=['Email'])
    run = play([task('domain_info', dict(m, domain=ZONE))])
    assert run.last['status'] == 'ok', run.last['result'].get('msg')
    assert run.last['result']['domain']['is_verified'] is True

    other_cert, other_key, other_thumb = make_client_certificate('not-registered')
    pem.write_text(other_cert + other_key)
    run = play([task('domain_info', dict(m, domain=ZONE))])
    msg = run.last['result']['msg']
    assert run.last['status'] == 'failed'
    assert 'AADSTS700027' in msg and 'not registered' in msg and other_thumb.upper() in msg.upper()
    assert thumb  # the registered one is a different certificate


def test_wrong_secret_and_unknown_app(bind, m365, play):
    app = m365.add_app(secret='right-secret', roles=WRITE)
    run = play([task('domain_info', dict(m365_args(m365, app, client_secret='wrong-secret'),
                                         domain=ZONE), 'wrong'),
                task('domain_info', dict(m365_args(m365, dict(app, client_id=UNKNOWN_APP)),
                                         domain=ZONE), 'unknown')])
    wrong = run.task('wrong')['result']['msg']
    assert 'AADSTS7000215' in wrong and "Value (not its Secret ID)" in wrong
    assert 'AADSTS700016' in run.task('unknown')['result']['msg']
    assert 'wrong-secret' not in run.stdout + run.stderr


def test_missing_permission_is_named(bind, m365, play):
    app = m365.add_app(secret='lab-secret-4', roles=('Domain.Read.All',))
    run = play([task('domain', dict(m365_args(m365, app), domain=ZONE))])
    result = run.last['result']
    assert run.last['status'] == 'failed'
    assert result['status'] == 403 and 'Domain.ReadWrite.All' in result['msg']
    assert result['request_id']


def test_throttling_and_token_expiry_are_ridden_out(bind, m365, play, tmp_path):
    app = m365.add_app(secret='lab-secret-5', roles=WRITE)
    m365.add_domain(ZONE, verified=True, services=['Email'])
    m365.inject('GET', r'/v1\.0/domains/contoso\.test$', 429, count=3, retry_after=1)
    m365.inject('GET', r'/serviceConfigurationRecords', 503, count=2, retry_after=1)
    run = play([task('domain_info', dict(m365_args(m365, app), domain=ZONE))])
    assert run.last['status'] == 'ok', run.last['result'].get('msg')
    statuses = [r['status'] for r in m365.requests if r['resource'] == 'graph']
    assert statuses.count(429) == 3 and statuses.count(503) == 2

    # a token that expires mid-run is refreshed once
    cache = str(tmp_path / 'tokens.json')
    m = m365_args(m365, app, token_cache_path=cache)
    play([task('domain_info', dict(m, domain=ZONE))])
    assert stat.S_IMODE(os.stat(cache).st_mode) == 0o600
    m365.expire_tokens()
    m365.clear_log()
    run = play([task('domain_info', dict(m, domain=ZONE))])
    assert run.last['status'] == 'ok', run.last['result'].get('msg')
    tokens = [r for r in m365.requests if r['resource'] == 'token']
    assert len(tokens) == 1
    assert [r['status'] for r in m365.requests if r['resource'] == 'graph'][0] == 401


def test_no_secret_in_verbose_output(bind, m365, play, tmp_path):
    app = m365.add_app(secret='very-secret-value-123', roles=WRITE)
    run = play([task('domain', dict(m365_args(m365, app), domain=ZONE, verify=False))],
               verbosity=3, diff=True)
    assert run.last['status'] == 'ok', run.last['result'].get('msg')
    text = run.stdout + run.stderr
    assert 'very-secret-value-123' not in text
    assert 'eyJ' not in text  # no JWT access token either


def test_certificate_password_and_token_never_shown(bind, m365, play, tmp_path):
    from cryptography.hazmat.primitives import serialization

    from tests.lab.m365.emulator import make_client_certificate
    cert, key, dummy = make_client_certificate()
    app = m365.add_app(certificate_pem=cert, roles=WRITE)
    encrypted = serialization.load_pem_private_key(key.encode(), password=None).private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
        serialization.BestAvailableEncryption(b'pem-password-4711')).decode()
    pem = tmp_path / 'app.pem'
    pem.write_text(cert + encrypted)
    m = m365_args(m365, app, client_certificate_path=str(pem),
                  client_certificate_password='pem-password-4711')
    m.pop('client_secret', None)
    run = play([task('domain', dict(m, domain=ZONE, verify=False))], verbosity=3, diff=True)
    assert run.last['status'] == 'ok', run.last['result'].get('msg')
    text = run.stdout + run.stderr + str(run.last['result'])
    assert 'pem-password-4711' not in text
    assert 'eyJ' not in text
