"""The lab's Exchange-like SMTP submission server, driven by real smtplib, msal and requests."""

import base64
import smtplib
import ssl
import time

import pytest

from tests.lab.m365.client import app_token, lab_message, messages_request
from tests.lab.m365.emulator import M365Emulator
from tests.lab.m365.smtp import REPLIES, THROTTLED, folder_id, send_as_denied

EXO_SCOPE = ['https://outlook.office365.com/.default']
GRAPH_SCOPE = ['https://graph.microsoft.com/.default']
SENDER = 'adele@contosolab.onmicrosoft.com'
RCPT = 'bob@contosolab.onmicrosoft.com'


@pytest.fixture(scope='module')
def emu(tmp_path_factory):
    server = M365Emulator(workdir=str(tmp_path_factory.mktemp('m365')))
    server.start()
    server.start_smtp()
    server.add_user(SENDER)
    server.add_user(RCPT)
    server.add_user('nobox@contosolab.onmicrosoft.com', licensed=False, mailbox=False)
    server.smtp.set_password(SENDER, 'Lab-Passw0rd!')
    yield server
    server.stop()


@pytest.fixture(autouse=True)
def tenant_state(emu):
    emu.smtp.reset(SENDER)


def token(emu, roles=('SMTP.SendAsApp',), scope=None):
    return app_token(emu, roles, scope or EXO_SCOPE)


def tls_context(emu):
    ctx = ssl.create_default_context(cafile=emu.ca_path)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    return ctx


def connect(emu, port=None):
    smtp = smtplib.SMTP('127.0.0.1', port or emu.smtp.port, timeout=10)
    smtp.ehlo('client.exo-lab.test')
    return smtp


def secure(emu, port=None):
    smtp = connect(emu, port)
    smtp.starttls(context=tls_context(emu))
    smtp.ehlo('client.exo-lab.test')
    return smtp


def xoauth2(smtp, user, access_token):
    blob = 'user=%s\x01auth=Bearer %s\x01\x01' % (user, access_token)
    return smtp.docmd('AUTH', 'XOAUTH2 ' + base64.b64encode(blob.encode()).decode())


def refused(code, reply, key):
    """The reply is Exchange's text plus its ``[server time id]`` diagnostic."""
    text = '%d %s' % (code, reply.decode())
    return text.startswith(REPLIES[key] + ' [') and text.endswith(']')


def message(sender=SENDER, to=RCPT, subject='lab test'):
    return lab_message(sender, to, subject)


def graph_find(emu, upn, message_id, roles=('Mail.Read',), folder=None):
    return messages_request(emu, upn, message_id, token(emu, roles=roles, scope=GRAPH_SCOPE),
                            folder)


def test_xoauth2_send_arrives_and_graph_finds_it(emu):
    smtp = secure(emu)
    assert smtp.esmtp_features['auth'].strip() == 'LOGIN XOAUTH2'  # smtp.office365.com: no PLAIN
    code, reply = xoauth2(smtp, SENDER, token(emu))
    assert (code, reply) == (235, b'2.7.0 Authentication successful')
    msg = message()
    smtp.mail(SENDER)
    smtp.rcpt(RCPT)
    code, reply = smtp.data(msg.as_bytes())
    smtp.quit()
    assert code == 250
    assert reply.decode().startswith('2.0.0 OK %s [Hostname=' % msg['Message-ID'])
    resp = graph_find(emu, RCPT, msg['Message-ID'])
    assert resp.status_code == 200, resp.text
    found = resp.json()['value']
    assert len(found) == 1
    assert found[0]['internetMessageId'] == msg['Message-ID']
    assert found[0]['subject'] == 'lab test'
    assert found[0]['from']['emailAddress']['address'] == SENDER
    assert found[0]['toRecipients'][0]['emailAddress']['address'] == RCPT
    assert set(found[0]) >= {'id', 'receivedDateTime'}
    assert found[0]['parentFolderId'] == folder_id(emu.find_user(RCPT), 'inbox')
    # The sender keeps a copy in Sent Items: /messages (every folder) finds it, the Inbox not.
    copies = graph_find(emu, SENDER, msg['Message-ID']).json()['value']
    assert [c['parentFolderId'] for c in copies] == [folder_id(emu.find_user(SENDER),
                                                               'sentitems')]
    assert graph_find(emu, SENDER, msg['Message-ID'], folder='inbox').json()['value'] == []
    sent = graph_find(emu, SENDER, msg['Message-ID'], folder='SentItems')
    assert sent.status_code == 200 and len(sent.json()['value']) == 1
    assert "mailFolders('SentItems')/messages" in sent.json()['@odata.context']
    assert len(graph_find(emu, RCPT, msg['Message-ID'], folder='inbox').json()['value']) == 1
    # Graph needs Mail.Read; a mailbox-less user has no messages.
    assert graph_find(emu, RCPT, msg['Message-ID'], roles=('User.Read.All',)).status_code == 403
    nobox = graph_find(emu, 'nobox@contosolab.onmicrosoft.com', msg['Message-ID'])
    assert nobox.json()['error']['code'] == 'MailboxNotEnabledForRESTAPI'


