#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright (c) exchangeonline.mail contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function
__metaclass__ = type

DOCUMENTATION = r'''
module: smtp_test
short_description: Send a test message through SMTP submission and prove it arrived
version_added: 0.1.0
description:
  - Connects to an SMTP submission server (by default Exchange Online's C(smtp.office365.com:587)),
    secures the session with STARTTLS or implicit TLS, authenticates with OAuth (XOAUTH2),
    LOGIN or PLAIN, and sends a test message, reporting each phase, the server's answers and
    what a known Exchange Online refusal means (O(ignore:hint)).
  - TLS is never given up. When the server does not offer STARTTLS the test fails before
    anything else is sent; AUTH over a clear connection needs O(tls=none) and
    O(allow_plaintext_auth=true).
  - The certificate is checked against the system CAs, or O(ca_path), and the name in O(host).
    O(ca_path), O(validate_certs) and O(timeout) apply to the SMTP connection as well as to the
    Microsoft 365 endpoints.
  - On the SMTP connection O(timeout) bounds each step as a whole, not each read, so a server
    that sends its answer a byte at a time fails as surely as a silent one. A step is the TCP
    connection with the TLS handshake (O(tls=tls)) and the greeting; the first EHLO; STARTTLS
    with its handshake; the second EHLO; AUTH from its first line to the final answer; MAIL;
    each RCPT; DATA with the message and the server's answer to it; QUIT. A step not done in
    O(timeout) seconds fails its phase (the session then takes at most one O(timeout) per step,
    plus the token and O(confirm_delivery); a MAIL FROM retried after C(432 4.3.2), see below,
    takes up to three O(timeout) and 5 seconds of waits).
  - "What the server sends is bounded: a reply line at most 2048 octets (RFC 5321 4.5.3.1.5 caps
    it at 512), a reply at most 100 lines and 32768 octets. A server that goes past a bound fails
    the phase, naming what it did, and the connection is dropped without QUIT. Control
    characters in the server's replies are shown as C(\\xNN)."
  - Control characters are refused before anything is sent. None at all in O(sender), O(to),
    O(username) and O(ehlo_name) (they go into SMTP commands, where CR or LF would start another
    command); O(subject) and the values of O(headers) are one line and may hold tabs; O(body)
    may hold tabs and line breaks. C1 controls and the Unicode line and paragraph separators
    count as control characters (the separators are allowed in O(body)).
  - No line of the message on the wire is longer than the 998 octets of RFC 5322 2.1.1. The body
    goes as 7-bit text when it is ASCII with no longer line, else as quoted-printable (lines of
    at most 76 octets); long header fields are folded (RFC 5322 2.2.3) or encoded (RFC 2047).
  - The hints that speak of Exchange Online (throttling, SMTP AUTH switches, Send As, tenant
    blocks) are given only when the server is Exchange Online, by O(host) (C(smtp.office365.com),
    C(*.outlook.com) such as C(<domain>.mail.protection.outlook.com), and the sovereign clouds'
    C(*.office365.us) and C(*.outlook.cn)) or by the name in its greeting. Other servers get
    hints from the reply codes alone (RFC 5321, RFC 3463).
  - With O(confirm_delivery) the recipient mailbox is polled through Microsoft Graph for the
    message's C(internetMessageId), so the test proves delivery, not only acceptance. Only the
    mailbox's Inbox and Junk Email folders are asked (C(mailFolders/inbox/messages), then
    C(mailFolders/junkemail/messages)), because the copy of the message that Exchange Online
    keeps in the sender's Sent Items has the same C(internetMessageId), and a message to the
    sender itself would otherwise count as delivered from that copy alone. The item must also
    name one of the message's recipients (every copy shows the message's C(To:) and C(Cc:),
    also that of a Bcc or envelope-only recipient), so an item with the same ID but other or
    no recipients is not taken for it; only a message whose O(headers) left no C(To:) or
    C(Cc:) may be found without recipients. A message in Junk Email counts as delivered, with RV(delivered_folder) C(junkemail)
    and a warning; one that an inbox rule moved to another folder, or that was quarantined, is
    not found, so the test fails in phase C(delivery) (look it up in the message trace). When
    Graph answers C(404 ErrorItemNotFound) for Junk Email only the Inbox is asked (with a
    warning); for the Inbox the test fails in phase C(delivery).
  - Exchange Online accepts any MAIL FROM and RCPT TO and refuses a sender that the mailbox may
    not send as only at the end of DATA, after the message (C(550 5.7.60) or
    C(554 5.2.252 SendAsDenied)). Check mode and O(quit_after=rcpt) (or V(data)) therefore do not
    prove Send As rights; RV(send_as_proven) is false and a warning says so.
  - Exchange Online lets at most three sessions send as one mailbox at the same time and answers
    a fourth one's MAIL FROM with C(432 4.3.2 STOREDRV.ClientSubmit; sender thread limit
    exceeded). The test then tries MAIL FROM again after 1 and after 3 seconds (plus up to 25 %
    jitter), in the same session, and fails in phase C(mail) after the third refusal (or when
    the server closes the connection after one). Exchange Online may also answer the end of
    DATA with C(432 4.3.2) (C(Concurrent connections limit exceeded)); that one is not retried,
    because the message would be sent again, and the test fails in phase C(data).
  - A failed test fails the task and still returns every key, so C(register) with
    C(ignore_errors) or C(failed_when) can act on RV(failed_phase) and RV(smtp_code).
  - "Permissions: XOAUTH2 with an app-only token needs the application permission
    C(SMTP.SendAsApp) and the app's service principal registered in Exchange Online with
    access to the mailbox (C(New-ServicePrincipal), C(Add-MailboxPermission));
    O(confirm_delivery) needs C(Mail.ReadBasic.All) (or C(Mail.Read))."
author:
  - exchangeonline.mail maintainers (@exchangeonline)
extends_documentation_fragment:
  - exchangeonline.mail.m365
  - exchangeonline.mail.attributes
  - exchangeonline.mail.attributes.m365
attributes:
  check_mode:
    support: full
    details: Goes as far as RCPT TO, then resets and quits; no message is sent. This proves the
      connection, TLS, AUTH and the recipients, not Send As (see the description).
  diff_mode:
    support: none
  idempotent:
    support: none
    details: Every run sends a new test message. It changes no configuration, so the task
      reports C(changed=false).
options:
  host:
    description:
      - The SMTP server, also the name its certificate must carry.
    type: str
    default: smtp.office365.com
  port:
    description:
      - The TCP port (1 to 65535). 587 for submission with STARTTLS, 465 with O(tls=tls), 25
        for MX hosts.
    type: int
    default: 587
  tls:
    description:
      - V(starttls) upgrades the session after the first EHLO and fails if the server does not
        offer it. V(tls) speaks TLS from the first byte (implicit TLS, port 465). V(none) stays
        in clear text.
    type: str
    choices: [starttls, tls, none]
    default: starttls
  min_tls_version:
    description:
      - The oldest TLS version accepted. Exchange Online accepts TLS 1.2 and 1.3.
    type: str
    choices: [TLSv1, TLSv1_1, TLSv1_2, TLSv1_3]
    default: TLSv1_2
  auth:
    description:
      - V(xoauth2) sends an OAuth access token (O(access_token), or one acquired for
        C(https://outlook.office365.com) with the Microsoft 365 options). V(login) and
        V(plain) send O(username) and O(password). V(none) sends no AUTH (relays, MX hosts).
    type: str
    choices: [xoauth2, login, plain, none]
    default: xoauth2
  allow_plaintext_auth:
    description:
      - Permit AUTH with O(tls=none). Never needed for Exchange Online.
    type: bool
    default: false
  username:
    description:
      - The mailbox to authenticate as (its user principal name). Defaults to O(sender).
    type: str
  password:
    description:
      - The password for O(auth=login) or O(auth=plain).
    type: str
  access_token:
    description:
      - An OAuth access token for O(auth=xoauth2). Without it a token is acquired with the
        Microsoft 365 options (client credentials).
    type: str
  sender:
    description:
      - The envelope sender and C(From:) address. Defaults to O(username).
    type: str
  to:
    description:
      - The recipients. Needed unless the test stops before MAIL FROM (O(quit_after)).
    type: list
    elements: str
    default: []
  subject:
    description:
      - The subject. By default it names the message ID. It is one line, with tabs but no
        other control characters; a long one is folded or encoded.
    type: str
  body:
    description:
      - The plain text body. By default a short text naming the module and the message ID.
      - It may hold tabs and line breaks, no other control characters. Lines longer than 998
        octets (and non-ASCII text) are sent quoted-printable; the recipient sees the text as
        given.
    type: str
  headers:
    description:
      - Extra header fields (name to value); a C(From), C(To) or C(Subject) given here replaces
        the default one.
      - A name is printable ASCII without colon, at most 76 characters; a value is one line (tabs,
        but no other control characters); a long one is folded or encoded.
    type: dict
    default: {}
  ehlo_name:
    description:
      - The name sent with EHLO. Defaults to this host's fully qualified name.
    type: str
  quit_after:
    description:
      - Stop after this phase and quit. V(connect) after the greeting, V(ehlo) after the first
        EHLO, V(starttls) after TLS and the second EHLO, V(auth) after AUTH, V(rcpt) after the
        recipients were accepted, V(data) after the server answered DATA with 354 (the
        connection is then dropped, so no message is sent).
      - None of these proves Send As rights, because Exchange Online refuses a sender only
        after the message.
    type: str
    choices: [connect, ehlo, starttls, auth, rcpt, data]
  confirm_delivery:
    description:
      - Poll a mailbox through Microsoft Graph until the message's C(internetMessageId)
        arrives in its Inbox or Junk Email, and fail in phase C(delivery) if it does not within
        O(confirm_delivery.timeout).
    type: dict
    suboptions:
      mailbox:
        description:
          - The mailbox to look in (user principal name or ID). Defaults to the first of O(to).
        type: str
      timeout:
        description:
          - Seconds to wait for the message, more than 0 and at most 86400.
        type: float
        default: 120
      interval:
        description:
          - Seconds between two looks, from 0.1 to 3600.
        type: float
        default: 2
notes:
  - Password SMTP AUTH (LOGIN) in Exchange Online is being retired in favour of OAuth. Microsoft
    turns basic authentication for SMTP AUTH off by default for existing tenants at the end of
    December 2026 (Message Center MC786329; admins can turn it back on until the final removal,
    whose date Microsoft will announce in the second half of 2027, after which the answer is
    C(550 5.7.30)). Prefer O(auth=xoauth2).
  - Exchange Online offers C(AUTH LOGIN XOAUTH2) after STARTTLS and no PLAIN; O(auth=plain) is
    for other servers.
seealso:
  - module: exchangeonline.mail.mailbox_protocols
  - name: Authenticate an IMAP, POP or SMTP connection using OAuth
    description: Microsoft's description of XOAUTH2 for Exchange Online.
    link: https://learn.microsoft.com/exchange/client-developer/legacy-protocols/how-to-authenticate-an-imap-pop-smtp-application-by-using-oauth
'''

