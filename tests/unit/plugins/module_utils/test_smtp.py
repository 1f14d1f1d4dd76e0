"""The pure parts of the SMTP layer: reply parsing, hints, queue IDs, input checks and the
message on the wire."""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import email
import email.policy

import pytest

from ansible_collections.exchangeonline.mail.plugins.module_utils._smtp_hints import (
    hint_for, is_exchange_online, split_reply)
from ansible_collections.exchangeonline.mail.plugins.module_utils._smtp_message import (
    build_message, message_bytes)
from ansible_collections.exchangeonline.mail.plugins.module_utils._smtp_session import queue_id_of
from ansible_collections.exchangeonline.mail.plugins.module_utils._smtp_test import (
    SmtpTest, check_input)
from ansible_collections.exchangeonline.mail.plugins.module_utils._smtp_transcript import _SMTP


@pytest.mark.parametrize('reply,queue_id', [
    # Postfix (smtpd's reply to the end of DATA)
    ('2.0.0 Ok: queued as 4N1Xb23kLmz9rvQ', '4N1Xb23kLmz9rvQ'),
    ('2.0.0 Ok: queued as 3F2A11C0D2', '3F2A11C0D2'),
    # Exchange Server (on-premises)
    ('2.6.0 <abc@ex01.contoso.com> [InternalId=12345678901234, Hostname=EX01.contoso.com] '
     'Queued mail for delivery', '12345678901234'),
    # Exim
    ('OK id=1tQ4Zk-00023x-2P', '1tQ4Zk-00023x-2P'),
    # Sendmail
    ('2.0.0 4BTAbcde012345 Message accepted for delivery', '4BTAbcde012345'),
    # Exchange Online names the message ID, not a queue
    ('2.0.0 OK <x@y.z> [Hostname=AM0PR01MB1234.eurprd01.prod.exchangelabs.com]', None),
])
def test_queue_id_of_the_common_mtas(reply, queue_id):
    assert queue_id_of(reply) == queue_id


@pytest.mark.parametrize('code,text,words', [
    (535, '5.7.139 Authentication unsuccessful, SmtpClientAuthentication is disabled for the '
          'Tenant. Visit https://aka.ms/smtp_auth_disabled for more information. [X 1 2]',
     'whole tenant'),
    (535, '5.7.139 Authentication unsuccessful, SmtpClientAuthentication is disabled for the '
          'Mailbox. Visit https://aka.ms/smtp_auth_disabled for more information.',
     'for this mailbox'),
    (535, '5.7.139 Authentication unsuccessful, basic authentication is disabled.',
     'auth: xoauth2'),
    (535, '5.7.139 Authentication unsuccessful, the request did not meet the criteria to be '
          'authenticated successfully. Contact your administrator.', 'Conditional Access'),
    (535, '5.7.139 Authentication unsuccessful, user is locked by your organization\'s security '
          'defaults policy.', 'mailbox_info'),
    (535, '5.7.139 Authentication unsuccessful, the user credentials were incorrect. '
          '[CH2PR15CA0029.namprd15.prod.outlook.com]', 'the user name or password is wrong'),
    (535, '5.7.3 Authentication unsuccessful [X]', 'SMTP.SendAsApp'),
    (530, '5.7.57 Client not authenticated to send mail. [X]', 'give auth'),
    (550, '5.7.30 Basic authentication is not supported for Client Submission.', 'xoauth2'),
    (550, '5.7.60 SMTP; Client does not have permissions to send as this sender', 'Send As'),
    (550, '5.7.60 SMTP; Client does not have permissions to send as this sender',
     'at the end of DATA'),
    (554, '5.2.0 STOREDRV.Submission.Exception:SendAsDeniedException.MapiExceptionSendAsDenied;',
     'From: header'),
    (554, '5.2.252 SendAsDenied; info@contoso.com not allowed to send as noreply@contoso.com; '
          'STOREDRV.Submission.Exception:SendAsDeniedException.MapiExceptionSendAsDenied; Failed '
          'to process message', 'Add-RecipientPermission'),
    (550, '5.2.252 Sender throttled due to continuous send as denied errors.',
     'throttles this mailbox after repeated Send As refusals'),
    (432, '4.3.2 STOREDRV.ClientSubmit; sender thread limit exceeded [X]', 'at most 3 sessions'),
    (535, '5.7.139 Authentication unsuccessful, basic authentication is disabled.',
     'end of December 2026'),
    (550, '5.7.30 Basic authentication is not supported for Client Submission.', 'MC786329'),
    (504, '5.7.4 Unrecognized authentication type', 'no PLAIN'),
    (421, '4.7.66 Too many concurrent connections from this client.', 'throttling'),
    (421, '4.3.2 Service not available, closing transmission channel', 'retry later'),
    (550, '5.7.708 Service unavailable. Access denied, traffic not accepted from this IP.',
     'IP address'),
])
def test_hints_for_exchange_online_replies(code, text, words):
    enhanced, rest = split_reply(code, text)
    assert enhanced == text.split(' ')[0] and rest == text.split(' ', 1)[1]
    assert words in hint_for(code, enhanced, text, exchange_online=True)


