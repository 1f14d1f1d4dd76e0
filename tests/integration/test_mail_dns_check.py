"""mail_dns_check against a real BIND 9 (and Knot DNS), driven by real ansible-playbook runs.

The lab zone's NS is ns1.contoso.test with A 127.0.0.1: the check must find it there and ask it
on the lab's port. Assertions are about what a user reads: the per-check, per-server results and
the task's message.
"""

import threading
import time

import pytest

from tests.integration.conftest import IDN_ZONE, ZONE, dns_args, task
from tests.lab.bind import free_port

APEX = ZONE + '.'
EXO_HOST = 'contoso-test.mail.protection.outlook.com.'
LEGACY_MX = '10 mail.contoso.test.'
DKIM = {
    'selector1': 'selector1-contoso-test._domainkey.contosolab.onmicrosoft.com',
    'selector2': 'selector2-contoso-test._domainkey.contosolab.onmicrosoft.com',
}
VERIFICATION = 'MS=ms12345678'
DMARC = 'v=DMARC1; p=quarantine; rua=mailto:dmarc@contoso.test'
ALL_CHECKS = ['mx', 'autodiscover', 'spf', 'dmarc', 'dkim', 'verification']


def check(bind, **args):
    args.setdefault('domain', ZONE)
    return task('mail_dns_check', dns_args(bind, **args))


def serverless_check(**args):
    """A check given only nameservers/resolvers: no server, no TSIG key."""
    args.setdefault('domain', ZONE)
    return task('mail_dns_check', args)


def apply(bind, **args):
    return task('mail_dns', dns_args(bind, domain=ZONE, **args))


def checks_of(result):
    return dict((c['name'], c) for c in result['checks'])


def test_finds_the_ns_and_reports_what_is_missing_before_the_migration(server, play):
    run = play([check(server, pattern='full')])
    r = run.last['result']
    assert run.last['status'] == 'failed'
    assert r['ok'] is False and r['changed'] is False
    # NS discovery: ns1.contoso.test, its A record from the server, asked on the lab's port.
    assert r['zone'] == APEX
    assert r['servers'] == [{'name': 'ns1.contoso.test', 'host': 'ns1.contoso.test.',
                             'address': '127.0.0.1', 'port': server.port, 'kind': 'authoritative',
                             'reachable': True}]
    checks = checks_of(r)
    assert [c['name'] for c in r['checks']] == ['mx', 'autodiscover', 'spf', 'dmarc']
    mx = checks['mx']['servers']['ns1.contoso.test']
    assert mx['status'] == 'fail' and mx['found'] == [LEGACY_MX]
    assert mx['message'] == ('found 10 mail.contoso.test.; the Exchange Online MX %s is missing'
                             % EXO_HOST)
    assert checks['mx']['expected'] == 'only %s' % EXO_HOST
    assert checks['autodiscover']['message'] == (
        'no CNAME at autodiscover.contoso.test.; expected one to autodiscover.outlook.com.')
    assert checks['spf']['status'] == 'fail'
    assert 'include:spf.protection.outlook.com is missing' in checks['spf']['message']
    assert checks['dmarc']['status'] == 'warn'
    # The message names the checks, the server, what was found and what to do.
    assert r['msg'].startswith('contoso.test.: 3 check(s) failed. mx failed on ')
    assert 'mx failed on ns1.contoso.test: found 10 mail.contoso.test.' in r['msg']
    assert 'autodiscover failed on ns1.contoso.test: no CNAME' in r['msg']
    assert 'set wait_timeout, or repeat the task with until and retries' in r['msg']
    assert 'exchangeonline.mail.mail_dns' in r['msg']
    # In one line, for a wait in rounds: the server that fails and what it serves.
    legacy_spf = 'v=spf1 ip4:192.0.2.0/24 include:_spf.mailhost.test ~all'
    assert r['behind'] == {'ns1.contoso.test': [
        'MX 10 mail.contoso.test.', 'no autodiscover CNAME', 'SPF "%s"' % legacy_spf]}
    assert r['summary'] == ('1 of 1 server behind: ns1.contoso.test serves MX 10 '
                            'mail.contoso.test., no autodiscover CNAME, SPF "%s"' % legacy_spf)
    # Read-only: nothing but queries reached the server.
    assert server.updates_seen() == []


