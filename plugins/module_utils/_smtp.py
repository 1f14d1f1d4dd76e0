# -*- coding: utf-8 -*-
# Copyright (c) exchangeonline.mail contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# Private to this collection: may change without notice.
"""An SMTP submission test that says where it failed and why (module smtp_test).

Phases: connect, ehlo, starttls (TLS and the second EHLO), auth, mail, rcpt, data, quit, and
delivery (the message found in the recipient mailbox through Graph). TLS is never skipped: a
server without STARTTLS fails the test before any AUTH, and AUTH over a clear connection needs
``tls: none`` together with ``allow_plaintext_auth``. The transcript keeps every line the client
sent and the server answered, except AUTH data (passwords, tokens) and the message itself.
"""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import base64
import datetime
import email.message
import email.policy
import email.utils
import os
import random
import re
import smtplib
import socket
import ssl
import time

PHASES = ('connect', 'ehlo', 'starttls', 'auth', 'mail', 'rcpt', 'data', 'quit', 'delivery')
QUIT_AFTER = ('connect', 'ehlo', 'starttls', 'auth', 'rcpt', 'data')
TLS_VERSIONS = ('TLSv1', 'TLSv1_1', 'TLSv1_2', 'TLSv1_3')
REDACTED = '********'
# Exchange Online's answer when more than three sessions send as one mailbox at once
# ("432 4.3.2 STOREDRV.ClientSubmit; sender thread limit exceeded", Microsoft's "SMTP submission
# improvements"): MAIL FROM is tried again after these waits (each plus up to 25 % jitter), then
# the test fails.
THROTTLE_WAITS = (1.0, 3.0)
# Where a delivered message is looked for (well-known folder names of Graph): the Inbox, then
# Junk Email (a message filed as spam was delivered too; the result names the folder).
DELIVERY_FOLDERS = ('inbox', 'junkemail')
BASIC_AUTH_END = (
    ' Microsoft turns SMTP AUTH basic authentication off by default for existing tenants at the '
    'end of December 2026 (Message Center MC786329; admins can turn it back on until the final '
    'removal, after which the answer is 550 5.7.30); see https://techcommunity.microsoft.com/t5/'
    'exchange-team-blog/exchange-online-to-retire-basic-auth-for-client-submission-smtp/ba-p/'
    '4114750.')
SEND_AS = ('grant Send As on it (Add-RecipientPermission <sender> -AccessRights SendAs -Trustee '
           '<mailbox>), or send as the mailbox itself')

# Known Exchange Online replies: (code, enhanced code, regex on the text or None, hint). The first
# match wins, so specific texts come before the bare code. Sources: Microsoft's SMTP AUTH and
# "Fix email delivery issues for error code 5.7.x" articles and the replies seen in public client
# transcripts (tests/lab/m365/README.md lists them). Only for a server that is Exchange Online
# (is_exchange_online): elsewhere the same codes mean other things (5.1.10 is a null MX, RFC 7505).
EXO_HINTS = (
    (535, '5.7.139', r'disabled for the Tenant',
     'SMTP AUTH is disabled for the whole tenant. Turn it on for this mailbox only with '
     'exchangeonline.mail.mailbox_protocols (smtp_auth: enabled) or for the tenant '
     '(tenant_smtp_auth: enabled); see https://aka.ms/smtp_auth_disabled.'),
    (535, '5.7.139', r'disabled for the Mailbox',
     'SMTP AUTH is disabled for this mailbox. Turn it on with '
     'exchangeonline.mail.mailbox_protocols (smtp_auth: enabled).'),
    (535, '5.7.139', r'basic authentication is disabled',
     'password AUTH (LOGIN) is refused because basic authentication is off for the tenant. Use '
     'auth: xoauth2 with an app that has the SMTP.SendAsApp permission.' + BASIC_AUTH_END),
    (535, '5.7.139', r'did not meet the criteria',
     'security defaults or a Conditional Access policy block legacy (password) authentication '
     'for this account. Use auth: xoauth2, or exclude the account from the policy.' +
     BASIC_AUTH_END),
    (535, '5.7.139', r'credentials were incorrect',
     'the user name or password is wrong: check username (the user principal name) and '
     'password; an account with multi-factor authentication needs an app password for password '
     'AUTH, and auth: xoauth2 needs none.'),
    (535, '5.7.139', None,
     'Exchange Online refused AUTH for this account (5.7.139 also answers SMTP AUTH switched off '
     'for the tenant or the mailbox, and a blocked or locked account): check SMTP AUTH with '
     'exchangeonline.mail.mailbox_info (include: [protocols]) and the account\'s sign-in state.'),
    (535, '5.7.3', None,
     'the credentials were refused. With auth: xoauth2 the token must be for '
     'https://outlook.office365.com (app-only: the SMTP.SendAsApp permission with admin consent, '
     'the app\'s service principal registered in Exchange with New-ServicePrincipal and given '
     'the mailbox with Add-MailboxPermission); with login check the user name (the UPN) '
     'and password, and that the mailbox exists and is licensed.'),
    (530, '5.7.57', None,
     'the server wants AUTH before MAIL FROM: give auth (xoauth2 or login) and the '
     'mailbox\'s credentials; auth: none works only with a relay connector.'),
    (550, '5.7.30', None,
     'basic authentication is not supported for client submission: use auth: xoauth2.' +
     BASIC_AUTH_END),
    (None, '5.7.60', None,
     'the mailbox may not send as this sender (Exchange Online checks Send As at the end of '
     'DATA, so only a message actually sent proves it): ' + SEND_AS + '.'),
    (None, '5.2.252', r'Sender throttled',
     'Exchange Online throttles this mailbox after repeated Send As refusals: fix the sender '
     '(' + SEND_AS + '), then wait before the next test.'),
    (None, '5.2.252', r'SendAsDenied',
     'the mailbox may not send as the sender or the From: address (refused at the end of DATA): '
     + SEND_AS + '.'),
    (None, '5.2.0', r'SendAsDenied',
     'the From: header names an address the mailbox may not send as: set sender to the mailbox '
     'or grant Send As on that address.'),
    (432, '4.3.2', None,
     'Exchange Online lets at most 3 sessions send as one mailbox at the same time (sender '
     'thread limit), and other clients are sending as it now: run it again when they are done, '
     'or test with another mailbox. The test retries a 432 to MAIL FROM (%d tries in all), not '
     'one at the end of DATA (the message was not accepted and is not sent again).'
     % (len(THROTTLE_WAITS) + 1)),
    (None, '5.7.708', None,
     'Exchange Online refuses traffic from this IP address (new or low-reputation tenant); '
     'open a support case, see Microsoft\'s "Fix email delivery issues for error code 5.7.708".'),
    (None, '5.7.705', None,
     'the tenant has exceeded its outbound threshold and is blocked from sending; see '
     'Microsoft\'s article on error code 5.7.705.'),
    (None, '5.7.750', None,
     'the tenant is blocked from sending from unregistered domains: verify the sender\'s domain '
     '(exchangeonline.mail.domain).'),
    (None, '5.1.8', None,
     'the sender is on the restricted entities list (suspected compromise); release it in the '
     'Microsoft Defender portal.'),
    (None, '5.1.10', None,
     'the recipient does not exist in the recipient\'s organisation; check the address.'),
    (504, '5.7.4', None,
     'the server does not take this AUTH mechanism here; Exchange Online offers AUTH only after '
     'STARTTLS, and there only LOGIN and XOAUTH2 (no PLAIN).'),
    (421, '4.7.', None,
     'Exchange Online is throttling this client (too many connections or messages). Wait and '
     'retry; keep concurrent connections per mailbox low.'),
    (550, '5.4.1', None,
     'the recipient\'s domain accepts mail only for existing addresses (Directory-Based Edge '
     'Blocking): check the address.'),
)
# Any server: what the reply codes (RFC 5321 4.2) and enhanced codes (RFC 3463, the IANA
# registry) say, without guessing at the product.
HINTS = (
    (421, None, None,
     'the server closed the session (RFC 5321 421: service not available, e.g. busy, limiting '
     'connections or shutting down): retry later.'),
    (451, '4.7.', None,
     'a temporary refusal: retry later.'),
    (535, None, None,
     'the server refused the credentials: check username and password (or the token), and '
     'that this account may use SMTP AUTH on this server.'),
    (530, None, None,
     'the server wants AUTH before MAIL FROM: give auth and the account\'s credentials.'),
    (504, None, None,
     'the server does not take this AUTH mechanism: choose auth from what it offers (see '
     'capabilities).'),
    (None, '5.1.10', None,
     'the recipient\'s domain has a null MX (RFC 7505): it takes no mail; check the address.'),
)