@pytest.mark.parametrize('code,text,words', [
    (421, '4.7.0 Too many connections, try again later', 'retry later'),
    (421, '4.7.66 Too many concurrent connections from this client.', 'retry later'),
    (535, '5.7.8 Error: authentication failed: UGFzc3dvcmQ6', 'check username and password'),
    (535, '5.7.3 Authentication unsuccessful', 'check username and password'),
    (530, '5.7.0 Must issue a STARTTLS command first', 'wants AUTH before MAIL FROM'),
    (504, '5.7.4 Unrecognized authentication type', 'choose auth from what it offers'),
    (550, '5.1.10 Recipient address has null MX', 'null MX (RFC 7505)'),
])
def test_hints_for_other_servers_do_not_speak_of_exchange_online(code, text, words):
    enhanced, dummy = split_reply(code, text)
    hint = hint_for(code, enhanced, text, exchange_online=False)
    assert words in hint
    for exchange_word in ('Exchange', 'tenant', 'xoauth2', 'SMTP.SendAsApp', 'Defender'):
        assert exchange_word not in hint


def test_exchange_only_hints_stay_out_for_other_servers():
    for code, text in ((550, '5.7.60 not allowed'), (550, '5.7.708 denied'),
                       (554, '5.2.0 SendAsDenied'), (550, '5.4.1 Access denied'),
                       (550, '5.7.30 Basic authentication is not supported')):
        enhanced, dummy = split_reply(code, text)
        assert hint_for(code, enhanced, text, exchange_online=True) is not None
        assert hint_for(code, enhanced, text, exchange_online=False) is None


@pytest.mark.parametrize('host,greeting,expected', [
    ('smtp.office365.com', None, True),
    ('SMTP.Office365.com.', None, True),
    ('contoso-com.mail.protection.outlook.com', None, True),
    ('smtp-mail.outlook.com', None, True),
    ('smtp.office365.us', None, True),                      # GCC High and DoD
    ('smtp.partner.outlook.cn', None, True),                # 21Vianet
    ('contoso-com.mail.protection.partner.outlook.cn', None, True),
    ('127.0.0.1', 'AM0PR10CA0041.outlook.office365.com Microsoft ESMTP MAIL Service ready', True),
    ('127.0.0.1', 'BL2NAM06FT004.mail.protection.outlook.com Microsoft ESMTP MAIL Service', True),
    # Exchange Server on premises greets the same way, with its own name: not Exchange Online.
    ('mail.contoso.com', 'EX01.contoso.com Microsoft ESMTP MAIL Service ready at Mon', False),
    ('mail.example.net', 'mail.example.net ESMTP Postfix', False),
    ('notoutlook.com', None, False),
    ('outlook.com.evil.example', 'outlook.com.evil.example ESMTP', False),
    ('127.0.0.1', '', False),
])
def test_is_exchange_online_by_host_or_greeting(host, greeting, expected):
    assert is_exchange_online(host, greeting) is expected