EXAMPLES = r'''
- name: Prove that the scanner mailbox can send through Exchange Online (OAuth, app-only)
  exchangeonline.mail.smtp_test:
    tenant_id: "{{ tenant_id }}"
    client_id: "{{ client_id }}"
    client_secret: "{{ client_secret }}"
    sender: scanner@contoso.com
    to: [helpdesk@contoso.com]
    confirm_delivery:
      timeout: 60

- name: The article's check with a password, kept as a result for the report
  exchangeonline.mail.smtp_test:
    auth: login
    username: adele.vance@contoso.com
    password: "{{ vault_adele_password }}"
    to: [adele.vance@contoso.com]
  register: smtp
  ignore_errors: true

- name: Explain the refusal
  ansible.builtin.debug:
    msg: "{{ smtp.failed_phase }}: {{ smtp.smtp_code }} {{ smtp.enhanced_code }} -- {{ smtp.hint }}"
  when: smtp is failed

- name: Only check that the old server still offers STARTTLS with a valid certificate
  exchangeonline.mail.smtp_test:
    host: mail.contoso.com
    port: 25
    auth: none
    quit_after: starttls
'''

RETURN = r'''
phase:
  description: The last phase that succeeded (C(connect), C(ehlo), C(starttls), C(auth), C(mail),
    C(rcpt), C(data), C(quit), C(delivery)).
  returned: always
  type: str
  sample: delivery
failed_phase:
  description: The phase that failed, or null.
  returned: always
  type: str
  sample: auth
smtp_code:
  description: The reply code of the server's refusal.
  returned: always
  type: int
  sample: 535
enhanced_code:
  description: The enhanced status code (RFC 3463) of the refusal.
  returned: always
  type: str
  sample: 5.7.139
message:
  description: The text of the server's refusal after the codes (or what went wrong without one).
  returned: always
  type: str
hint:
  description: What a known refusal means and how to fix it. Hints that speak of Exchange Online
    only when the server is Exchange Online (see the description).
  returned: always
  type: str
transcript:
  description: Every line, with milliseconds since the start (C(ms)), C(direction) C(client) or
    C(server), and the C(line). AUTH data is shown as C(********), the message as its size. A
    retried MAIL FROM (C(432 4.3.2)) is preceded by an entry with C(direction) C(note).
    At most 1000 lines and 262144 octets of them are kept; then one last entry with
    C(direction) C(note) says that the transcript was cut there and how many lines were left out.
  returned: always
  type: list
  elements: dict
tls:
  description: C(version), C(cipher), C(bits), C(verified) and C(peer_certificate) (C(subject),
    C(issuer), C(not_before), C(not_after), C(expires_in_days), C(names)).
  returned: always
  type: dict
capabilities:
  description: The EHLO keywords C(before_tls) and C(after_tls).
  returned: always
  type: dict
auth_mechanism:
  description: The AUTH mechanism used.
  returned: always
  type: str
message_id:
  description: The C(Message-ID) of the test message.
  returned: always
  type: str
queue_id:
  description: The queue ID in the server's answer to the message (Postfix C(queued as),
    Exchange Server C(InternalId), Exim C(id=)), when it names one.
  returned: always
  type: str
server_message_id:
  description: The message ID in the server's answer, when it names one (Exchange Online does).
  returned: always
  type: str
delivered:
  description: Whether the message was found in the Inbox or Junk Email of the mailbox (null
    without O(confirm_delivery)).
  returned: always
  type: bool
delivered_folder:
  description: Where the message was found, C(inbox) or C(junkemail) (null when not found or
    without O(confirm_delivery)).
  returned: always
  type: str
  sample: inbox
delivered_message:
  description: The message as Graph lists it in that folder (C(id), C(internetMessageId),
    C(receivedDateTime), C(subject), C(parentFolderId), C(toRecipients), C(ccRecipients),
    C(bccRecipients)).
  returned: when the message was found
  type: dict
send_as_proven:
  description: True when the server accepted the message at the end of DATA, which is where
    Exchange Online refuses a sender the mailbox may not send as. False otherwise, also in check
    mode and with O(quit_after) (a warning then says that Send As is not proven).
  returned: always
  type: bool
delivery_ms:
  description: Milliseconds from acceptance until the message was found.
  returned: always
  type: int
timings_ms:
  description: Milliseconds per phase.
  returned: always
  type: dict
  sample: {connect: 12, ehlo: 3, starttls: 20, ehlo_after_tls: 2, auth: 150, mail: 5, rcpt: 8, data: 40}
'''

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.exchangeonline.mail.plugins.module_utils._identity import (
    HAS_M365_LIBS,
    M365_IMPORT_ERROR,
    M365_LIMITS,
    m365_argument_spec,
)
from ansible_collections.exchangeonline.mail.plugins.module_utils._options import PAUSE, PORT, seconds
from ansible_collections.exchangeonline.mail.plugins.module_utils._run import run_module