ENHANCED = re.compile(r'^([245]\.\d{1,3}\.\d{1,3})\b')
QUEUE_ID = (
    re.compile(r'queued as ([0-9A-Za-z]+)'),             # Postfix
    re.compile(r'InternalId=(\d+)'),                      # Exchange Server
    re.compile(r'\bid=([0-9A-Za-z-]+)'),                  # Exim
    re.compile(r'^2\.0\.0 ([0-9A-Za-z]+) Message accepted'),  # Sendmail
)
# CRLF line ends; header fields kept on one line up to RFC 5322's 998 characters, so that a
# long Message-ID is not folded (some parsers keep the fold's white space in the value).
# Octets in a line of the message without CRLF (RFC 5322 2.1.1, RFC 5321 4.5.3.1.6).
LINE_MAX = 998
NO_FOLDING = email.policy.SMTP.clone(max_line_length=LINE_MAX)
ADDRESS = re.compile(r'^[^@\s<>()\[\],;:"]+@[^@\s<>()\[\],;:"]+$')
HEADER_NAME_MAX = 76  # "Name: " and the start of the value on one 78-character line
HEADER_NAME = re.compile(r'[!-9;-~]{1,%d}' % HEADER_NAME_MAX)
# C0, DEL, C1 and the Unicode line and paragraph separators (line breaks to some parsers).
CONTROL = re.compile('[\x00-\x1f\x7f-\x9f\u2028\u2029]')
OWN_HEADERS = ('message-id', 'date', 'mime-version', 'content-type', 'content-transfer-encoding')
B64TOKEN = re.compile(r'[A-Za-z0-9\-._~+/]+=*')  # RFC 6750 2.1
SERVER_ID = re.compile(r'<([^<>\s]+@[^<>\s]+)>')
SHOWN_CONTROL = re.compile(r'[\x00-\x08\x0b-\x1f\x7f-\x9f]')

# Bounds on what the server sends (documented in the module's notes). RFC 5321 4.5.3.1.5 caps a
# reply line at 512 octets with its CRLF; we take up to four times that (as Postfix's
# line_length_limit), and a reply of at most 100 lines and 32 KiB: an EHLO reply has a dozen.
REPLY_LINE = 2048
REPLY_LINES = 100
REPLY_BYTES = 32768
TRANSCRIPT_LINES = 1000
TRANSCRIPT_BYTES = 262144


class SmtpFailure(Exception):
    """The test stopped: ``phase`` failed with an optional server reply."""

    def __init__(self, phase, message, code=None, reply=None, hint=None):
        super(SmtpFailure, self).__init__(message)
        self.phase = phase
        self.code = code
        self.reply = reply
        self.hint = hint


EXO_SUFFIXES = ('.office365.com', '.outlook.com', '.office365.us', '.outlook.cn')


def is_exchange_online(host, greeting=None):
    """Whether the server is Exchange Online, by the configured host or the name it gives in its
    greeting: smtp.office365.com, *.outlook.com (EOP's *.mail.protection.outlook.com, the
    mailbox servers *.prod.outlook.com), and the sovereign clouds' office365.us (GCC High, DoD)
    and outlook.cn (21Vianet: smtp.partner.outlook.cn)."""
    names = [host or '']
    if greeting:
        names.append(greeting.split(None, 1)[0] if greeting.split() else '')
    for name in names:
        name = '.' + name.lower().rstrip('.')
        if name.endswith(EXO_SUFFIXES):
            return True
    return False


def hint_for(code, enhanced, text, exchange_online=False):
    for h_code, h_enhanced, pattern, hint in (EXO_HINTS if exchange_online else ()) + HINTS:
        if h_code is not None and h_code != code:
            continue
        if h_enhanced is not None and not (enhanced or '').startswith(h_enhanced):
            continue
        if pattern is not None and not re.search(pattern, text or '', re.I):
            continue
        return hint
    return None


def split_reply(code, text):
    """(enhanced status code or None, the text after it) of a reply."""
    m = ENHANCED.match(text or '')
    if not m:
        return None, text
    return m.group(1), (text or '')[m.end():].strip()


def queue_id_of(text):
    for pattern in QUEUE_ID:
        m = pattern.search(text or '')
        if m:
            return m.group(1)
    return None


