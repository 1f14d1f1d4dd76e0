# -*- coding: utf-8 -*-
# Copyright (c) exchangeonline.mail contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# Private to this collection: may change without notice.
"""RFC 2136 layer: TSIG keys, reading a zone's rrsets, one atomic UPDATE per zone.

Reads never use UPDATE packets: a TSIG-signed AXFR when the server allows it, else signed
queries. Writes are one UPDATE whose prerequisites are the exact rrsets that were read, so a
zone that changed in between makes the server refuse the whole message (RFC 2136 3.2).
"""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import base64
import binascii
import re
import socket
import traceback

from ansible_collections.exchangeonline.mail.plugins.module_utils._options import PORT, seconds
from ansible_collections.exchangeonline.mail.plugins.module_utils._records import (
    DNSSEC_TYPES,
    RRset,
    RecordError,
    name_text,
    to_name,
)

try:
    import dns.exception
    import dns.message
    import dns.name
    import dns.opcode
    import dns.query
    import dns.rcode
    import dns.rdataclass
    import dns.rdatatype
    import dns.tsig
    import dns.tsigkeyring
    import dns.update
    import dns.xfr
    import dns.zone
    HAS_DNSPYTHON = True
    DNSPYTHON_IMPORT_ERROR = None
except ImportError:
    HAS_DNSPYTHON = False
    DNSPYTHON_IMPORT_ERROR = traceback.format_exc()

KEY_ALGORITHMS = ('hmac-sha256', 'hmac-sha384', 'hmac-sha512', 'hmac-sha224', 'hmac-sha1',
                  'hmac-md5')
PREREQ_FAILED = ('NXRRSET', 'YXRRSET', 'NXDOMAIN', 'YXDOMAIN')
UNKNOWN_KEY_HINT = ('Check key_name and key_algorithm, and that the key is configured on the '
                    'server (BIND: a key statement; Knot DNS: the key section and an acl of the '
                    'zone that names the key).')


def dns_argument_spec():
    """The shared DNS connection options (doc fragment exchangeonline.mail.dns)."""
    return dict(
        server=dict(type='str', required=True),
        port=dict(type='int', default=53),
        zone=dict(type='str'),
        key_name=dict(type='str'),
        key_secret=dict(type='str', no_log=True),
        key_algorithm=dict(type='str', default='hmac-sha256', choices=list(KEY_ALGORITHMS)),
        key_file=dict(type='path'),
        protocol=dict(type='str', default='tcp', choices=['tcp', 'udp']),
        timeout=dict(type='float', default=10.0),
    )


DNS_LIMITS = {'port': PORT, 'timeout': seconds(300)}
DNS_MUTUALLY_EXCLUSIVE = [('key_secret', 'key_file')]
DNS_REQUIRED_BY = {'key_secret': 'key_name'}


class DnsError(Exception):
    """A failure with the phase it happened in; ``str()`` is the whole message for the user."""

    def __init__(self, phase, message, rcode=None, fields=None):
        super(DnsError, self).__init__('%s: %s' % (phase, message))
        self.phase = phase
        self.rcode = rcode
        self.fields = dict(fields or {})  # result keys the failed task still carries


class ConcurrentChange(DnsError):
    """The server rejected the UPDATE's prerequisites: the zone changed after it was read."""


class UpdateOutcomeUnknown(DnsError):
    """The UPDATE was sent, but no usable answer says whether the server applied it."""


