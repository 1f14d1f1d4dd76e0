"""An Exchange Online-like SMTP submission server (smtp.office365.com:587) and inbound MX
endpoint (<domain>.mail.protection.outlook.com:25) for the lab.

aiosmtpd on 127.0.0.1, STARTTLS required, AUTH offered only after TLS and then as
``AUTH LOGIN XOAUTH2`` (no PLAIN), XOAUTH2 checked against the emulator's own tokens and LOGIN
against lab passwords; what it answers follows the tenant state of the emulator
(``emu.cas_mailbox(upn)``, ``emu.transport_config``). Send As is refused at the end of DATA, as
Exchange does. Accepted mail lands in the recipient's Inbox (or the folder ``delivery_folder``
names) and a copy in the sender's Sent Items, where Graph ``GET /users/{id}/messages`` and
``GET /users/{id}/mailFolders/{folder}/messages`` find it. Reply texts and where they come from:
see REPLIES and tests/lab/m365/README.md.

    smtp = emu.start_smtp()            # or SmtpServer(emu).start()
    smtp.port, smtp.wrong_name_port    # the second listener's certificate is for another name
    smtp.implicit_port                 # TLS from the first byte (like port 465 elsewhere)
    smtp.inbound_port                  # EOP's MX endpoint: no AUTH, STARTTLS offered, accepts
                                       # mail for the tenant's mailboxes only (INBOUND_REPLIES)
    smtp.log                           # one entry per command: verb, tls, reply
    smtp.inject('MAIL', THROTTLED)     # the next MAIL gets 432 4.3.2 (sender thread limit)
    smtp.delivery_folder[upn] = 'junkemail'   # or None: accepted, never in the mailbox
"""

import base64
import binascii
import collections
import datetime
import email
import email.policy
import email.utils
import logging
import re
import socket
import ssl
import threading
import time
import uuid

import trustme
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, AuthResult

from . import identity
from .mailflow import HOP_LIMIT_REPLY, MAX_HOPS, MailFlow, hops, received_line
from .common import Response, stable_id


class _NoLoginDataWarning(logging.Filter):
    """aiosmtpd 1.4 sets its own deprecated ``Session.login_data`` after every successful AUTH
    and logs "Session.login_data is deprecated ..." each time (on stderr, through logging's last
    resort); the lab never reads it, so the warning is noise in the demo and the tests."""

    def filter(self, record):
        return 'Session.login_data is deprecated' not in record.getMessage()


logging.getLogger('mail.log').addFilter(_NoLoginDataWarning())

HOSTNAME = 'LAB0PR01MB0001.lab.prod.outlook.com'
# Exchange Online Protection's front end that answers on <domain>.mail.protection.outlook.com:25
# (real ones: "BL2NAM06FT004.mail.protection.outlook.com" in the greeting and EHLO,
# "...FT004.eop-nam06.prod.protection.outlook.com" in the diagnostic of refusals).
INBOUND_HOSTNAME = 'LAB0EUR01FT001.mail.protection.outlook.com'
INBOUND_DIAGNOSTIC_HOST = 'LAB0EUR01FT001.eop-eur01.prod.protection.outlook.com'
SEND_AS_APP = 'SMTP.SendAsApp'
MAIL_READ = ('Mail.Read', 'Mail.ReadBasic', 'Mail.ReadBasic.All', 'Mail.ReadWrite')

