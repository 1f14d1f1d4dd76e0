# -*- coding: utf-8 -*-
# Copyright (c) exchangeonline.mail contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# Private to this collection: may change without notice.
"""The SMTP session of a test-send, step by step: connect, EHLO, STARTTLS (TLS and the second
EHLO), AUTH (XOAUTH2, PLAIN, LOGIN, secrets kept out of the transcript), MAIL FROM (with
Exchange Online's 432 retried), RCPT TO, DATA, QUIT. The steps are those of SmtpTest (in
_smtp_test), which times them and records how far the test got."""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import base64
import email.utils
import re
import smtplib
import ssl
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple, Union

from ansible_collections.exchangeonline.mail.plugins.module_utils._poll import Backoff
from ansible_collections.exchangeonline.mail.plugins.module_utils._smtp_certs import (
    cert_error, cert_hint, tls_context, tls_details, tls_hint)
from ansible_collections.exchangeonline.mail.plugins.module_utils._smtp_hints import (
    THROTTLE_WAITS, SmtpFailure, is_exchange_online)
from ansible_collections.exchangeonline.mail.plugins.module_utils._smtp_message import (
    ascii_only, build_message, message_bytes)
from ansible_collections.exchangeonline.mail.plugins.module_utils._smtp_transcript import (
    REDACTED, _SMTP, _SMTPS, _Recorder, printable)

QUEUE_ID = (
    re.compile(r'queued as ([0-9A-Za-z]+)'),             # Postfix
    re.compile(r'InternalId=(\d+)'),                      # Exchange Server
    re.compile(r'\bid=([0-9A-Za-z-]+)'),                  # Exim
    re.compile(r'^2\.0\.0 ([0-9A-Za-z]+) Message accepted'),  # Sendmail
)
SERVER_ID = re.compile(r'<([^<>\s]+@[^<>\s]+)>')


def queue_id_of(text: Optional[str]) -> Optional[str]:
    for pattern in QUEUE_ID:
        m = pattern.search(text or '')
        if m:
            return m.group(1)
    return None


def ehlo_lines(smtp: smtplib.SMTP) -> List[str]:
    """The EHLO keywords the server announced (the lines after the greeting)."""
    text = printable(smtp.ehlo_resp or b'')
    return [line.strip() for line in text.split('\n')[1:] if line.strip()]


