"""smtp_test against the lab's Exchange-like submission server (real smtplib in the module, real
msal for tokens, real requests for the delivery proof through Graph)."""

import base64
import smtplib
import socket
import socketserver
import ssl
import threading

import pytest
from cryptography import x509

from tests.integration.conftest import m365_args
from tests.lab.m365.client import app_token
from tests.lab.m365.emulator import M365Emulator
from tests.lab.m365.smtp import REPLIES, THROTTLED, folder_id, send_as_denied

SENDER = 'adele@contosolab.onmicrosoft.com'
RCPT = 'bob@contosolab.onmicrosoft.com'
PASSWORD = 'Lab-Passw0rd-for-adele-9f3c1e'
SECRET = 'smtp-test-app-secret-4b8e2d7a91'
SEND_ROLES = ('SMTP.SendAsApp', 'Mail.ReadBasic.All')
CEO = 'ceo@contosolab.onmicrosoft.com'


@pytest.fixture(scope='module')
def emu(tmp_path_factory):
    server = M365Emulator(workdir=str(tmp_path_factory.mktemp('m365')))
    server.start()
    server.start_smtp()
    server.add_user(SENDER)
    server.add_user(RCPT)
    server.smtp.set_password(SENDER, PASSWORD)
    yield server
    server.stop()


@pytest.fixture(autouse=True)
def tenant_state(emu):
    emu.smtp.reset(SENDER)


@pytest.fixture(scope='module')
def app(emu):
    return emu.add_app(secret=SECRET, roles=SEND_ROLES)


def args(emu, app, **extra):
    """XOAUTH2 with an app-only token through the emulator, STARTTLS to the lab listener."""
    out = dict(m365_args(emu, app), host='127.0.0.1', port=emu.smtp.port, sender=SENDER,
               to=[RCPT], timeout=10)
    out.update(extra)
    return out


def send(name='send', **module_args):
    return {'name': name, 'exchangeonline.mail.smtp_test': module_args, 'register': 'out',
            'ignore_errors': True}


def mailbox(emu, upn=RCPT):
    return [m['internetMessageId'] for m in emu.find_user(upn).get('_messages', [])]


def verbs(emu, listener='submission'):
    return [e['verb'] for e in emu.smtp.log if e.get('listener', listener) == listener]


def test_xoauth2_send_arrives_with_tls_details_and_clean_transcript(emu, app, play):
    run = play([send(**args(emu, app, confirm_delivery={'timeout': 10, 'interval': 0.2}))])
    r = run.last['result']
    assert run.last['status'] == 'ok', r.get('msg')
    assert r['changed'] is False
    assert r['phase'] == 'delivery' and r['failed_phase'] is None
    assert r['delivered'] is True and r['delivery_ms'] >= 0
    assert r['delivered_folder'] == 'inbox' and r['send_as_proven'] is True
    assert r['message_id'] in mailbox(emu)
    # The proof asked the recipient's Inbox, with the id quoted as OData wants it.
    asked = [e for e in emu.requests if '/mailFolders/' in e['path']]
    assert asked and asked[0]['path'] == '/v1.0/users/%s/mailFolders/inbox/messages' % RCPT
    assert "internetMessageId+eq+%27%3C" in asked[0]['query'] or \
        "internetMessageId%20eq%20%27%3C" in asked[0]['query'], asked[0]['query']
    assert r['server_message_id'] == r['message_id']
    assert r['auth_mechanism'] == 'XOAUTH2'
    assert r['tls']['version'] in ('TLSv1.2', 'TLSv1.3') and r['tls']['verified'] is True
    assert '127.0.0.1' in r['tls']['peer_certificate']['names']
    assert r['tls']['peer_certificate']['expires_in_days'] > 0
    assert 'STARTTLS' in r['capabilities']['before_tls']
    assert not any(c.startswith('AUTH') for c in r['capabilities']['before_tls'])
    assert any(c.startswith('AUTH') and 'XOAUTH2' in c for c in r['capabilities']['after_tls'])
    assert set(r['timings_ms']) >= {'connect', 'ehlo', 'starttls', 'auth', 'mail', 'rcpt', 'data',
                                    'delivery'}
    lines = [t['line'] for t in r['transcript']]
    assert 'AUTH XOAUTH2 ********' in lines
    assert lines[0].startswith('220 ') and lines[-1].startswith('221')
    assert any(line.startswith('<message: ') for line in lines)
    # The log saw the EHLO twice (before and after TLS) and AUTH only on the TLS session.
    log = emu.smtp.log
    assert [e['verb'] for e in log][:4] == ['EHLO', 'STARTTLS', 'EHLO', 'AUTH']
    assert all(e['tls'] for e in log if e['verb'] == 'AUTH')