def _lost_reply(server, exc):
    """Why the answer to a sent UPDATE is missing, in words."""
    if isinstance(exc, (dns.exception.Timeout, socket.timeout, TimeoutError)):
        what = 'no answer within %.1f s' % server.timeout
    elif isinstance(exc, EOFError):
        what = 'the server closed the connection without an answer'
    elif isinstance(exc, ConnectionResetError):
        what = 'the connection was reset'
    elif isinstance(exc, dns.message.Truncated):
        what = 'the answer was truncated (TC flag) and so says nothing'
    elif isinstance(exc, dns.tsig.PeerError):
        what = ('the answer was a TSIG error (%s), which is not signed and so cannot be '
                'trusted' % {dns.tsig.PeerBadKey: 'BADKEY', dns.tsig.PeerBadSignature: 'BADSIG',
                             dns.tsig.PeerBadTime: 'BADTIME'}.get(type(exc), exc))
    elif isinstance(exc, (dns.tsig.BadSignature, dns.tsig.BadTime, dns.tsig.BadAlgorithm)):
        what = 'the answer failed TSIG verification (%s)' % exc
    elif isinstance(exc, dns.exception.DNSException):
        what = 'an unusable answer (%s: %s)' % (type(exc).__name__, exc)
    else:
        what = 'a network error (%s: %s)' % (type(exc).__name__, exc)
    return 'the update was sent to %s, but %s' % (server.where, what)


# -- TSIG -------------------------------------------------------------------------------------
def read_key_file(path, key_name=None):
    """(name, algorithm, secret) from a BIND key file (``tsig-keygen`` output)."""
    try:
        with open(path, 'rb') as f:
            raw = f.read(65537)
    except (IOError, OSError) as e:
        raise DnsError('key', 'cannot read key_file %s: %s' % (path, e))
    if len(raw) > 65536:
        raise DnsError('key', 'key_file %s is larger than 64 KiB: it is not a BIND key file'
                       % path)
    try:
        text = raw.decode('utf-8')
    except UnicodeDecodeError as e:
        raise DnsError('key', 'key_file %s is not a text file (byte %d is not UTF-8): give the '
                       'key file tsig-keygen wrote' % (path, e.start))
    text = _strip_comments(text)
    keys = []
    for m in re.finditer(r'key\s+"?([^"\s{]+)"?\s*\{(.*?)\}\s*;', text, re.S):
        algo = re.search(r'algorithm\s+"?([\w.-]+)"?\s*;', m.group(2))
        secret = re.search(r'secret\s+"([^"]+)"\s*;', m.group(2))
        if algo and secret:
            keys.append((m.group(1), algo.group(1).lower(), secret.group(1)))
    if not keys:
        raise DnsError('key', 'key_file %s holds no key { algorithm ...; secret "..."; }; block'
                       % path)
    if key_name:
        keys = [k for k in keys if k[0].rstrip('.').lower() == key_name.rstrip('.').lower()]
        if not keys:
            raise DnsError('key', 'key_file %s has no key named %s' % (path, key_name))
    elif len(keys) > 1:
        raise DnsError('key', 'key_file %s holds %d keys (%s): set key_name to choose one'
                       % (path, len(keys), ', '.join(k[0] for k in keys)))
    return keys[0]


def _strip_comments(text):
    """named.conf syntax: drop #, // and /* */ comments, but never inside quoted strings (a
    base64 secret may hold '//')."""
    return re.sub(r'("(?:[^"\\]|\\.)*")|#[^\n]*|//[^\n]*|/\*.*?\*/',
                  lambda m: m.group(1) or '', text, flags=re.S)


def make_keyring(params):
    """(keyring, keyname, algorithm) from module params, or (None, None, None) for no TSIG."""
    name, algorithm, secret = params.get('key_name'), params.get('key_algorithm'), \
        params.get('key_secret')
    if params.get('key_file'):
        name, algorithm, secret = read_key_file(params['key_file'], name)
    if not name:
        return None, None, None
    if not secret:
        raise DnsError('key', 'key_name %s needs key_secret or key_file' % name)
    if algorithm == 'hmac-md5.sig-alg.reg.int':
        algorithm = 'hmac-md5'
    if algorithm not in KEY_ALGORITHMS:
        raise DnsError('key', 'unsupported TSIG algorithm %s; use one of %s'
                       % (algorithm, ', '.join(KEY_ALGORITHMS)))
    try:
        base64.b64decode(secret, validate=True)
    except (binascii.Error, ValueError, TypeError):
        raise DnsError('key', 'the TSIG secret of key %s is not valid base64' % name)
    try:
        keyname = to_name(name, what='key_name')
    except RecordError as e:
        raise DnsError('key', str(e))
    algo = dns.name.from_text(algorithm if algorithm != 'hmac-md5'
                              else 'hmac-md5.sig-alg.reg.int')
    keyring = dns.tsigkeyring.from_text({keyname.to_text(): (algo.to_text(), secret)})
    return keyring, keyname, algo


