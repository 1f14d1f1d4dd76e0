"""The safety rules of SPEC section 7 against what an attacker on the path or a broken server
does: the cases a review of issue 10 found still open (each failed on the code then).

Each test names the rule it holds the collection to. They drive the
collection through real ansible-playbook (the ``play`` fixture) against the lab's BIND 9, Knot
DNS and Microsoft 365 emulator, plus a few small hostile servers defined here (a TLS server that
breaks HTTP, a DNS relay that forges a TSIG error answer, an SMTP server that quotes what it
received). Every server thread here is bounded and stops by itself.
"""

import base64
import json
import os
import socket
import ssl
import struct
import threading
import time

import dns.message
import dns.opcode
import dns.rcode
import dns.tsigkeyring
import pytest

from tests.integration.conftest import APP_ROLES, ZONE, m365_args, task
from tests.integration.test_mail_dns import mail_dns
from tests.lab.bind import BindServer, zone_template
from tests.lab.dns_relay import DnsRelay, read_frame
from tests.lab.knot import KnotServer
from tests.lab.m365 import identity as lab_identity

SECRET = 'review10-lab-secret-6d2f'


@pytest.fixture
def tenant(m365):
    m365.add_domain(ZONE, verified=True, services=['Email'])
    m365.add_user('licensed@contoso.test', licensed=True, mailbox=True)
    return m365_args(m365, m365.add_app(secret=SECRET, roles=APP_ROLES))


# -- rule 3: a token or secret goes only to the configured endpoint ---------------------------
@pytest.mark.parametrize('api', ['graph', 'exchange'])
def test_backslash_next_link_sends_no_token_to_another_host(m365, tenant, play, api):
    """urllib.parse (the origin check) reads ``https://localhost:P\\@127.0.0.1:E/`` as host
    127.0.0.1 port E, the emulator; urllib3 (the transport) as host localhost port P: another
    host. The link must be refused, and nothing may reach the other listener."""
    other = m365.listener(tls=True, host='localhost')
    other_port = other.url.rsplit(':', 1)[1]
    if api == 'graph':
        link = 'https://localhost:%s\\@127.0.0.1:%d/v1.0/users?$skiptoken=x' % (
            other_port, m365.port)
        m365.inject('GET', r'/v1\.0/users$', next_link=link)
    else:
        link = 'https://localhost:%s\\@127.0.0.1:%d/adminapi/beta/%s/InvokeCommand' % (
            other_port, m365.port, m365.tenant_id)
        m365.inject('POST', r'/InvokeCommand$', next_link=link)
    run = play([task('mailbox_info', dict(tenant, all=True))])
    leaked = [r['authorization'] for r in other.requests if r['authorization']]
    assert leaked == [], 'the bearer token reached %s: %s' % (other.url, leaked[0][:40])
    assert run.last['status'] == 'failed'
    assert 'UntrustedLink' in run.last['result']['msg']


class _Listener:
    """A TCP listener on 127.0.0.1 that hands at most ``connections`` connections to
    ``handle(conn)`` (each in a thread of its own when ``threaded``) until stop()."""
    connections = 10
    threaded = False

    def __init__(self):
        self.sock = socket.socket()
        self.sock.bind(('127.0.0.1', 0))
        self.sock.listen(8)
        self.sock.settimeout(0.2)
        self.port = self.sock.getsockname()[1]
        self.accepted = 0
        self.stopping = threading.Event()
        self.thread = threading.Thread(target=self._loop, daemon=True)
        self.thread.start()

    def _loop(self):
        while self.accepted < self.connections and not self.stopping.is_set():
            try:
                conn, dummy = self.sock.accept()
            except socket.timeout:
                continue
            except OSError:
                return
            self.accepted += 1
            if self.threaded:
                threading.Thread(target=self.handle, args=(conn,), daemon=True).start()
            else:
                self.handle(conn)

    def handle(self, conn):
        raise NotImplementedError

    def stop(self):
        self.stopping.set()
        self.sock.close()
        self.thread.join(timeout=15)