def _decode(data):
    """Text of a line sent or received, control characters (but tab and LF) shown as \\xNN, so
    that a server's reply cannot write escape sequences to a terminal or the log."""
    if isinstance(data, bytes):
        data = data.decode('utf-8', 'replace')
    return SHOWN_CONTROL.sub(lambda m: '\\x%02x' % ord(m.group()), data) if data else data


class _Recorder(object):
    """Mixin for smtplib.SMTP: its own bounded reply reader, a deadline per step, and every line
    sent and received in ``self.transcript`` (itself bounded).

    smtplib's getreply() reads lines of up to 8 KiB with ``timeout`` for each read, and keeps a
    multi-line reply however long it gets; here a reply has at most REPLY_LINES lines and
    REPLY_BYTES octets, a line at most REPLY_LINE octets, and the whole step (``arm()``) must be
    done within ``timeout`` seconds, however slowly the server sends."""

    def _setup_recorder(self, started, budget, silent_hint):
        self.transcript = []
        self.transcript_bytes = 0
        self.transcript_cut = None  # the note that says how much was left out
        self.left_out = 0
        self.started = started
        self.redact = None  # None: record as sent; a str: record that instead
        self.secrets = []  # what AUTH sent (and its parts): hidden in replies that quote it
        self.body_size = None
        self.budget = budget
        self.silent_hint = silent_hint
        self.phase, self.deadline = 'connect', time.monotonic() + budget
        self.awaiting = 'the greeting'  # what the next reply answers
        self.inbuf = b''
        self.reply_lines = []  # the lines of the reply being read
        self.broken = False  # the server broke a bound: the session is not worth a QUIT

    # -- deadlines ---------------------------------------------------------------------------
    def arm(self, phase):
        """Start a step of ``phase``: it has ``budget`` seconds from now."""
        self.phase, self.deadline = phase, time.monotonic() + self.budget

    def remaining(self, reading=True):
        left = self.deadline - time.monotonic()
        if left <= 0:
            if reading:
                raise self.too_slow()
            self.broken = True
            raise SmtpFailure(self.phase, 'the step was not done within %s s' % self.budget,
                              hint='the server answers too slowly: raise timeout for a slow '
                                   'server')
        return left

    def too_slow(self):
        self.broken = True
        received = len(self.inbuf) + sum(len(line) for line in self.reply_lines)
        if not received:
            return SmtpFailure(self.phase, 'no answer within %s s' % self.budget,
                               hint=self.silent_hint)
        return SmtpFailure(
            self.phase, '%s was not complete within %s s (the step\'s deadline): the server sent '
            '%d bytes of it in that time' % (self.awaiting, self.budget, received),
            hint='the server sends its reply too slowly or never ends it: check that host and '
                 'port are an SMTP server; raise timeout only for a very slow one')

    def too_big(self, what):
        self.broken = True
        return SmtpFailure(
            self.phase, '%s %s; an SMTP reply is a few short lines' % (self.awaiting, what),
            hint='the server does not speak SMTP as RFC 5321 describes (or is hostile): check '
                 'host and port; the connection was dropped')

    # -- the transcript ----------------------------------------------------------------------
    def _note(self, direction, line):
        if self.transcript_cut is None and (len(self.transcript) >= TRANSCRIPT_LINES or
                                            self.transcript_bytes + len(line) > TRANSCRIPT_BYTES):
            self.transcript_cut = {'ms': self._ms(), 'direction': 'note'}
            self.transcript.append(self.transcript_cut)
        if self.transcript_cut is not None:
            self.left_out += 1
            self.transcript_cut['line'] = (
                'the transcript was cut here at %d lines or %d bytes: %d later lines left out'
                % (TRANSCRIPT_LINES, TRANSCRIPT_BYTES, self.left_out))
            return
        self.transcript_bytes += len(line)
        self.transcript.append({'ms': self._ms(), 'direction': direction, 'line': line})

    def _ms(self):
        return int((time.monotonic() - self.started) * 1000)

    # -- I/O ---------------------------------------------------------------------------------
    def send(self, s):
        if self.body_size is not None:
            self._note('client', '<message: %d bytes>' % self.body_size)
            self.body_size = None
            self.awaiting = 'the reply to the message'
        else:
            text = s.decode('utf-8', 'replace') if isinstance(s, bytes) else s
            shown = [self.redact if self.redact is not None else _decode(line)
                     for line in text.splitlines()]
            for line in shown:
                self._note('client', line)
            verb = shown[0].split(' ', 1)[0].upper() if shown else ''
            if verb.isalpha():  # AUTH continuations (shown as ******** or empty) keep "AUTH"
                self.awaiting = 'the reply to %s' % verb
        if not self.sock:
            raise smtplib.SMTPServerDisconnected('please run connect() first')
        if isinstance(s, str):
            s = s.encode(self.command_encoding)
        try:
            self.sock.settimeout(self.remaining(reading=False))
            self.sock.sendall(s)  # the timeout bounds the whole sendall (Python 3.5+)
        except (socket.timeout, TimeoutError):
            self.broken = True
            raise SmtpFailure(self.phase, 'the server did not take what was sent within %s s'
                              % self.budget,
                              hint='the server stopped reading: check that host and port are '
                                   'an SMTP server; raise timeout only for a very slow one')
        except OSError:
            self.close()
            raise smtplib.SMTPServerDisconnected('Server not connected')

    def _get_socket(self, host, port, timeout):
        """The TCP connection (every address of host in turn) within the connect deadline."""
        error = OSError('%s has no address' % host)
        addresses = socket.getaddrinfo(host, port, 0, socket.SOCK_STREAM)
        for family, kind, proto, dummy, address in addresses:
            left = self.remaining()
            sock = socket.socket(family, kind, proto)
            try:
                sock.settimeout(left)
                sock.connect(address)
                return self._secure(sock)
            except OSError as e:
                sock.close()
                error = e
        raise error

    def _secure(self, sock):
        return sock

    def getreply(self):
        """(code, text) like smtplib's getreply(), within the bounds (see the class)."""
        self.reply_lines, size = [], 0
        code = -1
        while True:
            line = self._hide(self._readline())
            self.reply_lines.append(line)
            size += len(line)
            self._note('server', _decode(line.rstrip(b'\r\n')))
            try:
                code = int(line[:3])
            except ValueError:
                code = -1
                break
            if line[3:4] != b'-':
                break
            if len(self.reply_lines) >= REPLY_LINES:
                raise self.too_big('went on past %d lines' % REPLY_LINES)
            if size > REPLY_BYTES:
                raise self.too_big('went on past %d bytes' % REPLY_BYTES)
        text = b'\n'.join(line[4:].strip(b' \t\r\n') for line in self.reply_lines)
        self.reply_lines = []
        return code, text

    def _hide(self, line):
        """``line`` with every secret AUTH sent replaced: a server may quote what it got."""
        for secret in self.secrets:
            line = line.replace(secret, REDACTED.encode('ascii'))
        return line

    def _readline(self):
        while True:
            end = self.inbuf.find(b'\n', 0, REPLY_LINE)
            if end >= 0:
                line, self.inbuf = self.inbuf[:end + 1], self.inbuf[end + 1:]
                return line
            if len(self.inbuf) >= REPLY_LINE:
                raise self.too_big('has a line longer than %d bytes (RFC 5321 4.5.3.1.5: 512 '
                                   'at most)' % REPLY_LINE)
            if self.sock is None:
                raise smtplib.SMTPServerDisconnected('please run connect() first')
            try:
                self.sock.settimeout(self.remaining())
                data = self.sock.recv(4096)
            except (socket.timeout, TimeoutError):
                raise self.too_slow()
            except OSError as e:
                self.close()
                raise smtplib.SMTPServerDisconnected('Connection unexpectedly closed: %s' % e)
            if not data:
                self.close()
                raise smtplib.SMTPServerDisconnected('Connection unexpectedly closed')
            self.inbuf += data