def test_login_with_lab_password_arrives(emu):
    smtp = secure(emu)
    assert smtp.login(SENDER, 'Lab-Passw0rd!')[0] == 235
    assert emu.smtp.log[-1]['mechanism'] == 'LOGIN'  # smtplib's choice among LOGIN XOAUTH2
    msg = message(subject='by password')
    smtp.send_message(msg)
    smtp.quit()
    assert graph_find(emu, RCPT, msg['Message-ID']).json()['value'][0]['subject'] == 'by password'


def test_plain_and_lower_case_mechanisms_are_refused(emu):
    smtp = secure(emu)
    blob = base64.b64encode(b'\0' + SENDER.encode() + b'\0Lab-Passw0rd!').decode()
    code, reply = smtp.docmd('AUTH', 'PLAIN ' + blob)
    assert '%d %s' % (code, reply.decode()) == REPLIES['auth_before_tls']
    code, reply = smtp.docmd('AUTH', 'xoauth2 ' + base64.b64encode(
        ('user=%s\x01auth=Bearer %s\x01\x01' % (SENDER, token(emu))).encode()).decode())
    assert '%d %s' % (code, reply.decode()) == REPLIES['auth_before_tls']
    assert xoauth2(smtp, SENDER, token(emu))[0] == 235  # the same in upper case
    smtp.quit()


def test_no_auth_and_no_mail_before_starttls(emu):
    smtp = connect(emu)
    assert 'starttls' in smtp.esmtp_features
    assert 'auth' not in smtp.esmtp_features
    code, reply = xoauth2(smtp, SENDER, token(emu))
    assert '%d %s' % (code, reply.decode()) == REPLIES['auth_before_tls']
    assert refused(*smtp.mail(SENDER), 'not_authenticated')
    smtp.quit()
    first_auth = [e for e in emu.smtp.log if e['verb'] == 'AUTH']
    assert first_auth and not first_auth[0]['tls']
    assert all(e['arg'] is None for e in first_auth)  # the log keeps no token


def test_mail_after_tls_without_auth_is_refused(emu):
    smtp = secure(emu)
    assert refused(*smtp.mail(SENDER), 'not_authenticated')
    smtp.quit()


@pytest.mark.parametrize('case', ['tenant', 'mailbox'])
def test_smtp_auth_disabled(emu, case):
    if case == 'tenant':
        emu.transport_config['SmtpClientAuthenticationDisabled'] = True
    else:
        emu.cas_mailbox(SENDER)['SmtpClientAuthenticationDisabled'] = True
    for auth in ('xoauth2', 'login'):
        smtp = secure(emu)
        if auth == 'xoauth2':
            code, reply = xoauth2(smtp, SENDER, token(emu))
        else:
            with pytest.raises(smtplib.SMTPAuthenticationError) as err:
                smtp.login(SENDER, 'Lab-Passw0rd!')
            code, reply = err.value.smtp_code, err.value.smtp_error
        assert refused(code, reply, '%s_disabled' % case)
        smtp.close()
    # The mailbox switch wins over the tenant's.
    emu.transport_config['SmtpClientAuthenticationDisabled'] = True
    emu.cas_mailbox(SENDER)['SmtpClientAuthenticationDisabled'] = False
    smtp = secure(emu)
    assert xoauth2(smtp, SENDER, token(emu))[0] == 235
    smtp.quit()