class _Catcher(_Listener):
    """A TLS listener for ``localhost`` (lab CA) that keeps the raw bytes of each request and
    answers 400; at most ``connections`` connections, each read for at most 5 s."""

    def __init__(self, ca, connections=4):
        self.context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ca.issue_cert('localhost').configure_cert(self.context)
        self.received = []
        self.connections = connections
        super().__init__()

    def handle(self, conn):
        data = b''
        try:
            conn = self.context.wrap_socket(conn, server_side=True)
            conn.settimeout(1)
            deadline = time.monotonic() + 5
            while time.monotonic() < deadline and len(data) < 65536:
                try:
                    chunk = conn.recv(65536)
                except socket.timeout:
                    break
                if not chunk:
                    break
                data += chunk
            conn.sendall(b'HTTP/1.1 400 Bad Request\r\nContent-Type: application/json\r\n'
                         b'Content-Length: 2\r\nConnection: close\r\n\r\n{}')
        except (OSError, ssl.SSLError):
            pass
        finally:
            self.received.append(data)
            conn.close()


def test_backslash_token_endpoint_sends_no_secret_to_another_host(m365, tenant, play):
    """The same parser difference in the identity endpoint's discovery document: msal posts the
    client secret to the token_endpoint it names, and the session lets it through."""
    catcher = _Catcher(m365.ca)
    try:
        conf = lab_identity.openid_configuration(m365, m365.tenant_id)
        conf['token_endpoint'] = 'https://localhost:%d\\@127.0.0.1:%d/%s/oauth2/v2.0/token' % (
            catcher.port, m365.port, m365.tenant_id)
        m365.inject('GET', r'openid-configuration$', status=200, body=conf)
        run = play([task('domain_info', dict(tenant, domain=ZONE, timeout=3))])
    finally:
        catcher.stop()
    got = b''.join(catcher.received)
    assert SECRET.encode() not in got, 'the client secret reached localhost:%d' % catcher.port
    assert run.last['status'] == 'failed'


# -- rule 1: an outcome that is not known is never taken as "not applied" ----------------------
class _TsigErrorForger(_Listener):
    """A TCP DNS relay in front of ``upstream``: an UPDATE is forwarded (so the server applies
    it), and the client gets a forged NOTAUTH with TSIG error BADSIG instead of the answer, as
    anyone on the path can send: RFC 8945 error answers carry no MAC that the client checks.
    Other messages (queries, transfers) pass. Bounded: at most 50 connections, 10 s each."""

    connections = 50
    threaded = True

    def __init__(self, upstream, key_name):
        self.upstream = upstream
        self.key_name = key_name
        self.forged = 0
        super().__init__()

    def handle(self, conn):
        conn.settimeout(10)
        up = socket.create_connection(('127.0.0.1', self.upstream), timeout=10)
        try:
            for dummy in range(200):
                query = read_frame(conn)
                up.sendall(struct.pack('!H', len(query)) + query)
                if (struct.unpack('!H', query[2:4])[0] >> 11) & 0xF == dns.opcode.UPDATE:
                    read_frame(up)  # the real answer (NOERROR): dropped
                    fake = dns.message.make_response(dns.message.from_wire(query, keyring=False))
                    fake.set_rcode(dns.rcode.NOTAUTH)
                    wrong = dns.tsigkeyring.from_text(
                        {self.key_name: base64.b64encode(os.urandom(32)).decode()})
                    fake.use_tsig(wrong, keyname=self.key_name, tsig_error=dns.rcode.BADSIG)
                    wire = fake.to_wire()
                    conn.sendall(struct.pack('!H', len(wire)) + wire)
                    self.forged += 1
                    continue
                up.settimeout(1)
                for dummy_frame in range(100000):  # one answer, or every message of an AXFR
                    try:
                        answer = read_frame(up)
                    except socket.timeout:
                        break
                    conn.sendall(struct.pack('!H', len(answer)) + answer)
                    msg = dns.message.from_wire(answer, keyring=False)
                    if not msg.question or msg.question[0].rdtype != 252:
                        break
                up.settimeout(10)
        except (EOFError, OSError):
            pass
        finally:
            up.close()
            conn.close()


