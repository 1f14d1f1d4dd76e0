"""The lab's legacy mail server (a private real Postfix) and the emulator's inbound MX listener
(Exchange Online Protection's <domain>.mail.protection.outlook.com:25), with real smtplib,
msal and requests."""

import re
import smtplib
import ssl
import time

import pytest

from tests.lab.m365.client import find_message, lab_message
from tests.lab.m365.smtp import INBOUND_REPLIES
from tests.lab.postfix import PostfixServer

TIMEOUT = 10


def tls_context(ca_path):
    ctx = ssl.create_default_context(cafile=ca_path)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    return ctx


def message(sender, to, subject='lab test'):
    return lab_message(sender, to, subject, domain='client.legacy.test',
                       body='Hello from the legacy server.')


def starttls_as(smtp, name, ca_path):
    """STARTTLS checking the certificate for ``name`` (smtplib checks the host it connected
    to: 127.0.0.1 here, as there is no DNS for the lab names)."""
    smtp._host = name  # pylint: disable=protected-access
    return smtp.starttls(context=tls_context(ca_path))


def send(port, sender, rcpt, msg, ca_path=None):
    """One SMTP transaction; (code, reply) of DATA. STARTTLS with certificate verification when
    ``ca_path`` is given."""
    smtp = smtplib.SMTP('127.0.0.1', port, timeout=TIMEOUT)
    try:
        smtp.ehlo('client.legacy.test')
        if ca_path:
            smtp.starttls(context=tls_context(ca_path))
            smtp.ehlo('client.legacy.test')
        code, reply = smtp.mail(sender)
        assert code == 250, reply
        code, reply = smtp.rcpt(rcpt)
        assert code == 250, reply
        return smtp.data(msg.as_bytes())
    finally:
        smtp.quit()


def wait(predicate, timeout=TIMEOUT):
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value or time.monotonic() > deadline:
            return value
        time.sleep(0.05)


def test_starttls_and_local_delivery(postfix, m365):
    smtp = smtplib.SMTP('127.0.0.1', postfix.port, timeout=TIMEOUT)
    assert smtp.ehlo('client.legacy.test')[0] == 250
    assert 'starttls' in smtp.esmtp_features
    # The certificate verifies against the lab CA for 127.0.0.1 ...
    smtp.starttls(context=tls_context(m365.ca_path))
    assert smtp.sock.version() in ('TLSv1.2', 'TLSv1.3')
    smtp.ehlo('client.legacy.test')
    msg = message('someone@example.org', 'bob@legacy.test', subject='to the legacy mailbox')
    assert smtp.mail('someone@example.org')[0] == 250
    assert smtp.rcpt('bob@legacy.test')[0] == 250
    code, reply = smtp.rcpt('nobody@legacy.test')  # unknown in the legacy domain
    assert code == 550 and b'User unknown in virtual mailbox table' in reply
    code, reply = smtp.data(msg.as_bytes())
    smtp.quit()
    assert code == 250
    m = re.fullmatch(r'2\.0\.0 Ok: queued as ([0-9A-F]+)', reply.decode())
    assert m, reply
    queue_id = m.group(1)
    delivered = postfix.wait_for_mail('bob@legacy.test', timeout=TIMEOUT)
    assert [d['Message-ID'] for d in delivered] == [msg['Message-ID']]
    assert delivered[0]['Subject'] == 'to the legacy mailbox'
    assert delivered[0]['Delivered-To'] == 'bob@legacy.test'
    assert 'with ESMTPS' in str(delivered[0]['Received'])
    assert queue_id in wait(postfix.queue_ids_seen)
    assert wait(lambda: any('status=sent (delivered to maildir)' in line
                            for line in postfix.log_lines(queue_id)))
    assert m365.smtp.log == []  # nothing went to Exchange Online
    # ... and by name; a name the certificate does not have fails.
    for name, ok in (('mail.legacy.test', True), ('localhost', True), ('other.test', False)):
        smtp = smtplib.SMTP('127.0.0.1', postfix.port, timeout=TIMEOUT)
        smtp.ehlo('client.legacy.test')
        if ok:
            assert starttls_as(smtp, name, m365.ca_path)[0] == 220
            smtp.quit()
        else:
            with pytest.raises(ssl.SSLCertVerificationError):
                starttls_as(smtp, name, m365.ca_path)
            smtp.close()


