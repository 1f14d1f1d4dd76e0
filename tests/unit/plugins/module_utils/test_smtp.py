"""The pure parts of the SMTP layer: reply parsing, hints, queue IDs and input checks."""

import pytest

from ansible_collections.exchangeonline.mail.plugins.module_utils._smtp import (
    check_input, hint_for, queue_id_of, split_reply)


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
    (535, '5.7.3 Authentication unsuccessful [X]', 'SMTP.SendAsApp'),
    (530, '5.7.57 Client not authenticated to send mail. [X]', 'give auth'),
    (550, '5.7.30 Basic authentication is not supported for Client Submission.', 'xoauth2'),
    (550, '5.7.60 SMTP; Client does not have permissions to send as this sender', 'Send As'),
    (554, '5.2.0 STOREDRV.Submission.Exception:SendAsDeniedException.MapiExceptionSendAsDenied;',
     'From: header'),
    (421, '4.7.66 Too many concurrent connections from this client.', 'throttling'),
    (421, '4.3.2 Service not available, closing transmission channel', 'retry later'),
    (550, '5.7.708 Service unavailable. Access denied, traffic not accepted from this IP.',
     'IP address'),
])
def test_hints_for_exchange_online_replies(code, text, words):
    enhanced, rest = split_reply(code, text)
    assert enhanced == text.split(' ')[0] and rest == text.split(' ', 1)[1]
    assert words in hint_for(code, enhanced, text)


def test_unknown_reply_has_no_hint():
    assert hint_for(250, None, 'OK') is None
    assert hint_for(550, '5.9.9', 'whatever') is None
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
    ({'headers': {'X-Test': 'a\nBcc: c@d'}}, 'not a valid header'),
    ({'headers': {'Bad Name': 'x'}}, 'not a valid header'),
    ({'ehlo_name': 'client.example'}, None),
    ({'ehlo_name': 'two words'}, 'ehlo_name'),
    ({'port': 0}, 'not a TCP port'),
    ({'confirm_delivery': {'mailbox': None, 'timeout': 5, 'interval': 1}}, 'Microsoft Graph'),
    ({'confirm_delivery': {'mailbox': None, 'timeout': 5, 'interval': 1},
      'quit_after': 'rcpt'}, 'remove quit_after'),
    ({'confirm_delivery': {'mailbox': None, 'timeout': 0, 'interval': 1}, 'tenant_id': 't',
      'client_id': 'c', 'client_secret': 's'}, 'must be positive'),
])
def test_check_input(change, problem):
    params = dict(BASE, **change)
    found = check_input(params)
    if problem is None:
        assert found is None
    else:
        assert found and problem in found, found