class _SMTP(_Recorder, smtplib.SMTP):
    pass


class _SMTPS(_Recorder, smtplib.SMTP_SSL):

    def _secure(self, sock):
        sock.settimeout(self.remaining())  # the handshake as a whole, not each read
        return self.context.wrap_socket(sock, server_hostname=self._host)


def tls_details(sock, verified):
    out = {'version': sock.version(), 'cipher': None, 'bits': None, 'verified': verified,
           'peer_certificate': None}
    cipher = sock.cipher()
    if cipher:
        out['cipher'], out['bits'] = cipher[0], cipher[2]
    cert = sock.getpeercert() if verified else None
    if cert:
        def name(rdns):
            return ', '.join('%s=%s' % (k, v) for rdn in rdns for k, v in rdn)
        not_before, not_after = (_cert_time(cert.get(k)) for k in ('notBefore', 'notAfter'))
        out['peer_certificate'] = {
            'subject': name(cert.get('subject', ())), 'issuer': name(cert.get('issuer', ())),
            'not_before': not_before.isoformat() if not_before else None,
            'not_after': not_after.isoformat() if not_after else None,
            'expires_in_days': (not_after - datetime.datetime.now(datetime.timezone.utc)).days
            if not_after else None,
            'names': [v for k, v in cert.get('subjectAltName', ())]}
    else:
        der = sock.getpeercert(binary_form=True)
        out['peer_certificate'] = _unverified_certificate(der) if der else None
    return out


def _cert_time(text):
    if not text:
        return None
    return datetime.datetime.fromtimestamp(ssl.cert_time_to_seconds(text),
                                           tz=datetime.timezone.utc)


def _unverified_certificate(der):
    """What an unchecked peer certificate says (needs cryptography, else only its size)."""
    try:
        from cryptography import x509
        from cryptography.x509.oid import ExtensionOID
    except ImportError:
        return {'der_bytes': len(der)}
    cert = x509.load_der_x509_certificate(der)
    try:
        names = [str(n.value) for n in
                 cert.extensions.get_extension_for_oid(ExtensionOID.SUBJECT_ALTERNATIVE_NAME).value]
    except x509.ExtensionNotFound:
        names = []
    not_after = getattr(cert, 'not_valid_after_utc', None) or \
        cert.not_valid_after.replace(tzinfo=datetime.timezone.utc)
    not_before = getattr(cert, 'not_valid_before_utc', None) or \
        cert.not_valid_before.replace(tzinfo=datetime.timezone.utc)
    return {'subject': cert.subject.rfc4514_string(), 'issuer': cert.issuer.rfc4514_string(),
            'not_before': not_before.isoformat(), 'not_after': not_after.isoformat(),
            'expires_in_days': (not_after - datetime.datetime.now(datetime.timezone.utc)).days,
            'names': names}


def tls_context(params):
    ctx = ssl.create_default_context()
    ctx.minimum_version = getattr(ssl.TLSVersion, params.get('min_tls_version') or 'TLSv1_2')
    if params.get('validate_certs', True):
        ca = params.get('ca_path')
        if ca:
            try:
                if os.path.isdir(ca):
                    ctx.load_verify_locations(capath=ca)
                else:
                    ctx.load_verify_locations(cafile=ca)
            except (OSError, ssl.SSLError, ValueError) as e:
                raise SmtpFailure('connect', 'cannot use ca_path %s: %s' % (ca, e),
                                  hint='give a PEM file of the CA certificates that sign the '
                                       'server\'s certificate, or a directory of them')
    else:
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
    return ctx


def ehlo_lines(smtp):
    """The EHLO keywords the server announced (the lines after the greeting)."""
    text = _decode(smtp.ehlo_resp or b'')
    return [line.strip() for line in text.split('\n')[1:] if line.strip()]


def build_message(params, sender, message_id):
    msg = email.message.EmailMessage()
    msg['From'] = sender
    msg['To'] = ', '.join(params['to'])
    msg['Subject'] = params.get('subject') or ('exchangeonline.mail SMTP test %s' % message_id)
    msg['Date'] = email.utils.formatdate(localtime=False)
    msg['Message-ID'] = message_id
    for key, value in (params.get('headers') or {}).items():
        if key.lower() in ('from', 'to', 'subject'):
            del msg[key]
        msg[key] = str(value)
    body = params.get('body') or (
        'Test message from the Ansible module exchangeonline.mail.smtp_test.\n'
        'Message-ID: %s\nSent: %s\n' % (message_id, email.utils.formatdate()))
    # 7-bit on the wire: no need for BODY=8BITMIME. Quoted-printable for non-ASCII text and for
    # lines over RFC 5322's 998 octets (its lines are at most 76).
    plain = _ascii(body) and all(len(line) <= LINE_MAX for line in body.encode().splitlines())
    msg.set_content(body, cte='7bit' if plain else 'quoted-printable')
    return msg