def test_login_arrives_and_plain_is_not_offered(emu, app, play):
    tasks = [send('login', **args(emu, app, auth='login', username=SENDER, password=PASSWORD,
                                  confirm_delivery={'timeout': 10, 'interval': 0.2})),
             send('plain', **args(emu, app, auth='plain', username=SENDER, password=PASSWORD))]
    run = play(tasks, verbosity=3)
    r = run.task('login')['result']
    assert run.task('login')['status'] == 'ok', r.get('msg')
    assert r['auth_mechanism'] == 'LOGIN' and r['delivered'] is True
    assert r['message_id'] in mailbox(emu)
    lines = [t['line'] for t in r['transcript']]
    assert lines.count('********') == 2 and 'AUTH LOGIN' in lines
    # Exchange Online offers no PLAIN: the module says so before it sends any credentials.
    r = run.task('plain')['result']
    assert r['failed_phase'] == 'auth'
    assert 'does not offer AUTH PLAIN (it offers: LOGIN XOAUTH2)' in r['msg']
    assert 'no PLAIN' in r['hint'] and 'auth: xoauth2' in r['hint']
    assert [e for e in emu.smtp.log if e['verb'] == 'AUTH'][-1]['mechanism'] == 'LOGIN'
    # no_log masks the password itself; what goes on the wire is base64 (LOGIN): it may not
    # show anywhere.
    wire = [base64.b64encode(PASSWORD.encode()).decode()]
    text = run.stdout + run.stderr + repr(run.results)
    assert PASSWORD not in text and not any(w in text for w in wire)


def test_no_secret_or_token_in_verbose_output(emu, app, play):
    token = app_token(emu, ('SMTP.SendAsApp',), ['https://outlook.office365.com/.default'])
    module_args = args(emu, app, access_token=token)
    run = play([send(**module_args)], verbosity=3)
    r = run.last['result']
    assert run.last['status'] == 'ok', r.get('msg')
    text = run.stdout + run.stderr + repr(r)
    blob = base64.b64encode(('user=%s\x01auth=Bearer %s\x01\x01' % (SENDER, token)).encode())
    assert token not in text and token[:40] not in text and blob.decode()[:60] not in text
    assert SECRET not in text


EXCHANGE_REFUSALS = [
    # (name, tenant state, module args, failed phase, code, enhanced, reply key, hint words)
    ('tenant', {'tenant': True}, {}, 'auth', 535, '5.7.139', 'tenant_disabled',
     'disabled for the whole tenant'),
    ('mailbox', {'mailbox': True}, {}, 'auth', 535, '5.7.139', 'mailbox_disabled',
     'smtp_auth: enabled'),
    ('basic', {'basic': 'basic_disabled'}, {'auth': 'login'}, 'auth', 535, '5.7.139',
     'basic_disabled', 'auth: xoauth2'),
    ('basic-550', {'basic': 'basic_not_supported'}, {'auth': 'login'}, 'auth', 550, '5.7.30',
     'basic_not_supported', 'auth: xoauth2'),
    ('security-defaults', {'security_defaults': True}, {'auth': 'login'}, 'auth', 535,
     '5.7.139', 'policy_blocked', 'Conditional Access'),
    ('bad-password', {}, {'auth': 'login', 'password': 'wrong-password-for-adele'}, 'auth',
     535, '5.7.139', 'wrong_password', 'the user name or password is wrong'),
    ('no-auth', {}, {'auth': 'none'}, 'mail', 530, '5.7.57', 'not_authenticated',
     'give auth'),
]


@pytest.mark.parametrize('case', EXCHANGE_REFUSALS, ids=[c[0] for c in EXCHANGE_REFUSALS])
def test_exchange_refusals_name_phase_code_and_hint(emu, app, play, case):
    name, state, extra, phase, code, enhanced, key, hint = case
    emu.transport_config['SmtpClientAuthenticationDisabled'] = bool(state.get('tenant'))
    if state.get('mailbox'):
        emu.cas_mailbox(SENDER)['SmtpClientAuthenticationDisabled'] = True
    if state.get('basic'):
        emu.smtp.basic_auth_disabled = True
        emu.smtp.basic_auth_reply = state['basic']
    emu.smtp.security_defaults = bool(state.get('security_defaults'))
    module_args = args(emu, app, username=SENDER, password=PASSWORD)
    module_args.update(extra)
    before = mailbox(emu)
    run = play([send(**module_args)])
    r = run.last['result']
    assert run.last['status'] == 'failed'
    assert r['failed_phase'] == phase, r['msg']
    assert (r['smtp_code'], r['enhanced_code']) == (code, enhanced)
    expected = REPLIES[key].split(' ', 2)[2]  # the text after the code and enhanced code
    assert r['message'].startswith(expected), r['message']
    assert hint in r['hint'], r['hint']
    assert r['msg'].startswith('%s failed: ' % phase) and hint in r['msg']
    if key in ('basic_disabled', 'basic_not_supported', 'policy_blocked'):
        assert 'end of December 2026' in r['hint'] and 'MC786329' in r['hint']
    elif key == 'wrong_password':  # a credentials error, not SMTP AUTH switched off
        assert 'SMTP AUTH is disabled' not in r['hint'] and 'December' not in r['hint']
    assert mailbox(emu) == before
    assert PASSWORD not in run.stdout