def test_unauthenticated_tsig_error_answer_does_not_destroy_the_backup(bind, play, tmp_path):
    """BIND applies the UPDATE; the answer that reaches mail_dns is a forged BADSIG. That answer
    proves nothing (its MAC is not checked, RFC 8945 5.3.2): the zone must be read to learn what
    happened, and the backup kept, or the legacy MX is lost for good (issue 10, item 1)."""
    backup = str(tmp_path / 'contoso.json')
    forger = _TsigErrorForger(bind.port, bind.key_name)
    try:
        run = play([mail_dns(bind, port=forger.port, domain=ZONE, pattern='full',
                             backup_path=backup)])
    finally:
        forger.stop()
    assert forger.forged == 1
    assert bind.rrset(ZONE, 'MX')[1] == ['0 contoso-test.mail.protection.outlook.com.']
    result = run.last['result']
    assert os.path.exists(backup), 'the update was applied, but the backup was deleted: %s' \
        % result['msg']
    undo = play([mail_dns(bind, state='rollback', backup_path=backup)])
    assert undo.last['status'] == 'ok', undo.last['result']['msg']
    assert bind.rrset(ZONE, 'MX')[1] == ['10 mail.contoso.test.']


def test_truncated_udp_answer_to_an_update_is_not_an_acceptance(bind, play, tmp_path):
    """protocol: udp through a path that truncates every UDP answer (TC set, nothing in it) but
    passes TCP. The UPDATE never reached BIND; an empty truncated reply is no answer to it, yet
    the task reports the update as accepted and changed."""
    with DnsRelay(bind.port, udp='truncate', tcp=True, keyring=bind.keyring) as relay:
        run = play([mail_dns(bind, port=relay.port, protocol='udp', domain=ZONE,
                             pattern='full', backup_path=str(tmp_path / 'b.json'))])
    result = run.last['result']
    assert bind.rrset(ZONE, 'MX')[1] == ['10 mail.contoso.test.']  # nothing was applied
    assert 'accepted the update' not in result['msg'], result['msg']
    assert result['changed'] is False


# -- mail_dns: backups and rollback ---------------------------------------------------------
def test_rollback_of_a_crafted_backup_leaves_soa_and_apex_ns_alone(bind, play, tmp_path):
    """'Never touch SOA or apex NS' (SPEC 3.1), and load_backup refuses 'anything that is not a
    backup this module wrote' (this one does not even name its ``domain``). A crafted one
    made rollback rewrite the SOA (MNAME and serial), add an apex NS and create an
    A record at a new name."""
    path = str(tmp_path / 'crafted.json')
    soa = bind.rrset(ZONE, 'SOA')[1][0]
    crafted = {'format': 1, 'zone': ZONE + '.', 'entries': [
        {'name': ZONE + '.', 'type': 'SOA', 'before': {
            'name': ZONE + '.', 'type': 'SOA', 'ttl': 3600,
            'rdata': ['evil.example. hostmaster.evil.example. 2099010101 3600 900 1209600 300']},
         'after': {'name': ZONE + '.', 'type': 'SOA', 'ttl': 3600, 'rdata': [soa]}},
        {'name': ZONE + '.', 'type': 'NS', 'before': {
            'name': ZONE + '.', 'type': 'NS', 'ttl': 3600, 'rdata': ['ns.evil.example.']},
         'after': {'name': ZONE + '.', 'type': 'NS', 'ttl': 3600, 'rdata': ['ns1.contoso.test.']}},
        {'name': 'login.' + ZONE + '.', 'type': 'A', 'before': {
            'name': 'login.' + ZONE + '.', 'type': 'A', 'ttl': 60, 'rdata': ['203.0.113.66']},
         'after': None}]}
    with open(path, 'w') as f:
        json.dump(crafted, f)
    run = play([mail_dns(bind, state='rollback', backup_path=path)])
    assert bind.rrset(ZONE, 'SOA')[1] == [soa]
    assert bind.rrset(ZONE, 'NS')[1] == ['ns1.contoso.test.']
    assert bind.rrset('login.' + ZONE, 'A') is None
    assert run.last['status'] == 'failed'
    assert 'backup' in run.last['result']['msg']


