# -*- coding: utf-8 -*-
# Copyright (c) exchangeonline.mail contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# Private to this collection: may change without notice.
"""The engine of the module smtp_test: an SMTP submission test that says where it failed and why.

Phases: connect, ehlo, starttls (TLS and the second EHLO), auth, mail, rcpt, data, quit, and
delivery (the message found in the recipient mailbox through Graph). TLS is never skipped: a
server without STARTTLS fails the test before any AUTH, and AUTH over a clear connection needs
``tls: none`` together with ``allow_plaintext_auth``. The transcript keeps every line the client
sent and the server answered, except AUTH data (passwords, tokens) and the message itself.
The session's steps are in _smtp_session, the delivery proof in _smtp_delivery, the hints in
_smtp_hints."""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import re
import smtplib
import socket
import time
from typing import Any, Callable, Dict, Optional

from ansible_collections.exchangeonline.mail.plugins.module_utils._errors import TaskError
from ansible_collections.exchangeonline.mail.plugins.module_utils._smtp_delivery import (
    DeliveryProof)
from ansible_collections.exchangeonline.mail.plugins.module_utils._smtp_hints import (
    SmtpFailure, hint_for, is_exchange_online, split_reply)
from ansible_collections.exchangeonline.mail.plugins.module_utils._smtp_message import wire_address
from ansible_collections.exchangeonline.mail.plugins.module_utils._smtp_session import (
    SmtpSession, silent_hint)

ADDRESS = re.compile(r'^[^@\s<>()\[\],;:"]+@[^@\s<>()\[\],;:"]+$')
HEADER_NAME_MAX = 76  # "Name: " and the start of the value on one 78-character line
HEADER_NAME = re.compile(r'[!-9;-~]{1,%d}' % HEADER_NAME_MAX)
# C0, DEL, C1 and the Unicode line and paragraph separators (line breaks to some parsers).
CONTROL = re.compile('[\x00-\x1f\x7f-\x9f\u2028\u2029]')
OWN_HEADERS = ('message-id', 'date', 'mime-version', 'content-type', 'content-transfer-encoding')
B64TOKEN = re.compile(r'[A-Za-z0-9\-._~+/]+=*')  # RFC 6750 2.1


def blank_result(params: Dict[str, Any]) -> Dict[str, Any]:
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


def input_failure(result: Dict[str, Any], params: Optional[Dict[str, Any]]) -> Dict[str, Any]:
    """A failure of the shared option checks (before any SMTP) with every key a failed test
    carries, so that register + failed_phase works for it too."""
    out = blank_result(params or {})
    out.update(result)
    out['failed_phase'] = 'input'
    out['message'] = str(result.get('msg') or '').split(': ', 1)[-1]
    return out


