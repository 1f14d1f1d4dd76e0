"""Mail routing of the emulated Exchange Online: what happens to a message after the inbound MX
(or submission) accepted it.

- Recipients with a mailbox get it (SmtpServer.deliver).
- A recipient that no mailbox has, in an accepted domain of type InternalRelay, is relayed: by
  the enabled outbound connector whose RecipientDomains match its domain, to the connector's
  smart hosts with its TlsSettings; without one, by the domain's MX (the lab's DNS server),
  which loops back to Exchange Online itself when the MX is Exchange Online's.
- A recipient in an Authoritative domain without a mailbox gets an NDR (5.1.10).
- Other recipients are "the internet": kept in ``outbound`` (never sent anywhere).
- Every message Exchange receives gets a Received header; one that arrives with MAX_HOPS or
  more is refused at the end of DATA with 554 5.4.14 (a loop), and the server that relayed it
  writes the one NDR to the sender. No NDR is written for an NDR (empty envelope sender).

Relays run on one worker thread, off the SMTP servers' event loop, so a relay to the emulator's
own MX (a loop) never waits on itself. A relay that cannot be made (no listener, TLS required and
not offered, a certificate the connector does not accept, a 4xx answer) is "deferred": Exchange
would try again for up to a day, the lab records it in ``relays`` and stops. Sources and guesses:
tests/lab/m365/README.md, "Mail flow through connectors".

    smtp.smart_hosts['mail.legacy.test'] = ('127.0.0.1', postfix.port)   # where port 25 is
    smtp.relays     # [{connector, host, port, rcpts, status: relayed|refused|deferred, reply, tls}]
    smtp.ndrs       # [{to, recipients, status, diagnostic, raw}] NDRs Exchange Online wrote
    smtp.outbound   # [{mail_from, rcpts, raw}] mail for the internet
    smtp.wait_idle()  # until the relay queue is empty (bounded)
"""

import datetime
import email
import email.policy
import email.utils
import ipaddress
import queue
import smtplib
import ssl
import threading
import time
import uuid

import dns.exception
import dns.message
import dns.query
import dns.rdatatype

# Set-ReceiveConnector -MaxHopCount: "The default value is 60" (Exchange Server's receive
# connectors; the value of Exchange Online's front end is not published, so the lab takes it).
MAX_HOPS = 60
# "Remote Server returned '<HE1EUR01FT063.mail.protection.outlook.com #5.4.14 smtp;554 5.4.14
# Hop count exceeded - possible mail loop ATTR34 [HE1EUR01FT063.eop-EUR01.prod.protection.
# outlook.com]>'" (an Exchange Online NDR in a public paste, pastebin 0aCSGeph).
HOP_LIMIT_REPLY = '554 5.4.14 Hop count exceeded - possible mail loop ATTR34'
# An Authoritative domain's recipient without a mailbox, after submission (NDR 5.1.10,
# "Fix email delivery issues for error code 550 5.1.10 in Exchange Online").
NOT_FOUND_REPLY = '550 5.1.10 RESOLVER.ADR.RecipientNotFound; Recipient not found by SMTP address lookup'
EXO_MX = ('.mail.protection.outlook.com', '.mx.microsoft')
RELAY_TIMEOUT = 10


def hops(raw):
    """The Received header fields of a message (its hop count, RFC 5321 6.3)."""
    head = raw.split(b'\r\n\r\n', 1)[0]
    return sum(1 for line in head.split(b'\r\n') if line[:9].lower() == b'received:')


def received_line(helo, peer, by, tls):
    now = email.utils.format_datetime(datetime.datetime.now(datetime.timezone.utc))
    return ('Received: from %s (%s) by %s with Microsoft SMTP Server (%s) id 15.20.8000.0; %s\r\n'
            % (helo or 'unknown', peer, by,
               'version=TLS1_2' if tls else 'not encrypted', now)).encode()