def test_forwarding_map_sends_to_exchange_online(postfix, m365):
    user = m365.add_user('alice@legacy.test')
    routing = [p[5:] for p in user['proxyAddresses'] if p.endswith('.mail.onmicrosoft.com')][0]
    assert routing == 'alice@contosolab.mail.onmicrosoft.com'
    # What the legacy_forwarding role will do: one line per account, postmap, reload.
    with open(postfix.forwarding_map, 'w', encoding='utf-8') as f:
        f.write('alice@legacy.test  %s\n' % routing)
    postfix.postmap()
    postfix.reload()
    msg = message('bob@legacy.test', 'alice@legacy.test', subject='forwarded to EXO')
    code, reply = send(postfix.port, 'bob@legacy.test', 'alice@legacy.test', msg,
                       ca_path=m365.ca_path)
    assert code == 250, reply
    queue_id = reply.decode().rsplit(' ', 1)[1]
    found = find_message(m365, 'alice@legacy.test', msg['Message-ID'], timeout=TIMEOUT)
    assert [f['subject'] for f in found] == ['forwarded to EXO']
    assert found[0]['from']['emailAddress']['address'] == 'bob@legacy.test'
    assert found[0]['toRecipients'][0]['emailAddress']['address'] == 'alice@legacy.test'
    assert postfix.mailbox('alice@legacy.test') == []  # forwarded, no local copy
    # Postfix went through the inbound listener, with STARTTLS, to the routing address.
    inbound = [e for e in m365.smtp.log if e['listener'] == 'inbound']
    rcpts = [e for e in inbound if e['verb'] == 'RCPT']
    assert [e['arg'] for e in rcpts] == ['TO:<%s>' % routing]
    assert rcpts[0]['tls'] is True and rcpts[0]['reply'] == '250 2.1.5 Recipient OK'
    assert [e['verb'] for e in inbound if e['verb'] == 'AUTH'] == []
    sent = wait(lambda: [line for line in postfix.log_lines(queue_id) if 'status=sent' in line])
    assert sent, postfix.log_text()
    assert 'to=<%s>, orig_to=<alice@legacy.test>' % routing in sent[0]
    assert 'relay=127.0.0.1[127.0.0.1]:%d' % m365.smtp.inbound_port in sent[0]
    assert re.search(r'dsn=2\.6\.0, status=sent \(250 2\.6\.0 %s \[InternalId=\d+, '
                     r'Hostname=\S+\] \d+ bytes in [\d.]+, [\d.]+ KB/sec Queued mail for '
                     r'delivery\)' % re.escape(msg['Message-ID']), sent[0]), sent[0]
    # smtp_tls_security_level may: encrypted, the lab CA is not asked for.
    assert 'Untrusted TLS connection established to 127.0.0.1[127.0.0.1]:%d' \
        % m365.smtp.inbound_port in postfix.log_text()


def test_forwarding_to_unknown_routing_address_bounces_with_dbeb(postfix, m365):
    postfix.set_forwarding({'carol@legacy.test': 'carol@contosolab.mail.onmicrosoft.com'})
    msg = message('bob@legacy.test', 'carol@legacy.test', subject='nobody there')
    code, reply = send(postfix.port, 'bob@legacy.test', 'carol@legacy.test', msg)
    assert code == 250, reply
    queue_id = reply.decode().rsplit(' ', 1)[1]
    bounced = wait(lambda: [line for line in postfix.log_lines(queue_id)
                            if 'status=bounced' in line])
    assert bounced, postfix.log_text()
    assert 'said: %s [' % INBOUND_REPLIES['dbeb'] in bounced[0]
    assert '(in reply to RCPT TO command)' in bounced[0]
    # The non-delivery report reaches the sender's legacy mailbox.
    ndr = postfix.wait_for_mail('bob@legacy.test', timeout=TIMEOUT)
    assert len(ndr) == 1 and ndr[0].get_content_type() == 'multipart/report'
    report = ' '.join(ndr[0].as_string().split())  # the NDR folds long lines
    assert 'Diagnostic-Code: smtp; %s [' % INBOUND_REPLIES['dbeb'] in report