def test_send_as_is_refused_after_the_message_and_a_stop_before_it_proves_nothing(
        emu, app, play):
    """Exchange takes any MAIL FROM and refuses Send As at the end of DATA: the refusal is a
    data failure with its hint; check mode and quit_after: rcpt pass and warn that they prove
    nothing about Send As."""
    common = dict(username=SENDER, sender=CEO)
    check = dict(send('check', **args(emu, app, **common)), check_mode=True)
    before = mailbox(emu)
    run = play([send('envelope', **args(emu, app, **common)),
                send('header', **args(emu, app, headers={'From': CEO})),
                check,
                send('rcpt', **args(emu, app, quit_after='rcpt', **common))])
    for name in ('envelope', 'header'):
        r = run.task(name)['result']
        assert run.task(name)['status'] == 'failed'
        assert (r['failed_phase'], r['phase']) == ('data', 'rcpt'), r['msg']
        assert (r['smtp_code'], r['enhanced_code']) == (554, '5.2.252')
        assert r['message'].startswith(send_as_denied(SENDER, CEO).split(' ', 2)[2])
        assert 'Add-RecipientPermission' in r['hint'] and r['send_as_proven'] is False
        lines = [t['line'] for t in r['transcript']]
        assert '250 2.1.0 Sender OK' in lines and any(line.startswith('354 ') for line in lines)
    assert mailbox(emu) == before
    for name, how in (('check', 'check mode'), ('rcpt', 'quit_after: rcpt')):
        r = run.task(name)['result']
        assert run.task(name)['status'] == 'ok', r.get('msg')
        assert r['phase'] == 'rcpt' and r['send_as_proven'] is False
        warning = ('This test stopped before sending the message (%s), so it does not prove '
                   'that %s may send as %s' % (how, SENDER, CEO))
        assert warning in ' '.join((run.stdout + run.stderr).split()), run.stderr[-2000:]


def direct(emu, **extra):
    """The parameters of a plain SmtpTest run (what the module passes), XOAUTH2 with a token."""
    params = dict(host='127.0.0.1', port=emu.smtp.port, tls='starttls', auth='xoauth2',
                  timeout=10.0, sender=SENDER, to=[RCPT], headers={}, quit_after=None,
                  confirm_delivery=None, allow_plaintext_auth=False, min_tls_version='TLSv1_2',
                  validate_certs=True, ca_path=emu.ca_path, username=None, password=None,
                  access_token=app_token(emu, ('SMTP.SendAsApp',),
                                         ['https://outlook.office365.com/.default']),
                  subject=None, body=None, ehlo_name=None)
    params.update(extra)
    return params


def test_send_as_550_5_7_60_at_the_end_of_data_gets_the_send_as_hint(emu):
    from ansible_collections.exchangeonline.mail.plugins.module_utils._smtp_test import SmtpTest
    emu.smtp.send_as_reply = 'send_as_permission'
    r = SmtpTest(direct(emu, username=SENDER, sender=CEO), False).run()
    assert (r['failed_phase'], r['smtp_code'], r['enhanced_code']) == ('data', 550, '5.7.60')
    assert 'Client does not have permissions to send as this sender' in r['message']
    assert 'at the end of DATA' in r['hint'] and 'Add-RecipientPermission' in r['hint']


def test_432_sender_thread_limit_is_retried_until_a_session_ends(emu):
    """Three other sessions send as adele (real smtplib, held open); the test's MAIL FROM gets
    432 4.3.2, waits and tries again; one session ends meanwhile, and the message goes."""
    from ansible_collections.exchangeonline.mail.plugins.module_utils._smtp_hints import (
        THROTTLE_WAITS)
    from ansible_collections.exchangeonline.mail.plugins.module_utils._smtp_test import SmtpTest
    params = direct(emu)
    held = []
    for dummy in range(3):
        smtp = smtplib.SMTP('127.0.0.1', emu.smtp.port, timeout=10)
        smtp.starttls(context=ssl.create_default_context(cafile=emu.ca_path))
        smtp.ehlo()
        blob = 'user=%s\x01auth=Bearer %s\x01\x01' % (SENDER, params['access_token'])
        assert smtp.docmd('AUTH', 'XOAUTH2 ' + base64.b64encode(blob.encode()).decode())[0] \
            == 235
        held.append(smtp)
    ender = threading.Timer(THROTTLE_WAITS[0] / 2, held[0].quit)
    ender.start()
    try:
        r = SmtpTest(params, False).run()
    finally:
        ender.join()
        for smtp in held[1:]:
            smtp.quit()
    assert r['failed_phase'] is None and r['phase'] == 'quit', r['msg']
    lines = [t['line'] for t in r['transcript']]
    mails = [i for i, line in enumerate(lines) if line.upper().startswith('MAIL FROM:')]
    assert len(mails) == 2 and lines[mails[0] + 1].startswith(THROTTLED + ' [')
    assert any(t['direction'] == 'note' and 'sender thread limit' in t['line']
               for t in r['transcript'])
    assert r['timings_ms']['mail'] >= THROTTLE_WAITS[0] * 1000
    assert r['message_id'] in mailbox(emu)