def test_a_wrong_password_is_not_called_smtp_auth_disabled():
    text = '5.7.139 Authentication unsuccessful, the user credentials were incorrect. [X]'
    hint = hint_for(535, '5.7.139', text, exchange_online=True)
    assert 'SMTP AUTH is disabled' not in hint and 'mailbox_protocols' not in hint


def test_5_2_252_throttle_and_send_as_denied_get_different_hints():
    throttled = hint_for(550, '5.2.252', 'Sender throttled due to continuous send as denied '
                         'errors.', exchange_online=True)
    denied = hint_for(554, '5.2.252', 'SendAsDenied; a@b not allowed to send as c@b;', True)
    assert throttled != denied and 'wait' in throttled and 'wait' not in denied


def _delivery_test(to, headers=None):
    test = SmtpTest(dict(to=to, headers=headers or {}, host='smtp.office365.com'), False)
    test.header_recipients = list(to)
    return test


def _item(message_id, *addresses, **extra):
    item = {'internetMessageId': message_id,
            'toRecipients': [{'emailAddress': {'address': a}} for a in addresses]}
    item.update(extra)
    return item


def test_delivered_item_is_this_message_addressed_to_one_of_its_recipients():
    test = _delivery_test(['bob@contoso.com'])
    mid = '<x@contoso.com>'
    assert test.delivered_item([_item(mid, 'Bob@Contoso.com')], mid, 'bob@contoso.com')
    assert test.delivered_item([_item('<other@contoso.com>', 'bob@contoso.com')], mid,
                               'bob@contoso.com') is None
    # Another message with the same id to someone else (not this one): not delivered.
    assert test.delivered_item([_item(mid, 'eve@fabrikam.example')], mid,
                               'bob@contoso.com') is None
    # A Bcc or envelope-only recipient's copy still shows the message's To: (here bob).
    assert test.delivered_item([_item(mid, 'bob@contoso.com')], mid, 'carol@contoso.com')
    # Through a group: the mailbox looked in is not in "to", the group is.
    test = _delivery_test(['team@contoso.com'])
    assert test.delivered_item([_item(mid, 'team@contoso.com')], mid, 'bob@contoso.com')
    # Not the documented JSON: no item.
    for junk in ('text', None, [None, 'x', {'internetMessageId': 5}], {'value': []}):
        assert test.delivered_item(junk, mid, 'bob@contoso.com') is None
    assert test.delivered_item([_item(mid, toRecipients='x')], mid, 'bob@contoso.com') is None


def test_an_item_without_recipients_is_not_a_message_sent_with_a_to_header():
    """Every copy of the message shows its To: and Cc: (also a Bcc or envelope-only
    recipient's): an item with the id but no recipients is another message (a spoofed or
    planted one), unless the message went without To: and Cc: at all."""
    mid = '<x@contoso.com>'
    test = _delivery_test(['bob@contoso.com'])
    assert test.delivered_item([_item(mid)], mid, 'bob@contoso.com') is None
    assert test.delivered_item([_item(mid, ccRecipients=[], bccRecipients=[])], mid,
                               'bob@contoso.com') is None
    test.header_recipients = []  # headers: {To: 'undisclosed-recipients:;'}
    assert test.delivered_item([_item(mid)], mid, 'bob@contoso.com')


def test_unknown_reply_has_no_hint():
    assert hint_for(250, None, 'OK') is None
    assert hint_for(550, '5.9.9', 'whatever') is None
    assert hint_for(550, '5.9.9', 'whatever', exchange_online=True) is None
    assert split_reply(220, 'mx.example ESMTP') == (None, 'mx.example ESMTP')