def message_bytes(msg, smtputf8):
    """The message on the wire: CRLF, header fields folded (RFC 5322 2.2.3) or encoded (RFC 2047)
    so that no line has more than 998 octets. Folding counts characters: with raw UTF-8 headers
    (SMTPUTF8) a character may take four octets, so fold there at a quarter of the limit."""
    policy = NO_FOLDING.clone(utf8=True, max_line_length=LINE_MAX // 4) if smtputf8 else \
        NO_FOLDING
    raw = msg.as_bytes(policy=policy)
    longest = max(len(line) for line in raw.split(b'\r\n'))
    if longest > LINE_MAX:  # a guard: the encodings above should never leave one
        raise SmtpFailure('data', 'the message has a line of %d octets, over the %d of RFC 5322 '
                          '2.1.1; nothing was sent' % (longest, LINE_MAX),
                          hint='shorten the subject or header values without spaces')
    return raw


def _ascii(text):
    try:
        text.encode('ascii')
        return True
    except UnicodeError:
        return False


def wire_address(address):
    """The address with an IDN domain in punycode (A-labels); the local part as given."""
    local, at, domain = address.rpartition('@')
    if not at or _ascii(domain):
        return address
    return '%s@%s' % (local, domain.encode('idna').decode('ascii'))


def blank_result(params):
    """Every key of a test-send's result, as before anything happened."""
    return {
        'changed': False, 'phase': None, 'failed_phase': None, 'smtp_code': None,
        'enhanced_code': None, 'message': None, 'hint': None, 'transcript': [],
        'tls': None, 'capabilities': {'before_tls': [], 'after_tls': []},
        'message_id': None, 'queue_id': None, 'server_message_id': None,
        'delivered': None, 'delivery_ms': None, 'delivered_folder': None,
        'send_as_proven': False, 'timings_ms': {},
        'host': params.get('host'), 'port': params.get('port'),
        'auth_mechanism': None,
    }


def input_failure(result, params):
    """A failure of the shared option checks (before any SMTP) with every key a failed test
    carries, so that register + failed_phase works for it too."""
    out = blank_result(params or {})
    out.update(result)
    out['failed_phase'] = 'input'
    out['message'] = str(result.get('msg') or '').split(': ', 1)[-1]
    return out


class SmtpTest(object):
    """One test-send; ``run()`` returns the module result (never raises for SMTP problems)."""

    def __init__(self, params, check_mode, identity_factory=None):
        self.params = params
        self.check_mode = check_mode
        self.identity_factory = identity_factory
        self.timings = {}
        self.reached = None
        self.smtp = None
        self.smtputf8 = False  # set by envelope() when an address needs RFC 6531
        self.exchange_online = is_exchange_online(params.get('host'))  # and by the greeting
        self.header_recipients = []  # the To: and Cc: addresses of the message sent
        self.started = time.monotonic()
        self.result = blank_result(params)
        self.result['timings_ms'] = self.timings

    # -- steps -----------------------------------------------------------------------------------
    def stop_after(self, phase):
        return self.check_mode and phase == 'rcpt' or self.params.get('quit_after') == phase

    def timed(self, phase, step):
        if self.smtp is not None and phase != 'delivery':
            self.smtp.arm('starttls' if phase == 'ehlo_after_tls' else phase)
        t0 = time.monotonic()
        try:
            return step()
        finally:
            self.timings[phase] = int((time.monotonic() - t0) * 1000)

    def done(self, phase):
        self.reached = phase

    def expect(self, phase, reply, ok):
        code, text = reply
        text = _decode(text)
        if code == -1:
            raise SmtpFailure(phase, 'the server\'s answer is not an SMTP reply: %r' % text[:200],
                              hint='check that host and port are an SMTP server')
        if code not in ok:
            raise SmtpFailure(phase, 'the server answered %s %s' % (code, text), code, text)
        return text

    def connect(self):
        p = self.params
        self.ctx = tls_context(p) if p['tls'] != 'none' else None
        cls = _SMTPS if p['tls'] == 'tls' else _SMTP
        kwargs = {'local_hostname': p.get('ehlo_name'), 'timeout': p.get('timeout') or 30.0}
        if cls is _SMTPS:
            kwargs['context'] = self.ctx
        smtp = cls(**kwargs)
        smtp._setup_recorder(self.started, kwargs['timeout'], _silent_hint(p))
        smtp._host = p['host']  # smtplib checks the certificate against it (implicit TLS)
        self.smtp = smtp
        try:
            code, text = smtp.connect(p['host'], p['port'])
        except ssl.SSLCertVerificationError as e:
            raise SmtpFailure('connect', 'TLS certificate check failed: %s' % _cert_error(e),
                              hint=_cert_hint(p))
        except ssl.SSLError as e:
            raise SmtpFailure('connect', 'TLS handshake failed: %s' % e.reason,
                              hint=_tls_hint(p))
        self.exchange_online = is_exchange_online(p['host'], _decode(text))
        self.expect('connect', (code, text), (220,))
        if p['tls'] == 'tls':
            self.result['tls'] = tls_details(smtp.sock, p.get('validate_certs', True))

    def ehlo(self, phase, key):
        code, text = self.smtp.ehlo()
        if code != 250:
            # RFC 5321 4.1.4: fall back to HELO only where no extensions are needed.
            raise SmtpFailure(phase, 'EHLO refused: %s %s' % (code, _decode(text)), code,
                              _decode(text))
        self.result['capabilities'][key] = ehlo_lines(self.smtp)

    def starttls(self):
        smtp = self.smtp
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
            raise SmtpFailure('starttls', 'TLS certificate check failed: %s' % _cert_error(e),
                              hint=_cert_hint(self.params))
        except ssl.SSLError as e:
            raise SmtpFailure('starttls', 'TLS handshake failed: %s' % e.reason,
                              hint=_tls_hint(self.params))
        smtp.helo_resp = smtp.ehlo_resp = None
        smtp.esmtp_features = {}
        smtp.does_esmtp = False
        self.result['tls'] = tls_details(smtp.sock, self.params.get('validate_certs', True))

    def auth(self):
        p, smtp = self.params, self.smtp
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

    def secret_cmd(self, line, shown):
        secret = line.rsplit(' ', 1)[-1]
        if len(secret) >= 4:
            self.smtp.secrets.append(secret.encode('ascii', 'replace'))
        self.smtp.redact = shown
        try:
            self.smtp.putcmd(line)
            return self.smtp.getreply()
        finally:
            self.smtp.redact = None

    def token(self):
        from ansible_collections.exchangeonline.mail.plugins.module_utils._identity import (
            EXCHANGE, IdentityError)
        try:
            return self.identity().token(EXCHANGE)
        except IdentityError as e:
            raise SmtpFailure('auth', 'no access token for XOAUTH2: %s' % e)

    def identity(self):
        if not hasattr(self, '_identity'):
            self._identity = self.identity_factory(self.params)
        return self._identity

    def envelope(self, sender):
        smtp, options = self.smtp, []
        addresses = [sender] + list(self.params['to'])
        if not all(_ascii(a) for a in addresses):  # a non-ASCII local part: RFC 6531
            if not smtp.has_extn('smtputf8'):
                raise SmtpFailure('mail', 'the address %s has a non-ASCII local part, and the '
                                  'server does not offer SMTPUTF8'
                                  % next(a for a in addresses if not _ascii(a)),
                                  hint='use an ASCII address (for example the mailbox\'s '
                                       'primary address)')
            smtp.command_encoding = 'utf-8'
            options = ['SMTPUTF8']
            self.smtputf8 = True
        self.timed('mail', lambda: self.mail_from(sender, options))
        self.done('mail')

        def recipients():
            for rcpt in self.params['to']:
                smtp.arm('rcpt')  # timeout for each recipient
                code, text = smtp.rcpt(rcpt)
                if code not in (250, 251):
                    raise SmtpFailure('rcpt', 'the server refused the recipient %s: %s %s'
                                      % (rcpt, code, _decode(text)), code, _decode(text))
        self.timed('rcpt', recipients)

    def mail_from(self, sender, options):
        """MAIL FROM; Exchange Online's 432 4.3.2 (too many sessions sending as this mailbox)
        is retried after the THROTTLE_WAITS in the same session, each attempt with its own
        deadline."""
        throttled = None
        for wait in THROTTLE_WAITS + (None,):
            self.smtp.arm('mail')
            try:
                code, text = self.smtp.mail(sender, options)
            except smtplib.SMTPServerDisconnected:
                if throttled is None:
                    raise
                raise SmtpFailure('mail', 'the server answered 432 %s, then closed the '
                                  'connection' % throttled, 432, throttled)
            if code != 432 or not self.exchange_online or wait is None:
                return self.expect('mail', (code, text), (250,))
            throttled = _decode(text)  # the text of the 432
            self.smtp._note('note', 'sender thread limit: MAIL FROM again in %.1f s' % wait)
            time.sleep(wait * (1 + random.random() / 4))

    def data(self, sender):
        p, smtp = self.params, self.smtp
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
        payload = smtplib._quote_periods(raw) if hasattr(smtplib, '_quote_periods') else \
            re.sub(br'(?m)^\.', b'..', raw)
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
    def run(self):
        p = self.params
        problem = check_input(p)
        if problem:
            self.fail(SmtpFailure('input', problem))
            return self.result
        p = self.params = dict(p, to=[wire_address(a) for a in p.get('to') or []])
        sender = p.get('sender') or p.get('username')
        sender = wire_address(sender) if sender else sender
        try:
            self.timed('connect', self.connect)
            self.done('connect')
            if not self.stop_after('connect'):
                self.steps(sender)
        except SmtpFailure as e:
            self.fail(e)
        except (socket.timeout, TimeoutError) as e:  # the TCP connection
            self.fail(SmtpFailure(self.next_phase(), 'no answer within %s s (%s)'
                                  % (p.get('timeout') or 30.0, e or 'timed out'),
                                  hint=_silent_hint(p)))
        except smtplib.SMTPServerDisconnected as e:
            if 'timed out' in str(e):  # smtplib reports a read timeout as a closed connection
                self.fail(SmtpFailure(self.next_phase(), 'no answer within %s s'
                                      % (p.get('timeout') or 30.0), hint=_silent_hint(p)))
            else:
                self.fail(SmtpFailure(self.next_phase(), 'the server closed the connection (%s)'
                                      % (e or 'no reason given')))
        except (UnicodeError, ValueError) as e:
            self.fail(SmtpFailure(self.next_phase(), 'cannot send this: %s' % e,
                                  hint='check the addresses, headers and body for characters '
                                       'the server cannot take'))
        except (OSError, smtplib.SMTPException) as e:
            self.fail(SmtpFailure(self.next_phase(), 'network error: %s' % e,
                                  hint='check host and port (%s:%s) and that the server '
                                       'listens' % (p['host'], p['port'])))
        finally:
            self.close()
        self.result['phase'] = self.reached
        self.result['transcript'] = self.smtp.transcript if self.smtp else []
        self.result['elapsed_ms'] = int((time.monotonic() - self.started) * 1000)
        return self.result

    def steps(self, sender):
        p = self.params
        self.timed('ehlo', lambda: self.ehlo('ehlo', 'before_tls'))
        self.done('ehlo')
        if self.stop_after('ehlo'):
            return
        if p['tls'] == 'starttls':
            self.timed('starttls', self.starttls)
            self.timed('ehlo_after_tls', lambda: self.ehlo('starttls', 'after_tls'))
            self.done('starttls')
        elif p['tls'] == 'tls':
            self.result['capabilities']['after_tls'] = self.result['capabilities'].pop(
                'before_tls')
            self.result['capabilities']['before_tls'] = []
        if self.stop_after('starttls'):
            return
        if p['auth'] != 'none':
            self.timed('auth', self.auth)
            self.done('auth')
        if self.stop_after('auth'):
            return
        self.envelope(sender)
        self.done('rcpt')
        if self.stop_after('rcpt'):
            self.send_as_unproven(sender)
            self.smtp.arm('quit')
            self.smtp.rset()
            return
        message_id = self.timed('data', lambda: self.data(sender))
        self.done('data')
        if message_id is None:  # quit_after: data; drop the session, nothing is sent
            self.send_as_unproven(sender)
            self.smtp.close()
            return
        self.quit()
        if p.get('confirm_delivery'):
            self.timed('delivery', lambda: self.confirm(message_id))
            self.done('delivery')

    def send_as_unproven(self, sender):
        """The warning of a test that stopped before the message: MAIL FROM and RCPT TO were
        accepted, but Exchange Online refuses a sender the mailbox may not send as only at the
        end of DATA (550 5.7.60, 554 5.2.252 SendAsDenied)."""
        how = 'check mode' if self.check_mode else 'quit_after: %s' % self.params['quit_after']
        user = self.params.get('username') or sender
        what = ('%s may send as %s' % (user, sender) if user.lower() != sender.lower() else
                'the server takes %s as the sender' % sender)
        self.result.setdefault('warnings', []).append(
            'This test stopped before sending the message (%s), so it does not prove that %s: '
            'Exchange Online accepts MAIL FROM and RCPT TO and refuses a sender without Send As '
            'only after the message (550 5.7.60 or 554 5.2.252). Run it without %s to prove it.'
            % (how, what, how))

    def quit(self):
        try:
            self.timed('quit', self.smtp.quit)
            self.done('quit')
        except (OSError, smtplib.SMTPException, SmtpFailure):
            pass  # the message was accepted already; a lost QUIT answer changes nothing

    def close(self):
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

    def next_phase(self):
        order = ['connect', 'ehlo'] + (['starttls'] if self.params['tls'] == 'starttls' else [])
        order += ['auth'] if self.params['auth'] != 'none' else []
        order += ['mail', 'rcpt', 'data', 'quit', 'delivery']
        if self.reached is None:
            return 'connect'
        index = order.index(self.reached) if self.reached in order else len(order) - 2
        return order[min(index + 1, len(order) - 1)]

    def fail(self, e):
        r = self.result
        r['failed'] = True
        r['failed_phase'] = e.phase
        if e.code is not None:
            enhanced, text = split_reply(e.code, e.reply)
            r['smtp_code'], r['enhanced_code'], r['message'] = e.code, enhanced, text
            r['hint'] = e.hint or hint_for(e.code, enhanced, text, self.exchange_online)
        else:
            r['message'] = str(e)
            r['hint'] = e.hint
        r['msg'] = '%s failed: %s' % (e.phase, str(e))
        if r['hint']:
            r['msg'] += ' -- ' + r['hint']

    # -- delivery ---------------------------------------------------------------------------
    def confirm(self, message_id):
        """Poll the mailbox's Inbox and Junk Email for the message (folder-scoped queries: the
        sender's Sent Items copy of a message to itself has the same internetMessageId) until
        one addressed to a recipient of the message is there, or the timeout."""
        from ansible_collections.exchangeonline.mail.plugins.module_utils._graph import (
            GraphClient, GraphError, path_segment)
        from ansible_collections.exchangeonline.mail.plugins.module_utils._identity import (
            IdentityError)
        spec = self.params['confirm_delivery']
        mailbox = spec.get('mailbox') or self.params['to'][0]
        segment = path_segment(mailbox, 'confirm_delivery.mailbox')
        timeout, interval = spec.get('timeout'), spec.get('interval')
        accepted = time.monotonic()
        self.result['delivered'] = False
        query = {'$filter': "internetMessageId eq '%s'" % message_id.replace("'", "''"),
                 '$select': 'id,internetMessageId,receivedDateTime,subject,parentFolderId,'
                            'toRecipients,ccRecipients,bccRecipients',
                 '$top': '10'}
        folders = list(DELIVERY_FOLDERS)
        try:
            graph = GraphClient(self.identity(), phase='delivery')
            while True:
                for folder in list(folders):
                    try:
                        found = graph.get('/users/%s/mailFolders/%s/messages'
                                          % (segment, folder), params=query,
                                          permission='Mail.ReadBasic.All')
                    except GraphError as e:
                        if e.status != 404 or e.code != 'ErrorItemNotFound':
                            raise
                        if folder == 'inbox':
                            raise SmtpFailure('delivery', str(e), hint=(
                                'the mailbox %s has no Inbox that Graph can read: give '
                                'confirm_delivery.mailbox as a user or shared mailbox of '
                                'Exchange Online' % mailbox))
                        folders.remove(folder)  # no such folder: the Inbox is proof enough
                        self.result.setdefault('warnings', []).append(
                            'The mailbox %s has no Junk Email folder (Graph answered 404 '
                            'ErrorItemNotFound); only its Inbox is looked in.' % mailbox)
                        continue
                    item = self.delivered_item(found.get('value') or [], message_id, mailbox)
                    if item is not None:
                        self.result.update(delivered=True, delivered_folder=folder,
                                           delivered_message=item, delivery_ms=int(
                                               (time.monotonic() - accepted) * 1000))
                        if folder == 'junkemail':
                            self.result.setdefault('warnings', []).append(
                                'The message was delivered to Junk Email of %s, not to the '
                                'Inbox: check the sender domain\'s SPF, DKIM and DMARC and the '
                                'anti-spam policies.' % mailbox)
                        return
                if time.monotonic() - accepted + interval > timeout:
                    raise SmtpFailure(
                        'delivery', 'the message %s was accepted but did not arrive in the Inbox '
                        'or Junk Email of %s within %s s' % (message_id, mailbox, timeout),
                        hint='look it up in the message trace of the Exchange admin centre (a '
                             'quarantined message, or one an inbox rule moved to another '
                             'folder, is not found here); raise confirm_delivery.timeout if '
                             'delivery is slow')
                time.sleep(interval)
        except IdentityError as e:
            raise SmtpFailure('delivery', str(e))
        except GraphError as e:
            raise SmtpFailure('delivery', str(e))

    def delivered_item(self, items, message_id, mailbox):
        """The first of ``items`` that is this message as a recipient got it: the same
        internetMessageId, and one of the message's recipients listed (the To: and Cc: of the
        message sent, the envelope recipients, the mailbox looked in). Every copy shows the
        To: and Cc: of the message, also a Bcc or envelope-only recipient's, so an item without
        recipients counts only when the message had no To: or Cc: (headers replaced them)."""
        ours = {a.lower() for a in self.params['to'] + self.header_recipients + [mailbox]}
        for item in items if isinstance(items, list) else []:
            if not isinstance(item, dict) or item.get('internetMessageId') != message_id:
                continue
            listed = {str(((r or {}).get('emailAddress') or {}).get('address') or '').lower()
                      for key in ('toRecipients', 'ccRecipients', 'bccRecipients')
                      for r in item.get(key) or () if isinstance(r, dict)} - {''}
            if listed & ours or not listed and not self.header_recipients:
                return item
        return None


def check_input(p):
    """Why these options cannot work (before anything is sent), or None."""
    if not 0 < p['port'] < 65536:
        return 'port %s is not a TCP port' % p['port']
    if p['auth'] != 'none' and p['tls'] == 'none' and not p.get('allow_plaintext_auth'):
        return ('auth: %s over tls: none would send the credentials in clear text. Use tls: '
                'starttls or tls (or allow_plaintext_auth: true for a lab server)' % p['auth'])
    stops_early = p.get('quit_after') in ('connect', 'ehlo', 'starttls', 'auth')
    user = p.get('username') or p.get('sender')
    if p['auth'] != 'none' and not stops_early or p.get('quit_after') == 'auth':
        if not user:
            return 'auth: %s needs username (or sender)' % p['auth']
        if p['auth'] in ('login', 'plain') and not p.get('password'):
            return 'auth: %s needs password' % p['auth']
        if p['auth'] == 'xoauth2' and not p.get('access_token') and not _has_app(p):
            return ('auth: xoauth2 needs access_token, or tenant_id, client_id and '
                    'client_secret or client_certificate_path (or the AZURE_* variables) '
                    'to acquire one')
    if not stops_early:
        if not (p.get('sender') or p.get('username')):
            return 'give sender (the envelope sender and From: address)'
        if not p.get('to'):
            return 'give to (at least one recipient)'
    problem = control_characters(p)
    if problem:
        return problem
    if p.get('access_token') and not B64TOKEN.fullmatch(p['access_token']):
        return ('access_token is not an OAuth bearer token (RFC 6750: letters, digits and '
                '-._~+/ then = padding); give the token itself, without "Bearer "')
    addresses = [('sender', p.get('sender')), ('username', p.get('username'))]
    addresses += [('to[%d]' % i, a) for i, a in enumerate(p.get('to') or [])]
    for option, address in addresses:
        if address is None:
            continue
        if not ADDRESS.fullmatch(address):
            return '%s %r is not an e-mail address' % (option, address[:200])
        try:
            wire_address(address)
        except UnicodeError:
            return ('%s: the domain of %r is not a valid internationalised domain name'
                    % (option, address[:200]))
    for key in p.get('headers') or {}:
        if not HEADER_NAME.fullmatch(str(key)):
            return ('headers: %r is not a valid header field name (printable ASCII without colon, '
                    'at most %d characters)' % (key, HEADER_NAME_MAX))
        if str(key).lower() in OWN_HEADERS:
            return ('headers: %r is set by the module (the message ID it reports and looks for, '
                    'the date and the MIME structure); leave it out' % key)
    if p.get('timeout') is not None and p['timeout'] <= 0:
        return 'timeout must be more than 0 seconds'
    if p.get('ehlo_name') is not None and not re.fullmatch(r'[A-Za-z0-9.\-\[\]:]+',
                                                           p['ehlo_name']):
        return 'ehlo_name %r is not a domain name or address literal' % p['ehlo_name']
    if p.get('confirm_delivery') is not None:
        if p.get('quit_after'):
            return 'confirm_delivery needs a message sent: remove quit_after'
        if not _has_app(p):
            return ('confirm_delivery reads the mailbox through Microsoft Graph: give '
                    'tenant_id, client_id and client_secret or client_certificate_path')
        if p['confirm_delivery']['timeout'] <= 0 or p['confirm_delivery']['interval'] <= 0:
            return 'confirm_delivery timeout and interval must be positive'
    return None


def control_characters(p):
    """Which option holds a control character where the protocol has none, or None.

    Addresses, username and ehlo_name go into SMTP commands: no control characters at all (CR
    or LF would end the command and start another). The subject and header values are one line
    of a header field: a tab is white space there (RFC 5322 WSP), CR, LF and the other controls
    are not. The body may hold tabs and line breaks, nothing else."""
    command = 'remove it: it would go into an SMTP command'
    header = 'a header field is one line of text without control characters (tabs allowed)'
    fields = [('sender %r' % p.get('sender'), p.get('sender'), '', command),
              ('username %r' % p.get('username'), p.get('username'), '', command),
              ('ehlo_name %r' % p.get('ehlo_name'), p.get('ehlo_name'), '', command)]
    fields += [('to[%d] %r' % (i, a), a, '', command) for i, a in enumerate(p.get('to') or [])]
    fields += [('subject', p.get('subject'), '\t', header)]
    for key, value in (p.get('headers') or {}).items():
        fields += [('headers: the name %r' % str(key), str(key), '', header),
                   ('headers: the value of %r' % str(key), value, '\t', header)]
    fields += [('body', p.get('body'), '\t\r\n\u2028\u2029',
                'the body may hold tabs and line breaks, no other control characters')]
    for option, value, allowed, rule in fields:
        for position, char in enumerate(str(value) if value is not None else ''):
            if CONTROL.match(char) and char not in allowed:
                return '%s holds %s after %d characters: %s' % (option, _char_name(char),
                                                                position, rule)
    return None


def _char_name(char):
    names = {0: 'NUL', 9: 'TAB', 10: 'LF', 13: 'CR', 27: 'ESC', 127: 'DEL', 0x85: 'NEL',
             0x2028: 'LINE SEPARATOR', 0x2029: 'PARAGRAPH SEPARATOR'}
    code = ord(char)
    return 'the control character U+%04X%s' % (code, ' (%s)' % names[code] if code in names else '')


def _has_app(p):
    return bool(p.get('tenant_id') and p.get('client_id') and
                (p.get('client_secret') or p.get('client_certificate_path')))


def _b64(text):
    return base64.b64encode(text.encode('utf-8')).decode('ascii')


def _cert_error(e):
    return getattr(e, 'verify_message', None) or str(e)


def _cert_hint(params):
    if params.get('ca_path'):
        return ('the certificate is not valid for %s or not signed by a CA in ca_path %s: '
                'connect by the name in the certificate or fix ca_path'
                % (params['host'], params['ca_path']))
    return ('the certificate is not valid for %s or not signed by a trusted CA: connect by the '
            'name in the certificate (smtp.office365.com for Exchange Online) or give the '
            'server\'s CA in ca_path' % params['host'])


def _silent_hint(params):
    if params['tls'] == 'starttls' and params['port'] == 465:
        return ('port 465 speaks TLS from the first byte: use tls: tls there (or port 587 with '
                'starttls)')
    if params['tls'] == 'tls' and params['port'] in (25, 587):
        return ('port %s starts in clear text and upgrades with STARTTLS: use tls: starttls'
                % params['port'])
    return ('check the host, the port and the firewall path; raise timeout for a slow server')


def _tls_hint(params):
    return ('the server and this client share no TLS version or cipher at min_tls_version %s '
            'or above' % (params.get('min_tls_version') or 'TLSv1_2'))