@pytest.mark.parametrize('pattern, primary', [('full', 'legacy'), ('partial', 'legacy'),
                                              ('partial', 'exo'), ('legacy_forward', 'legacy')])
def test_every_check_passes_after_mail_dns(server, play, pattern, primary):
    values = dict(pattern=pattern, primary=primary, dkim=DKIM, verification_txt=VERIFICATION,
                  dmarc=DMARC)
    run = play([apply(server, **values), check(server, **values)])
    assert run.task('mail_dns')['result']['changed'] is True
    result = run.task('mail_dns_check')
    r = result['result']
    assert result['status'] == 'ok', r.get('msg')
    assert r['ok'] is True and r['changed'] is False and r['rounds'] == 1
    assert r['behind'] == {} and r['summary'] == '1 of 1 server serves the expected records'
    assert [(c['name'], c['status']) for c in r['checks']] == [(n, 'pass') for n in ALL_CHECKS]
    spf = checks_of(r)['spf']['servers']['ns1.contoso.test']
    # include:_spf.mailhost.test and include:spf.protection.outlook.com do not resolve in the lab
    assert spf['lookups'] == 2
    assert spf['unresolved'] == ['_spf.mailhost.test', 'spf.protection.outlook.com']
    assert checks_of(r)['dkim']['servers']['ns1.contoso.test']['found'] == dict(
        (k, v + '.') for k, v in DKIM.items())
    if pattern == 'full':
        # check mode changes nothing in a read-only module: same verdict
        run = play([check(server, **values)], check=True)
        assert run.last['status'] == 'ok' and run.last['result']['ok'] is True


def test_duplicate_spf_fails_the_spf_check_only(bind, play):
    run = play([apply(bind, pattern='full')])
    assert run.last['result']['changed'] is True
    assert bind.update(ZONE, lambda u: u.add(APEX, 3600, 'TXT', '"v=spf1 mx -all"')) == 'NOERROR'
    run = play([check(bind, pattern='full')])
    r = run.last['result']
    assert run.last['status'] == 'failed'
    statuses = dict((c['name'], c['status']) for c in r['checks'])
    assert statuses == {'mx': 'pass', 'autodiscover': 'pass', 'spf': 'fail', 'dmarc': 'warn'}
    spf = checks_of(r)['spf']
    assert spf['message'].startswith('2 v=spf1 records (v=spf1 ip4:192.0.2.0/24')
    assert 'v=spf1 mx -all' in spf['servers']['ns1.contoso.test']['found']
    assert 'spf failed on ns1.contoso.test: 2 v=spf1 records' in r['msg']


def test_spf_lookups_are_counted_through_in_zone_includes(bind, play):
    heavy = 'v=spf1 ' + ' '.join('a:h%d.contoso.test' % i for i in range(10)) + ' -all'

    def build(u):
        u.replace(APEX, 3600, 'TXT', '"v=spf1 include:_spf.contoso.test '
                                     'include:spf.protection.outlook.com -all"')
        u.add('_spf.' + APEX, 3600, 'TXT', '"%s"' % heavy)
    assert bind.update(ZONE, build) == 'NOERROR'
    run = play([check(bind, checks=['spf'])])
    r = run.last['result']
    spf = checks_of(r)['spf']['servers']['ns1.contoso.test']
    assert spf['status'] == 'fail'
    assert spf['lookups'] == 12
    assert spf['unresolved'] == ['spf.protection.outlook.com']
    assert '12 DNS-querying terms, over the limit of 10' in spf['message']