BASE = dict(port=587, tls='starttls', auth='login', allow_plaintext_auth=False,
            username='a@contoso.com', password='pw', access_token=None, sender=None,
            to=['b@contoso.com'], headers={}, ehlo_name=None, quit_after=None,
            confirm_delivery=None)


@pytest.mark.parametrize('change,problem', [
    ({}, None),
    ({'tls': 'none'}, 'clear text'),
    ({'tls': 'none', 'allow_plaintext_auth': True}, None),
    ({'tls': 'none', 'auth': 'none'}, None),
    ({'auth': 'xoauth2'}, 'needs access_token'),
    ({'auth': 'xoauth2', 'access_token': 'eyJ'}, None),
    ({'auth': 'xoauth2', 'tenant_id': 't', 'client_id': 'c', 'client_secret': 's'}, None),
    ({'password': None}, 'needs password'),
    ({'password': None, 'quit_after': 'starttls'}, None),
    ({'password': None, 'quit_after': 'auth'}, 'needs password'),
    ({'username': None}, 'needs username'),
    ({'username': None, 'auth': 'none'}, 'give sender'),
    ({'to': []}, 'give to'),
    ({'to': [], 'quit_after': 'ehlo'}, None),
    ({'to': ['x@y', 'bad address@y']}, 'is not an e-mail address'),
    ({'to': ['<b@contoso.com>']}, 'is not an e-mail address'),
    ({'headers': {'X-Test': 'a\nBcc: c@d'}}, "headers: the value of 'X-Test' holds the control "
                                             "character U+000A (LF) after 1 characters"),
    ({'headers': {'Bad Name': 'x'}}, 'not a valid header'),
    ({'headers': {'X-' + 'n' * 75: 'x'}}, 'at most 76 characters'),
    ({'headers': {'X-' + 'n' * 74: 'x'}}, None),
    ({'headers': {'X-Test\n': 'x'}}, "headers: the name 'X-Test\\n' holds"),
    ({'headers': {'X-Tab': 'a\tb'}}, None),
    ({'headers': {'X-Del': 'a\x7fb'}}, 'U+007F (DEL)'),
    ({'to': ['b@contoso.com\n']}, "to[0] 'b@contoso.com\\n' holds the control character U+000A"),
    ({'to': ['x@y', 'b\x00@contoso.com']}, 'to[1]'),
    ({'sender': 'a\r@contoso.com'}, 'sender'),
    ({'username': 'a@contoso.com\x01'}, 'username'),
    ({'username': 'a@contoso.com\x85'}, 'U+0085 (NEL)'),
    ({'ehlo_name': 'client.example\n'}, 'ehlo_name'),
    ({'subject': 'Hello\r\nBcc: victim@example.com'}, 'subject holds the control character '
                                                      'U+000D (CR) after 5 characters'),
    ({'subject': 'Hello\u2028there'}, 'subject holds'),
    ({'subject': 'tab\tok'}, None),
    ({'body': 'lines\nand\r\ntabs\tand \u2028 are fine\n'}, None),
    ({'body': 'no\x00NUL'}, 'body holds the control character U+0000 (NUL) after 2 characters'),
    ({'body': 'no \x1b[31m escapes'}, 'U+001B (ESC)'),
    ({'body': 'no form feed\x0c'}, 'body holds'),
    ({'auth': 'xoauth2', 'access_token': 'eyJ0.eyJ1.c2ln'}, None),
    ({'auth': 'xoauth2', 'access_token': 'eyJ0\x01auth=Bearer x'}, 'not an OAuth bearer token'),
    ({'auth': 'xoauth2', 'access_token': 'Bearer eyJ0'}, 'without "Bearer "'),
    ({'ehlo_name': 'client.example'}, None),
    ({'ehlo_name': 'two words'}, 'ehlo_name'),
    ({'port': 0}, 'not a TCP port'),
    ({'confirm_delivery': {'mailbox': None, 'timeout': 5, 'interval': 1}}, 'Microsoft Graph'),
    ({'confirm_delivery': {'mailbox': None, 'timeout': 5, 'interval': 1},
      'quit_after': 'rcpt'}, 'remove quit_after'),
    ({'confirm_delivery': {'mailbox': None, 'timeout': 0, 'interval': 1}, 'tenant_id': 't',
      'client_id': 'c', 'client_secret': 's'}, 'must be positive'),
    # The mailbox goes into a Graph URL after the message is sent: refused before sending.
    ({'confirm_delivery': {'mailbox': 'user@contoso.com\x7f', 'timeout': 5, 'interval': 1},
      'tenant_id': 't', 'client_id': 'c', 'client_secret': 's'},
     "confirm_delivery.mailbox: 'user@contoso.com\\x7f' holds a control character"),
    ({'confirm_delivery': {'mailbox': '..', 'timeout': 5, 'interval': 1},
      'tenant_id': 't', 'client_id': 'c', 'client_secret': 's'}, 'confirm_delivery.mailbox'),
    ({'confirm_delivery': {'mailbox': None, 'timeout': 5, 'interval': 1},
      'to': ['b@contoso.com'], 'tenant_id': 't', 'client_id': 'c', 'client_secret': 's'}, None),
])
def test_check_input(change, problem):
    params = dict(BASE, **change)
    found = check_input(params)
    if problem is None:
        assert found is None
    else:
        assert found and problem in found, found