# -- the connection ---------------------------------------------------------------------------
class Snapshot:
    """What was read from the zone: its serial and rrsets ({(name, type): RRset})."""

    def __init__(self, zone, serial, rrsets, method):
        self.zone = zone
        self.serial = serial
        self.rrsets = rrsets
        self.method = method
        self.warnings = []  # why it was read the way it was, for the user

    def at(self, names):
        names = set(names)
        return dict((k, v) for k, v in self.rrsets.items() if k[0] in names)


class DnsServer:
    """One authoritative server reached with (optional) TSIG."""

    def __init__(self, server, port=53, keyring=None, keyname=None, algorithm=None,
                 protocol='tcp', timeout=10.0):
        self.server_text = server
        self.port = port
        self.keyring = keyring
        self.keyname = keyname
        self.algorithm = algorithm
        self.protocol = protocol
        self.timeout = timeout
        self.address = self._resolve(server)

    @classmethod
    def from_params(cls, params):
        keyring, keyname, algorithm = make_keyring(params)
        return cls(params['server'], params['port'], keyring, keyname, algorithm,
                   params['protocol'], params['timeout'])

    def _resolve(self, server):
        try:
            to_name(server, what='server')  # an address is a valid name too
        except RecordError as e:
            raise DnsError('input', '%s. Give the host name or IP address of the DNS server.'
                           % e)
        try:
            infos = socket.getaddrinfo(server, self.port, 0, socket.SOCK_STREAM)
        except (socket.gaierror, UnicodeError) as e:
            raise DnsError('connect', 'cannot resolve the DNS server name %s: %s. Give its IP '
                           'address as server.' % (server, e))
        return infos[0][4][0]

    @property
    def where(self):
        return '%s port %d/%s' % (self.server_text, self.port, self.protocol)

    def _explain(self, phase, exc):
        """Turn a dnspython/socket exception into a DnsError with what to do. The TSIG errors
        BADKEY and BADSIG the server sent are kept in the error's ``tsig_error``."""
        key = self.keyname.to_text(omit_final_dot=True) if self.keyname else None
        if isinstance(exc, dns.tsig.PeerBadKey):
            err = DnsError(phase, '%s does not know the TSIG key %s (BADKEY): the key is unknown '
                           'to it. %s' % (self.where, key, UNKNOWN_KEY_HINT))
            err.tsig_error = 'BADKEY'
            return err
        if isinstance(exc, dns.tsig.PeerBadSignature):
            err = DnsError(phase, '%s rejected the TSIG signature of key %s (BADSIG): the '
                           'key_secret or key_algorithm does not match the server\'s key.'
                           % (self.where, key))
            err.tsig_error = 'BADSIG'
            return err
        if isinstance(exc, dns.tsig.PeerBadTime):
            return DnsError(phase, '%s rejected the TSIG time (BADTIME): this machine\'s clock '
                            'and the server\'s differ by more than 5 minutes.' % self.where)
        if isinstance(exc, dns.tsig.PeerError):
            return DnsError(phase, '%s answered with a TSIG error: %s' % (self.where, exc))
        if isinstance(exc, (dns.tsig.BadSignature, dns.tsig.BadTime, dns.tsig.BadAlgorithm)):
            return DnsError(phase, 'the answer from %s failed TSIG verification (%s): check '
                            'key_secret and key_algorithm' % (self.where, exc))
        if isinstance(exc, dns.exception.Timeout):
            return DnsError(phase, 'no answer from %s within %.1f s. Check server, port and '
                            'firewalls, or raise timeout.' % (self.where, self.timeout))
        if isinstance(exc, ConnectionRefusedError):
            return DnsError(phase, 'connection refused by %s: no DNS server listens there. Check '
                            'server and port.' % self.where)
        if isinstance(exc, EOFError):
            return DnsError(phase, '%s closed the connection without an answer (a TSIG key it '
                            'does not accept, or an overloaded server)' % self.where)
        if isinstance(exc, (OSError, socket.error)):
            return DnsError(phase, 'network error talking to %s: %s' % (self.where, exc))
        if isinstance(exc, dns.exception.DNSException):
            return DnsError(phase, 'DNS error from %s: %s' % (self.where, exc))
        return None

    def exchange(self, phase, message):
        """Send a query ``message``; return the response. All failures become DnsError."""
        try:
            if self.protocol == 'udp':
                try:
                    return dns.query.udp(message, self.address, port=self.port,
                                         timeout=self.timeout, raise_on_truncation=True)
                except dns.message.Truncated:
                    return self._tcp_after_truncation(phase, message)
            return dns.query.tcp(message, self.address, port=self.port, timeout=self.timeout)
        except DnsError:
            raise
        except Exception as e:  # translated below; anything unknown is re-raised
            err = self._explain(phase, e)
            if err is None:
                raise
            raise err

    def _tcp_after_truncation(self, phase, message):
        """The question again over TCP, after a truncated UDP answer (RFC 7766 section 5)."""
        try:
            return dns.query.tcp(message, self.address, port=self.port, timeout=self.timeout)
        except Exception as e:
            err = self._explain(phase, e)
            if err is None:
                raise
            if isinstance(e, ConnectionRefusedError):
                why = 'the TCP connection was refused'
            elif isinstance(e, dns.exception.Timeout):
                why = 'no answer over TCP within %.1f s' % self.timeout
            else:
                why = 'over TCP: %s' % str(err).split(': ', 1)[-1]
            raise DnsError(phase, '%s answered over UDP with a truncated reply (TC flag): the '
                           'answer does not fit in a UDP datagram, and asking again over TCP '
                           'failed (%s). DNS servers must answer over TCP too (RFC 7766): allow '
                           'TCP port %d to the server.' % (self.where, why, self.port),
                           rcode=err.rcode)

    def send_update(self, message, phase='apply'):
        """The server's answer to an UPDATE message.

        Until the message is on its way, failures are DnsError (nothing was sent, so nothing
        changed); from then on, a missing or unusable answer is UpdateOutcomeUnknown: the server
        may have applied the update, and only a read of the zone can tell."""
        family = socket.AF_INET6 if ':' in self.address else socket.AF_INET
        kind = socket.SOCK_STREAM if self.protocol == 'tcp' else socket.SOCK_DGRAM
        sock = socket.socket(family, kind)
        try:
            sock.settimeout(self.timeout)
            try:
                sock.connect((self.address, self.port))
            except (socket.timeout, TimeoutError):
                raise DnsError(phase, 'no connection to %s within %.1f s, so the update was '
                               'not sent. Check server, port and firewalls, or raise timeout.'
                               % (self.where, self.timeout))
            except OSError as e:
                raise self._explain(phase, e)
            sock.setblocking(False)
            try:
                if self.protocol == 'tcp':
                    return dns.query.tcp(message, self.address, port=self.port,
                                         timeout=self.timeout, sock=sock)
                # a truncated answer says nothing (it may be a forgery, or cut by the path):
                # settled by reading the zone, like a lost one
                return dns.query.udp(message, self.address, port=self.port,
                                     timeout=self.timeout, sock=sock, raise_on_truncation=True)
            except dns.tsig.PeerError as e:
                if phase == 'preflight':
                    # an UPDATE that changes nothing: the error names what is wrong with the key
                    raise self._explain(phase, e)
                # A TSIG error answer is not signed (RFC 8945 5.3.2): anyone on the path could
                # have sent it, so it proves nothing about what the server did with the update.
                raise UpdateOutcomeUnknown(phase, _lost_reply(self, e))
            except ConnectionRefusedError as e:
                if self.protocol == 'udp':  # ICMP port unreachable: the datagram was not taken
                    raise self._explain(phase, e)
                raise UpdateOutcomeUnknown(phase, _lost_reply(self, e))
            except Exception as e:
                raise UpdateOutcomeUnknown(phase, _lost_reply(self, e))
        finally:
            sock.close()

    def query(self, name, rdtype, phase='read'):
        q = dns.message.make_query(name, rdtype, use_edns=True, payload=4096)
        if self.keyring:
            q.use_tsig(self.keyring, keyname=self.keyname, algorithm=self.algorithm)
        return self.exchange(phase, q)

    # -- zone discovery -----------------------------------------------------------------------
    def find_zone(self, name):
        """The zone (absolute name text) this server is authoritative for that holds ``name``."""
        qname = to_name(name)
        while True:
            r = self.query(qname, 'SOA', phase='find zone')
            rcode = dns.rcode.to_text(r.rcode())
            if rcode not in ('NOERROR', 'NXDOMAIN'):
                raise DnsError('find zone', '%s answered %s for the SOA of %s: it is not '
                               'authoritative for that name. Set zone, or point server at the '
                               'primary of the zone.' % (self.where, rcode, name_text(qname)))
            for section in (r.answer, r.authority):
                for rrset in section:
                    if rrset.rdtype == dns.rdatatype.SOA:
                        return name_text(rrset.name)
            for rrset in r.authority:
                if rrset.rdtype == dns.rdatatype.NS:  # a referral: the name is delegated
                    raise DnsError('find zone', '%s is in the zone %s, which %s delegates to %s. '
                                   'Point server at the primary of %s.'
                                   % (name_text(to_name(name)), name_text(rrset.name), self.where,
                                      ', '.join(sorted(rd.target.to_text() for rd in rrset)),
                                      name_text(rrset.name)))
            if qname == dns.name.root or len(qname.labels) <= 2:
                raise DnsError('find zone', '%s gave no SOA for %s or its parents. Set zone.'
                               % (self.where, name))
            qname = qname.parent()

    # -- reading ------------------------------------------------------------------------------
    def read(self, zone, names):
        """A Snapshot holding every rrset at ``names`` (and the SOA serial)."""
        try:
            return self._read_axfr(zone)
        except DnsError as e:
            # A transfer the server refuses, cannot serve, or that a firewall drops: the
            # signed queries may still get through (they use protocol; a transfer uses TCP).
            if e.rcode not in ('REFUSED', 'NOTAUTH', 'NOTIMP', 'SERVFAIL') and \
                    not getattr(e, 'transfer_blocked', False):
                raise
            refused = e
        key = self.keyname.to_text(omit_final_dot=True) if self.keyname else None
        # A signed transfer refused: either the key is unknown (the queries get BADKEY too) or
        # it is only kept from transferring the zone (the queries work).
        key_refused = key is not None and refused.rcode in ('REFUSED', 'NOTAUTH')
        try:
            snapshot = self._read_queries(zone, names)
        except DnsError as e:
            if key_refused and getattr(e, 'tsig_error', None) == 'BADKEY':
                raise DnsError('read', '%s does not know the TSIG key %s: it refused the key for '
                               'the zone transfer of %s and for queries (BADKEY), so the key is '
                               'unknown to it, not only kept from transferring the zone. %s'
                               % (self.where, key, zone, UNKNOWN_KEY_HINT), rcode='NOTAUTH')
            raise
        if key_refused:
            snapshot.warnings.append(
                '%s: the TSIG key %s is not allowed to transfer %s, though the server accepts '
                'it for queries, so the records were read with signed queries (read_method: '
                'query). To read by zone transfer, allow the key to transfer the zone (BIND: '
                'allow-transfer { key "%s"; }; Knot DNS: an acl with key: %s and action: '
                'transfer).' % (str(refused).split(': ', 1)[-1], key, zone, key, key))
        return snapshot

    def _read_axfr(self, zone):
        try:
            xfr = dns.query.xfr(self.address, zone, port=self.port, keyring=self.keyring,
                                keyname=self.keyname, keyalgorithm=self.algorithm,
                                timeout=self.timeout, lifetime=max(self.timeout * 6, 30),
                                relativize=False)
            z = dns.zone.from_xfr(xfr, relativize=False)
        except dns.xfr.TransferError as e:
            rcode = dns.rcode.to_text(e.rcode)
            raise DnsError('read', '%s refused the zone transfer of %s (%s)'
                           % (self.where, zone, rcode), rcode=rcode)
        except (dns.tsig.PeerBadKey, dns.tsig.PeerBadSignature) as e:
            # RFC 8945 5.3: NOTAUTH with a TSIG error. Knot DNS answers so when the zone's
            # transfer ACL names no key (it matches only unsigned requests), even for a key it
            # accepts for queries and updates: whether the key is unknown, the queries tell.
            tsig_error = 'BADKEY' if isinstance(e, dns.tsig.PeerBadKey) else 'BADSIG'
            err = DnsError('read', '%s refused the TSIG-signed zone transfer of %s (NOTAUTH, TSIG '
                           'error %s)' % (self.where, zone, tsig_error), rcode='NOTAUTH')
            err.tsig_error = tsig_error
            raise err
        except dns.exception.FormError as e:
            raise DnsError('read', 'zone transfer of %s from %s failed: %s' % (zone, self.where, e),
                           rcode='NOTIMP')
        except Exception as e:
            err = self._explain('read', e)
            if err is None:
                raise
            err.transfer_blocked = isinstance(e, dns.exception.Timeout) or (
                isinstance(e, ConnectionRefusedError) and self.protocol == 'udp')
            raise err
        rrsets = {}
        serial = None
        for owner, node in z.nodes.items():
            name = name_text(owner)
            for rds in node.rdatasets:
                if dns.rdatatype.to_text(rds.rdtype) in DNSSEC_TYPES:
                    continue  # maintained by the signer; never planned, never compared
                if rds.rdtype == dns.rdatatype.SOA:
                    serial = rds[0].serial
                rr = RRset.from_rdataset(name, rds)
                rrsets[rr.key] = rr
        return Snapshot(zone, serial, rrsets, 'axfr')

    def _read_queries(self, zone, names):
        rrsets = {}
        for name in sorted(set(names)):
            found = self._rrsets_at(name, 'read')
            # A name that does not exist answers with the data of the wildcard that covers it
            # (RFC 4592): that data is not at the name, and the update must not treat it so.
            # A name with data of its own is never synthesised, so only when everything found
            # equals the wildcard's data is it left out.
            wildcard = self.wildcard_rrsets(name, zone)
            if found and wildcard and all(
                    wildcard.get(key[1]) is not None and wildcard[key[1]].values == rr.values
                    for key, rr in found.items()):
                continue
            rrsets.update(found)
        return Snapshot(zone, self.serial(zone), rrsets, 'query')

    def _rrsets_at(self, name, phase):
        """{(name, type): RRset} of what the server answers at ``name`` for the types mail_dns
        looks at (ANY first; a server may answer ANY with one rrset only, RFC 8482)."""
        rrsets = {}
        for rdtype in ('ANY', 'MX', 'TXT', 'CNAME', 'A', 'AAAA'):
            r = self.query(name, rdtype, phase=phase)
            rcode = dns.rcode.to_text(r.rcode())
            if rcode == 'NXDOMAIN':
                break
            if rcode != 'NOERROR':
                raise DnsError(phase, '%s answered %s to the %s query for %s'
                               % (self.where, rcode, rdtype, name), rcode=rcode)
            for rrset in r.answer:
                if name_text(rrset.name) != name or \
                        dns.rdatatype.to_text(rrset.rdtype) in DNSSEC_TYPES:
                    continue
                rr = RRset.from_rdataset(name, rrset)
                rrsets[rr.key] = rr
        return rrsets

    def wildcard_rrsets(self, name, zone, phase='read'):
        """{type: RRset} of the closest wildcard above ``name`` in ``zone`` that has data (the
        one a query for a name that does not exist would be answered from), or {}."""
        cache = self.__dict__.setdefault('_wildcards', {})
        apex = to_name(zone)
        owner = to_name(name)
        while owner != apex and owner.is_subdomain(apex):
            owner = owner.parent()
            star = name_text(dns.name.Name((b'*',) + owner.labels))
            if star not in cache:
                cache[star] = dict((k[1], rr) for k, rr in self._rrsets_at(star, phase).items())
            if cache[star]:
                return cache[star]
        return {}

    def served(self, keys):
        """{(name, type): RRset or None}: what the server serves for each key now, each asked
        for by a query of its own (an ANY query may show only part of a name's data, RFC
        8482)."""
        out = {}
        for name, rdtype in sorted(set(keys)):
            r = self.query(name, rdtype, phase='verify')
            rcode = dns.rcode.to_text(r.rcode())
            if rcode not in ('NOERROR', 'NXDOMAIN'):
                raise DnsError('verify', '%s answered %s to the %s query for %s'
                               % (self.where, rcode, rdtype, name), rcode=rcode)
            out[(name, rdtype)] = None
            for rrset in r.answer:
                if name_text(rrset.name) == name and dns.rdatatype.to_text(rrset.rdtype) == rdtype:
                    out[(name, rdtype)] = RRset.from_rdataset(name, rrset)
        return out

    def serial(self, zone):
        r = self.query(zone, 'SOA')
        for rrset in r.answer:
            if rrset.rdtype == dns.rdatatype.SOA:
                return rrset[0].serial
        raise DnsError('read', '%s gave no SOA for %s: it is not authoritative for the zone'
                       % (self.where, zone))

    # -- writing ------------------------------------------------------------------------------
    def build_update(self, zone, changes):
        """One UPDATE message: prerequisites are each touched rrset exactly as read."""
        u = dns.update.UpdateMessage(zone, keyring=self.keyring, keyname=self.keyname,
                                     keyalgorithm=self.algorithm or dns.tsig.default_algorithm)
        for c in changes:
            name = dns.name.from_text(c.key[0])
            if c.before is None:
                u.absent(name, c.key[1])
                if c.key[1] == 'CNAME' and all(o.key[0] != c.key[0] for o in changes if o is not c):
                    u.absent(name)  # a new CNAME needs a name that holds no other data
            else:
                u.present(name, *c.before.rdata_list())
        # Deletions first, then additions: RFC 2136 applies update RRs in order, and a server
        # ignores data added next to a CNAME that is only deleted later in the same message.
        adds = []
        for c in changes:
            name = dns.name.from_text(c.key[0])
            rdtype = c.key[1]
            if c.after is None:
                u.delete(name, rdtype)
            elif c.before is None or c.before.ttl != c.after.ttl:
                if c.before is not None:
                    u.delete(name, rdtype)
                adds.append((name, c.after))
            else:
                for value in sorted(c.before.values - c.after.values):
                    u.delete(name, c.before.rdatas[value])
                added = c.after.values - c.before.values
                if added:
                    adds.append((name, RRset(c.after.name, rdtype, c.after.ttl, rdatas=dict(
                        (v, c.after.rdatas.get(v)) for v in added))))
        for name, rrset in adds:
            u.add(name, rrset.ttl, *rrset.rdata_list())
        return u

    def apply_update(self, zone, changes):
        """Send the changes as one UPDATE. ConcurrentChange when the prerequisites fail."""
        u = self.build_update(zone, changes)
        r = self.send_update(u)
        rcode = dns.rcode.to_text(r.rcode())
        if rcode == 'NOERROR':
            return
        if rcode in PREREQ_FAILED:
            raise ConcurrentChange('apply', 'zone %s changed after it was read (%s): a '
                                   'prerequisite of the update no longer holds'
                                   % (zone, rcode), rcode=rcode)
        raise DnsError('apply', '%s answered %s to the update of zone %s: %s Nothing was changed.'
                       % (self.where, rcode, zone, self._refusal(rcode, zone)), rcode=rcode)

    def _refusal(self, rcode, zone, probe=False):
        """What an UPDATE refused with ``rcode`` means, and what to do (``probe``: the update
        that carries only a prerequisite, so no record can be what was refused)."""
        key = self.keyname.to_text(omit_final_dot=True) if self.keyname else None
        who = 'key %s' % key if key else 'unsigned updates'
        hints = {
            'REFUSED': (
                'the server does not take updates of %s from %s: allow them on the server '
                '(BIND: allow-update or update-policy; Knot DNS: an acl with action: update) '
                'and check key_name, key_secret and key_algorithm here.' % (zone, who) if probe
                else
                'the server does not allow %s to update %s (check allow-update / '
                'update-policy on the server, and key_name/key_secret here), or its '
                'integrity checks rejected a record, such as an in-zone MX or CNAME '
                'target without address records (its log names it).' % (who, zone)),
            'NOTAUTH': (
                'the server is not authoritative for %s or did not accept the TSIG key %s. Send '
                'updates to the primary server of the zone.' % (zone, key) if key else
                'the server is not authoritative for %s, or refuses unsigned updates (Knot DNS '
                'answers NOTAUTH to them): give key_name and key_secret or key_file.' % zone),
            'NOTZONE': 'a record name is outside zone %s. Check zone and domain.' % zone,
            'SERVFAIL': 'the server failed to apply it; its log says why (zone frozen, dynamic '
                        'updates off, disk full).',
            'FORMERR': 'the server could not parse the update; report this as a bug with the '
                       'server type and version.',
            'NOTIMP': 'the server does not implement dynamic updates (RFC 2136).',
        }
        if probe and rcode in PREREQ_FAILED:
            return 'the server says the zone has no SOA at %s: it does not serve the zone.' % zone
        return hints.get(rcode, '')

    def prove_update(self, zone):
        """Send an UPDATE that changes nothing: its only content is the prerequisite "the zone's
        SOA exists" (RFC 2136 section 2.4.1) and its update section is empty. A server that takes
        updates of the zone from this key answers NOERROR. It proves the right to update the
        zone, not a per-name policy (BIND update-policy, Knot DNS update-owner): those are
        checked per record, and this message has none. DnsError (phase preflight) otherwise."""
        u = dns.update.UpdateMessage(zone, keyring=self.keyring, keyname=self.keyname,
                                     keyalgorithm=self.algorithm or dns.tsig.default_algorithm)
        u.present(dns.name.from_text(zone), 'SOA')
        try:
            r = self.send_update(u, phase='preflight')
        except UpdateOutcomeUnknown as e:
            raise DnsError('preflight', '%s, for an UPDATE that changes nothing (its only '
                           'prerequisite: the SOA of %s exists), so whether the server takes '
                           'updates is not proven. Nothing was changed; check the server, then '
                           'run again.' % (str(e).split(': ', 1)[-1], zone))
        rcode = dns.rcode.to_text(r.rcode())
        if rcode != 'NOERROR':
            raise DnsError('preflight', '%s answered %s to an UPDATE of zone %s that changes '
                           'nothing (its only prerequisite: the SOA exists): %s Nothing was '
                           'changed.' % (self.where, rcode, zone,
                                         self._refusal(rcode, zone, probe=True)), rcode=rcode)