def test_waits_until_the_records_are_served(bind, play, tmp_path):
    box = {}

    def waiting_check():
        box['run'] = play([check(bind, pattern='full', wait_timeout=10, interval=0.5,
                                 max_interval=1)], workdir=str(tmp_path / 'check'))
    thread = threading.Thread(target=waiting_check)
    thread.start()
    # Apply only once the first round has asked (named logs every query).
    deadline = time.monotonic() + 30
    while 'query: autodiscover.contoso.test IN CNAME' not in bind.log_text():
        assert time.monotonic() < deadline, 'the check never asked the server'
        time.sleep(0.05)
    time.sleep(1)
    applied = play([apply(bind, pattern='full')], workdir=str(tmp_path / 'apply'))
    thread.join(60)
    assert applied.last['result']['changed'] is True
    r = box['run'].last['result']
    assert box['run'].last['status'] == 'ok', r.get('msg')
    assert r['ok'] is True
    assert r['rounds'] > 1
    assert 1 < r['elapsed'] < 10


@pytest.mark.parametrize('protocol', ['udp', 'tcp'])
def test_an_unreachable_nameserver_fails_with_a_clear_message(bind, play, protocol):
    closed = free_port()
    good, bad = '127.0.0.1:%d' % bind.port, '127.0.0.1:%d' % closed
    run = play([apply(bind, pattern='full'),
                check(bind, pattern='full', protocol=protocol, nameservers=[good, bad])])
    result = run.task('mail_dns_check')
    r = result['result']
    assert result['status'] == 'failed'
    assert 'zone' not in r  # explicit servers: no NS discovery
    assert [(s['name'], s['reachable']) for s in r['servers']] == [(good, True), (bad, False)]
    refused = 'connection refused by 127.0.0.1 port %d: no DNS server listens there' % closed
    for c in r['checks']:
        assert c['servers'][bad] == {'status': 'fail', 'found': None, 'message': refused}
        assert c['servers'][good]['status'] in ('pass', 'warn')
    assert ('mx failed on %s: %s' % (bad, refused)) in r['msg']
    assert 'check nameservers, port and firewalls' in r['msg']
    # the one-line summary gives the reason once, not per check
    assert r['summary'] == '1 of 2 servers behind: %s: %s' % (bad, refused)


def test_resolvers_and_named_nameservers(bind, play):
    run = play([apply(bind, pattern='full'),
                check(bind, pattern='full', nameservers=['ns1.contoso.test'],
                      resolvers=['127.0.0.1:%d' % bind.port]),
                serverless_check(pattern='full', resolvers=['127.0.0.1:%d' % bind.port])])
    named, resolver_only = [r for r in run.results if r['task'] == 'mail_dns_check']
    assert named['status'] == 'ok', named['result'].get('msg')
    servers = named['result']['servers']
    # the name server name is resolved through server (in-zone A) and asked on port
    assert [(s['name'], s['address'], s['port'], s['kind']) for s in servers] == [
        ('ns1.contoso.test', '127.0.0.1', bind.port, 'authoritative'),
        ('127.0.0.1:%d' % bind.port, '127.0.0.1', bind.port, 'resolver')]
    mx = checks_of(named['result'])['mx']
    assert sorted(mx['servers']) == ['127.0.0.1:%d' % bind.port, 'ns1.contoso.test']
    assert resolver_only['status'] == 'ok', resolver_only['result'].get('msg')
    assert [s['kind'] for s in resolver_only['result']['servers']] == ['resolver']


def test_idn_domain_and_input_errors(bind, play):
    run = play([
        check(bind, domain=u'b\u00fccher.test', pattern='legacy_forward', checks=['mx']),
        check(bind, checks=['dkim']),
        serverless_check(pattern='full'),
    ])
    idn, no_dkim, nothing = [r for r in run.results if r['task'] == 'mail_dns_check']
    assert idn['status'] == 'ok', idn['result'].get('msg')
    assert idn['result']['domain'] == IDN_ZONE + '.'
    assert idn['result']['checks'][0]['servers']['ns1.xn--bcher-kva.test']['found'] == [
        '10 mx.xn--bcher-kva.test.']
    assert no_dkim['status'] == 'failed'
    assert no_dkim['result']['msg'] == ('input: checks has dkim, but there is no expected value '
                                        'for it: give dkim (or records)')
    assert nothing['status'] == 'failed'
    assert 'one of the following is required: server, nameservers, resolvers' in \
        nothing['result']['msg']
