"""MTA-STS (RFC 8461) and TLS-RPT (RFC 8460): mail_dns publishes them, mail_dns_check judges
them, against a real BIND 9 and the lab's HTTPS policy host (tests/lab/mta_sts_web.py), by real
ansible-playbook runs.

What a user sees: the _mta-sts and _smtp._tls records on the server, the policy a sender would
fetch, and the text of the error when the web server serves something else.
"""

import pytest

from tests.integration.conftest import ZONE, dns_args
from tests.integration.test_mail_dns import mail_dns, txt_values
from tests.lab.mta_sts_web import PolicyWeb

EXO_HOST = 'contoso-test.mail.protection.outlook.com'
FULL_POLICY = {'mode': 'enforce', 'mx': [EXO_HOST]}
TESTING_POLICY = {'mode': 'testing', 'mx': [EXO_HOST]}
# enforce, during the move: the old MX stays named until resolvers have forgotten it
MOVE_POLICY = {'mode': 'enforce', 'mx': [EXO_HOST, 'mail.contoso.test']}
STS = '_mta-sts.' + ZONE
TLSRPT = '_smtp._tls.' + ZONE


@pytest.fixture
def web(tmp_path):
    server = PolicyWeb(str(tmp_path / 'web'), [ZONE])
    server.start()
    yield server
    server.stop()


def sts_option(web, **extra):
    option = {'mode': 'enforce', 'address': web.address, 'ca_path': web.ca_path}
    option.update(extra)
    return option


def check(bind, web=None, name='mail_dns_check', **args):
    args.setdefault('domain', ZONE)
    if web is not None:
        args.setdefault('mta_sts', sts_option(web))
    return {'name': name, 'exchangeonline.mail.mail_dns_check': dns_args(bind, **args),
            'register': 'out', 'ignore_errors': True}


def by_name(result, name):
    return next(c for c in result['checks'] if c['name'] == name)


def test_policy_served_then_published_with_the_mx_of_the_run(bind, play, web, tmp_path):
    """The full pattern with mta_sts: the policy names the MX the run publishes; its id goes out
    in the same single UPDATE only because the web server serves exactly that policy. A second
    run changes nothing and fetches nothing; the check passes."""
    web.serve(ZONE, TESTING_POLICY)
    backup = str(tmp_path / 'backup.json')
    run = play([mail_dns(bind, domain=ZONE, pattern='full', backup_path=backup,
                         mta_sts=sts_option(web, mode='testing'),
                         tls_rpt=['tls-reports@' + ZONE])], diff=True)
    result = run.last['result']
    assert run.last['status'] == 'ok', result.get('msg')
    sts = result['mta_sts']
    assert sts['policy'] == ('version: STSv1\r\nmode: testing\r\nmx: %s\r\nmax_age: 604800\r\n'
                             % EXO_HOST)
    assert sts['served'] is True and sts['url'] == 'https://mta-sts.%s/.well-known/mta-sts.txt' \
        % ZONE
    assert txt_values(bind, STS) == ['v=STSv1; id=%s' % sts['id']]
    assert txt_values(bind, TLSRPT) == ['v=TLSRPTv1; rua=mailto:tls-reports@' + ZONE]
    assert result['tls_rpt'] == 'v=TLSRPTv1; rua=mailto:tls-reports@' + ZONE
    assert bind.update_messages(ZONE) == 1
    # The sender's fetch: SNI and Host are the policy host, not the address connected to.
    assert web.requests == [('mta-sts.' + ZONE, '/.well-known/mta-sts.txt')]

    again = play([mail_dns(bind, domain=ZONE, pattern='full', backup_path=backup,
                           mta_sts=sts_option(web, mode='testing'),
                           tls_rpt=['mailto:tls-reports@' + ZONE])])
    assert again.last['result']['changed'] is False, again.last['result']['plan']
    assert again.last['result']['mta_sts']['served'] is None
    assert len(web.requests) == 1

    checked = play([check(bind, web, pattern='full', checks=['mx', 'mta_sts', 'tls_rpt'],
                          mta_sts=sts_option(web, mode='testing'),
                          tls_rpt=['tls-reports@' + ZONE])])
    out = checked.last['result']
    assert out.get('ok') is True, out
    assert by_name(out, 'mta_sts')['status'] == 'pass', by_name(out, 'mta_sts')
    assert by_name(out, 'tls_rpt')['status'] == 'pass', by_name(out, 'tls_rpt')

    # Rollback takes both records away with the MX (the backup holds them as absent).
    back = play([mail_dns(bind, state='rollback', backup_path=backup)])
    assert back.last['status'] == 'ok', back.last['result'].get('msg')
    assert txt_values(bind, STS) is None and txt_values(bind, TLSRPT) is None


