# -*- coding: utf-8 -*-
# Copyright (c) exchangeonline.mail contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# Private to this collection: may change without notice.
"""The test message and its bytes on the wire: headers, a body in 7 bit or quoted-printable, no
line over RFC 5322's 998 octets, internationalised domains in punycode."""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import email.message
import email.policy
import email.utils
from typing import Any, Dict

from ansible_collections.exchangeonline.mail.plugins.module_utils._smtp_hints import SmtpFailure

# CRLF line ends; header fields kept on one line up to RFC 5322's 998 characters, so that a
# long Message-ID is not folded (some parsers keep the fold's white space in the value).
# Octets in a line of the message without CRLF (RFC 5322 2.1.1, RFC 5321 4.5.3.1.6).
LINE_MAX = 998
NO_FOLDING = email.policy.SMTP.clone(max_line_length=LINE_MAX)


def build_message(params: Dict[str, Any], sender: str,
                  message_id: str) -> email.message.EmailMessage:
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
    plain = ascii_only(body) and all(len(line) <= LINE_MAX for line in body.encode().splitlines())
    msg.set_content(body, cte='7bit' if plain else 'quoted-printable')
    return msg


def message_bytes(msg: email.message.EmailMessage, smtputf8: bool) -> bytes:
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


def ascii_only(text: str) -> bool:
    try:
        text.encode('ascii')
        return True
    except UnicodeError:
        return False


def wire_address(address: str) -> str:
    """The address with an IDN domain in punycode (A-labels); the local part as given."""
    local, at, domain = address.rpartition('@')
    if not at or ascii_only(domain):
        return address
    return '%s@%s' % (local, domain.encode('idna').decode('ascii'))
