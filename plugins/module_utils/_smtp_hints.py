# -*- coding: utf-8 -*-
# Copyright (c) exchangeonline.mail contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# Private to this collection: may change without notice.
"""What an SMTP server's reply means to the user of smtp_test: the enhanced status code in it,
whether the server is Exchange Online, and the hint for a known reply (Exchange Online's own
replies first, then what RFC 5321 and RFC 3463 say of any server); and :class:`SmtpFailure`, a
step that failed, with the reply and the hint the task's result shows."""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import re
from typing import Optional, Tuple

from ansible_collections.exchangeonline.mail.plugins.module_utils._errors import TaskError

# Exchange Online's answer when more than three sessions send as one mailbox at once
# ("432 4.3.2 STOREDRV.ClientSubmit; sender thread limit exceeded", Microsoft's "SMTP submission
# improvements"): MAIL FROM is tried again after these waits (each plus up to 25 % jitter), then
# the test fails.
THROTTLE_WAITS = (1.0, 3.0)

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


class SmtpFailure(TaskError):
    """The test stopped: ``phase`` failed (``message``), with the server's reply when it gave
    one (``code`` and the reply's text ``reply``) and a ``hint`` when the failure has its own
    (otherwise the hint table's, see :func:`hint_for`). ``str()`` is ``"<phase>: <message>"``
    (:class:`TaskError`); the smtp_test result says ``"<phase> failed: <message> -- <hint>"``
    (``SmtpTest.fail``). The fields are the result keys of a failed test."""

    default_phase = 'smtp'

    def __init__(self, phase: str, message: str, code: Optional[int] = None,
                 reply: Optional[str] = None, hint: Optional[str] = None) -> None:
        enhanced, text = split_reply(code, reply) if code is not None else (None, message)
        super(SmtpFailure, self).__init__(message, phase, fields={
            'failed_phase': phase, 'smtp_code': code, 'enhanced_code': enhanced,
            'message': text, 'hint': hint})
        self.code = code
        self.reply = reply
        self.hint = hint


EXO_SUFFIXES = ('.office365.com', '.outlook.com', '.office365.us', '.outlook.cn')


def is_exchange_online(host: Optional[str], greeting: Optional[str] = None) -> bool:
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


def hint_for(code: Optional[int], enhanced: Optional[str], text: Optional[str],
             exchange_online: bool = False) -> Optional[str]:
    for h_code, h_enhanced, pattern, hint in (EXO_HINTS if exchange_online else ()) + HINTS:
        if h_code is not None and h_code != code:
            continue
        if h_enhanced is not None and not (enhanced or '').startswith(h_enhanced):
            continue
        if pattern is not None and not re.search(pattern, text or '', re.I):
            continue
        return hint
    return None


def split_reply(code: Optional[int], text: Optional[str]) -> Tuple[Optional[str], Optional[str]]:
    """(enhanced status code or None, the text after it) of a reply."""
    m = ENHANCED.match(text or '')
    if not m:
        return None, text
    return m.group(1), (text or '')[m.end():].strip()