def test_policy_not_served_changes_nothing_and_says_what_to_serve(bind, play, web):
    serial = bind.soa_serial(ZONE)
    run = play([mail_dns(bind, domain=ZONE, pattern='full', mta_sts=sts_option(web))])
    result = run.last['result']
    assert run.last['status'] == 'failed'
    assert result['phase'] == 'mta_sts'
    msg = result['msg']
    assert 'https://mta-sts.%s/.well-known/mta-sts.txt answers HTTP 404' % ZONE in msg, msg
    assert 'Nothing was changed' in msg
    assert 'version: STSv1 | mode: enforce | mx: %s | mx: mail.contoso.test | max_age: 604800' \
        % EXO_HOST in msg, msg
    assert result['mta_sts']['served'] is False
    assert result['mta_sts']['policy'].startswith('version: STSv1\r\n')
    assert bind.soa_serial(ZONE) == serial
    assert txt_values(bind, STS) is None


def test_stale_policy_redirect_and_wrong_type_are_refused(bind, play, web):
    """The web server still serves the old policy (the legacy MX): publishing the new id would
    make senders cache the stale one. A redirect and a text/html answer are what a sender
    ignores, so they are refused too."""
    web.serve(ZONE, {'mode': 'enforce', 'mx': ['mail.contoso.test']})
    run = play([mail_dns(bind, domain=ZONE, pattern='full', mta_sts=sts_option(web))])
    assert run.last['status'] == 'failed'
    assert ('serves another policy (mode enforce, max_age 604800, mx mail.contoso.test), not this '
            'one (mode enforce, max_age 604800, mx %s, mail.contoso.test)' % EXO_HOST) \
        in run.last['result']['msg']

    web.redirect(ZONE, 'https://www.contoso.test/mta-sts.txt')
    run = play([mail_dns(bind, domain=ZONE, pattern='full', mta_sts=sts_option(web))])
    assert 'answers HTTP 301, a redirect to https://www.contoso.test/mta-sts.txt; senders do ' \
        'not follow redirects (RFC 8461 section 3.3)' in run.last['result']['msg']

    web.serve(ZONE, MOVE_POLICY, content_type='text/html')
    run = play([mail_dns(bind, domain=ZONE, pattern='full', mta_sts=sts_option(web))])
    assert 'is served as text/html; RFC 8461 section 3.3 requires Content-Type text/plain' in \
        run.last['result']['msg']
    assert txt_values(bind, STS) is None
    assert bind.update_messages(ZONE) == 0


def test_certificate_for_another_name_is_refused(bind, play, tmp_path):
    web = PolicyWeb(str(tmp_path / 'wrong'), [ZONE], wrong_name=True).start()
    try:
        web.serve(ZONE, FULL_POLICY)
        run = play([mail_dns(bind, domain=ZONE, pattern='full', mta_sts=sts_option(web))])
    finally:
        web.stop()
    msg = run.last['result']['msg']
    assert run.last['status'] == 'failed'
    assert 'the certificate of https://mta-sts.%s/.well-known/mta-sts.txt does not verify for ' \
        'mta-sts.%s' % (ZONE, ZONE) in msg, msg
    assert txt_values(bind, STS) is None


def test_enforce_with_a_wildcard_too_shallow_fails_before_anything(bind, play, web):
    """*.mx.microsoft does not match x.h-v1.mx.microsoft (RFC 8461 section 4.1)."""
    run = play([mail_dns(bind, domain=ZONE, pattern='full', mx_host='contoso-test.h-v1.mx.microsoft',
                         mta_sts=sts_option(web, mx=['*.mx.microsoft']))], check=True)
    result = run.last['result']
    assert run.last['status'] == 'failed' and result['phase'] == 'plan'
    assert 'has no pattern that matches the MX host(s) contoso-test.h-v1.mx.microsoft' in \
        result['msg']
    assert web.requests == []
    # One label deeper matches, and the policy lists that pattern.
    web.serve(ZONE, {'mode': 'enforce', 'mx': ['*.h-v1.mx.microsoft']})
    run = play([mail_dns(bind, domain=ZONE, pattern='full', mx_host='contoso-test.h-v1.mx.microsoft',
                         mta_sts=sts_option(web, mx=['*.h-v1.mx.microsoft']))], check=True)
    assert run.last['status'] == 'ok', run.last['result'].get('msg')
    assert run.last['result']['mta_sts']['mx'] == ['*.h-v1.mx.microsoft']
    assert bind.update_messages(ZONE) == 0


def test_changing_the_mx_under_a_published_policy_warns(bind, play):
    bind.update(ZONE, lambda u: u.add('_mta-sts', 3600, 'TXT', '"v=STSv1; id=20240101"'))
    run = play([mail_dns(bind, domain=ZONE, pattern='full')], check=True)
    warnings = ' '.join(run.last['result'].get('warnings', []))
    assert 'publishes MTA-STS (v=STSv1; id=20240101) and this run changes its MX to ' \
        '%s.' % EXO_HOST in warnings, warnings