def test_throttling_432_after_retries_and_token_without_send_as(emu, app, play):
    # The lab answers on 127.0.0.1, but greets as an Exchange Online server
    # (*.prod.outlook.com): the Exchange Online hints apply, and 432 4.3.2 is retried.
    emu.smtp.inject('MAIL', THROTTLED, count=3)
    no_send = emu.add_app(secret=SECRET + '-2', roles=('Mail.ReadBasic.All',))
    run = play([send('throttled', **args(emu, app)),
                send('no-role', **args(emu, no_send))])
    r = run.task('throttled')['result']
    assert (r['failed_phase'], r['smtp_code'], r['enhanced_code']) == ('mail', 432, '4.3.2')
    assert 'at most 3 sessions' in r['hint']
    assert 'retries a 432 to MAIL FROM (3 tries in all)' in r['hint']
    assert [e['verb'] for e in emu.smtp.log].count('MAIL') == 3
    r = run.task('no-role')['result']
    assert (r['failed_phase'], r['smtp_code'], r['enhanced_code']) == ('auth', 535, '5.7.3')
    assert 'SMTP.SendAsApp' in r['hint']


def test_wrong_certificate_name_fails_at_starttls_before_auth(emu, app, play):
    run = play([send(**args(emu, app, port=emu.smtp.wrong_name_port))])
    r = run.last['result']
    assert r['failed_phase'] == 'starttls' and r['phase'] == 'ehlo'
    assert 'certificate' in r['msg'] and '127.0.0.1' in r['msg']
    assert 'AUTH' not in verbs(emu, 'wrong-name')
    # Without the lab CA the same listener fails too (not signed by a trusted CA).
    run = play([send(**args(emu, app, ca_path=None))])
    assert run.last['result']['failed_phase'] == 'starttls'
    assert 'unable to get local issuer certificate' in run.last['result']['msg']


def test_implicit_tls(emu, app, play):
    run = play([send(**args(emu, app, port=emu.smtp.implicit_port, tls='tls'))])
    r = run.last['result']
    assert run.last['status'] == 'ok', r.get('msg')
    assert r['tls']['verified'] and r['capabilities']['before_tls'] == []
    assert any('XOAUTH2' in c for c in r['capabilities']['after_tls'])
    assert r['message_id'] in mailbox(emu)
    assert 'starttls' not in r['timings_ms']


@pytest.mark.parametrize('stage,last_verb', [
    ('connect', None), ('ehlo', 'EHLO'), ('starttls', 'EHLO'), ('auth', 'AUTH'),
    ('rcpt', 'RCPT'), ('data', 'DATA')])
def test_quit_after_every_stage(emu, app, play, stage, last_verb):
    before = mailbox(emu)
    run = play([send(**args(emu, app, quit_after=stage))])
    r = run.last['result']
    assert run.last['status'] == 'ok', r.get('msg')
    assert r['phase'] == stage and r['failed_phase'] is None
    assert r['send_as_proven'] is False
    if stage in ('rcpt', 'data'):
        assert 'does not prove that the server takes %s as the sender' % SENDER in \
            ' '.join((run.stdout + run.stderr).split())
    seen = [v for v in verbs(emu) if v not in ('QUIT', 'RSET')]
    assert (seen[-1] if seen else None) == last_verb
    assert mailbox(emu) == before
    assert r['message_id'] is None


def test_check_mode_stops_after_rcpt_and_sends_no_data(emu, app, play):
    before = mailbox(emu)
    run = play([send(**args(emu, app, confirm_delivery={'timeout': 5}))], check=True)
    r = run.last['result']
    assert run.last['status'] == 'ok', r.get('msg')
    assert r['phase'] == 'rcpt' and r['changed'] is False
    assert 'DATA' not in verbs(emu) and 'RCPT' in verbs(emu)
    assert mailbox(emu) == before and r['delivered'] is None
    assert r['send_as_proven'] is False
    assert 'stopped before sending the message (check mode)' in ' '.join(
        (run.stdout + run.stderr).split())


def test_delivery_not_confirmed_fails_in_delivery_phase(emu, app, play):
    # Accepted for an external recipient; the sender's own mailbox never gets it.
    run = play([send(**args(emu, app, to=['someone@fabrikam.example'],
                            confirm_delivery={'mailbox': RCPT, 'timeout': 1.0,
                                              'interval': 0.3}))])
    r = run.last['result']
    assert r['failed_phase'] == 'delivery' and r['phase'] == 'quit'
    assert r['delivered'] is False
    assert 'did not arrive in the Inbox or Junk Email of %s within 1.0 s' % RCPT in r['msg']
    assert 'inbox rule' in r['hint'] and 'quarantined' in r['hint']


