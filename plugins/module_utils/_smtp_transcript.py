# -*- coding: utf-8 -*-
# Copyright (c) exchangeonline.mail contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# Private to this collection: may change without notice.
"""The connection of an SMTP test as smtplib sees it, bounded and recorded: a deadline per step,
replies of bounded size read by its own reader, and every line sent and received kept in a
bounded transcript (AUTH data and the message left out, secrets a server quotes hidden)."""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import re
import smtplib
import socket
import time
from typing import TYPE_CHECKING, Any, Dict, List, Optional, Tuple, Union, overload

from ansible_collections.exchangeonline.mail.plugins.module_utils._smtp_hints import SmtpFailure

REDACTED = '********'
SHOWN_CONTROL = re.compile(r'[\x00-\x08\x0b-\x1f\x7f-\x9f]')

# Bounds on what the server sends (documented in the module's notes). RFC 5321 4.5.3.1.5 caps a
# reply line at 512 octets with its CRLF; we take up to four times that (as Postfix's
# line_length_limit), and a reply of at most 100 lines and 32 KiB: an EHLO reply has a dozen.
REPLY_LINE = 2048
REPLY_LINES = 100
REPLY_BYTES = 32768
TRANSCRIPT_LINES = 1000
TRANSCRIPT_BYTES = 262144

if TYPE_CHECKING:  # for the type checker only: what the mixin below is mixed into
    from _typeshed import ReadableBuffer
    _Mixed = smtplib.SMTP
else:
    _Mixed = object


@overload
def printable(data: Union[bytes, str]) -> str:
    ...


@overload
def printable(data: None) -> None:
    ...


def printable(data: Union[bytes, str, None]) -> Optional[str]:
    """Text of a line sent or received, control characters (but tab and LF) shown as \\xNN, so
    that a server's reply cannot write escape sequences to a terminal or the log."""
    if isinstance(data, bytes):
        data = data.decode('utf-8', 'replace')
    return SHOWN_CONTROL.sub(lambda m: '\\x%02x' % ord(m.group()), data) if data else data


class _Recorder(_Mixed):
    """Mixin for smtplib.SMTP: its own bounded reply reader, a deadline per step, and every line
    sent and received in ``self.transcript`` (itself bounded).

    smtplib's getreply() reads lines of up to 8 KiB with ``timeout`` for each read, and keeps a
    multi-line reply however long it gets; here a reply has at most REPLY_LINES lines and
    REPLY_BYTES octets, a line at most REPLY_LINE octets, and the whole step (``arm()``) must be
    done within ``timeout`` seconds, however slowly the server sends."""

    def _setup_recorder(self, started: float, budget: float, silent_hint: str) -> None:
        self.transcript: List[Dict[str, Any]] = []  # {ms, direction, line}
        self.transcript_bytes = 0
        # the note that says how much was left out
        self.transcript_cut: Optional[Dict[str, Any]] = None
        self.left_out = 0
        self.started = started
        self.redact: Optional[str] = None  # None: record as sent; a str: record that instead
        # what AUTH sent (and its parts): hidden in replies that quote it
        self.secrets: List[bytes] = []
        self.body_size: Optional[int] = None
        self.budget = budget
        self.silent_hint = silent_hint
        self.phase, self.deadline = 'connect', time.monotonic() + budget
        self.awaiting = 'the greeting'  # what the next reply answers
        self.inbuf = b''
        self.reply_lines: List[bytes] = []  # the lines of the reply being read
        self.broken = False  # the server broke a bound: the session is not worth a QUIT
        # the name implicit TLS checks the certificate against
        self.tls_hostname: Optional[str] = None

    # -- deadlines ---------------------------------------------------------------------------
    def arm(self, phase: str) -> None:
        """Start a step of ``phase``: it has ``budget`` seconds from now."""
        self.phase, self.deadline = phase, time.monotonic() + self.budget

    def remaining(self, reading: bool = True) -> float:
        left = self.deadline - time.monotonic()
        if left <= 0:
            if reading:
                raise self.too_slow()
            self.broken = True
            raise SmtpFailure(self.phase, 'the step was not done within %s s' % self.budget,
                              hint='the server answers too slowly: raise timeout for a slow '
                                   'server')
        return left

    def too_slow(self) -> SmtpFailure:
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

    def too_big(self, what: str) -> SmtpFailure:
        self.broken = True
        return SmtpFailure(
            self.phase, '%s %s; an SMTP reply is a few short lines' % (self.awaiting, what),
            hint='the server does not speak SMTP as RFC 5321 describes (or is hostile): check '
                 'host and port; the connection was dropped')

    # -- the transcript ----------------------------------------------------------------------
    def note(self, direction: str, line: str) -> None:
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

    def _ms(self) -> int:
        return int((time.monotonic() - self.started) * 1000)

    # -- I/O ---------------------------------------------------------------------------------
    def send(self, s: 'Union[ReadableBuffer, str]') -> None:
        if self.body_size is not None:
            self.note('client', '<message: %d bytes>' % self.body_size)
            self.body_size = None
            self.awaiting = 'the reply to the message'
        else:
            # smtplib sends str (commands) and bytes (the message)
            text = s if isinstance(s, str) else bytes(s).decode('utf-8', 'replace')
            shown = [self.redact if self.redact is not None else printable(line)
                     for line in text.splitlines()]
            for line in shown:
                self.note('client', line)
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

    def _get_socket(self, host: str, port: int, timeout: float) -> socket.socket:
        """The TCP connection (every address of host in turn) within the connect deadline."""
        error: OSError = OSError('%s has no address' % host)
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

    def _secure(self, sock: socket.socket) -> socket.socket:
        return sock

    def getreply(self) -> Tuple[int, bytes]:
        """(code, text) like smtplib's getreply(), within the bounds (see the class)."""
        self.reply_lines, size = [], 0
        code = -1
        while True:
            line = self._hide(self._readline())
            self.reply_lines.append(line)
            size += len(line)
            self.note('server', printable(line.rstrip(b'\r\n')))
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

    def _hide(self, line: bytes) -> bytes:
        """``line`` with every secret AUTH sent replaced: a server may quote what it got."""
        for secret in self.secrets:
            line = line.replace(secret, REDACTED.encode('ascii'))
        return line

    def _readline(self) -> bytes:
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

    def _secure(self, sock: socket.socket) -> socket.socket:
        sock.settimeout(self.remaining())  # the handshake as a whole, not each read
        return self.context.wrap_socket(sock, server_hostname=self.tls_hostname)