@pytest.mark.parametrize('rcpt, key', [
    ('nobody@contosolab.onmicrosoft.com', 'dbeb'),         # tenant domain, no such mailbox
    ('ghost@contosolab.mail.onmicrosoft.com', 'dbeb'),     # routing domain, no such mailbox
    ('nobox@contosolab.onmicrosoft.com', 'dbeb'),          # user without a mailbox
    ('someone@example.org', 'relay_denied'),               # not a domain of the tenant
    ('alice@unverified.test', 'relay_denied'),             # added, never verified
])
def test_inbound_listener_refuses(m365, rcpt, key):
    smtp_server = m365.smtp or m365.start_smtp()
    m365.add_domain('unverified.test')
    m365.add_user('alice@unverified.test')
    m365.add_user('nobox@contosolab.onmicrosoft.com', licensed=False, mailbox=False)
    smtp = smtplib.SMTP('127.0.0.1', smtp_server.inbound_port, timeout=TIMEOUT)
    code, reply = smtp.ehlo('mail.legacy.test')
    assert code == 250 and reply.decode().split('\n', 1)[0].endswith(
        '.mail.protection.outlook.com Hello [127.0.0.1]')
    assert 'starttls' in smtp.esmtp_features and 'auth' not in smtp.esmtp_features
    # The lab certificate also carries EOP's names.
    starttls_as(smtp, 'contosolab-onmicrosoft-com.mail.protection.outlook.com', m365.ca_path)
    smtp.ehlo('mail.legacy.test')
    assert 'auth' not in smtp.esmtp_features
    assert smtp.mail('bob@legacy.test')[0] == 250
    code, reply = smtp.rcpt(rcpt)
    smtp.quit()
    text = '%d %s' % (code, reply.decode())
    assert text.startswith(INBOUND_REPLIES[key] + ' [') and text.endswith(']'), text
    assert re.search(r'\[\S+\.eop-\S+\.prod\.protection\.outlook\.com \S+Z [0-9A-F]{16}\]$', text)
    entry = [e for e in smtp_server.log if e['verb'] == 'RCPT'][-1]
    assert entry['listener'] == 'inbound' and entry['tls'] is True and entry['reply'] == text


def test_inbound_listener_greeting_and_auth(m365):
    smtp_server = m365.smtp or m365.start_smtp()
    smtp = smtplib.SMTP(timeout=TIMEOUT)
    code, greeting = smtp.connect('127.0.0.1', smtp_server.inbound_port)
    assert code == 220
    assert re.fullmatch(r'\S+\.mail\.protection\.outlook\.com Microsoft ESMTP MAIL Service ready '
                        r'at \w{3}, \d{1,2} \w{3} \d{4} \d\d:\d\d:\d\d \+0000', greeting.decode())
    smtp.ehlo('mail.legacy.test')
    code, reply = smtp.docmd('AUTH', 'PLAIN AGJvYkBsZWdhY3kudGVzdABzZWNyZXQ=')
    assert '%d %s' % (code, reply.decode()) == INBOUND_REPLIES['auth']
    smtp.quit()


def test_two_instances_at_once_and_clean_stop(postfix, m365):
    other = PostfixServer(mydomains=('other.test',), mailboxes=('dan@other.test',),
                          relay=('127.0.0.1', postfix.port))
    try:
        other.start()
        assert other.port != postfix.port and other.name != postfix.name
        assert other.config_dir != postfix.config_dir
        assert set(other.processes()).isdisjoint(postfix.processes())
        # other.test -> its own mailbox; legacy.test through the other instance's relayhost.
        for rcpt in ('dan@other.test', 'bob@legacy.test'):
            code, reply = send(other.port, 'eve@other.test', rcpt,
                               message('eve@other.test', rcpt))
            assert code == 250, reply
        assert len(other.wait_for_mail('dan@other.test')) == 1
        assert len(postfix.wait_for_mail('bob@legacy.test')) == 1
        assert postfix.name in postfix.log_text() and other.name not in postfix.log_text()
        pids = other.processes()
        assert other.master_pid() in pids
    finally:
        other.stop()
    assert other.processes() == [] and not other.running()
    assert all(not _exists(pid) for pid in pids)
    assert postfix.running()  # the first instance is untouched
    other.stop()  # twice is fine


def _exists(pid):
    try:
        with open('/proc/%d/stat' % pid, encoding='ascii') as f:
            return f.read().rpartition(')')[2].split()[0] not in ('Z', 'X')
    except OSError:
        return False