class SmtpSession(object):
    """The protocol steps of SmtpTest: each raises SmtpFailure with the phase it failed in."""

    # SmtpTest's state and steps (set in its __init__ and defined there), declared for the
    # type checker: annotations only, nothing here at run time
    params: Dict[str, Any]
    result: Dict[str, Any]
    started: float
    smtp: Optional[_Recorder]  # None until connect()
    ctx: Optional[ssl.SSLContext]  # None for tls: none
    exchange_online: bool
    smtputf8: bool
    header_recipients: List[str]
    reached: Optional[str]
    timed: Callable[[str, Callable[[], Any]], Any]
    done: Callable[[str], None]
    identity: Callable[[], Any]

    @property
    def conn(self) -> _Recorder:
        """The connection of the steps after connect()."""
        if self.smtp is None:
            raise AssertionError('connect() comes first')
        return self.smtp

    def expect(self, phase: str, reply: Tuple[int, Union[bytes, str]],
               ok: Sequence[int]) -> str:
        code, text = reply
        text = printable(text)
        if code == -1:
            raise SmtpFailure(phase, 'the server\'s answer is not an SMTP reply: %r' % text[:200],
                              hint='check that host and port are an SMTP server')
        if code not in ok:
            raise SmtpFailure(phase, 'the server answered %s %s' % (code, text), code, text)
        return text

    def connect(self) -> None:
        p = self.params
        self.ctx = tls_context(p) if p['tls'] != 'none' else None
        cls = _SMTPS if p['tls'] == 'tls' else _SMTP
        kwargs: Dict[str, Any] = {'local_hostname': p.get('ehlo_name'), 'timeout': p.get('timeout') or 30.0}
        if cls is _SMTPS:
            kwargs['context'] = self.ctx
        smtp = cls(**kwargs)
        smtp._setup_recorder(self.started, kwargs['timeout'], silent_hint(p))
        smtp.tls_hostname = p['host']  # the certificate is checked against it (implicit TLS)
        self.smtp = smtp
        try:
            code, text = smtp.connect(p['host'], p['port'])
        except ssl.SSLCertVerificationError as e:
            raise SmtpFailure('connect', 'TLS certificate check failed: %s' % cert_error(e),
                              hint=cert_hint(p))
        except ssl.SSLError as e:
            raise SmtpFailure('connect', 'TLS handshake failed: %s' % e.reason,
                              hint=tls_hint(p))
        self.exchange_online = is_exchange_online(p['host'], printable(text))
        self.expect('connect', (code, text), (220,))
        if p['tls'] == 'tls':
            if not isinstance(smtp.sock, ssl.SSLSocket):
                raise AssertionError('implicit TLS: _SMTPS wraps the socket')
            self.result['tls'] = tls_details(smtp.sock, p.get('validate_certs', True))

    def ehlo(self, phase: str, key: str) -> None:
        code, text = self.conn.ehlo()
        if code != 250:
            # RFC 5321 4.1.4: fall back to HELO only where no extensions are needed.
            raise SmtpFailure(phase, 'EHLO refused: %s %s' % (code, printable(text)), code,
                              printable(text))
        self.result['capabilities'][key] = ehlo_lines(self.conn)

    def starttls(self) -> None:
        smtp = self.conn
        if self.ctx is None or smtp.sock is None:
            raise AssertionError('STARTTLS needs the TLS context of tls: starttls and the socket')
        if not smtp.has_extn('starttls'):
            raise SmtpFailure('starttls', 'the server does not offer STARTTLS (it announced: '
                              '%s); nothing was sent in clear text'
                              % (', '.join(self.result['capabilities']['before_tls']) or
                                 'nothing'),
                              hint='connect to the submission port (587) of a server with TLS, '
                                   'or use tls: tls for implicit TLS (465)')
        code, text = smtp.docmd('STARTTLS')
        self.expect('starttls', (code, text), (220,))
        # RFC 3207 4.2: forget what was learnt before TLS (also anything the server sent after
        # its 220, which an attacker could have put there), then EHLO again.
        smtp.inbuf = b''
        try:
            smtp.sock.settimeout(smtp.remaining())  # the handshake as a whole
            smtp.sock = self.ctx.wrap_socket(smtp.sock, server_hostname=self.params['host'])
        except ssl.SSLCertVerificationError as e:
            raise SmtpFailure('starttls', 'TLS certificate check failed: %s' % cert_error(e),
                              hint=cert_hint(self.params))
        except ssl.SSLError as e:
            raise SmtpFailure('starttls', 'TLS handshake failed: %s' % e.reason,
                              hint=tls_hint(self.params))
        smtp.helo_resp = smtp.ehlo_resp = None
        smtp.esmtp_features = {}
        smtp.does_esmtp = False
        self.result['tls'] = tls_details(smtp.sock, self.params.get('validate_certs', True))

    def auth(self) -> None:
        p, smtp = self.params, self.conn
        mechanism = p['auth'].upper()
        offered = (smtp.esmtp_features.get('auth') or '').upper().split()
        self.result['auth_mechanism'] = mechanism
        if mechanism not in offered:
            raise SmtpFailure('auth', 'the server does not offer AUTH %s (it offers: %s)'
                              % (mechanism, ' '.join(offered) or 'no AUTH at all'),
                              hint='choose auth from what the server offers' +
                                   ('; Exchange Online offers AUTH only after STARTTLS, and '
                                    'there LOGIN and XOAUTH2 (no PLAIN): use auth: xoauth2'
                                    if self.exchange_online else ''))
        user = p.get('username') or p.get('sender')
        if not user:
            raise AssertionError('check_input: auth needs username or sender')
        if p.get('password'):
            smtp.secrets.append(p['password'].encode('utf-8'))
        if mechanism == 'XOAUTH2':
            token = p.get('access_token') or self.token()
            smtp.secrets.append(token.encode('ascii', 'replace'))  # one acquired here too
            smtp.arm('auth')  # the deadline counts from the first AUTH line, not the token
            blob = 'user=%s\x01auth=Bearer %s\x01\x01' % (user, token)
            reply = self.secret_cmd('AUTH XOAUTH2 ' + _b64(blob), 'AUTH XOAUTH2 ' + REDACTED)
            if reply[0] == 334:  # the error detail (base64 JSON); answer empty to get the code
                reply = self.secret_cmd('', '')
        elif mechanism == 'PLAIN':
            blob = '\x00%s\x00%s' % (user, p.get('password') or '')
            reply = self.secret_cmd('AUTH PLAIN ' + _b64(blob), 'AUTH PLAIN ' + REDACTED)
        else:
            reply = smtp.docmd('AUTH', 'LOGIN')
            if reply[0] == 334:
                reply = self.secret_cmd(_b64(user), REDACTED)
            if reply[0] == 334:
                reply = self.secret_cmd(_b64(p.get('password') or ''), REDACTED)
        self.expect('auth', reply, (235,))

    def secret_cmd(self, line: str, shown: str) -> Tuple[int, bytes]:
        smtp = self.conn
        secret = line.rsplit(' ', 1)[-1]
        if len(secret) >= 4:
            smtp.secrets.append(secret.encode('ascii', 'replace'))
        smtp.redact = shown
        try:
            smtp.putcmd(line)
            return smtp.getreply()
        finally:
            smtp.redact = None

    def token(self) -> str:
        from ansible_collections.exchangeonline.mail.plugins.module_utils._identity import (
            EXCHANGE, IdentityError)
        try:
            return self.identity().token(EXCHANGE)
        except IdentityError as e:
            raise SmtpFailure('auth', 'no access token for XOAUTH2: %s' % e)

    def envelope(self, sender: str) -> None:
        smtp = self.conn
        options: List[str] = []
        addresses = [sender] + list(self.params['to'])
        if not all(ascii_only(a) for a in addresses):  # a non-ASCII local part: RFC 6531
            if not smtp.has_extn('smtputf8'):
                raise SmtpFailure('mail', 'the address %s has a non-ASCII local part, and the '
                                  'server does not offer SMTPUTF8'
                                  % next(a for a in addresses if not ascii_only(a)),
                                  hint='use an ASCII address (for example the mailbox\'s '
                                       'primary address)')
            smtp.command_encoding = 'utf-8'
            options = ['SMTPUTF8']
            self.smtputf8 = True
        self.timed('mail', lambda: self.mail_from(sender, options))
        self.done('mail')

        def recipients() -> None:
            for rcpt in self.params['to']:
                smtp.arm('rcpt')  # timeout for each recipient
                code, text = smtp.rcpt(rcpt)
                if code not in (250, 251):
                    raise SmtpFailure('rcpt', 'the server refused the recipient %s: %s %s'
                                      % (rcpt, code, printable(text)), code, printable(text))
        self.timed('rcpt', recipients)

    def mail_from(self, sender: str, options: List[str]) -> str:
        """MAIL FROM; Exchange Online's 432 4.3.2 (too many sessions sending as this mailbox)
        is retried after the THROTTLE_WAITS in the same session, each attempt with its own
        deadline."""
        # Each wait is stretched by up to 25 % (jitter); the bound leaves every attempt its
        # whole deadline, so only the count of THROTTLE_WAITS ends the retries.
        smtp = self.conn
        budget = smtp.budget
        backoff = Backoff(sum(THROTTLE_WAITS) * 1.25 + (len(THROTTLE_WAITS) + 1) * budget,
                          floor=min(THROTTLE_WAITS), cap=max(THROTTLE_WAITS), jitter=0.25,
                          max_retries=len(THROTTLE_WAITS))
        throttled: Optional[str] = None
        while True:
            smtp.arm('mail')
            try:
                code, text = smtp.mail(sender, options)
            except smtplib.SMTPServerDisconnected:
                if throttled is None:
                    raise
                raise SmtpFailure('mail', 'the server answered 432 %s, then closed the '
                                  'connection' % throttled, 432, throttled)
            if code != 432 or not self.exchange_online or \
                    backoff.retries >= len(THROTTLE_WAITS):
                return self.expect('mail', (code, text), (250,))
            throttled = printable(text)  # the text of the 432
            wait = THROTTLE_WAITS[backoff.retries]
            smtp.note('note', 'sender thread limit: MAIL FROM again in %.1f s' % wait)
            if not backoff.pause(asked=wait, room=budget):
                return self.expect('mail', (code, text), (250,))

    def data(self, sender: str) -> Optional[str]:
        p, smtp = self.params, self.conn
        if p.get('quit_after') == 'data':
            smtp.putcmd('DATA')
            self.expect('data', smtp.getreply(), (354,))
            return None
        domain = sender.rpartition('@')[2] or None
        message_id = email.utils.make_msgid('exo-smtp-test', domain=domain)
        self.result['message_id'] = message_id
        msg = build_message(p, sender, message_id)
        self.header_recipients = [a for dummy, a in email.utils.getaddresses(
            [str(v) for v in (msg.get_all('To') or []) + (msg.get_all('Cc') or [])]) if a]
        raw = message_bytes(msg, self.smtputf8)
        smtp.putcmd('DATA')
        self.expect('data', smtp.getreply(), (354,))
        # Dot-stuffing (RFC 5321 4.5.2) with smtplib's public quotedata(), which also makes
        # every line end CRLF; the message is ASCII or (SMTPUTF8) UTF-8, kept byte for byte.
        payload = smtplib.quotedata(raw.decode('utf-8', 'surrogateescape')).encode(
            'utf-8', 'surrogateescape')
        if not payload.endswith(b'\r\n'):
            payload += b'\r\n'
        smtp.body_size = len(raw)
        smtp.send(payload + b'.\r\n')
        text = self.expect('data', smtp.getreply(), (250,))
        self.result['send_as_proven'] = True
        self.result['queue_id'] = queue_id_of(text)
        m = SERVER_ID.search(text)
        self.result['server_message_id'] = '<%s>' % m.group(1) if m else None
        return message_id

    # -- the whole test ------------------------------------------------------------------------
    def quit(self) -> None:
        try:
            self.timed('quit', self.conn.quit)
            self.done('quit')
        except (OSError, smtplib.SMTPException, SmtpFailure):
            pass  # the message was accepted already; a lost QUIT answer changes nothing

    def close(self) -> None:
        smtp = self.smtp
        if smtp is not None and smtp.sock is not None:
            try:
                if self.reached not in ('quit', 'delivery', 'data') and not smtp.broken and \
                        self.result['failed_phase'] != 'connect':
                    smtp.arm('quit')
                    smtp.quit()
            except (OSError, smtplib.SMTPException, SmtpFailure):
                pass
            smtp.close()


def _b64(text: str) -> str:
    return base64.b64encode(text.encode('utf-8')).decode('ascii')


def silent_hint(params: Dict[str, Any]) -> str:
    if params['tls'] == 'starttls' and params['port'] == 465:
        return ('port 465 speaks TLS from the first byte: use tls: tls there (or port 587 with '
                'starttls)')
    if params['tls'] == 'tls' and params['port'] in (25, 587):
        return ('port %s starts in clear text and upgrades with STARTTLS: use tls: starttls'
                % params['port'])
    return ('check the host, the port and the firewall path; raise timeout for a slow server')