def test_delivery_proof_is_the_inbox_not_the_sent_items_copy_and_names_junk_email(
        emu, app, play):
    """To oneself with delivery into the Inbox suppressed: only the Sent Items copy has the
    internetMessageId, so the message is not delivered; a message filed as Junk Email is
    delivered, in that folder, with a warning."""
    emu.smtp.delivery_folder[SENDER] = None
    emu.smtp.delivery_folder[RCPT] = 'junkemail'
    run = play([send('self', **args(emu, app, to=[SENDER],
                                    confirm_delivery={'timeout': 1.0, 'interval': 0.3})),
                send('junk', **args(emu, app, confirm_delivery={'timeout': 5, 'interval': 0.2}))])
    r = run.task('self')['result']
    assert r['failed_phase'] == 'delivery' and r['delivered'] is False, r['msg']
    assert r['send_as_proven'] is True and r['delivered_folder'] is None
    copies = [m for m in emu.find_user(SENDER)['_messages']
              if m['internetMessageId'] == r['message_id']]
    assert [m['parentFolderId'] for m in copies] == [folder_id(emu.find_user(SENDER),
                                                               'sentitems')]
    r = run.task('junk')['result']
    assert run.task('junk')['status'] == 'ok', r.get('msg')
    assert r['delivered'] is True and r['delivered_folder'] == 'junkemail'
    assert 'delivered to Junk Email of %s, not to the Inbox' % RCPT in \
        ' '.join((run.stdout + run.stderr).split())


def test_delivery_check_without_mail_read_names_the_permission(emu, play):
    send_only = emu.add_app(secret=SECRET + '-3', roles=('SMTP.SendAsApp',))
    run = play([send(**args(emu, send_only, confirm_delivery={'timeout': 5}))])
    r = run.last['result']
    assert r['failed_phase'] == 'delivery'
    assert 'Mail.ReadBasic.All' in r['msg'] and '403' in r['msg']


@pytest.mark.parametrize('extra,text', [
    ({'tls': 'none'}, 'would send the credentials in clear text'),
    ({'to': []}, 'give to'),
    ({'to': ['not-an-address']}, "'not-an-address' is not an e-mail address"),
    ({'auth': 'login'}, 'auth: login needs password'),
    ({'headers': {'X-Bad': 'a\r\nBcc: victim@example.com'}},
     "headers: the value of 'X-Bad' holds the control character U+000D (CR) after 1 characters"),
    ({'sender': 'adele\x00@contosolab.onmicrosoft.com'}, 'sender contains a NUL character'),
    ({'to': [RCPT, RCPT + '\r\nRCPT TO:<victim@example.com>']}, 'to[1] '),
    ({'username': SENDER + '\x01auth=Bearer x', 'auth': 'login', 'password': PASSWORD},
     'username '),
    ({'ehlo_name': 'client.example\r\nMAIL FROM:<x@example.com>'}, 'ehlo_name '),
    ({'subject': 'Hello\nBcc: victim@example.com'},
     'subject holds the control character U+000A (LF) after 5 characters'),
    ({'subject': 'bell\x07'}, 'subject holds the control character U+0007'),
    ({'headers': {'X-Esc': 'a\x1b]0;owned\x07'}}, "headers: the value of 'X-Esc' holds"),
    ({'body': 'text with a NUL\x00 in it'}, 'body contains a NUL character'),
    ({'body': 'text with a BEL\x07 in it'},
     'body holds the control character U+0007 after 15 characters: the body may hold '
     'tabs and line breaks'),
    ({'body': 'DEL\x7f'}, 'body holds the control character U+007F (DEL)'),
    ({'quit_after': 'rcpt', 'confirm_delivery': {}}, 'confirm_delivery needs a message sent'),
    ({'port': 70000}, 'port must be from 1 to 65535, got 70000'),
    ({'timeout': -1}, 'timeout must be more than 0 and at most 600 seconds'),
    ({'headers': {'Message-ID': '<mine@example.com>'}}, "headers: 'Message-ID' is set by the module"),
    ({'to': ['a@bücher..example']}, 'not a valid internationalised domain name'),
])
def test_bad_input_is_refused_before_connecting(emu, app, play, extra, text):
    run = play([send(**args(emu, app, **extra))])
    r = run.last['result']
    assert run.last['status'] == 'failed'
    assert r['failed_phase'] == 'input' and text in r['msg'], r['msg']
    assert 'Traceback' not in run.stdout + run.stderr
    assert emu.smtp.log == []