class SmtpTest(SmtpSession, DeliveryProof):
    """One test-send; ``run()`` returns the module result (never raises for SMTP problems)."""

    def __init__(self, params: Dict[str, Any], check_mode: bool,
                 identity_factory: Optional[Callable[[Dict[str, Any]], Any]] = None) -> None:
        self.params = params
        self.check_mode = check_mode
        self.identity_factory = identity_factory
        self.timings: Dict[str, int] = {}
        self.reached = None
        self.smtp = None
        self.smtputf8 = False  # set by envelope() when an address needs RFC 6531
        self.exchange_online = is_exchange_online(params.get('host'))  # and by the greeting
        self.header_recipients = []  # the To: and Cc: addresses of the message sent
        self.started = time.monotonic()
        self.result = blank_result(params)
        self.result['timings_ms'] = self.timings

    # -- steps -----------------------------------------------------------------------------------
    def stop_after(self, phase: str) -> bool:
        return self.check_mode and phase == 'rcpt' or self.params.get('quit_after') == phase

    def timed(self, phase: str, step: Callable[[], Any]) -> Any:
        if self.smtp is not None and phase != 'delivery':
            self.smtp.arm('starttls' if phase == 'ehlo_after_tls' else phase)
        t0 = time.monotonic()
        try:
            return step()
        finally:
            self.timings[phase] = int((time.monotonic() - t0) * 1000)

    def done(self, phase: str) -> None:
        self.reached = phase

    def identity(self) -> Any:
        """The _identity.Identity of the task, made once (by ``identity_factory``)."""
        if not hasattr(self, '_identity'):
            if self.identity_factory is None:
                raise TypeError('this SmtpTest has no identity_factory to acquire a token with')
            self._identity = self.identity_factory(self.params)
        return self._identity

    def run(self) -> Dict[str, Any]:
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
        except TaskError as e:  # e.g. a name refused on its way into a Graph URL
            self.fail(SmtpFailure(self.next_phase(), e.message))
        except (socket.timeout, TimeoutError) as e:  # the TCP connection
            self.fail(SmtpFailure(self.next_phase(), 'no answer within %s s (%s)'
                                  % (p.get('timeout') or 30.0, e or 'timed out'),
                                  hint=silent_hint(p)))
        except smtplib.SMTPServerDisconnected as e:
            if 'timed out' in str(e):  # smtplib reports a read timeout as a closed connection
                self.fail(SmtpFailure(self.next_phase(), 'no answer within %s s'
                                      % (p.get('timeout') or 30.0), hint=silent_hint(p)))
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

    def steps(self, sender: Optional[str]) -> None:
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
        if not sender:
            raise AssertionError('check_input: a test that gets to MAIL FROM has a sender')
        self.envelope(sender)
        self.done('rcpt')
        if self.stop_after('rcpt'):
            self.send_as_unproven(sender)
            self.conn.arm('quit')
            self.conn.rset()
            return
        message_id = self.timed('data', lambda: self.data(sender))
        self.done('data')
        if message_id is None:  # quit_after: data; drop the session, nothing is sent
            self.send_as_unproven(sender)
            self.conn.close()
            return
        self.quit()
        if p.get('confirm_delivery'):
            self.timed('delivery', lambda: self.confirm(message_id))
            self.done('delivery')

    def send_as_unproven(self, sender: str) -> None:
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

    def next_phase(self) -> str:
        order = ['connect', 'ehlo'] + (['starttls'] if self.params['tls'] == 'starttls' else [])
        order += ['auth'] if self.params['auth'] != 'none' else []
        order += ['mail', 'rcpt', 'data', 'quit', 'delivery']
        if self.reached is None:
            return 'connect'
        index = order.index(self.reached) if self.reached in order else len(order) - 2
        return order[min(index + 1, len(order) - 1)]

    def fail(self, e: SmtpFailure) -> None:
        r = self.result
        r['failed'] = True
        r['failed_phase'] = e.phase
        if e.code is not None:
            enhanced, text = split_reply(e.code, e.reply)
            r['smtp_code'], r['enhanced_code'], r['message'] = e.code, enhanced, text
            r['hint'] = e.hint or hint_for(e.code, enhanced, text, self.exchange_online)
        else:
            r['message'] = e.message
            r['hint'] = e.hint
        r['msg'] = '%s failed: %s' % (e.phase, e.message)
        if r['hint']:
            r['msg'] += ' -- ' + r['hint']


def check_input(p: Dict[str, Any]) -> Optional[str]:
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
        mailbox = p['confirm_delivery'].get('mailbox') or (p.get('to') or [None])[0]
        if mailbox is not None:
            # Checked before anything is sent: the mailbox goes into a Graph URL afterwards.
            from ansible_collections.exchangeonline.mail.plugins.module_utils._graph import (
                path_segment)
            try:
                path_segment(mailbox, 'confirm_delivery.mailbox')
            except TaskError as e:
                return e.message
    return None


def control_characters(p: Dict[str, Any]) -> Optional[str]:
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


def _char_name(char: str) -> str:
    names = {0: 'NUL', 9: 'TAB', 10: 'LF', 13: 'CR', 27: 'ESC', 127: 'DEL', 0x85: 'NEL',
             0x2028: 'LINE SEPARATOR', 0x2029: 'PARAGRAPH SEPARATOR'}
    code = ord(char)
    return 'the control character U+%04X%s' % (code, ' (%s)' % names[code] if code in names else '')


def _has_app(p: Dict[str, Any]) -> bool:
    return bool(p.get('tenant_id') and p.get('client_id') and
                (p.get('client_secret') or p.get('client_certificate_path')))