@pytest.mark.parametrize('name,rdtype,rdata', [
    ('', 'SOA', 'evil.example. hostmaster.evil.example. 2099010101 3600 900 1209600 300'),
    ('', 'NS', 'ns.evil.example.'),
    ('', 'A', '203.0.113.66'),
    ('autodiscover.', 'NS', 'ns.evil.example.'),
    ('autodiscover.', 'DS', '12345 13 2 ' + '0' * 64),
    ('login.', 'A', '203.0.113.66'),
    ('_dmarc.login.', 'TXT', '"v=DMARC1; p=none"'),
])
def test_a_backup_naming_its_domain_still_holds_only_what_mail_dns_touches(
        bind, play, tmp_path, name, rdtype, rdata):
    """Each entry alone, in a backup that is otherwise well formed (it names its domain): only MX,
    TXT and CNAME at the domain and what a CNAME replaced at the names mail_dns manages; never
    SOA, NS or DS, never another name. Rollback fails naming the entry and sends no UPDATE."""
    path = str(tmp_path / 'crafted.json')
    owner = name + ZONE + '.'
    rr = {'name': owner, 'type': rdtype, 'ttl': 60, 'rdata': [rdata]}
    with open(path, 'w') as f:
        json.dump({'format': 1, 'zone': ZONE + '.', 'domain': ZONE + '.', 'server': '',
                   'entries': [{'name': owner, 'type': rdtype, 'before': rr, 'after': None}]}, f)
    zone = bind.axfr(ZONE)
    updates = bind.update_messages()
    run = play([mail_dns(bind, state='rollback', backup_path=path)])
    assert run.last['status'] == 'failed'
    assert run.last['result']['phase'] == 'backup'
    assert 'entry 0 (%s %s) is not a record mail_dns manages' % (owner, rdtype) \
        in run.last['result']['msg']
    assert bind.axfr(ZONE) == zone
    assert bind.update_messages() == updates


def test_backup_path_that_is_a_fifo_fails_instead_of_hanging(tmp_path):
    """backup_path is read whole, whatever it is: a FIFO blocks the run for ever (and
    /dev/zero reads until memory runs out). Lower level than a playbook on purpose: a hung
    ansible-playbook would leave its worker behind."""
    from ansible_collections.exchangeonline.mail.plugins.module_utils._mail_dns import (
        load_backup)
    from ansible_collections.exchangeonline.mail.plugins.module_utils._dns_transport import DnsError
    fifo = str(tmp_path / 'backup.json')
    os.mkfifo(fifo)
    outcome = []

    def load():
        try:
            outcome.append(load_backup(fifo, must_exist=False))
        except DnsError as e:
            outcome.append(e)
    thread = threading.Thread(target=load, daemon=True)
    thread.start()
    thread.join(timeout=5)
    hung = thread.is_alive()
    if hung:  # let it go: a writer that closes at once gives the reader its EOF
        fd = os.open(fifo, os.O_WRONLY | os.O_NONBLOCK)
        os.close(fd)
        thread.join(timeout=5)
    assert not hung, 'load_backup was still reading the FIFO after 5 s'
    assert isinstance(outcome[0], DnsError) and outcome[0].phase == 'backup'


# -- mail_dns: a normal zone gives no false failure ---------------------------------------------
WILDCARDS = ['* IN A 192.0.2.80', '* IN TXT "v=spf1 -all"']


@pytest.mark.parametrize('wildcard', WILDCARDS)
def test_wildcard_is_no_conflict_when_the_zone_is_read_by_queries(tmp_path, play, wildcard):
    """Knot DNS set up as in issue 10 item 12 (transfers allowed by address only), so the zone
    is read with signed queries: a wildcard's synthesised answer at autodiscover is taken for
    real records there, and pattern full fails with a conflict that is not in the zone."""
    knot = KnotServer({ZONE: zone_template('contoso.test.zone') + wildcard + '\n'},
                      workdir=str(tmp_path / 'knot'), transfer='address')
    knot.start()
    try:
        run = play([mail_dns(knot, domain=ZONE, pattern='full',
                             backup_path=str(tmp_path / 'b.json'))])
        cname = knot.rrset('autodiscover.' + ZONE, 'CNAME')
    finally:
        knot.stop()
    assert run.last['status'] == 'ok', run.last['result']['msg']
    assert cname[1] == ['autodiscover.outlook.com.']