class PlainSMTP(socketserver.StreamRequestHandler):
    """A server that offers AUTH but no STARTTLS; it records every line it receives."""

    def handle(self):
        self.wfile.write(b'220 plain.exo-lab.test ESMTP\r\n')
        for raw in self.rfile:
            line = raw.decode().rstrip('\r\n')
            self.server.seen.append(line)
            verb = line.split(' ', 1)[0].upper()
            if verb == 'EHLO':
                self.wfile.write(b'250-plain.exo-lab.test\r\n250-AUTH LOGIN PLAIN XOAUTH2\r\n'
                                 b'250 8BITMIME\r\n')
            elif verb == 'QUIT':
                self.wfile.write(b'221 bye\r\n')
                return
            else:
                self.wfile.write(b'250 ok\r\n')


@pytest.fixture
def plain_server():
    server = socketserver.ThreadingTCPServer(('127.0.0.1', 0), PlainSMTP)
    server.daemon_threads = True
    server.seen = []
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


def test_server_without_starttls_gets_no_auth(emu, app, play, plain_server):
    port = plain_server.server_address[1]
    run = play([send(**args(emu, app, port=port, auth='login', username=SENDER,
                            password=PASSWORD))])
    r = run.last['result']
    assert r['failed_phase'] == 'starttls'
    assert 'does not offer STARTTLS' in r['msg'] and 'AUTH LOGIN PLAIN XOAUTH2' in r['msg']
    seen = [line.split(' ', 1)[0].upper() for line in plain_server.seen]
    assert seen[0] == 'EHLO' and 'AUTH' not in seen and 'STARTTLS' not in seen
    assert not any(PASSWORD in line for line in plain_server.seen)


def test_unreachable_server_fails_at_connect(emu, app, play):
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        port = s.getsockname()[1]
    run = play([send(**args(emu, app, port=port))])
    r = run.last['result']
    assert r['failed_phase'] == 'connect' and r['phase'] is None
    assert 'network error' in r['msg'] and '127.0.0.1:%d' % port in r['msg']


def test_validate_certs_off_still_reports_the_certificate(emu, app, play):
    run = play([send(**args(emu, app, port=emu.smtp.wrong_name_port, validate_certs=False,
                            quit_after='starttls'))])
    r = run.last['result']
    assert run.last['status'] == 'ok', r.get('msg')
    assert r['tls']['verified'] is False
    assert r['tls']['peer_certificate']['names'] == ['wrong-name.exo-lab.test']
    # trustme's certificates end on 3000-01-01 (2038-01-01 in trustme 1.1, the oldest allowed)
    lab_cert = x509.load_pem_x509_certificate(emu.smtp.wrong_cert.cert_chain_pems[0].bytes())
    end = getattr(lab_cert, 'not_valid_after_utc', None) or lab_cert.not_valid_after
    assert r['tls']['peer_certificate']['not_after'].startswith(end.strftime('%Y-%m-%d'))


def role(name='role', **variables):
    return {'name': name, 'ansible.builtin.include_role': {'name': 'exchangeonline.mail.smtp_test'},
            'vars': variables}


def test_role_sends_proves_delivery_and_records_a_refusal(emu, app, play):
    m365 = m365_args(emu, app)
    common = dict(smtp_test_host='127.0.0.1', smtp_test_port=emu.smtp.port,
                  smtp_test_sender=SENDER, smtp_test_to=[RCPT], smtp_test_m365=m365,
                  smtp_test_delivery_timeout=10)
    run = play([role('ok', **common),
                {'name': 'keep', 'ansible.builtin.set_fact': {'first': '{{ smtp_test_result }}'}},
                role('refused', smtp_test_fail=False, smtp_test_auth='login',
                     smtp_test_password='not-the-password-of-adele', **common),
                role('fails', smtp_test_auth='login', smtp_test_password='not-the-password',
                     **common)])
    first = run.task('keep')['result']['ansible_facts']['first']
    assert first['delivered'] is True and first['message_id'] in mailbox(emu)
    report = run.task('exchangeonline.mail.smtp_test : Report the test-send')['result']['msg']
    assert 'failed at auth: auth failed: the server answered 535 5.7.139' in report
    failure = run.task('exchangeonline.mail.smtp_test : Fail when the test-send failed')
    assert failure['status'] == 'failed'
    assert '535 5.7.139 Authentication unsuccessful, the user credentials were incorrect' in \
        failure['result']['msg']
    assert run.rc != 0


def test_role_argument_spec_rejects_missing_sender_and_bad_auth(emu, play):
    run = play([role(smtp_test_to=[RCPT], smtp_test_auth='ntlm')])
    text = run.stdout + run.stderr
    assert run.rc != 0
    assert 'smtp_test_sender' in text and 'ntlm' in text
    assert emu.smtp.log == []