REPLIES = {
    # Tenant-wide SMTP AUTH off (Get-TransportConfig SmtpClientAuthenticationDisabled true, the
    # mailbox following it): verbatim in live transcripts, e.g. simonrob/email-oauth2-proxy#193,
    # nodemailer/nodemailer#1484, MicrosoftDocs/OfficeDocs-Exchange#3124.
    'tenant_disabled': '535 5.7.139 Authentication unsuccessful, SmtpClientAuthentication is '
                       'disabled for the Tenant. Visit https://aka.ms/smtp_auth_disabled for '
                       'more information.',
    # Mailbox switch true: the same reply with "Mailbox" (guessed by analogy; the brief's form).
    'mailbox_disabled': '535 5.7.139 Authentication unsuccessful, SmtpClientAuthentication is '
                        'disabled for the Mailbox. Visit https://aka.ms/smtp_auth_disabled for '
                        'more information.',
    # Bad or unusable token (also an unknown user or one without a mailbox):
    # mageplaza/magento-2-smtp#108, jstedfast/MailKit#700 (OAuth), PHPMailer discussion #2845
    # (wrong OAuth scope).
    'bad_credentials': '535 5.7.3 Authentication unsuccessful',
    # Wrong password for LOGIN: verbatim with the server name in a nodemailer comment
    # ("... incorrect. [CH2PR15CA0029.namprd15.prod.outlook.com]") and a Go client's test table
    # that classes it as bad credentials.
    'wrong_password': '535 5.7.139 Authentication unsuccessful, the user credentials were '
                      'incorrect.',
    # Password AUTH with basic authentication off: nodemailer/nodemailer#1714, rpremraj/mailR#107,
    # TideDra/zotero-arxiv-daily#46 (verbatim).
    'basic_disabled': '535 5.7.139 Authentication unsuccessful, basic authentication is disabled.',
    # After the final removal of basic authentication: verbatim in the Exchange Team blog
    # "Exchange Online to retire Basic auth for Client Submission (SMTP AUTH)" (ba-p/4114750).
    'basic_not_supported': '550 5.7.30 Basic authentication is not supported for Client '
                           'Submission.',
    # MAIL FROM before AUTH: quoted as "530 5.7.57 Client not authenticated to send mail." by
    # clients (MicrosoftDocs/OfficeDocs-Exchange#3124, a Netwrix KB article, public test suites).
    'not_authenticated': '530 5.7.57 Client not authenticated to send mail.',
    # A sender the mailbox may not send as, refused at the end of DATA ("DATA END command
    # failed"): PHPMailer/PHPMailer#1231, WWBN/AVideo#1017, frappe/bench#1457 (smtplib's
    # SMTPDataError), swiftmailer#1030; also in public client code (Go, Rust, PHP).
    'send_as_permission': '550 5.7.60 SMTP; Client does not have permissions to send as this '
                          'sender',
    # The older form of the same refusal at the end of DATA: MicrosoftDocs/OfficeDocs-Support#1187,
    # FusionAuth/fusionauth-issues#220 (diagnostic numbers that follow in real replies left out).
    'send_as_header': '554 5.2.0 STOREDRV.Submission.Exception:SendAsDeniedException.'
                      'MapiExceptionSendAsDenied; Failed to process message due to a permanent '
                      'exception with message Cannot submit message.',
    # AUTH before STARTTLS: AUTH is not offered there; Exchange answers an unknown mechanism
    # with 504 5.7.4 (our reading of transcripts; guessed for this exact case). The same for a
    # mechanism it does not offer after TLS (PLAIN, CRAM-MD5) and for a mechanism name not in
    # upper case (clients report that only "AUTH XOAUTH2" works, e.g. OpenXE's notes).
    'auth_before_tls': '504 5.7.4 Unrecognized authentication type',
    # Repeated send-as refusals: Microsoft's "Continuous Error Throttling for SMTP AUTH
    # Submissions" (Exchange Online mail flow best practices).
    'sender_throttled': '550 5.2.252 Sender throttled due to continuous send as denied errors.',
}
# Password AUTH refused by security defaults / Conditional Access (legacy auth blocked): verbatim
# in public transcripts (a Netwrix KB article; a .NET client's log in a public repository).
REPLIES['policy_blocked'] = ('535 5.7.139 Authentication unsuccessful, the request did not meet '
                             'the criteria to be authenticated successfully. Contact your '
                             'administrator.')
# More than three concurrent sessions of one sender: Microsoft's "SMTP submission improvements"
# (SupportArticles-docs, Exchange/ExchangeOnline/send-emails/smtp-submission-improvements.md:
# "up to three concurrent connections are allowed to send email messages at the same time"),
# seen at MAIL FROM by public clients (a Rust mail library's test table).
THROTTLED = '432 4.3.2 STOREDRV.ClientSubmit; sender thread limit exceeded'
MAX_SENDER_SESSIONS = 3
# EHLO after STARTTLS: "250-AUTH LOGIN XOAUTH2", exactly so (no PLAIN): live transcripts of
# smtp.office365.com (a CodeIgniter log in a public repository, 2025; PHPMailer debug output on
# pastebin 7dB0T9XJ; a Perl Net::SMTP trace).
SUBMISSION_AUTH = ('LOGIN', 'XOAUTH2')
# The same page: messages sent through SMTP AUTH are stored in the sender's Sent Items.
SENT_ITEMS = 'sentitems'
# Well-known folder names Graph takes in place of a folder id, "regardless of the locale"
# (https://learn.microsoft.com/graph/api/resources/mailfolder); the lab's mailboxes have these.
WELL_KNOWN_FOLDERS = ('inbox', 'sentitems', 'junkemail', 'deleteditems', 'drafts', 'outbox',
                      'archive')


def send_as_denied(upn, address):
    """554 5.2.252 at the end of DATA, as a live transcript of 2025 (a CodeIgniter log in a
    public repository, SY5P282CA0097.outlook.office365.com) shows it; the MAPI diagnostic
    numbers that follow in the real reply are left out."""
    return ('554 5.2.252 SendAsDenied; %s not allowed to send as %s; STOREDRV.Submission.'
            'Exception:SendAsDeniedException.MapiExceptionSendAsDenied; Failed to process message '
            'due to a permanent exception with message [BeginDiagnosticData]Cannot submit message.'
            % (upn, address))