def matches(domain, patterns):
    """Whether ``domain`` is in RecipientDomains-like ``patterns`` (``*``, ``*.parent``)."""
    for pattern in patterns:
        pattern = pattern.split(':', 1)[-1].rsplit(';', 1)[0].lower().rstrip('.')
        if pattern == '*' or pattern == domain:
            return True
        if pattern.startswith('*.') and (domain == pattern[2:] or domain.endswith(pattern[1:])):
            return True
    return False


class MailFlow:
    """The routing of one SmtpServer (``lab``); see the module docstring."""

    def __init__(self, lab):
        self.lab = lab
        self.emu = lab.emu
        self.queue = queue.Queue()
        self.pending = 0
        self.cond = threading.Condition()
        self.worker = None

    # -- life cycle ----------------------------------------------------------------------------
    def start(self):
        self.worker = threading.Thread(target=self.work, name='exo-lab-relay', daemon=True)
        self.worker.start()

    def stop(self):
        if self.worker is not None:
            self.queue.put(None)
            self.worker.join(RELAY_TIMEOUT * 2)
            self.worker = None

    def wait_idle(self, timeout=30):
        """Until every queued relay (and what it caused) is done; False on timeout."""
        deadline = time.monotonic() + timeout
        with self.cond:
            while self.pending:
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self.cond.wait(left)
        return True

    # -- the tenant ----------------------------------------------------------------------------
    def domain_type(self, domain):
        return self.emu.exo.domain_types.get(domain, 'Authoritative')

    def relays_unknown(self, domain):
        """Whether the MX takes any recipient of ``domain`` (an InternalRelay domain)."""
        return domain in self.lab.accepted_domains() and \
            self.domain_type(domain) == 'InternalRelay'

    def connector_for(self, domain):
        with self.emu.lock:
            for obj in self.emu.exo.connectors['outbound'].values():
                if obj['Enabled'] and not obj['TestMode'] and \
                        matches(domain, obj['RecipientDomains']):
                    return dict(obj)
        return None

    def inbound_connector(self, peer_ip):
        """The enabled inbound connector whose SenderIPAddresses has ``peer_ip`` (its name)."""
        with self.emu.lock:
            for obj in self.emu.exo.connectors['inbound'].values():
                for item in obj['SenderIPAddresses']:
                    try:
                        if obj['Enabled'] and ipaddress.IPv4Address(peer_ip) in \
                                ipaddress.IPv4Network(item, strict=False):
                            return obj['Name']
                    except ValueError:
                        continue
        return None

    # -- routing -------------------------------------------------------------------------------
    def route(self, raw, mail_from, rcpts, sender=None, message_id=None):
        """Deliver, relay, bounce or send out each recipient of an accepted message."""
        msg = email.message_from_bytes(raw, policy=email.policy.default)
        message_id = message_id or str(msg.get('Message-ID') or '').strip() or \
            '<%s@lab>' % uuid.uuid4()
        with self.emu.lock:
            local = [r for r in rcpts if self.lab.find_mailbox(r) is not None]
        self.lab.deliver(msg, message_id, mail_from, local, sender=sender)
        by_target = {}
        for rcpt in rcpts:
            if rcpt in local:
                continue
            domain = rcpt.rpartition('@')[2].lower().rstrip('.')
            if domain not in self.lab.accepted_domains():
                with self.lab.lock:
                    self.lab.outbound.append({'mail_from': mail_from, 'rcpts': [rcpt],
                                              'raw': raw})
            elif self.domain_type(domain) != 'InternalRelay':
                self.ndr(raw, mail_from, [rcpt], NOT_FOUND_REPLY, self.lab.hostname())
            else:
                connector = self.connector_for(domain)
                key = (connector['Name'] if connector else None, domain)
                by_target.setdefault(key, (connector, []))[1].append(rcpt)
        for (dummy, domain), (connector, group) in by_target.items():
            self.enqueue({'raw': raw, 'mail_from': mail_from, 'rcpts': group,
                          'connector': connector, 'domain': domain})

    def enqueue(self, item):
        with self.cond:
            self.pending += 1
        self.queue.put(item)

    def work(self):
        while True:
            item = self.queue.get()
            if item is None:
                return
            try:
                self.relay(item)
            except Exception as e:  # a lab bug must not stop the worker: record it
                self.record(item, None, None, 'deferred', 'lab error: %r' % e, False)
            finally:
                with self.cond:
                    self.pending -= 1
                    self.cond.notify_all()

    def targets(self, item):
        """[(name, host, port)]: the connector's smart hosts, or the domain's MX hosts."""
        connector = item['connector']
        if connector is not None:
            names = connector['SmartHosts'] if not connector['UseMXRecord'] else \
                self.mx_hosts(item['domain'])
        else:
            names = self.mx_hosts(item['domain'])
        out = []
        for name in names:
            key = name.lower().rstrip('.')
            if key.endswith(EXO_MX):
                out.append((key, '127.0.0.1', self.lab.inbound_port))
            elif key in self.lab.smart_hosts:
                host, port = self.lab.smart_hosts[key]
                out.append((key, host, port))
            else:
                out.append((key, None, None))
        return out

    def mx_hosts(self, domain):
        server = self.emu.dns_server
        if not server:
            return []
        try:
            answer, dummy = dns.query.udp_with_fallback(
                dns.message.make_query(domain, 'MX'), server[0], port=int(server[1]), timeout=3)
        except (dns.exception.DNSException, OSError):
            return []
        found = []
        for rrset in answer.answer:
            if rrset.rdtype == dns.rdatatype.MX:
                found.extend((rd.preference, rd.exchange.to_text()) for rd in rrset)
        return [name for dummy, name in sorted(found)]

    def tls_context(self, connector, name):
        """(context, required) for a connector's TlsSettings (None: opportunistic, unverified)."""
        setting = (connector or {}).get('TlsSettings')
        ctx = ssl.create_default_context(cafile=self.emu.ca_path)
        if setting == 'DomainValidation':
            wanted = (connector.get('TlsDomain') or name).lower()
            # a wildcard TlsDomain: the smart host's own name must be under it
            if wanted.startswith('*.'):
                wanted = name if name.endswith(wanted[1:]) else wanted[2:]
            return ctx, True, wanted
        if setting == 'CertificateValidation':
            ctx.check_hostname = False
            return ctx, True, None
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
        return ctx, setting == 'EncryptionOnly', None

    def relay(self, item):
        connector = item['connector']
        targets = self.targets(item)
        if not targets:
            self.record(item, None, None, 'deferred', '451 4.4.4 no route to the domain', False)
            return
        name, host, port = targets[0]
        if host is None:
            self.record(item, name, None, 'deferred',
                        "451 4.4.0 Primary target IP address responded with: '421 4.4.1 Unable "
                        "to connect.'", False)
            return
        ctx, required, tls_name = self.tls_context(connector, name)
        raw = received_line(self.lab.hostname(), '127.0.0.1', self.lab.hostname(), True) + \
            item['raw']
        tls = False
        try:
            with smtplib.SMTP(host, port, local_hostname=self.lab.hostname(),
                              timeout=RELAY_TIMEOUT) as smtp:
                smtp.ehlo()
                if smtp.has_extn('starttls'):
                    # the name the certificate must carry: smtplib checks the host it was given
                    smtp._host = tls_name or host
                    smtp.starttls(context=ctx)
                    smtp.ehlo()
                    tls = True
                elif required:
                    self.record(item, name, port, 'deferred', '451 4.4.316 Connection refused: '
                                'TLS is required and the server does not offer STARTTLS', False)
                    return
                code, text = smtp.mail(item['mail_from'])
                if code >= 400:
                    return self.refused(item, name, port, item['rcpts'], code, text, tls)
                accepted, refused = [], []
                for rcpt in item['rcpts']:
                    code, text = smtp.rcpt(rcpt)
                    (accepted if code < 400 else refused).append((rcpt, code, text))
                for rcpt, code, text in refused:
                    self.refused(item, name, port, [rcpt], code, text, tls)
                if not accepted:
                    return
                code, text = smtp.data(raw)
                if code >= 400:
                    return self.refused(item, name, port, [r for r, _c, _t in accepted], code,
                                        text, tls)
                self.record(dict(item, rcpts=[r for r, _c, _t in accepted]), name, port,
                            'relayed', '%d %s' % (code, text.decode('utf-8', 'replace')), tls)
        except (ssl.SSLError, ssl.CertificateError) as e:
            self.record(item, name, port, 'deferred', '450 4.4.317 Cannot connect to remote '
                        'server: TLS negotiation failed (%s)' % e, tls)
        except (OSError, smtplib.SMTPException) as e:
            self.record(item, name, port, 'deferred', "451 4.4.0 Primary target IP address "
                        "responded with: '421 4.4.1 %s'" % e, tls)

    def refused(self, item, name, port, rcpts, code, text, tls):
        reply = '%d %s' % (code, text.decode('utf-8', 'replace') if isinstance(text, bytes)
                           else text)
        if code < 500:
            self.record(dict(item, rcpts=rcpts), name, port, 'deferred', reply, tls)
            return
        self.record(dict(item, rcpts=rcpts), name, port, 'refused', reply, tls)
        self.ndr(item['raw'], item['mail_from'], rcpts, reply, name)

    def record(self, item, name, port, status, reply, tls):
        with self.lab.lock:
            self.lab.relays.append({
                'connector': (item.get('connector') or {}).get('Name'), 'host': name,
                'port': port, 'rcpts': list(item['rcpts']), 'status': status, 'reply': reply,
                'tls': tls, 'hops': hops(item['raw']) + 1})

    # -- NDRs ----------------------------------------------------------------------------------
    def ndr(self, raw, mail_from, rcpts, reply, remote):
        """One NDR to the envelope sender for ``rcpts``, routed like any message; none for an
        NDR (empty sender)."""
        if not mail_from or mail_from == '<>':
            return
        original = email.message_from_bytes(raw, policy=email.policy.default)
        status = reply.split(' ', 2)[1] if len(reply.split(' ')) > 1 else '5.0.0'
        host = self.lab.hostname()
        boundary = '_%s_' % uuid.uuid4().hex
        # multipart/report (RFC 6522) with a message/delivery-status part (RFC 3464), the shape
        # of Exchange Online's NDRs; the subject and sender as in the public NDR of MAX_HOPS
        lines = [
            'From: Microsoft Outlook <MicrosoftExchange329e71ec88ae4615bbc36ab6ce41109e@%s>'
            % self.emu.tenant_domain,
            'To: <%s>' % mail_from,
            'Subject: Undeliverable: %s' % str(original.get('Subject') or '').replace('\n', ' '),
            'Message-ID: <%s@%s>' % (uuid.uuid4().hex, host.lower()),
            'Date: %s' % email.utils.formatdate(usegmt=True),
            'Auto-Submitted: auto-replied',
            'MIME-Version: 1.0',
            'Content-Type: multipart/report; report-type=delivery-status; boundary="%s"'
            % boundary, '',
            '--' + boundary, 'Content-Type: text/plain; charset="us-ascii"', '',
            'Delivery has failed to these recipients or groups:', '']
        lines += rcpts + ['', 'Diagnostic information for administrators:', '',
                          'Generating server: %s' % host, '']
        lines += ["%s\nRemote Server returned '%s'" % (r, reply) for r in rcpts]
        lines += ['', '--' + boundary, 'Content-Type: message/delivery-status', '',
                  'Reporting-MTA: dns;%s' % host, '']
        for rcpt in rcpts:
            lines += ['Final-Recipient: rfc822;%s' % rcpt, 'Action: failed',
                      'Status: %s' % status, 'Remote-MTA: dns;%s' % remote,
                      'Diagnostic-Code: smtp;%s' % reply, '']
        lines += ['--%s--' % boundary, '']
        data = '\r\n'.join(lines).replace('\n', '\r\n').replace('\r\r\n', '\r\n').encode(
            'utf-8', 'replace')
        with self.lab.lock:
            self.lab.ndrs.append({'to': mail_from, 'recipients': list(rcpts), 'status': status,
                                  'diagnostic': reply, 'raw': data})
        self.route(data, '', [mail_from])