def test_check_judges_what_is_served(bind, play, web):
    """Without an expected policy the check judges consistency: one valid record, a policy a
    sender can use, every MX matched. A stale policy (the MX moved, the file did not) fails in
    enforce."""
    def publish(u):
        u.add('_mta-sts', 3600, 'TXT', '"v=STSv1; id=20240101"')
        u.add('_smtp._tls', 3600, 'TXT', '"v=TLSRPTv1; rua=mailto:tls@contoso.test"')
    bind.update(ZONE, publish)
    web.serve(ZONE, {'mode': 'enforce', 'mx': ['mail.contoso.test']})
    option = {'address': web.address, 'ca_path': web.ca_path}
    run = play([check(bind, checks=['mta_sts', 'tls_rpt'], mta_sts=option)])
    out = run.last['result']
    assert by_name(out, 'mta_sts')['status'] == 'pass', by_name(out, 'mta_sts')
    assert by_name(out, 'tls_rpt')['status'] == 'pass'

    def move(u):
        u.delete('@', 'MX')
        u.add('@', 3600, 'MX', '0 %s.' % EXO_HOST)
    bind.update(ZONE, move)
    run = play([check(bind, checks=['mta_sts'], mta_sts=option)])
    out = run.last['result']
    sts = by_name(out, 'mta_sts')
    assert sts['status'] == 'fail'
    assert 'no pattern that matches the MX host(s) %s' % EXO_HOST in sts['message'], sts
    assert out['ok'] is False

    web.forget(ZONE)
    run = play([check(bind, checks=['mta_sts'], mta_sts=option)])
    sts = by_name(run.last['result'], 'mta_sts')
    assert sts['status'] == 'fail' and 'answers HTTP 404' in sts['message'], sts

    def remove(u):
        u.delete('_mta-sts', 'TXT')
        u.delete('_smtp._tls', 'TXT')
    bind.update(ZONE, remove)
    run = play([check(bind, checks=['mta_sts', 'tls_rpt'], mta_sts=option)])
    out = run.last['result']
    assert by_name(out, 'mta_sts')['status'] == 'warn'
    assert 'no MTA-STS record at _mta-sts.%s.' % ZONE in by_name(out, 'mta_sts')['message']
    assert by_name(out, 'tls_rpt')['status'] == 'warn'


def test_an_enforce_move_keeps_the_old_mx_in_the_policy_then_drops_it(bind, play, web):
    """Moving the MX under mode enforce: the policy names the old MX too (resolvers still hand it
    out), and says so; check mode with the policy not served yet predicts the stop as a warning
    and writes nothing. Once the move has settled, the next run publishes the policy without the
    old MX, again only once it is served; the check then passes without a note."""
    option = sts_option(web)
    predicted = play([mail_dns(bind, domain=ZONE, pattern='full', mta_sts=option)], check=True)
    result = predicted.last['result']
    assert predicted.last['status'] == 'ok', result.get('msg')
    assert result['mta_sts']['served'] is False
    warnings = ' '.join(result['warnings'])
    assert 'a run outside check mode stops before its UPDATE' in warnings, warnings
    assert bind.update_messages(ZONE) == 0

    web.serve(ZONE, MOVE_POLICY)
    run = play([mail_dns(bind, domain=ZONE, pattern='full', mta_sts=option)])
    result = run.last['result']
    assert run.last['status'] == 'ok', result.get('msg')
    assert result['mta_sts']['mx'] == [EXO_HOST, 'mail.contoso.test']
    assert 'names the MX host(s) this run removes (mail.contoso.test) too' in \
        ' '.join(result['warnings'])
    checked = play([check(bind, web, checks=['mta_sts'])])
    sts = by_name(checked.last['result'], 'mta_sts')
    assert sts['status'] == 'warn' and 'also names mail.contoso.test' in sts['message'], sts

    web.serve(ZONE, FULL_POLICY)
    run = play([mail_dns(bind, domain=ZONE, pattern='full', mta_sts=option)])
    result = run.last['result']
    assert run.last['status'] == 'ok' and result['changed'] is True, result.get('msg')
    assert result['mta_sts']['mx'] == [EXO_HOST] and result['mta_sts']['served'] is True
    assert txt_values(bind, STS) == ['v=STSv1; id=%s' % result['mta_sts']['id']]
    checked = play([check(bind, web, checks=['mta_sts'])])
    assert by_name(checked.last['result'], 'mta_sts')['status'] == 'pass'
    again = play([mail_dns(bind, domain=ZONE, pattern='full', mta_sts=option)])
    assert again.last['result']['changed'] is False