def test_bad_credentials(emu):
    good = token(emu)
    cases = [
        (SENDER, 'password', 'wrong-password'),                      # 5.7.139 "incorrect"
        ('ghost@contosolab.onmicrosoft.com', 'password', 'Lab-Passw0rd!'),
        (SENDER, 'token', good[:-4] + 'AAAA'),                       # signature
        (SENDER, 'token', token(emu, scope=GRAPH_SCOPE)),            # audience
        (SENDER, 'token', token(emu, roles=('Mail.Send',))),         # no SMTP.SendAsApp
        ('nobox@contosolab.onmicrosoft.com', 'token', good),         # no mailbox
    ]
    for user, kind, secret in cases:
        smtp = secure(emu)
        if kind == 'token':
            code, reply = xoauth2(smtp, user, secret)
        else:
            with pytest.raises(smtplib.SMTPAuthenticationError) as err:
                smtp.login(user, secret)
            code, reply = err.value.smtp_code, err.value.smtp_error
        assert refused(code, reply, 'wrong_password' if kind == 'password' else
                       'bad_credentials'), (user, kind, code, reply)
        smtp.close()
    emu.expire_tokens()
    smtp = secure(emu)
    assert xoauth2(smtp, SENDER, good)[0] == 535
    smtp.close()


@pytest.mark.parametrize('variant', ['basic_disabled', 'basic_not_supported', 'policy_blocked'])
def test_basic_auth_disabled_for_tenant(emu, variant):
    if variant == 'policy_blocked':
        emu.smtp.security_defaults = True
    else:
        emu.smtp.basic_auth_disabled = True
        emu.smtp.basic_auth_reply = variant
    smtp = secure(emu)
    with pytest.raises(smtplib.SMTPAuthenticationError) as err:
        smtp.login(SENDER, 'Lab-Passw0rd!')
    assert refused(err.value.smtp_code, err.value.smtp_error, variant)
    smtp.close()
    smtp = secure(emu)
    assert xoauth2(smtp, SENDER, token(emu))[0] == 235  # OAuth still works
    smtp.quit()


def test_send_as_is_refused_at_the_end_of_data_not_at_mail_from(emu):
    ceo = 'ceo@contosolab.onmicrosoft.com'
    cases = [  # (send_as_reply, envelope sender, From:, the refusal)
        ('send_as_denied', ceo, ceo, send_as_denied(SENDER, ceo)),
        ('send_as_denied', SENDER, ceo, send_as_denied(SENDER, ceo)),
        ('send_as_permission', ceo, SENDER, REPLIES['send_as_permission']),
        ('send_as_header', SENDER, ceo, REPLIES['send_as_header']),
    ]
    for mode, envelope, header, refusal in cases:
        emu.smtp.send_as_reply = mode
        smtp = secure(emu)
        xoauth2(smtp, SENDER, token(emu))
        assert smtp.mail(envelope) == (250, b'2.1.0 Sender OK')
        assert smtp.rcpt(RCPT) == (250, b'2.1.5 Recipient OK')
        msg = message(sender=header)
        code, reply = smtp.data(msg.as_bytes())  # 354, then the refusal after the message
        text = '%d %s' % (code, reply.decode())
        assert text.startswith(refusal + ' [') and text.endswith(']'), (mode, text)
        smtp.quit()
        assert graph_find(emu, RCPT, msg['Message-ID']).json()['value'] == []
        assert graph_find(emu, SENDER, msg['Message-ID']).json()['value'] == []
    # A grant makes both pass.
    emu.smtp.grant_send_as(SENDER, ceo)
    smtp = secure(emu)
    xoauth2(smtp, SENDER, token(emu))
    smtp.send_message(message(sender=ceo), from_addr=ceo)
    smtp.quit()


def test_wrong_name_certificate_fails_verification(emu):
    smtp = connect(emu, emu.smtp.wrong_name_port)
    with pytest.raises(ssl.SSLCertVerificationError):
        smtp.starttls(context=tls_context(emu))
    smtp.close()
    assert not [e for e in emu.smtp.log if e['verb'] == 'AUTH']