def test_playbook_by_fqcn_sends_to_the_sender_itself_and_check_mode_sends_nothing(
        emu, app, tmp_path):
    import json
    from tests.lab.ansible_runner import run_playbook
    inventory = tmp_path / 'inventory.json'
    inventory.write_text(json.dumps({'all': {'hosts': {'contosolab.onmicrosoft.com': {
        'exo_m365': m365_args(emu, app),
        'exo_smtp_test': {'sender': SENDER, 'host': '127.0.0.1', 'port': emu.smtp.port,
                          'delivery_timeout': 10}}}}}))
    run = run_playbook(playbook='exchangeonline.mail.smtp_test', inventory=str(inventory),
                       workdir=str(tmp_path / 'run'))
    assert run.rc == 0, run.stdout + run.stderr
    result = run.task('exchangeonline.mail.smtp_test : Send a test message via 127.0.0.1:%d'
                      % emu.smtp.port)['result']
    assert result['delivered'] is True and result['message_id'] in mailbox(emu, SENDER)
    emu.smtp.clear_log()
    check = run_playbook(playbook='exchangeonline.mail.smtp_test', inventory=str(inventory),
                         workdir=str(tmp_path / 'check'), check=True)
    assert check.rc == 0, check.stdout
    assert 'RCPT' in verbs(emu) and 'DATA' not in verbs(emu)
    # The report line claims no more than the module proved (send_as_proven is false).
    report = check.task('exchangeonline.mail.smtp_test : Report the test-send')['result']['msg']
    assert report == ('%s -> %s: the server accepted the sender and the recipients; check mode '
                      'sends no message, so Send As is not proven' % (SENDER, SENDER)), report


def test_idn_and_utf8_addresses_and_a_non_ascii_body(emu, app, play):
    run = play([send('idn', **args(emu, app, to=['anna@b\u00fccher.example', RCPT],
                                   subject='Gr\u00fc\u00dfe', body='Gr\u00fc\u00dfe aus dem Labor')),
                send('utf8', **args(emu, app, to=['j\u00f6rg@b\u00fccher.example']))])
    idn = run.task('idn')['result']
    assert run.task('idn')['status'] == 'ok', idn.get('msg')
    # RFC 5321 2.4: the keyword TO: is case-insensitive (Python 3.13 smtplib writes it in lower
    # case); the address is not.
    rcpts = [('TO:' + a[3:]) if a[:3].upper() == 'TO:' else a
             for a in (e['arg'] for e in emu.smtp.log if e['verb'] == 'RCPT')]
    assert 'TO:<anna@xn--bcher-kva.example>' in rcpts
    stored = [m for m in emu.find_user(RCPT)['_messages']
              if m['internetMessageId'] == idn['message_id']]
    assert stored[0]['subject'] == 'Gr\u00fc\u00dfe' and 'Labor' in stored[0]['body']['content']
    utf8 = run.task('utf8')['result']
    assert run.task('utf8')['status'] == 'ok', utf8.get('msg')
    mails = [e['arg'] for e in emu.smtp.log if e['verb'] == 'MAIL']
    assert mails[-1].endswith('SMTPUTF8')
    assert 'TO:<j\u00f6rg@xn--bcher-kva.example>' in rcpts


LONG_BODY = ('A first short line.\n' + 'x' * 2000 + '\n\tindented with a tab\n' +
             '.a line that starts with a dot ' + 'y' * 1200 + '\n' + 'z' * 998 + '\n')
LONG_SUBJECT = ' '.join(['long-subject'] * 150)  # 1949 characters


@pytest.mark.parametrize('body', [LONG_BODY, 'Gr\u00fc\u00dfe ' * 400 + '\n'],
                         ids=['ascii', 'non-ascii'])
def test_long_lines_are_encoded_and_arrive_unchanged(emu, app, play, body):
    long_value = 'v' * 1500
    run = play([send(**args(emu, app, subject=LONG_SUBJECT, body=body,
                            headers={'X-Long-Value': long_value}))])
    r = run.last['result']
    assert run.last['status'] == 'ok', r.get('msg')
    received = [m['raw'] for m in emu.smtp.received if b'Message-ID: ' + r['message_id'].encode()
                in m['raw']]
    assert len(received) == 1
    raw = received[0]
    assert max(len(line) for line in raw.split(b'\r\n')) <= 998
    raw.decode('ascii')  # 7 bit on the wire
    import email
    import email.policy
    msg = email.message_from_bytes(raw, policy=email.policy.default)
    assert msg['Content-Transfer-Encoding'] == 'quoted-printable'
    assert str(msg['Subject']) == LONG_SUBJECT and str(msg['X-Long-Value']) == long_value
    stored = [m for m in emu.find_user(RCPT)['_messages']
              if m['internetMessageId'] == r['message_id']]
    assert stored[0]['subject'] == LONG_SUBJECT
    assert stored[0]['body']['content'].replace('\r\n', '\n') == body


def test_a_short_ascii_body_stays_7bit(emu, app, play):
    body = 'line one\n\tline two with a tab\n' + 'w' * 998 + '\n'
    run = play([send(**args(emu, app, body=body))])
    r = run.last['result']
    assert run.last['status'] == 'ok', r.get('msg')
    raw = emu.smtp.received[-1]['raw']
    assert b'Content-Transfer-Encoding: 7bit' in raw
    assert raw.split(b'\r\n\r\n', 1)[1] == body.replace('\n', '\r\n').encode()


