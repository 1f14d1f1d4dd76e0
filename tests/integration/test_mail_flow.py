"""The partial pattern's mail flow on the lab, set up with the collection's modules: a real
Postfix as the old server, the emulated Exchange Online relaying through its connectors
(tests/lab/m365/mailflow.py). What a user sees: the message in the Exchange Online mailbox
(Graph), in the Maildir on Postfix, the one bounce, the hops."""

import smtplib
import ssl

import pytest

from tests.integration.conftest import LEGACY_DOMAIN, m365_args
from tests.integration.test_legacy_forwarding import forwarding, send_to_old_server
from tests.lab.m365.client import find_message, lab_message
from tests.lab.m365.mailflow import MAX_HOPS

SECRET = 'mail-flow-app-secret-5d1e'
ROLES = ('User.Read.All', 'Exchange.ManageAsApp')
OLD = 'mail.' + LEGACY_DOMAIN
OUTBOUND = {'direction': 'outbound', 'name': 'To the old server', 'connector_type': 'on_premises',
            'smart_hosts': [OLD], 'recipient_domains': [LEGACY_DOMAIN],
            'tls_settings': 'domain_validation', 'tls_domain': OLD}
INBOUND = {'direction': 'inbound', 'name': 'From the old server', 'connector_type': 'on_premises',
           'sender_ip_addresses': ['127.0.0.1'], 'ef_skip_ips': ['127.0.0.1']}


def setup(m365, postfix, play, outbound=None):
    """legacy.test in the tenant with alice moved (bob stays on the old server), InternalRelay,
    both connectors, the old server forwarding alice; the old server's name listens where the
    lab's Postfix does."""
    m365.add_domain(LEGACY_DOMAIN, verified=True, services=['Email'])
    m365.add_user('alice@' + LEGACY_DOMAIN)
    app = m365.add_app(secret=SECRET, roles=ROLES)
    m365.smtp.smart_hosts[OLD] = ('127.0.0.1', postfix.port)
    m = m365_args(m365, app)
    run = play([
        {'exchangeonline.mail.connector': dict(m, **(outbound or OUTBOUND))},
        {'exchangeonline.mail.connector': dict(m, **INBOUND)},
        {'exchangeonline.mail.accepted_domain': dict(m, domain=LEGACY_DOMAIN,
                                                     domain_type='internal_relay')},
        forwarding(postfix, m365, app)])
    assert run.rc == 0, run.stdout[-3000:]
    m365.smtp.clear_log()
    return app


def send_to_exo(m365, rcpt, sender='partner@example.net'):
    msg = lab_message(sender, rcpt, 'to %s via Exchange Online' % rcpt, domain='example.net')
    with smtplib.SMTP('127.0.0.1', m365.smtp.inbound_port, timeout=10) as smtp:
        smtp.starttls(context=ssl.create_default_context(cafile=m365.ca_path))
        smtp.send_message(msg)
    return msg['Message-ID']


def received_count(message):
    return len(message.get_all('Received') or ())


def test_both_ways_and_one_bounce_for_an_address_neither_side_knows(m365, postfix, play):
    setup(m365, postfix, play)
    smtp = m365.smtp

    # A moved account, mail to the old server (its MX first): forwarded to the routing address,
    # arrives in the Exchange Online mailbox through the inbound connector.
    message_id = send_to_old_server(postfix, m365, 'alice@' + LEGACY_DOMAIN)
    assert find_message(m365, 'alice@' + LEGACY_DOMAIN, message_id), postfix.log_text()[-2000:]
    assert [r['connector'] for r in smtp.received] == ['From the old server']

    # An account still on the old server, mail to Exchange Online's MX: relayed through the
    # outbound connector, with TLS and the certificate's name checked, into the Maildir.
    send_to_exo(m365, 'bob@' + LEGACY_DOMAIN)
    assert smtp.wait_idle()
    got = postfix.wait_for_mail('bob@' + LEGACY_DOMAIN)
    assert len(got) == 1, (smtp.relays, postfix.log_text()[-2000:])
    assert [(r['connector'], r['status'], r['tls']) for r in smtp.relays] == [
        ('To the old server', 'relayed', True)]
    # hops: Exchange Online's front end and its relay, then Postfix
    assert received_count(got[0]) == 3, got[0].get_all('Received')

    # Neither side knows it: Exchange Online relays it once, Postfix refuses it, one NDR goes
    # back to the sender; sent to the old server, Postfix refuses it in the session.
    send_to_exo(m365, 'nobody@' + LEGACY_DOMAIN)
    assert smtp.wait_idle()
    assert [(r['status'], r['rcpts']) for r in smtp.relays[1:]] == [
        ('refused', ['nobody@' + LEGACY_DOMAIN])], smtp.relays
    assert '5.1.1' in smtp.relays[-1]['reply'], smtp.relays[-1]
    assert [(n['to'], n['status']) for n in smtp.ndrs] == [('partner@example.net', '5.1.1')]
    assert [o['rcpts'] for o in smtp.outbound] == [['partner@example.net']]
    with pytest.raises(smtplib.SMTPRecipientsRefused) as refused:
        send_to_old_server(postfix, m365, 'nobody@' + LEGACY_DOMAIN)
    assert refused.value.recipients['nobody@' + LEGACY_DOMAIN][0] == 550
    assert len(smtp.ndrs) == 1 and len(smtp.relays) == 2
    assert len(postfix.mailbox('bob@' + LEGACY_DOMAIN)) == 1


def test_a_relay_loop_ends_with_one_5_4_14_bounce(m365, postfix, play):
    """An outbound connector whose smart host is Exchange Online's own MX: the message goes
    round until the hop count stops it, as Exchange does, and its sender gets one NDR."""
    loop = dict(OUTBOUND, smart_hosts=['legacy-test.mail.protection.outlook.com'],
                tls_settings='encryption_only', tls_domain=None)
    setup(m365, postfix, play, outbound=loop)
    smtp = m365.smtp
    send_to_exo(m365, 'bob@' + LEGACY_DOMAIN, sender='alice@' + LEGACY_DOMAIN)
    assert smtp.wait_idle(60)
    statuses = [r['status'] for r in smtp.relays]
    assert statuses.count('refused') == 1 and statuses[-1] == 'refused', statuses
    assert len(statuses) == MAX_HOPS // 2, len(statuses)
    assert smtp.relays[-1]['reply'].startswith('554 5.4.14 Hop count exceeded - possible mail '
                                               'loop'), smtp.relays[-1]
    assert [(n['to'], n['status']) for n in smtp.ndrs] == [('alice@' + LEGACY_DOMAIN, '5.4.14')]
    # alice is in Exchange Online: her NDR is in her mailbox, and nothing reached the old server
    ndr_id = smtp.ndrs[0]['raw'].split(b'Message-ID: ', 1)[1].split(b'\r\n', 1)[0].decode()
    assert find_message(m365, 'alice@' + LEGACY_DOMAIN, ndr_id)
    assert postfix.mailbox('bob@' + LEGACY_DOMAIN) == []