def test_implicit_tls_xoauth2(emu):
    smtp = smtplib.SMTP_SSL('127.0.0.1', emu.smtp.implicit_port, timeout=10,
                            context=tls_context(emu))
    smtp.ehlo('client.exo-lab.test')
    assert 'starttls' not in smtp.esmtp_features
    assert 'xoauth2' in smtp.esmtp_features['auth'].lower()
    assert xoauth2(smtp, SENDER, token(emu))[0] == 235
    msg = message(subject='implicit')
    smtp.send_message(msg)
    smtp.quit()
    assert graph_find(emu, RCPT, msg['Message-ID']).json()['value'][0]['subject'] == 'implicit'
    assert [e['tls'] for e in emu.smtp.log if e['listener'] == 'implicit'][0] is True


def test_a_fourth_concurrent_session_of_one_sender_gets_432_at_mail_from(emu):
    held = []
    for dummy in range(3):
        smtp = secure(emu)
        assert xoauth2(smtp, SENDER, token(emu))[0] == 235
        held.append(smtp)
    fourth = secure(emu)
    assert xoauth2(fourth, SENDER, token(emu))[0] == 235
    code, reply = fourth.mail(SENDER)
    assert ('%d %s' % (code, reply.decode())).startswith(THROTTLED + ' [')
    assert fourth.mail(RCPT)[0] == 432  # still four
    # Another sender is not limited by adele's sessions.
    emu.smtp.set_password(RCPT, 'Bob-Passw0rd!')
    other = secure(emu)
    other.login(RCPT, 'Bob-Passw0rd!')
    assert other.mail(RCPT)[0] == 250
    other.quit()
    held.pop().quit()
    for dummy in range(50):  # the server sees the session end soon after QUIT
        if emu.smtp.sessions_of(SENDER) <= 3:
            break
        time.sleep(0.05)
    assert fourth.mail(SENDER)[0] == 250
    fourth.quit()
    for smtp in held:
        smtp.quit()


def test_injected_421_closes_the_connection(emu):
    emu.smtp.inject('EHLO', '421 4.3.2 Service not available, closing transmission channel')
    with pytest.raises(smtplib.SMTPServerDisconnected):
        smtp = connect(emu)
        smtp.noop()
    # The next connection is served again.
    smtp = secure(emu)
    assert xoauth2(smtp, SENDER, token(emu))[0] == 235
    smtp.quit()


def test_folders_sent_items_junk_and_suppressed_delivery(emu):
    """A message to oneself is in Sent Items and the Inbox (one internetMessageId, two items);
    delivery_folder sends a recipient's mail to Junk Email, or nowhere (quarantine)."""
    def send(to):
        smtp = secure(emu)
        xoauth2(smtp, SENDER, token(emu))
        msg = message(to=to)
        smtp.send_message(msg)
        smtp.quit()
        return msg['Message-ID']

    def folders(upn, message_id):
        user = emu.find_user(upn)
        names = {folder_id(user, n): n for n in ('inbox', 'sentitems', 'junkemail')}
        return sorted(names[m['parentFolderId']]
                      for m in graph_find(emu, upn, message_id).json()['value'])

    own = send(SENDER)
    assert folders(SENDER, own) == ['inbox', 'sentitems']
    emu.smtp.delivery_folder[RCPT] = 'junkemail'
    junk = send(RCPT)
    assert folders(RCPT, junk) == ['junkemail']
    assert len(graph_find(emu, RCPT, junk, folder='JunkEmail').json()['value']) == 1
    emu.smtp.delivery_folder[SENDER] = None
    suppressed = send(SENDER)
    assert folders(SENDER, suppressed) == ['sentitems']
    resp = graph_find(emu, SENDER, suppressed, folder='no-such-folder')
    assert resp.status_code == 404 and resp.json()['error']['code'] == 'ErrorItemNotFound'
    inbox_id = folder_id(emu.find_user(SENDER), 'inbox')
    assert graph_find(emu, SENDER, own, folder=inbox_id).json()['value'][0]['internetMessageId'] \
        == own
