"""The partial pattern end to end through the playbooks: exchangeonline.mail.migrate sets both
halves of the mail flow (Exchange Online's connectors and InternalRelay, the old Postfix's
forwarding), mail flows both ways, an address neither side knows gets one bounce; the cut-over to
full takes Exchange Online's half down; rollback restores the tenant as well as DNS. A real BIND,
a real Postfix as the old server, the emulated Exchange Online relaying through its connectors."""

import json
import os
import smtplib

import pytest

from tests.integration.conftest import m365_args
from tests.integration.test_legacy_forwarding import send_to_old_server
from tests.integration.test_mail_flow import received_count, send_to_exo
from tests.integration.test_playbooks import Lab, output
from tests.lab.m365.client import find_message
from tests.lab.postfix import PostfixServer, lab_workdir

DOMAIN = 'legacy.test'
OLD = 'mail.' + DOMAIN
OUT = 'exchangeonline.mail %s outbound' % DOMAIN
IN = 'exchangeonline.mail %s inbound' % DOMAIN
CHANGING = ('New-', 'Set-', 'Remove-')


@pytest.fixture
def partial_lab(tmp_path):
    """BIND with legacy.test, the emulator with alice moved (bob stays on the old server), and a
    real Postfix for legacy.test whose name mail.legacy.test is where the emulator relays."""
    lab = Lab.start(tmp_path, [DOMAIN])
    smtp = lab.m365.start_smtp()
    workdir = lab_workdir()
    postfix = PostfixServer(
        workdir=workdir, mydomains=(DOMAIN,), mailboxes=('alice@' + DOMAIN, 'bob@' + DOMAIN),
        relay=('127.0.0.1', smtp.inbound_port),
        tls_cert=lab.m365.ca.issue_cert('127.0.0.1', 'localhost', OLD))
    try:
        postfix.start()
        smtp.smart_hosts[OLD] = ('127.0.0.1', postfix.port)
        lab.m365.add_domain(DOMAIN, verified=True, services=['Email'])
        lab.m365.add_user('alice@' + DOMAIN)
        lab.postfix = postfix
        yield lab
    finally:
        postfix.stop()
        lab.stop()


def inventory(lab, pattern, primary='legacy'):
    path = os.path.join(lab.workdir, 'inventory-%s-%s.yml' % (pattern, primary))
    with open(path, 'w') as f:
        json.dump({'all': {
            'vars': {'exo_dns': lab.bind.module_args(), 'exo_m365': m365_args(lab.m365, lab.app),
                     'exo_wait_timeout': 30},
            'children': {
                'mail_domains': {'hosts': {DOMAIN: {
                    'exo_pattern': pattern, 'exo_primary': primary, 'exo_dkim': False,
                    'exo_legacy_server': OLD}}},
                'exo_legacy_servers': {'hosts': {OLD: {
                    'ansible_connection': 'local', 'ansible_become': False,
                    'ansible_python_interpreter': '{{ ansible_playbook_python }}',
                    'legacy_forwarding_postfix_config_dir': lab.postfix.config_dir,
                    'exo_legacy_smtp_addresses': ['127.0.0.1']}}}}}}, f)
    return path


def changing(m365):
    return [r['cmdlet'] for r in m365.requests if str(r.get('cmdlet', '')).startswith(CHANGING)]


def exchange_side(m365):
    return (m365.exo.domain_types.get(DOMAIN, 'Authoritative'),
            sorted(m365.exo.connectors['outbound']), sorted(m365.exo.connectors['inbound']))


def mx(lab):
    return sorted(lab.bind.rrset(DOMAIN, 'MX')[1])