# The libraries the module needs: names, whether they imported, the import traceback.
REQUIRES = ('msal and requests', HAS_M365_LIBS, M365_IMPORT_ERROR)
LIMITS = dict(M365_LIMITS, port=PORT, **{
    'confirm_delivery.timeout': seconds(86400), 'confirm_delivery.interval': PAUSE})


def module_kwargs():
    """AnsibleModule's arguments; the action plugin validates with the same spec."""
    argument_spec = m365_argument_spec()
    argument_spec.update(
        host=dict(type='str', default='smtp.office365.com'),
        port=dict(type='int', default=587),
        tls=dict(type='str', default='starttls', choices=['starttls', 'tls', 'none']),
        min_tls_version=dict(type='str', default='TLSv1_2',
                             choices=['TLSv1', 'TLSv1_1', 'TLSv1_2', 'TLSv1_3']),
        auth=dict(type='str', default='xoauth2', choices=['xoauth2', 'login', 'plain', 'none']),
        allow_plaintext_auth=dict(type='bool', default=False),
        username=dict(type='str'),
        password=dict(type='str', no_log=True),
        access_token=dict(type='str', no_log=True),
        sender=dict(type='str'),
        to=dict(type='list', elements='str', default=[]),
        subject=dict(type='str'),
        body=dict(type='str'),
        headers=dict(type='dict', default={}),
        ehlo_name=dict(type='str'),
        quit_after=dict(type='str', choices=['connect', 'ehlo', 'starttls', 'auth', 'rcpt',
                                             'data']),
        confirm_delivery=dict(type='dict', options=dict(
            mailbox=dict(type='str'),
            timeout=dict(type='float', default=120.0),
            interval=dict(type='float', default=2.0),
        )),
    )
    return dict(argument_spec=argument_spec, supports_check_mode=True,
                mutually_exclusive=[('client_secret', 'client_certificate_path')])


def input_failure(result, params):
    """The result of options the shared checks refused, with every key of a failed test."""
    from ansible_collections.exchangeonline.mail.plugins.module_utils._smtp_test import (
        input_failure as smtp_input_failure)
    return smtp_input_failure(result, params)


def work(params, check_mode, diff_mode):
    from ansible_collections.exchangeonline.mail.plugins.module_utils._identity import Identity
    from ansible_collections.exchangeonline.mail.plugins.module_utils._smtp_test import SmtpTest
    return SmtpTest(params, check_mode,
                    lambda p: Identity(p, check_mode=check_mode)).run()


def main():
    run_module(AnsibleModule(**module_kwargs()), work, LIMITS, REQUIRES, input_failure)


if __name__ == '__main__':
    main()