def test_a_refused_token_is_not_shown():
    found = check_input(dict(BASE, auth='xoauth2', access_token='secret-token\x01x'))
    assert 'secret-token' not in found


LONG_WORD = 'a' * 2000
LONG_TEXT = ' '.join(['word'] * 500)
UMLAUTS = ' '.join(['Gr\u00fc\u00dfe'] * 400)


@pytest.mark.parametrize('smtputf8', [False, True])
@pytest.mark.parametrize('subject', [LONG_WORD, LONG_TEXT, UMLAUTS, '\u6f22' * 400])
@pytest.mark.parametrize('body', [
    'short\n' + 'L' * 2000 + '\n.a line with a dot\n\ttab\ttrailing \n',
    '\u00fc' * 3000 + '\n',
    'x' * 998 + '\n',
    'y' * 999 + '\n',
])
def test_no_line_on_the_wire_over_998_octets_and_everything_decodes_back(smtputf8, subject, body):
    params = dict(to=['b@contoso.com'], subject=subject, headers={'X-Long': subject}, body=body)
    raw = message_bytes(build_message(params, 'a@contoso.com', '<id@contoso.com>'), smtputf8)
    assert max(len(line) for line in raw.split(b'\r\n')) <= 998
    if not smtputf8:
        raw.decode('ascii')  # 7-bit on the wire
    msg = email.message_from_bytes(raw, policy=email.policy.default)
    assert str(msg['Subject']) == subject and str(msg['X-Long']) == subject
    assert msg.get_content().replace('\r\n', '\n') == body
    long_line = max(len(line.encode()) for line in body.splitlines()) > 998
    ascii_body = all(ord(c) < 128 for c in body)
    assert msg['Content-Transfer-Encoding'] == (
        '7bit' if ascii_body and not long_line else 'quoted-printable')


def test_transcript_is_bounded_in_bytes_and_says_where_it_was_cut():
    smtp = _SMTP()
    smtp._setup_recorder(0.0, 30.0, None)
    for i in range(400):
        smtp.note('server', '250-%03d ' % i + 'x' * 2000)
    kept = [t for t in smtp.transcript if t['direction'] == 'server']
    assert sum(len(t['line']) for t in kept) <= 262144
    assert len(kept) == 262144 // 2008
    note = smtp.transcript[-1]
    assert note['direction'] == 'note'
    assert note['line'].endswith(': %d later lines left out' % (400 - len(kept)))