# The inbound MX endpoint (EOP). Each ends with the diagnostic ``[<EOP server> <time> <id>]``.
INBOUND_REPLIES = {
    # Recipient in an accepted domain of the tenant without a mailbox or other recipient:
    # Directory Based Edge Blocking. Verbatim in live transcripts: zone-eu/zone-mta#214
    # ("... AS(201806281) [PR2FRA01FT009.eop-fra01.prod.protection.outlook.com]"),
    # roundcube/roundcubemail#7990, maxsptz/emailpyspam#23, MicrosoftDocs/OfficeDocs-Exchange#2336
    # (with the AS number masked), a 2019 telnet session to microsoft-com.mail.protection.
    # outlook.com in a public blog post; suped.com "What causes the 550 5.4.1 ... AS(201806281)
    # bounce" names DBEB as the cause.
    'dbeb': '550 5.4.1 Recipient address rejected: Access denied. AS(201806281)',
    # Recipient domain that no tenant accepts (relay attempt through the MX): Microsoft's KB
    # "550 5.7.64 TenantAttribution; Relay Access Denied SMTP" (learn.microsoft.com/exchange/
    # troubleshoot/email-delivery/ndr/relay-access-denied-smtp, support KB 3212877/4051495, where
    # the trailing "SMTP" is the NDR's) and verbatim with the diagnostic in a live client log,
    # ictinnovations/ictfax#76 ("... Relay Access Denied [ME3AUS01FT005.eop-AUS01.prod.
    # protection.outlook.com]"); MicrosoftDocs/OfficeDocs-Exchange#2651 documents the code.
    'relay_denied': '550 5.7.64 TenantAttribution; Relay Access Denied',
    # AUTH on the MX (it offers none): the submission server's 504 5.7.4 (our guess here).
    'auth': REPLIES['auth_before_tls'],
}