def test_wildcard_cname_does_not_fail_the_check_after_absent(tmp_path, play):
    """state: absent removes the autodiscover CNAME; the check afterwards asks for it and gets
    the CNAME that the zone's wildcard synthesises, and fails the run that did what it should."""
    bind = BindServer({ZONE: zone_template('contoso.test.zone') +
                       '* IN CNAME webhost.contoso.test.\n'}, workdir=str(tmp_path / 'bind'))
    bind.start()
    try:
        backup = str(tmp_path / 'b.json')
        applied = play([mail_dns(bind, domain=ZONE, pattern='full', backup_path=backup)])
        assert applied.last['status'] == 'ok', applied.last['result']['msg']
        run = play([mail_dns(bind, domain=ZONE, state='absent', backup_path=backup)])
        rows = bind.axfr(ZONE)
    finally:
        bind.stop()
    assert not [r for r in rows if r[0] == 'autodiscover.' + ZONE + '.']  # it is gone
    assert run.last['status'] == 'ok', run.last['result']['msg']


# -- rule 4: everything read from the network is bounded ----------------------------------------
class _BrokenHttps(_Listener):
    """A TLS server (lab CA, 127.0.0.1) that breaks HTTP in one ``way``:

    'trickle'  the status line, then one header byte every ``interval`` seconds
    'short'    200 with Content-Length: 100 and 20 bytes of body, then the connection closed

    Every connection ends after ``max_seconds``; at most 20 connections are served."""

    connections = 20
    threaded = True

    def __init__(self, ca, way, interval=0.5, max_seconds=30):
        self.context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ca.issue_cert('127.0.0.1').configure_cert(self.context)
        self.way, self.interval, self.max_seconds = way, interval, max_seconds
        super().__init__()
        self.url = 'https://127.0.0.1:%d' % self.port

    def handle(self, conn):
        started = time.monotonic()
        try:
            conn.settimeout(5)
            tls = self.context.wrap_socket(conn, server_side=True)
            request = b''
            while b'\r\n\r\n' not in request and len(request) < 65536:
                chunk = tls.recv(4096)
                if not chunk:
                    return
                request += chunk
            if self.way == 'short':
                tls.sendall(b'HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n'
                            b'Content-Length: 100\r\n\r\n{"id": "contoso.test", ')
                return
            tls.sendall(b'HTTP/1.1 200 OK\r\nX-Slow: ')
            while time.monotonic() - started < self.max_seconds and not self.stopping.is_set():
                tls.sendall(b'a')
                self.stopping.wait(self.interval)
        except (OSError, ssl.SSLError):
            pass
        finally:
            conn.close()


def test_truncated_graph_answer_is_a_clear_failure_not_a_bug(m365, tenant, play):
    """A 200 whose body ends before its Content-Length (a connection cut on the way): issue 10
    item 6 names 'truncated'. It reaches the user as 'unexpected error (a bug ...):
    ChunkedEncodingError'."""
    broken = _BrokenHttps(m365.ca, 'short')
    try:
        args = dict(tenant, domain=ZONE, graph_endpoint=broken.url, timeout=3)
        run = play([task('domain_info', args)])
    finally:
        broken.stop()
    result = run.last['result']
    assert run.last['status'] == 'failed'
    assert result.get('phase') != 'internal', result['msg']
    assert 'unexpected error' not in result['msg']
    assert broken.url in result['msg']