def test_one_recipient_refused_names_it(emu, app, play):
    emu.smtp.inject('RCPT', '550 5.1.10 RESOLVER.ADR.RecipientNotFound; Recipient not found')
    run = play([send(**args(emu, app, to=['nobody@contosolab.onmicrosoft.com', RCPT]))])
    r = run.last['result']
    assert r['failed_phase'] == 'rcpt' and r['smtp_code'] == 550
    assert 'refused the recipient nobody@contosolab.onmicrosoft.com' in r['msg']
    assert 'recipient does not exist' in r['hint']


@pytest.fixture
def silent_server():
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        s.listen(1)
        yield s


def test_silent_server_is_a_timeout_with_the_port_hint(emu, app, play, silent_server):
    port = silent_server.getsockname()[1]
    run = play([send(**args(emu, app, port=port, timeout=1))])
    r = run.last['result']
    assert r['failed_phase'] == 'connect' and 'no answer within 1.0 s' in r['msg'], r['msg']


def test_role_keeps_a_refused_input_as_a_result_instead_of_crashing(emu, app, play):
    """A module-level failure (here: both client_secret and a certificate) is kept in
    smtp_test_result with every key, so a report still gets a row for the domain."""
    m365 = m365_args(emu, app, client_certificate_path='/nonexistent/cert.pem')
    run = play([role('refused', smtp_test_host='127.0.0.1', smtp_test_port=emu.smtp.port,
                     smtp_test_sender=SENDER, smtp_test_to=[RCPT], smtp_test_m365=m365,
                     smtp_test_fail=False),
                {'name': 'keep', 'ansible.builtin.set_fact': {'kept': '{{ smtp_test_result }}'}}])
    assert run.rc == 0, run.stdout
    kept = run.task('keep')['result']['ansible_facts']['kept']
    assert kept['failed_phase'] == 'input' and kept['delivered'] is None
    assert 'mutually exclusive' in kept['msg']


FOLDER_GONE = {'error': {'code': 'ErrorItemNotFound',
                         'message': 'The specified object was not found in the store.'}}


def test_a_mailbox_without_junk_email_is_proven_by_its_inbox_and_one_without_inbox_says_why(
        emu, app):
    """Graph answers 404 ErrorItemNotFound for a well-known folder the mailbox does not have:
    without Junk Email the Inbox alone is asked (with a warning), without an Inbox the delivery
    phase fails naming the mailbox and the fix; neither is ever taken as delivered."""
    from ansible_collections.exchangeonline.mail.plugins.module_utils._identity import Identity
    from ansible_collections.exchangeonline.mail.plugins.module_utils._smtp_test import SmtpTest

    def run():
        params = direct(emu, **m365_args(emu, app))
        params['confirm_delivery'] = {'mailbox': None, 'timeout': 3.0, 'interval': 0.2}
        try:
            return SmtpTest(params, False, Identity).run()
        finally:
            emu._faults[:] = []
    # The first look at the Inbox finds nothing yet, so Junk Email is asked next.
    emu.inject('GET', r'/mailFolders/inbox/messages$', 200, body={'value': []})
    emu.inject('GET', r'/mailFolders/junkemail/messages$', 404, count=100, body=FOLDER_GONE)
    r = run()
    assert r['failed_phase'] is None and r['delivered'] is True, r['msg']
    assert r['delivered_folder'] == 'inbox'
    assert any('has no Junk Email folder' in w for w in r['warnings']), r.get('warnings')
    emu.inject('GET', r'/mailFolders/inbox/messages$', 404, count=100, body=FOLDER_GONE)
    r = run()
    assert (r['failed_phase'], r['delivered']) == ('delivery', False), r['msg']
    assert '404 ErrorItemNotFound' in r['msg'] and 'mailFolders/inbox' in r['msg']
    assert 'confirm_delivery.mailbox' in r['hint'] and RCPT in r['hint'], r['hint']


def test_a_wrong_password_says_nothing_of_the_smtp_auth_switch(emu):
    """The password is checked before the SMTP AUTH switches (they need the signed-in
    mailbox): a wrong password for a mailbox with SMTP AUTH off is still 'the user credentials
    were incorrect', so that answer proves nothing about the switch."""
    from ansible_collections.exchangeonline.mail.plugins.module_utils._smtp_test import SmtpTest
    emu.cas_mailbox(SENDER)['SmtpClientAuthenticationDisabled'] = True
    r = SmtpTest(direct(emu, auth='login', username=SENDER, password='not-the-password',
                        access_token=None), False).run()
    assert (r['failed_phase'], r['smtp_code'], r['enhanced_code']) == ('auth', 535, '5.7.139')
    assert r['message'].startswith('Authentication unsuccessful, the user credentials were '
                                   'incorrect'), r['message']
    assert 'the user name or password is wrong' in r['hint']
    assert 'SMTP AUTH itself is on' not in r['hint'], r['hint']