def diagnostic(reply, host=HOSTNAME):
    """Exchange ends its refusals with ``[<server> <UTC time> <session id>]`` (every live
    transcript quoted above has it): clients must match on the start of the text."""
    now = datetime.datetime.now(datetime.timezone.utc)
    return '%s [%s %s.%03dZ %s]' % (reply, host, now.strftime('%Y-%m-%dT%H:%M:%S'),
                                    now.microsecond // 1000, uuid.uuid4().hex[:16].upper())


def inbound_accepted(message_id, size, seconds):
    """EOP's accept line after DATA: the message's Message-ID, an internal id and the mailbox
    server, size and speed, e.g. (a Postfix log of delivery to fpt-com.mail.protection.
    outlook.com in a public Linux training repository; the same shape in Postmark delivery
    events and a sendmail log quoted on Ubuntu Forums):
    ``250 2.6.0 <id@host> [InternalId=38521561683110, Hostname=TYZPR06MB6239.apcprd06.prod.
    outlook.com] 8547 bytes in 0.132, 63.086 KB/sec Queued mail for delivery``."""
    seconds = max(seconds, 0.001)
    internal = 10 ** 13 + uuid.uuid4().int % (9 * 10 ** 13)
    return ('250 2.6.0 %s [InternalId=%d, Hostname=%s] %d bytes in %.3f, %.3f KB/sec Queued '
            'mail for delivery' % (message_id, internal, HOSTNAME, size, seconds,
                                   size / 1024.0 / seconds))


def _free_port():
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        return s.getsockname()[1]


class ExchangeSMTP(SMTP):
    """aiosmtpd's SMTP with Exchange's replies before TLS and a command log."""

    # An XOAUTH2 initial response carries a whole JWT: aiosmtpd's 512 is too short.
    command_size_limit = line_length_limit = 16384
    command_size_limits = collections.defaultdict(lambda: ExchangeSMTP.command_size_limit)

    def __init__(self, handler, lab, listener, **kwargs):
        self.lab = lab
        self.listener = listener
        super().__init__(handler, **kwargs)

    @property
    def secure(self):
        return self._tls_protocol is not None or self.listener == 'implicit'

    async def logged(self, verb, arg, run):
        tls = self.secure
        entry = {'time': time.time(), 'listener': self.listener, 'verb': verb, 'tls': tls,
                 'arg': None if verb == 'AUTH' else arg, 'reply': None}
        if verb == 'AUTH' and arg:
            entry['mechanism'] = arg.split()[0].upper()
        self.lab.append_log(entry)
        injected = self.lab.take_injection(verb)
        if injected is not None:
            entry['reply'] = injected
            await self.push(injected)
            if injected.startswith('421'):
                self.transport.close()
            return
        before = len(self.lab.replies_of(self))
        await run(arg)
        replies = self.lab.replies_of(self)
        if len(replies) > before:
            entry['reply'] = replies[-1]

    async def push(self, status):
        self.lab.note_reply(self, status if isinstance(status, str) else status.decode())
        await super().push(status)

    async def smtp_EHLO(self, arg):
        await self.logged('EHLO', arg, super().smtp_EHLO)

    async def smtp_HELO(self, arg):
        await self.logged('HELO', arg, super().smtp_HELO)

    async def smtp_STARTTLS(self, arg):
        await self.logged('STARTTLS', arg, super().smtp_STARTTLS)

    async def smtp_AUTH(self, arg):
        async def run(value):
            if self.listener == 'inbound':
                await self.push(INBOUND_REPLIES['auth'])
                return
            if not self.secure:
                await self.push(REPLIES['auth_before_tls'])
                return
            mechanism = (value or '').split(' ', 1)[0]
            if self.session.extended_smtp and mechanism not in SUBMISSION_AUTH:
                # as sent: PLAIN, or "xoauth2" in lower case, is not what Exchange offers
                await self.push(REPLIES['auth_before_tls'])
                return
            await SMTP.smtp_AUTH(self, value)
        await self.logged('AUTH', arg, run)

    async def smtp_MAIL(self, arg):
        async def run(value):
            if self.listener == 'inbound':  # the MX: anyone may send to the tenant's recipients
                await SMTP.smtp_MAIL(self, value)
                return
            if not self.secure or not self.session.authenticated:
                await self.push(diagnostic(REPLIES['not_authenticated']))
                return
            await SMTP.smtp_MAIL(self, value)
        await self.logged('MAIL', arg, run)

    async def smtp_RCPT(self, arg):
        await self.logged('RCPT', arg, super().smtp_RCPT)

    async def smtp_DATA(self, arg):
        if self.session is not None:
            self.session.data_started = time.time()  # for the inbound accept line's speed
        await self.logged('DATA', arg, super().smtp_DATA)

    async def smtp_RSET(self, arg):
        await self.logged('RSET', arg, super().smtp_RSET)

    async def smtp_NOOP(self, arg):
        await self.logged('NOOP', arg, super().smtp_NOOP)

    async def smtp_QUIT(self, arg):
        await self.logged('QUIT', arg, super().smtp_QUIT)

    def connection_lost(self, error):
        self.lab.session_ended(self)
        super().connection_lost(error)


class ExchangeController(Controller):
    def __init__(self, lab, listener, *args, **kwargs):
        self.lab = lab
        self.listener = listener
        super().__init__(*args, **kwargs)

    def factory(self):
        kwargs = dict(self.SMTP_kwargs)
        if self.listener == 'inbound':
            # "220 BL2NAM06FT004.mail.protection.outlook.com Microsoft ESMTP MAIL Service ready
            # at Thu, 26 Sep 2019 10:51:20 +0000" (a telnet session in a public blog post; the
            # same in a public Office 365 SMTP relay test script).
            now = datetime.datetime.now(datetime.timezone.utc).replace(microsecond=0)
            kwargs['ident'] = 'Microsoft ESMTP MAIL Service ready at %s' % (
                email.utils.format_datetime(now))
        return ExchangeSMTP(self.handler, self.lab, self.listener, **kwargs)


class SubmissionHandler:
    """aiosmtpd hooks: the AUTH mechanisms and MAIL/DATA checks against the tenant state."""

    def __init__(self, lab):
        self.lab = lab
        self.emu = lab.emu

    # -- AUTH ----------------------------------------------------------------------------------
    async def read_response(self, server, args, prompt):
        if len(args) > 1:
            blob = args[1].encode()
        else:
            blob = await server.challenge_auth(prompt, encode_to_b64=bool(prompt))
            if not isinstance(blob, bytes):
                return None
            return blob
        try:
            return base64.b64decode(blob, validate=True)
        except (binascii.Error, ValueError):
            return b''

    async def refuse(self, server, key):
        await server.push(diagnostic(REPLIES[key]))
        return AuthResult(success=False, handled=True)

    async def auth_XOAUTH2(self, server, args):
        # base64("user=<upn>\x01auth=Bearer <token>\x01\x01"), as an initial response or after
        # an empty 334.
        raw = await self.read_response(server, args, '')
        if raw is None:
            return AuthResult(success=False, handled=True)
        fields = dict(part.split('=', 1) for part in raw.decode('utf-8', 'replace').split('\x01')
                      if '=' in part)
        user, auth = fields.get('user', ''), fields.get('auth', '')
        claims, problem = self.emu.check_token(auth, (self.emu.url,) + identity.EXO_RESOURCES)
        if problem is not None:
            return await self.refuse(server, 'bad_credentials')
        if claims.get('idtyp') == 'app' and SEND_AS_APP not in (claims.get('roles') or ()):
            return await self.refuse(server, 'bad_credentials')
        return await self.finish(server, user, 'XOAUTH2')

    async def auth_LOGIN(self, server, args):
        raw_user = await self.read_response(server, args, 'Username:')
        if raw_user is None:
            return AuthResult(success=False, handled=True)
        raw_pass = await self.read_response(server, ['AUTH'], 'Password:')
        if raw_pass is None:
            return AuthResult(success=False, handled=True)
        return await self.password_auth(server, raw_user, raw_pass)

    async def password_auth(self, server, raw_user, raw_pass):
        if self.lab.basic_auth_disabled:
            return await self.refuse(server, self.lab.basic_auth_reply)
        if self.lab.security_defaults:
            return await self.refuse(server, 'policy_blocked')
        user = raw_user.decode('utf-8', 'replace')
        if not self.lab.check_password(user, raw_pass.decode('utf-8', 'replace')):
            return await self.refuse(server, 'wrong_password')
        return await self.finish(server, user, 'password')

    async def finish(self, server, upn, method):
        cas = self.emu.cas_mailbox(upn) if upn else None
        if cas is None:
            # No such user or no Exchange Online mailbox (unlicensed, still provisioning).
            return await self.refuse(server, 'bad_credentials')
        disabled = cas.get('SmtpClientAuthenticationDisabled')
        if disabled is None and self.emu.transport_config.get('SmtpClientAuthenticationDisabled'):
            return await self.refuse(server, 'tenant_disabled')
        if disabled:
            return await self.refuse(server, 'mailbox_disabled')
        user = self.emu.find_user(upn)
        self.lab.session_started(server, user['userPrincipalName'])
        return AuthResult(success=True, auth_data={'upn': user['userPrincipalName'],
                                                   'method': method})

    # -- MAIL and DATA -------------------------------------------------------------------------
    async def handle_MAIL(self, server, session, envelope, address, mail_options):
        # Send As is not checked here: Exchange takes any MAIL FROM and refuses at the end of
        # DATA (handle_DATA).
        if self.lab.sessions_of(session.auth_data['upn']) > MAX_SENDER_SESSIONS:
            return diagnostic(THROTTLED)
        envelope.mail_from = address
        envelope.mail_options.extend(mail_options)
        return '250 2.1.0 Sender OK'

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        envelope.rcpt_tos.append(address)
        return '250 2.1.5 Recipient OK'

    async def handle_DATA(self, server, session, envelope):
        upn = session.auth_data['upn']
        refusal = self.lab.receive(server.listener, envelope.original_content or envelope.content)
        if refusal:
            return refusal
        msg = email.message_from_bytes(envelope.original_content or envelope.content,
                                       policy=email.policy.default)
        header_from = email.utils.parseaddr(str(msg.get('From') or ''))[1]
        for address in (envelope.mail_from, header_from):
            if address and not self.lab.may_send_as(upn, address):
                return diagnostic(self.lab.send_as_refusal(upn, address))
        message_id = str(msg.get('Message-ID') or '').strip()
        if not message_id:
            message_id = '<%s@%s>' % (uuid.uuid4().hex.upper(), HOSTNAME.lower())
        self.lab.flow.route(envelope.original_content or envelope.content, envelope.mail_from,
                            envelope.rcpt_tos, sender=upn, message_id=message_id)
        # Exchange's accept line names the message's Message-ID and the mailbox server, e.g.
        # "250 2.0.0 OK <id@host> [Hostname=XXXPR01MB1234.namprd01.prod.outlook.com]" (seen in
        # public client transcripts).
        return '250 2.0.0 OK %s [Hostname=%s]' % (message_id, HOSTNAME)


class InboundHandler:
    """aiosmtpd hooks of the MX endpoint: recipients checked against the tenant's accepted
    domains and mailboxes (RCPT), delivery like submission (DATA)."""

    def __init__(self, lab):
        self.lab = lab
        self.emu = lab.emu

    async def handle_EHLO(self, server, session, envelope, hostname, responses):
        # No AUTH on the MX, before or after STARTTLS.
        session.host_name = hostname
        responses[0] = '250-%s Hello [%s]' % (INBOUND_HOSTNAME, session.peer[0])
        return [line for line in responses if not line[4:].upper().startswith('AUTH')]

    async def handle_MAIL(self, server, session, envelope, address, mail_options):
        envelope.mail_from = address
        envelope.mail_options.extend(mail_options)
        return '250 2.1.0 Sender OK'

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        problem = self.lab.inbound_refusal(address)
        if problem is not None:
            return diagnostic(INBOUND_REPLIES[problem], INBOUND_DIAGNOSTIC_HOST)
        envelope.rcpt_tos.append(address)
        envelope.rcpt_options.extend(rcpt_options)
        return '250 2.1.5 Recipient OK'

    async def handle_DATA(self, server, session, envelope):
        started = getattr(session, 'data_started', None) or time.time()
        raw = envelope.original_content or envelope.content
        refusal = self.lab.receive(server.listener, raw, session.peer[0])
        if refusal:
            return refusal
        if hops(raw) >= MAX_HOPS:
            return diagnostic(HOP_LIMIT_REPLY, INBOUND_DIAGNOSTIC_HOST)
        raw = received_line(session.host_name, '[%s]' % session.peer[0], INBOUND_HOSTNAME,
                            session.ssl is not None) + raw
        msg = email.message_from_bytes(raw, policy=email.policy.default)
        message_id = str(msg.get('Message-ID') or '').strip()
        if not message_id:
            message_id = '<%s@%s>' % (uuid.uuid4(), INBOUND_HOSTNAME.lower())
        self.lab.flow.route(raw, envelope.mail_from, envelope.rcpt_tos, message_id=message_id)
        return inbound_accepted(message_id, len(raw), time.time() - started)


class SmtpServer:
    """The submission listeners and the inbound MX listener of one emulator; see the module
    docstring."""

    def __init__(self, emu):
        self.emu = emu
        self.lock = threading.Lock()
        self.log = []
        self.basic_auth_disabled = False
        self.basic_auth_reply = 'basic_disabled'
        self.security_defaults = False  # True: password AUTH blocked by policy
        self.send_as_reply = 'send_as_denied'  # or 'send_as_permission', 'send_as_header'
        self.delivery_folder = {}  # upn (lower case): the folder mail goes to, None: nowhere
        self.sessions = {}  # upn (lower case): the open sessions authenticated as it
        self.passwords = {}
        self.send_as = {}
        self.injections = []
        self.received = []
        self.replies = {}
        self.controllers = []
        # mail routing (mailflow.py): where a smart host or MX name listens, and what happened
        self.smart_hosts = {}
        self.relays = []
        self.ndrs = []
        self.outbound = []
        self.flow = MailFlow(self)
        self.port = self.wrong_name_port = self.implicit_port = self.inbound_port = None
        names = ('127.0.0.1', 'localhost', 'smtp.office365.com')
        self.cert = emu.ca.issue_cert(*names, key_type=trustme.KeyType.RSA)
        self.inbound_cert = emu.ca.issue_cert(
            '127.0.0.1', 'localhost', 'mail.protection.outlook.com',
            '*.mail.protection.outlook.com', key_type=trustme.KeyType.RSA)
        self.wrong_cert = emu.ca.issue_cert('wrong-name.exo-lab.test',
                                            key_type=trustme.KeyType.RSA)
        emu.graph.routes.append(('GET', r'/users/(?P<u>[^/]+)/messages', self.graph_messages))
        emu.graph.routes.append(('GET', r'/users/(?P<u>[^/]+)/mailFolders/(?P<f>[^/]+)/messages',
                                 self.graph_messages))

    # -- life cycle ----------------------------------------------------------------------------
    def context(self, cert):
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.minimum_version = ssl.TLSVersion.TLSv1_2
        cert.configure_cert(ctx)
        return ctx

    def listen(self, cert, listener):
        port = _free_port()
        implicit = listener == 'implicit'
        inbound = listener == 'inbound'
        tls = {'ssl_context': self.context(cert)} if implicit else \
            {'tls_context': self.context(cert)}
        handler = InboundHandler(self) if inbound else SubmissionHandler(self)
        controller = ExchangeController(
            self, listener, handler, hostname='127.0.0.1', port=port,
            server_hostname=INBOUND_HOSTNAME if inbound else HOSTNAME,
            ident='Microsoft ESMTP MAIL Service ready',
            require_starttls=False, auth_required=False, auth_require_tls=not implicit,
            auth_exclude_mechanism=('CRAM-MD5', 'LOGIN', 'PLAIN') if inbound else
            ('CRAM-MD5', 'PLAIN'),
            decode_data=False, **tls)
        controller.start()
        self.controllers.append(controller)
        return port

    def start(self):
        self.port = self.listen(self.cert, 'submission')
        self.wrong_name_port = self.listen(self.wrong_cert, 'wrong-name')
        self.implicit_port = self.listen(self.cert, 'implicit')  # TLS from the first byte
        self.inbound_port = self.listen(self.inbound_cert, 'inbound')  # EOP's MX, port 25
        self.flow.start()
        with self.lock:
            self.log = []
        return self

    def stop(self):
        self.flow.stop()
        for controller in self.controllers:
            controller.stop()
        self.controllers = []

    @staticmethod
    def hostname():
        return HOSTNAME

    def wait_idle(self, timeout=30):
        """Until the relays queued so far (and the NDRs and relays they caused) are done."""
        return self.flow.wait_idle(timeout)

    # -- state ---------------------------------------------------------------------------------
    def set_password(self, upn, password):
        self.passwords[upn.lower()] = password

    def check_password(self, upn, password):
        return self.passwords.get(upn.lower()) == password and password != ''

    def grant_send_as(self, upn, address):
        self.send_as.setdefault(upn.lower(), set()).add(address.lower())

    def may_send_as(self, upn, address):
        address = address.lower()
        user = self.emu.find_user(upn)
        own = {upn.lower()}
        if user is not None:
            own.update(p.split(':', 1)[1].lower() for p in user['proxyAddresses'] if ':' in p)
        return address in own or address in self.send_as.get(upn.lower(), set())

    def send_as_refusal(self, upn, address):
        """The end-of-DATA refusal of a sender ``upn`` may not send as (``send_as_reply``)."""
        if self.send_as_reply == 'send_as_denied':
            return send_as_denied(upn, address)
        return REPLIES[self.send_as_reply]

    def session_started(self, server, upn):
        with self.lock:
            self.sessions.setdefault(upn.lower(), set()).add(id(server))

    def session_ended(self, server):
        with self.lock:
            for ids in self.sessions.values():
                ids.discard(id(server))

    def sessions_of(self, upn):
        with self.lock:
            return len(self.sessions.get(upn.lower(), ()))

    def inject(self, verb, reply=THROTTLED, count=1):
        """The next ``count`` commands ``verb`` (EHLO, AUTH, MAIL, RCPT, DATA) get ``reply``; a
        421 also closes the connection, as Exchange does when it closes a session."""
        with self.lock:
            self.injections.append({'verb': verb.upper(), 'reply': reply, 'count': count})

    def take_injection(self, verb):
        with self.lock:
            for item in self.injections:
                if item['verb'] == verb and item['count'] > 0:
                    item['count'] -= 1
                    if item['count'] <= 0:
                        self.injections.remove(item)
                    return item['reply']
        return None

    def append_log(self, entry):
        with self.lock:
            self.log.append(entry)

    def note_reply(self, server, status):
        with self.lock:
            self.replies.setdefault(id(server), []).append(status)

    def replies_of(self, server):
        with self.lock:
            return list(self.replies.get(id(server), ()))

    def clear_log(self):
        with self.lock:
            self.log = []
            self.received = []
            self.relays = []
            self.ndrs = []
            self.outbound = []

    def reset(self, *upns):
        """Between tests: SMTP AUTH on for the tenant and ``upns`` following it, basic auth on,
        no policy block, no injected replies, an empty log."""
        self.emu.transport_config['SmtpClientAuthenticationDisabled'] = False
        for upn in upns:
            self.emu.cas_mailbox(upn)['SmtpClientAuthenticationDisabled'] = None
        self.basic_auth_disabled = False
        self.basic_auth_reply = 'basic_disabled'
        self.security_defaults = False
        self.send_as_reply = 'send_as_denied'
        self.delivery_folder = {}
        with self.lock:
            self.injections = []
        self.clear_log()

    # -- the mailbox store ---------------------------------------------------------------------
    def receive(self, listener, raw, peer=None):
        """Keep the message as it came (``self.received``: listener and raw bytes, dot-stuffing
        undone) and refuse one with a line over RFC 5321 4.5.3.1.6's 1000 octets (CRLF
        included), as a strict server may (with aiosmtpd's own reply to such a line)."""
        connector = self.flow.inbound_connector(peer) if listener == 'inbound' and peer else None
        with self.lock:
            self.received.append({'listener': listener, 'raw': raw, 'peer': peer,
                                  'connector': connector})
        if any(len(line) > 998 for line in raw.split(b'\r\n')):
            return '500 Line too long (see RFC5321 4.5.3.1.6)'
        return None

    def deliver(self, msg, message_id, mail_from, rcpt_tos, sender=None):
        """Each recipient with a mailbox gets the message in its Inbox (or the folder
        ``delivery_folder`` names for it; None: accepted but never in the mailbox, as a
        quarantined message); an authenticated ``sender`` (submission) keeps a copy in its Sent
        Items, as Exchange stores SMTP AUTH submissions."""
        now = datetime.datetime.now(datetime.timezone.utc).strftime('%Y-%m-%dT%H:%M:%SZ')
        sender_name, from_address = email.utils.parseaddr(str(msg.get('From') or mail_from))
        to = email.utils.getaddresses([str(v) for v in msg.get_all('To') or ()])
        cc = email.utils.getaddresses([str(v) for v in msg.get_all('Cc') or ()])
        body = msg.get_body(preferencelist=('plain', 'html'))
        text = body.get_content() if body is not None else ''

        def recipients(pairs):
            return [{'emailAddress': {'name': n or a, 'address': a}} for n, a in pairs]

        def store(user, folder):
            mid = 'AAMkAG' + base64.urlsafe_b64encode(
                stable_id(user['id'], message_id, folder).encode()).decode().rstrip('=')
            user.setdefault('_messages', []).append({
                'id': mid, 'createdDateTime': now, 'lastModifiedDateTime': now,
                'receivedDateTime': now, 'sentDateTime': now, 'hasAttachments': False,
                'internetMessageId': message_id, 'subject': str(msg.get('Subject') or ''),
                'bodyPreview': text.strip()[:255], 'importance': 'normal',
                'parentFolderId': folder_id(user, folder),
                'isRead': folder == SENT_ITEMS, 'isDraft': False,
                'body': {'contentType': 'text', 'content': text},
                'sender': {'emailAddress': {'name': sender_name or from_address,
                                            'address': from_address}},
                'from': {'emailAddress': {'name': sender_name or from_address,
                                          'address': from_address}},
                'toRecipients': recipients(to), 'ccRecipients': recipients(cc),
                'bccRecipients': [], 'replyTo': []})

        with self.emu.lock:
            if sender is not None:
                user = self.find_mailbox(sender)
                if user is not None:
                    store(user, SENT_ITEMS)
            for rcpt in rcpt_tos:
                user = self.find_mailbox(rcpt)
                if user is None:
                    continue  # external recipient: relayed, not stored here
                folder = self.delivery_folder.get(user['userPrincipalName'].lower(), 'inbox')
                if folder is not None:
                    store(user, folder)

    def accepted_domains(self):
        """What EOP accepts mail for: the tenant's verified domains and its
        <tenant>.mail.onmicrosoft.com routing domain (in every mailbox's proxyAddresses)."""
        with self.emu.lock:
            names = {name for name, dom in self.emu.domains.items() if dom['isVerified']}
        tenant = self.emu.tenant_domain.lower()
        if tenant.endswith('.onmicrosoft.com'):
            names.add(tenant[:-len('.onmicrosoft.com')] + '.mail.onmicrosoft.com')
        return names

    def inbound_refusal(self, address):
        """None when the MX accepts ``address``, else the INBOUND_REPLIES key: 'relay_denied'
        for a domain the tenant does not accept, 'dbeb' for an unknown recipient in one that is
        Authoritative (an InternalRelay domain takes every recipient and relays the unknown)."""
        domain = address.rpartition('@')[2].strip().rstrip('.').lower()
        if domain not in self.accepted_domains():
            return 'relay_denied'
        if self.flow.relays_unknown(domain):
            return None
        with self.emu.lock:
            if self.find_mailbox(address) is None:
                return 'dbeb'
        return None

    def find_mailbox(self, address):
        address = address.lower()
        for user in self.emu.users:
            if not user['_mailbox']:
                continue
            own = {user['userPrincipalName'].lower()}
            own.update(p.split(':', 1)[1].lower() for p in user['proxyAddresses'] if ':' in p)
            if address in own:
                return user
        return None

    # https://learn.microsoft.com/graph/api/user-list-messages : $filter on internetMessageId
    # (eq), $select, $top; Mail.Read(Basic)(.All) or Mail.ReadWrite; no mailbox: 404
    # MailboxNotEnabledForRESTAPI as for mailboxSettings. /users/{id}/messages is every folder
    # (Sent Items too); /users/{id}/mailFolders/{folder}/messages one folder, by a well-known
    # name (case-insensitive) or its id (mailfolder-list-messages).
    def graph_messages(self, req, u, f=None):
        if not req.roles() & set(MAIL_READ):
            return req.error(403, 'ErrorAccessDenied',
                             'Access is denied. Check credentials and try again.')
        with self.emu.lock:
            user, failure = self.emu.graph.find_user(req, u)
            if failure:
                return failure
            if not user['_mailbox']:
                return req.error(404, 'MailboxNotEnabledForRESTAPI',
                                 'The mailbox is either inactive, soft-deleted, or is hosted '
                                 'on-premise.')
            messages = [dict(m) for m in user.get('_messages', ())]
            uid = user['id']
            folders = {folder_id(user, name): name for name in WELL_KNOWN_FOLDERS}
        path = 'messages'
        if f is not None:
            wanted = f if f in folders else f.lower()
            if wanted not in folders and wanted not in WELL_KNOWN_FOLDERS:
                # the answer of Exchange for an id that names no folder of this mailbox
                return req.error(404, 'ErrorItemNotFound',
                                 'The specified object was not found in the store.')
            wanted = folder_id(user, folders.get(wanted, wanted))
            messages = [msg for msg in messages if msg['parentFolderId'] == wanted]
            path = "mailFolders('%s')/messages" % f
        text = req.query.get('$filter')
        if text:
            m = re.fullmatch(r"\s*internetMessageId\s+eq\s+'((?:[^']|'')*)'\s*", text)
            if not m:
                return req.error(400, 'ErrorInvalidUrlQueryFilter',
                                 'The query filter contains one or more invalid nodes.')
            wanted = m.group(1).replace("''", "'")
            messages = [msg for msg in messages if msg['internetMessageId'] == wanted]
        messages.sort(key=lambda msg: msg['receivedDateTime'], reverse=True)
        top = int(req.query.get('$top') or 10)
        messages = messages[:top]
        if req.query.get('$select'):
            keep = {s.strip() for s in req.query['$select'].split(',')} | {'id'}
            messages = [{k: v for k, v in msg.items() if k in keep} for msg in messages]
        for msg in messages:
            msg['@odata.etag'] = 'W/"CQAAABYAAAB%s"' % msg['id'][-12:]
        return Response(200, {'@odata.context': "%s/$metadata#users('%s')/%s"
                                                % (self.emu.graph.root, uid, path),
                              'value': messages})


def folder_id(user, name):
    """The id of the well-known folder ``name`` of ``user``'s mailbox (stable, Graph-like)."""
    return 'AAMkAG' + base64.urlsafe_b64encode(
        stable_id(user['id'], 'folder', name).encode()).decode().rstrip('=') + 'AAA='