@pytest.mark.parametrize('endpoint', ['graph_endpoint', 'authority_host'])
def test_trickled_headers_end_within_the_documented_bound(m365, tenant, play, endpoint):
    """timeout: 2 bounds one request with its retries to 4 x timeout = 8 s (RETRY_FACTOR); a
    server that sends its headers one byte every half second keeps the task for as long as it
    likes (here until it stops after 30 s)."""
    broken = _BrokenHttps(m365.ca, 'trickle', interval=0.5, max_seconds=30)
    try:
        started = time.monotonic()
        args = dict(tenant, domain=ZONE, timeout=2, **{endpoint: broken.url})
        run = play([task('domain_info', args)], timeout=120)
        seconds = time.monotonic() - started
    finally:
        broken.stop()
    assert run.last['status'] == 'failed'
    assert seconds < 8 + 10, 'the task took %.0f s' % seconds  # 10 s for ansible-playbook


# -- smtp_test: secrets in the output -----------------------------------------------------------
class _QuotingSmtp(_Listener):
    """Plain ESMTP on 127.0.0.1 that answers the last line of an AUTH exchange with a 535 that
    quotes it (as servers do that say 'unrecognized command: <line>'). At most 10 sessions of
    at most 50 lines, 5 s per read."""

    def handle(self, conn):
        conn.settimeout(5)
        reader = conn.makefile('rb')

        def say(line):
            conn.sendall(line.encode('latin-1') + b'\r\n')
        try:
            say('220 quoting.test ESMTP')
            step = None
            for dummy in range(50):
                line = reader.readline(4096)
                if not line:
                    return
                line = line.rstrip(b'\r\n').decode('latin-1')
                verb = line.split(' ')[0].upper()
                if step == 'user':
                    step = 'password'
                    say('334 UGFzc3dvcmQ6')
                elif step == 'password':
                    step = None
                    say('535 5.7.8 Authentication failed: %s' % line)
                elif verb == 'EHLO':
                    say('250-quoting.test')
                    say('250 AUTH PLAIN LOGIN XOAUTH2')
                elif line.upper().startswith('AUTH LOGIN'):
                    step = 'user'
                    say('334 VXNlcm5hbWU6')
                elif verb == 'AUTH':
                    say('535 5.7.8 Authentication failed: %s' % line)
                elif verb == 'QUIT':
                    say('221 bye')
                    return
                else:
                    say('500 5.5.2 unrecognized: %s' % line)
        except OSError:
            pass
        finally:
            conn.close()


SMTP_USER = 'adele@contoso.test'
SMTP_PASSWORD = 'review10-Passw0rd!'
SMTP_TOKEN = 'eyJ0eXAiOiJKV1QiLCJhbGciOiJSUzI1NiJ9.eyJhdWQiOiJyZXZpZXcxMCJ9.c2lnbmF0dXJlLTEw'


def test_a_server_quoting_the_auth_line_gets_no_secret_into_the_output(play):
    """What the client sent in AUTH is a secret in base64: when the server quotes it in its
    reply, msg, message and transcript carry it, also at -vvv (remove_values only knows the
    plain password and token)."""
    server = _QuotingSmtp()
    common = dict(host='127.0.0.1', port=server.port, tls='none', allow_plaintext_auth=True,
                  username=SMTP_USER, sender=SMTP_USER, to=[SMTP_USER], timeout=5)
    try:
        run = play([task('smtp_test', dict(common, auth='login', password=SMTP_PASSWORD),
                         name='login'),
                    task('smtp_test', dict(common, auth='plain', password=SMTP_PASSWORD),
                         name='plain'),
                    task('smtp_test', dict(common, auth='xoauth2', access_token=SMTP_TOKEN),
                         name='xoauth2')], verbosity=3)
    finally:
        server.stop()
    for name in ('login', 'plain', 'xoauth2'):
        assert run.task(name)['result']['failed_phase'] == 'auth'
    secrets = {
        'base64 of the password (LOGIN)': base64.b64encode(SMTP_PASSWORD.encode()).decode(),
        'the PLAIN blob': base64.b64encode(
            ('\x00%s\x00%s' % (SMTP_USER, SMTP_PASSWORD)).encode()).decode(),
        'the XOAUTH2 blob': base64.b64encode(
            ('user=%s\x01auth=Bearer %s\x01\x01' % (SMTP_USER, SMTP_TOKEN)).encode()).decode(),
    }
    text = run.stdout + run.stderr + repr(run.results)
    assert [what for what, value in secrets.items() if value in text] == []