@pytest.mark.parametrize('primary', ['legacy', 'exo'])
def test_partial_both_ways_then_the_cut_over_then_rollback(partial_lab, primary):
    lab, m365, postfix = partial_lab, partial_lab.m365, partial_lab.postfix
    smtp = m365.smtp
    original_mx = mx(lab)

    run = lab.run('migrate', inventory(lab, 'partial', primary))
    assert run.rc == 0, output(run)
    assert exchange_side(m365) == ('InternalRelay', [OUT.lower()], [IN.lower()])
    out = m365.exo.connectors['outbound'][OUT.lower()]
    assert (out['SmartHosts'], out['RecipientDomains'], out['TlsSettings'], out['UseMXRecord'],
            out['ConnectorType']) == ([OLD], [DOMAIN], 'CertificateValidation', False,
                                      'OnPremises')
    inbound = m365.exo.connectors['inbound'][IN.lower()]
    assert (inbound['SenderIPAddresses'], inbound['EFSkipIPs'], inbound['ConnectorType']) == (
        ['127.0.0.1'], ['127.0.0.1'], 'OnPremises')
    # the connectors exist before the domain relays (InternalRelay last)
    order = changing(m365)
    assert order.index('Set-AcceptedDomain') > order.index('New-InboundConnector') > \
        order.index('New-OutboundConnector'), order
    exo_mx = '%s.' % m365.mx_host(DOMAIN)
    assert len(mx(lab)) == 2 and any(exo_mx in v for v in mx(lab)), mx(lab)
    first = min(lab.bind.rrset(DOMAIN, 'MX')[1], key=lambda v: int(v.split()[0]))
    assert (OLD in first) == (primary == 'legacy'), mx(lab)
    with open(postfix.forwarding_map) as f:
        assert 'alice@%s\talice@' % DOMAIN in f.read()
    smtp.clear_log()

    # a moved account, to the old server: forwarded into the Exchange Online mailbox, through
    # the inbound connector
    message_id = send_to_old_server(postfix, m365, 'alice@' + DOMAIN)
    assert find_message(m365, 'alice@' + DOMAIN, message_id), postfix.log_text()[-2000:]
    assert [r['connector'] for r in smtp.received] == [IN]
    # an account on the old server, to Exchange Online's MX: into its Maildir, with TLS
    send_to_exo(m365, 'bob@' + DOMAIN)
    assert smtp.wait_idle()
    got = postfix.wait_for_mail('bob@' + DOMAIN)
    assert len(got) == 1 and received_count(got[0]) == 3, (smtp.relays, got)
    assert [(r['connector'], r['status'], r['tls']) for r in smtp.relays] == [(OUT, 'relayed', True)]
    # neither side knows it: one relay, refused, one bounce; to the old server: refused there
    send_to_exo(m365, 'nobody@' + DOMAIN)
    assert smtp.wait_idle()
    assert [r['status'] for r in smtp.relays] == ['relayed', 'refused']
    assert smtp.relays[-1]['hops'] == 2  # Exchange Online's MX and its one relay, no loop
    assert [(n['to'], n['status']) for n in smtp.ndrs] == [('partner@example.net', '5.1.1')]
    with pytest.raises(smtplib.SMTPRecipientsRefused):
        send_to_old_server(postfix, m365, 'nobody@' + DOMAIN)
    assert len(smtp.ndrs) == 1 and len(smtp.relays) == 2

    # a second run changes nothing on either side
    before = len(m365.requests)
    again = lab.run('migrate', inventory(lab, 'partial', primary))
    assert again.rc == 0, output(again)
    assert changing(m365)[len(order):] == [], m365.requests[before:]

    # the cut-over: full, Authoritative again, the connectors gone; mail for the old server's
    # account is refused by Exchange Online now, the moved account's still arrives
    cut = lab.run('migrate', inventory(lab, 'full', primary))
    assert cut.rc == 0, output(cut)
    assert exchange_side(m365) == ('Authoritative', [], [])
    assert mx(lab) == ['0 %s' % exo_mx]
    with pytest.raises(smtplib.SMTPRecipientsRefused) as refused:
        send_to_exo(m365, 'bob@' + DOMAIN)
    assert '5.4.1' in str(refused.value.recipients['bob@' + DOMAIN][1])
    message_id = send_to_old_server(postfix, m365, 'alice@' + DOMAIN)
    assert find_message(m365, 'alice@' + DOMAIN, message_id)

    # rollback: DNS as it was, and the tenant as the partial run found it
    back = lab.run('rollback', inventory(lab, 'full', primary))
    assert back.rc == 0, output(back)
    assert mx(lab) == original_mx
    assert exchange_side(m365) == ('Authoritative', [], [])
    state_dir = os.path.join(lab.workdir, 'exo-backups', DOMAIN, 'exchange')
    assert sorted(os.listdir(state_dir)) == ['rolled-back']
    assert len(os.listdir(os.path.join(state_dir, 'rolled-back'))) == 2
    again = lab.run('rollback', inventory(lab, 'full', primary))
    assert again.rc == 0 and exchange_side(m365) == ('Authoritative', [], [])


def test_check_mode_changes_nothing_on_either_side(partial_lab):
    lab, m365, postfix = partial_lab, partial_lab.m365, partial_lab.postfix
    zone = lab.bind.axfr(DOMAIN)
    run = lab.run('migrate', inventory(lab, 'partial'), check=True, diff=True)
    assert run.rc == 0, output(run)
    assert changing(m365) == [] and exchange_side(m365) == ('Authoritative', [], [])
    assert lab.bind.axfr(DOMAIN) == zone and lab.bind.update_messages() == 0
    with open(postfix.forwarding_map) as f:
        assert 'alice' not in f.read()
    assert not os.path.exists(os.path.join(lab.workdir, 'exo-backups', DOMAIN, 'exchange'))
    # what the real run would do, in the diff
    assert '+smart_hosts: [%s]' % OLD in run.stdout
    assert '+domain_type: internal_relay' in run.stdout


def test_a_partial_domain_without_old_servers_is_told_what_is_left(partial_lab):
    lab, m365 = partial_lab, partial_lab.m365
    path = os.path.join(lab.workdir, 'no-old-servers.yml')
    with open(path, 'w') as f:
        json.dump({'all': {'hosts': {DOMAIN: {
            'exo_pattern': 'partial', 'exo_dkim': False, 'exo_dns': lab.bind.module_args(),
            'exo_m365': m365_args(m365, lab.app), 'exo_wait_timeout': 30}}}}, f)
    run = lab.run('migrate', path)
    assert run.rc == 0, output(run)
    assert exchange_side(m365) == ('Authoritative', [], [])
    assert ('legacy.test is partial, but names no old server (exo_legacy_server, a host of the '
            'group exo_legacy_servers that this run reaches)') in run.stdout
