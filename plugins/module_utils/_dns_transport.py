# -*- coding: utf-8 -*-
# Copyright (c) exchangeonline.mail contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# Private to this collection: may change without notice.
"""The one DNS transport: how the collection talks to DNS servers, and what it says when that
fails.

* **Options and keys**: the shared connection options (doc fragment exchangeonline.mail.dns),
  BIND key files and TSIG keyrings.
* **Errors**: :class:`DnsError` (a :class:`TaskError` whose fields carry the ``rcode``) and
  :class:`UpdateOutcomeUnknown`; :func:`failure_text` is the one wording of a failed exchange
  (timeout, refused, TSIG errors...) for the server a task writes to and for the servers
  mail_dns_check asks alike; :func:`lost_reply` says why the answer to a sent UPDATE is missing.
* :class:`DnsServer`: one server a task reads and writes, with (optional) TSIG: queries (TCP
  again after a truncated UDP answer), zone transfers, finding the zone of a name, what the
  server serves now, and sending an UPDATE (whose lost answer is never taken as "not applied").
* **Many servers**: ``host[:port]`` parsing, :class:`Target` (one address to ask), the zone's
  name servers, and :class:`Resolver`, which asks many of them in parallel and turns every
  outcome into an ``Observed`` (never an exception).
* :func:`wait_for_answers`: the rounds of questions until the servers give the answers wanted,
  on the one wait helper (``_poll.poll``).

What is asked and what the answers mean is not here: the RFC 2136 provider (``_rfc2136``) and
the engines (``_mail_dns``, ``_mail_dns_check``) decide that.
"""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import base64
import binascii
import errno
import ipaddress
import re
import socket
import traceback
from typing import Any, Callable, Dict, Iterable, List, Optional, Set, Tuple, Union

from ansible_collections.exchangeonline.mail.plugins.module_utils._checks import Observed
from ansible_collections.exchangeonline.mail.plugins.module_utils._errors import TaskError
from ansible_collections.exchangeonline.mail.plugins.module_utils._options import PORT, seconds
from ansible_collections.exchangeonline.mail.plugins.module_utils._poll import poll
from ansible_collections.exchangeonline.mail.plugins.module_utils._records import (
    DNSSEC_TYPES,
    RRset,
    RecordError,
    canonical_value,
    name_text,
    to_name,
)

try:
    from concurrent.futures import ThreadPoolExecutor
    import dns.exception
    import dns.flags
    import dns.message
    import dns.name
    import dns.query
    import dns.rcode
    import dns.rdatatype
    import dns.tsig
    import dns.tsigkeyring
    import dns.xfr
    import dns.zone
    HAS_DNSPYTHON = True
    DNSPYTHON_IMPORT_ERROR = None
except ImportError:
    HAS_DNSPYTHON = False
    DNSPYTHON_IMPORT_ERROR = traceback.format_exc()

KEY_ALGORITHMS = ('hmac-sha256', 'hmac-sha384', 'hmac-sha512', 'hmac-sha224', 'hmac-sha1',
                  'hmac-md5')
UNKNOWN_KEY_HINT = ('Check key_name and key_algorithm, and that the key is configured on the '
                    'server (BIND: a key statement; Knot DNS: the key section and an acl of the '
                    'zone that names the key).')
MAX_WORKERS = 8
AUTHORITATIVE, RESOLVER = 'authoritative', 'resolver'
# Errors that mean "this machine cannot reach that address family", not "the server is down".
_NO_ROUTE = (errno.ENETUNREACH, errno.EADDRNOTAVAIL, errno.EAFNOSUPPORT)


def dns_argument_spec() -> dict:
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


# -- errors -----------------------------------------------------------------------------------
class DnsError(TaskError):
    """A DNS failure: the message names the server, what it answered and what to do. The
    server's answer code, when there was one, is the result field ``rcode`` (None otherwise).
    ``tsig_error`` (BADKEY, BADSIG) is the TSIG error the server sent, for the callers that
    tell an unknown key from a key only kept from one operation."""

    default_phase = 'dns'
    # set by DnsServer.transfer: true when the zone transfer did not get through at all
    transfer_blocked = False

    def __init__(self, message: str, phase: Optional[str] = None, rcode: Optional[str] = None,
                 fields: Optional[dict] = None, tsig_error: Optional[str] = None) -> None:
        super(DnsError, self).__init__(message, phase, dict({'rcode': rcode}, **(fields or {})))
        self.tsig_error = tsig_error

    @property
    def rcode(self) -> Optional[str]:
        return self.fields.get('rcode')


class UpdateOutcomeUnknown(DnsError):
    """The UPDATE was sent, but no usable answer says whether the server applied it: never taken
    as "not applied" (only a read of the zone can tell)."""


def failure_text(exc: BaseException, where: str, timeout: float, key: Optional[str] = None,
                 tries: int = 1, fix: bool = True) -> Optional[str]:
    """The one wording of a failed exchange with the server at ``where``, or None for an
    exception that is not a network or DNS failure (a bug, raised on). ``key``: the TSIG key
    name that signed the request; ``tries``: how many times it was asked; ``fix``: add what to
    do about it (for the server the task was given; mail_dns_check lists the servers it asked
    without)."""
    def with_fix(text: str, hint: str) -> str:
        return '%s. %s' % (text, hint) if fix else text
    if isinstance(exc, dns.tsig.PeerBadKey):
        return ('%s does not know the TSIG key %s (BADKEY): the key is unknown to it. %s'
                % (where, key, UNKNOWN_KEY_HINT))
    if isinstance(exc, dns.tsig.PeerBadSignature):
        return ('%s rejected the TSIG signature of key %s (BADSIG): the key_secret or '
                'key_algorithm does not match the server\'s key.' % (where, key))
    if isinstance(exc, dns.tsig.PeerBadTime):
        return ('%s rejected the TSIG time (BADTIME): this machine\'s clock and the server\'s '
                'differ by more than 5 minutes.' % where)
    if isinstance(exc, dns.tsig.PeerError):
        return '%s answered with a TSIG error: %s' % (where, exc)
    if isinstance(exc, (dns.tsig.BadSignature, dns.tsig.BadTime, dns.tsig.BadAlgorithm)):
        return ('the answer from %s failed TSIG verification (%s): check key_secret and '
                'key_algorithm' % (where, exc))
    if isinstance(exc, (dns.exception.Timeout, socket.timeout, TimeoutError)):
        text = 'no answer from %s within %.1f s' % (where, timeout)
        if tries > 1:
            text += ' (%d tries)' % tries
        return with_fix(text, 'Check server, port and firewalls, or raise timeout.')
    if isinstance(exc, ConnectionRefusedError):
        return with_fix('connection refused by %s: no DNS server listens there' % where,
                        'Check server and port.')
    if isinstance(exc, EOFError):
        return ('%s closed the connection without an answer (a TSIG key it does not accept, or '
                'an overloaded server)' % where)
    if isinstance(exc, (OSError, socket.error)):
        return 'network error talking to %s: %s' % (where, exc)
    if isinstance(exc, dns.exception.DNSException):
        return 'bad answer from %s: %s' % (where, exc)
    return None


def lost_reply(where: str, timeout: float, exc: BaseException) -> str:
    """Why the answer to an UPDATE sent to ``where`` is missing, in words."""
    if isinstance(exc, (dns.exception.Timeout, socket.timeout, TimeoutError)):
        what = 'no answer within %.1f s' % timeout
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
    return 'the update was sent to %s, but %s' % (where, what)


# -- TSIG -------------------------------------------------------------------------------------
def read_key_file(path: str, key_name: Optional[str] = None) -> Tuple[str, str, str]:
    """(name, algorithm, secret) from a BIND key file (``tsig-keygen`` output)."""
    try:
        with open(path, 'rb') as f:
            raw = f.read(65537)
    except (IOError, OSError) as e:
        raise DnsError('cannot read key_file %s: %s' % (path, e), 'key')
    if len(raw) > 65536:
        raise DnsError('key_file %s is larger than 64 KiB: it is not a BIND key file'
                       % path, 'key')
    try:
        text = raw.decode('utf-8')
    except UnicodeDecodeError as e:
        raise DnsError('key_file %s is not a text file (byte %d is not UTF-8): give the '
                       'key file tsig-keygen wrote' % (path, e.start), 'key')
    text = _strip_comments(text)
    keys = []
    for m in re.finditer(r'key\s+"?([^"\s{]+)"?\s*\{(.*?)\}\s*;', text, re.S):
        algo = re.search(r'algorithm\s+"?([\w.-]+)"?\s*;', m.group(2))
        secret = re.search(r'secret\s+"([^"]+)"\s*;', m.group(2))
        if algo and secret:
            keys.append((m.group(1), algo.group(1).lower(), secret.group(1)))
    if not keys:
        raise DnsError('key_file %s holds no key { algorithm ...; secret "..."; }; block'
                       % path, 'key')
    if key_name:
        keys = [k for k in keys if k[0].rstrip('.').lower() == key_name.rstrip('.').lower()]
        if not keys:
            raise DnsError('key_file %s has no key named %s' % (path, key_name), 'key')
    elif len(keys) > 1:
        raise DnsError('key_file %s holds %d keys (%s): set key_name to choose one'
                       % (path, len(keys), ', '.join(k[0] for k in keys)), 'key')
    return keys[0]


def _strip_comments(text: str) -> str:
    """named.conf syntax: drop #, // and /* */ comments, but never inside quoted strings (a
    base64 secret may hold '//')."""
    return re.sub(r'("(?:[^"\\]|\\.)*")|#[^\n]*|//[^\n]*|/\*.*?\*/',
                  lambda m: m.group(1) or '', text, flags=re.S)


def make_keyring(params: Dict[str, Any]) -> Tuple[Any, Any, Any]:
    """(keyring, keyname, algorithm) from module params, or (None, None, None) for no TSIG."""
    name, algorithm, secret = params.get('key_name'), params.get('key_algorithm'), \
        params.get('key_secret')
    if params.get('key_file'):
        name, algorithm, secret = read_key_file(params['key_file'], name)
    if not name:
        return None, None, None
    if not secret:
        raise DnsError('key_name %s needs key_secret or key_file' % name, 'key')
    if algorithm == 'hmac-md5.sig-alg.reg.int':
        algorithm = 'hmac-md5'
    if algorithm not in KEY_ALGORITHMS:
        raise DnsError('unsupported TSIG algorithm %s; use one of %s'
                       % (algorithm, ', '.join(KEY_ALGORITHMS)), 'key')
    try:
        base64.b64decode(secret, validate=True)
    except (binascii.Error, ValueError, TypeError):
        raise DnsError('the TSIG secret of key %s is not valid base64' % name, 'key')
    try:
        keyname = to_name(name, what='key_name')
    except RecordError as e:
        raise DnsError(e.message, 'key')
    algo = dns.name.from_text(algorithm if algorithm != 'hmac-md5'
                              else 'hmac-md5.sig-alg.reg.int')
    keyring = dns.tsigkeyring.from_text({keyname.to_text(): (algo.to_text(), secret)})
    return keyring, keyname, algo


# -- servers ----------------------------------------------------------------------------------
def split_host_port(text: str, default_port: int, what: str = 'server') -> Tuple[str, int]:
    """(host, port) from ``host``, ``host:port``, ``[v6]``, ``[v6]:port`` or a bare IPv6;
    ``what`` names the option in messages."""
    if not isinstance(text, str) or not text.strip():
        raise RecordError('%s: a name server must be a non-empty string, got %r' % (what, text))
    text = text.strip()
    shown = '%s %r' % (what, text if len(text) <= 80 else text[:80] + '...')
    port: Union[int, str] = default_port
    if text.startswith('['):
        host, sep, rest = text[1:].partition(']')
        if not sep or (rest and not rest.startswith(':')):
            raise RecordError('%s is not a valid server: write an IPv6 address with a port as '
                              '[2001:db8::53]:53' % shown)
        port = rest[1:] if rest else port
        _ip_or_fail(host, shown)
    elif text.count(':') == 1:
        host, port = text.split(':')
    else:
        host = text
        if ':' in host:
            _ip_or_fail(host, shown)
    try:
        port = int(port)
    except (TypeError, ValueError):
        raise RecordError('%s is not a valid server: the port must be a number' % shown)
    if not 0 < port < 65536:
        raise RecordError('%s is not a valid server: port %d is out of range' % (shown, port))
    if not host:
        raise RecordError('%s is not a valid server: the host is empty' % shown)
    if not is_ip(host):
        to_name(host, what=what)  # a host name: no spaces, labels of at most 63 octets
    return host, port


def _ip_or_fail(host: str, shown: str) -> None:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        raise RecordError('%s is not a valid server: %r is not an IPv6 address' % (shown, host))


def is_ip(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
        return True
    except ValueError:
        return False


class ZoneTooLarge(Exception):
    """A zone transfer stopped after more records than its limit (``records``: how many came)."""

    def __init__(self, zone: str, records: int) -> None:
        super(ZoneTooLarge, self).__init__('%s: more than %d records' % (zone, records))
        self.records = records


def _capped(messages: Any, limit: int, zone: str) -> Any:
    """The messages of a transfer, ZoneTooLarge once they hold more than ``limit`` records
    (DNSSEC records, which the read leaves out, do not count)."""
    seen = 0
    for message in messages:
        seen += sum(len(rrset) for rrset in message.answer
                    if dns.rdatatype.to_text(rrset.rdtype) not in DNSSEC_TYPES)
        if seen > limit:
            raise ZoneTooLarge(zone, seen)
        yield message


class DnsServer:
    """One authoritative server reached with (optional) TSIG."""

    def __init__(self, server: str, port: int = 53, keyring: Any = None, keyname: Any = None,
                 algorithm: Any = None, protocol: str = 'tcp', timeout: float = 10.0) -> None:
        """``keyring``, ``keyname``, ``algorithm``: dnspython's, from :func:`make_keyring`."""
        self.server_text = server
        self.port = port
        self.keyring = keyring
        self.keyname = keyname
        self.algorithm = algorithm
        self.protocol = protocol
        self.timeout = timeout
        self.address = self._address_of(server)
        # {wildcard name: {type: RRset}}, asked once per run
        self._wildcards: Dict[str, Dict[str, RRset]] = {}

    @classmethod
    def from_params(cls, params: Dict[str, Any]) -> 'DnsServer':
        keyring, keyname, algorithm = make_keyring(params)
        return cls(params['server'], params['port'], keyring, keyname, algorithm,
                   params['protocol'], params['timeout'])

    def _address_of(self, server: str) -> str:
        try:
            to_name(server, what='server')  # an address is a valid name too
        except RecordError as e:
            raise DnsError('%s. Give the host name or IP address of the DNS server.'
                           % e.message, 'input')
        try:
            infos = socket.getaddrinfo(server, self.port, 0, socket.SOCK_STREAM)
        except (socket.gaierror, UnicodeError) as e:
            raise DnsError('cannot resolve the DNS server name %s: %s. Give its IP '
                           'address as server.' % (server, e), 'connect')
        return str(infos[0][4][0])

    @property
    def where(self) -> str:
        return '%s port %d/%s' % (self.server_text, self.port, self.protocol)

    @property
    def key_text(self) -> Optional[str]:
        """The TSIG key's name, or None for unsigned requests."""
        return self.keyname.to_text(omit_final_dot=True) if self.keyname else None

    def explain(self, phase: str, exc: BaseException) -> Optional[DnsError]:
        """A DnsError for a dnspython/socket exception (``failure_text``), or None for anything
        else (a bug, raised on). BADKEY and BADSIG the server sent are kept in ``tsig_error``."""
        text = failure_text(exc, self.where, self.timeout, key=self.key_text)
        if text is None:
            return None
        tsig_error = {dns.tsig.PeerBadKey: 'BADKEY',
                      dns.tsig.PeerBadSignature: 'BADSIG'}.get(type(exc))
        return DnsError(text, phase, tsig_error=tsig_error)

    def _explained(self, phase: str, exc: BaseException) -> BaseException:
        """What to raise for ``exc``: the DnsError of :meth:`explain`, or ``exc`` itself."""
        return self.explain(phase, exc) or exc

    def exchange(self, phase: str, message: Any) -> Any:
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
            err = self.explain(phase, e)
            if err is None:
                raise
            raise err

    def _tcp_after_truncation(self, phase: str, message: Any) -> Any:
        """The question again over TCP, after a truncated UDP answer (RFC 7766 section 5)."""
        try:
            return dns.query.tcp(message, self.address, port=self.port, timeout=self.timeout)
        except Exception as e:
            err = self.explain(phase, e)
            if err is None:
                raise
            if isinstance(e, ConnectionRefusedError):
                why = 'the TCP connection was refused'
            elif isinstance(e, dns.exception.Timeout):
                why = 'no answer over TCP within %.1f s' % self.timeout
            else:
                why = 'over TCP: %s' % err.message
            raise DnsError('%s answered over UDP with a truncated reply (TC flag): the '
                           'answer does not fit in a UDP datagram, and asking again over TCP '
                           'failed (%s). DNS servers must answer over TCP too (RFC 7766): allow '
                           'TCP port %d to the server.' % (self.where, why, self.port), phase,
                           rcode=err.rcode)

    def send_update(self, message: Any, phase: str = 'apply') -> Any:
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
                raise DnsError('no connection to %s within %.1f s, so the update was '
                               'not sent. Check server, port and firewalls, or raise timeout.'
                               % (self.where, self.timeout), phase)
            except OSError as e:
                raise self._explained(phase, e)
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
                    raise self._explained(phase, e)
                # A TSIG error answer is not signed (RFC 8945 5.3.2): anyone on the path could
                # have sent it, so it proves nothing about what the server did with the update.
                raise UpdateOutcomeUnknown(lost_reply(self.where, self.timeout, e), phase)
            except ConnectionRefusedError as e:
                if self.protocol == 'udp':  # ICMP port unreachable: the datagram was not taken
                    raise self._explained(phase, e)
                raise UpdateOutcomeUnknown(lost_reply(self.where, self.timeout, e), phase)
            except Exception as e:
                raise UpdateOutcomeUnknown(lost_reply(self.where, self.timeout, e), phase)
        finally:
            sock.close()

    def query(self, name: Any, rdtype: str, phase: str = 'read') -> Any:
        """The answer to one (signed) query for ``name`` (a name text or dns.name.Name)."""
        q = dns.message.make_query(name, rdtype, use_edns=True, payload=4096)
        if self.keyring:
            q.use_tsig(self.keyring, keyname=self.keyname, algorithm=self.algorithm)
        return self.exchange(phase, q)

    # -- zone discovery -----------------------------------------------------------------------
    def find_zone(self, name: str) -> str:
        """The zone (absolute name text) this server is authoritative for that holds ``name``."""
        qname = to_name(name)
        while True:
            r = self.query(qname, 'SOA', phase='find zone')
            rcode = dns.rcode.to_text(r.rcode())
            if rcode not in ('NOERROR', 'NXDOMAIN'):
                raise DnsError('%s answered %s for the SOA of %s: it is not '
                               'authoritative for that name. Set zone, or point server at the '
                               'primary of the zone.' % (self.where, rcode, name_text(qname)),
                               'find zone')
            for section in (r.answer, r.authority):
                for rrset in section:
                    if rrset.rdtype == dns.rdatatype.SOA:
                        return name_text(rrset.name)
            for rrset in r.authority:
                if rrset.rdtype == dns.rdatatype.NS:  # a referral: the name is delegated
                    raise DnsError('%s is in the zone %s, which %s delegates to %s. '
                                   'Point server at the primary of %s.'
                                   % (name_text(to_name(name)), name_text(rrset.name), self.where,
                                      ', '.join(sorted(rd.target.to_text() for rd in rrset)),
                                      name_text(rrset.name)), 'find zone')
            if qname == dns.name.root or len(qname.labels) <= 2:
                raise DnsError('%s gave no SOA for %s or its parents. Set zone.'
                               % (self.where, name), 'find zone')
            qname = qname.parent()

    # -- reading ------------------------------------------------------------------------------
    def transfer(self, zone: str, limit: Optional[int] = None
                 ) -> Tuple[Optional[int], Dict[Tuple[str, str], RRset]]:
        """(serial, {(name, type): RRset}) of the whole zone by a (signed) AXFR; DNSSEC data is
        left out (the signer maintains it; never planned, never compared). A DnsError whose
        ``transfer_blocked`` is true when the transfer did not get through at all (a firewall
        dropping TCP): queries may still work. ``limit``: ZoneTooLarge as soon as the transfer
        has brought more records than that (the rest is not read)."""
        xfr = None
        try:
            xfr = dns.query.xfr(self.address, zone, port=self.port, keyring=self.keyring,
                                keyname=self.keyname, keyalgorithm=self.algorithm,
                                timeout=self.timeout, lifetime=max(self.timeout * 6, 30),
                                relativize=False)
            z = dns.zone.from_xfr(xfr if limit is None else _capped(xfr, limit, zone),
                                  relativize=False)
        except ZoneTooLarge:
            if xfr is not None:
                xfr.close()  # ends the transfer: its connection is closed
            raise
        except dns.xfr.TransferError as e:
            rcode = dns.rcode.to_text(e.rcode)
            raise DnsError('%s refused the zone transfer of %s (%s)' % (self.where, zone, rcode),
                           'read', rcode=rcode)
        except (dns.tsig.PeerBadKey, dns.tsig.PeerBadSignature) as e:
            # RFC 8945 5.3: NOTAUTH with a TSIG error. Knot DNS answers so when the zone's
            # transfer ACL names no key (it matches only unsigned requests), even for a key it
            # accepts for queries and updates: whether the key is unknown, the queries tell.
            tsig_error = 'BADKEY' if isinstance(e, dns.tsig.PeerBadKey) else 'BADSIG'
            raise DnsError('%s refused the TSIG-signed zone transfer of %s (NOTAUTH, TSIG error '
                           '%s)' % (self.where, zone, tsig_error), 'read', rcode='NOTAUTH',
                           tsig_error=tsig_error)
        except dns.exception.FormError as e:
            raise DnsError('zone transfer of %s from %s failed: %s' % (zone, self.where, e),
                           'read', rcode='NOTIMP')
        except Exception as e:
            err = self.explain('read', e)
            if err is None:
                raise
            err.transfer_blocked = isinstance(e, dns.exception.Timeout) or (
                isinstance(e, ConnectionRefusedError) and self.protocol == 'udp')
            raise err
        rrsets: Dict[Tuple[str, str], RRset] = {}
        serial = None
        for owner, node in z.nodes.items():
            name = name_text(owner)
            for rds in node.rdatasets:
                if dns.rdatatype.to_text(rds.rdtype) in DNSSEC_TYPES:
                    continue
                if rds.rdtype == dns.rdatatype.SOA:
                    serial = rds[0].serial
                rr = RRset.from_rdataset(name, rds)
                rrsets[rr.key] = rr
        return serial, rrsets

    def rrsets_at(self, name: str, phase: str) -> Dict[Tuple[str, str], RRset]:
        """{(name, type): RRset} of what the server answers at ``name`` for the types mail_dns
        looks at (ANY first; a server may answer ANY with one rrset only, RFC 8482)."""
        rrsets: Dict[Tuple[str, str], RRset] = {}
        for rdtype in ('ANY', 'MX', 'TXT', 'CNAME', 'A', 'AAAA'):
            r = self.query(name, rdtype, phase=phase)
            rcode = dns.rcode.to_text(r.rcode())
            if rcode == 'NXDOMAIN':
                break
            if rcode != 'NOERROR':
                raise DnsError('%s answered %s to the %s query for %s'
                               % (self.where, rcode, rdtype, name), phase, rcode=rcode)
            for rrset in r.answer:
                if name_text(rrset.name) != name or \
                        dns.rdatatype.to_text(rrset.rdtype) in DNSSEC_TYPES:
                    continue
                rr = RRset.from_rdataset(name, rrset)
                rrsets[rr.key] = rr
        return rrsets

    def wildcard_rrsets(self, name: str, zone: str, phase: str = 'read') -> Dict[str, RRset]:
        """{type: RRset} of the closest wildcard above ``name`` in ``zone`` that has data (the
        one a query for a name that does not exist would be answered from), or {}."""
        apex = to_name(zone)
        owner = to_name(name)
        while owner != apex and owner.is_subdomain(apex):
            owner = owner.parent()
            star = name_text(dns.name.Name((b'*',) + owner.labels))
            if star not in self._wildcards:
                self._wildcards[star] = dict(
                    (k[1], rr) for k, rr in self.rrsets_at(star, phase).items())
            if self._wildcards[star]:
                return self._wildcards[star]
        return {}

    def served(self, keys: Iterable[Tuple[str, str]]) -> Dict[Tuple[str, str], Optional[RRset]]:
        """{(name, type): RRset or None}: what the server serves for each key now, each asked
        for by a query of its own (an ANY query may show only part of a name's data, RFC
        8482)."""
        out: Dict[Tuple[str, str], Optional[RRset]] = {}
        for name, rdtype in sorted(set(keys)):
            r = self.query(name, rdtype, phase='verify')
            rcode = dns.rcode.to_text(r.rcode())
            if rcode not in ('NOERROR', 'NXDOMAIN'):
                raise DnsError('%s answered %s to the %s query for %s'
                               % (self.where, rcode, rdtype, name), 'verify', rcode=rcode)
            out[(name, rdtype)] = None
            for rrset in r.answer:
                if name_text(rrset.name) == name and dns.rdatatype.to_text(rrset.rdtype) == rdtype:
                    out[(name, rdtype)] = RRset.from_rdataset(name, rrset)
        return out

    def serial(self, zone: str) -> int:
        r = self.query(zone, 'SOA')
        for rrset in r.answer:
            if rrset.rdtype == dns.rdatatype.SOA:
                return rrset[0].serial
        raise DnsError('%s gave no SOA for %s: it is not authoritative for the zone'
                       % (self.where, zone), 'read')


class Target:
    """One address to ask: an authoritative name server or a recursive resolver."""

    __slots__ = ('label', 'host', 'address', 'port', 'kind', 'error', 'reachable')

    def __init__(self, label: str, host: str, address: Optional[str], port: int, kind: str,
                 error: Optional[str] = None) -> None:
        self.label = label
        self.host = host
        self.address = address
        self.port = port
        self.kind = kind
        self.error = error
        self.reachable = False

    def to_dict(self) -> Dict[str, Any]:
        d: Dict[str, Any] = {'name': self.label, 'host': self.host, 'address': self.address,
                             'port': self.port, 'kind': self.kind, 'reachable': self.reachable}
        if self.error:
            d['error'] = self.error
        return d


def addresses_of(host: str, server: Optional[DnsServer] = None) -> Tuple[List[str], Optional[str]]:
    """([addresses], error): an IP as it is; a name from ``server`` (in-zone A/AAAA), then from
    the system resolver."""
    if is_ip(host):
        return [host], None
    found: List[str] = []
    if server is not None:
        for rdtype in ('A', 'AAAA'):
            try:
                r = server.query(to_name(host), rdtype, phase='find name servers')
            except DnsError:
                continue
            for rrset in r.answer:
                if rrset.rdtype in (dns.rdatatype.A, dns.rdatatype.AAAA):
                    found.extend(rd.address for rd in rrset if rd.address not in found)
    if found:
        return found, None
    try:
        infos = socket.getaddrinfo(host, None, 0, socket.SOCK_DGRAM)
    except (socket.gaierror, UnicodeError) as e:
        return [], 'cannot resolve the name server %s to an address: %s' % (host, e)
    for info in infos:
        address = str(info[4][0])
        if address not in found:
            found.append(address)
    return found, None


def make_targets(host: str, port: int, kind: str, server: Optional[DnsServer] = None,
                 label: Optional[str] = None) -> List[Target]:
    """Targets for one server entry: one per address of ``host``."""
    label = label or host.rstrip('.')
    addresses, error = addresses_of(host, server)
    if error:
        return [Target(label, host, None, port, kind, error)]
    if len(addresses) == 1:
        return [Target(label, host, addresses[0], port, kind)]
    return [Target('%s/%s' % (label, a), host, a, port, kind) for a in addresses]


def discover_nameservers(server: DnsServer, zone: str) -> List[str]:
    """The host names in the zone's NS rrset, as ``server`` serves it."""
    r = server.query(to_name(zone), 'NS', phase='find name servers')
    rcode = dns.rcode.to_text(r.rcode())
    if rcode != 'NOERROR':
        raise DnsError('%s answered %s to the NS query for %s. Set zone, '
                       'or give nameservers.' % (server.where, rcode, zone), 'find name servers',
                       rcode=rcode)
    hosts: List[str] = []
    for rrset in r.answer:
        if rrset.rdtype == dns.rdatatype.NS and name_text(rrset.name) == zone:
            hosts.extend(name_text(rd.target) for rd in rrset)
    if not hosts:
        raise DnsError('%s has no NS records for %s. Give nameservers.'
                       % (server.where, zone), 'find name servers')
    return sorted(set(hosts))


def unique_labels(targets: List[Target]) -> List[Target]:
    seen: Set[str] = set()
    for t in targets:
        if t.label in seen:
            t.label = '%s (%s)' % (t.label, t.kind)
        seen.add(t.label)
    return targets


# -- queries ----------------------------------------------------------------------------------
class Truncated(Exception):
    """A UDP answer was truncated and the same question over TCP failed."""

    def __init__(self, exc: BaseException) -> None:
        super(Truncated, self).__init__(str(exc))
        self.reason = 'connection refused' if isinstance(exc, ConnectionRefusedError) else (
            '%s: %s' % (type(exc).__name__, exc) if str(exc) else type(exc).__name__)


class Resolver:
    """Sends queries; every outcome is an Observed, never an exception."""

    def __init__(self, timeout: float = 10.0, protocol: str = 'udp', retries: int = 1) -> None:
        self.timeout = timeout
        self.protocol = protocol
        self.retries = retries

    def _exchange(self, q: Any, target: Target) -> Any:
        address = target.address
        if address is None:  # make_targets gives a target without an address an error
            raise ValueError('%s has no address to ask' % target.label)
        if self.protocol == 'tcp':
            return dns.query.tcp(q, address, port=target.port, timeout=self.timeout)
        family = socket.AF_INET6 if ':' in address else socket.AF_INET
        sock = socket.socket(family, socket.SOCK_DGRAM)
        try:
            # A connected socket hears the ICMP port-unreachable: "refused" at once, no timeout.
            sock.setblocking(False)
            sock.connect((address, target.port))
            r = dns.query.udp(q, address, port=target.port, timeout=self.timeout,
                              sock=sock)
        finally:
            sock.close()
        if r.flags & dns.flags.TC:
            try:
                r = dns.query.tcp(q, address, port=target.port, timeout=self.timeout)
            except (OSError, EOFError, dns.exception.DNSException) as e:
                raise Truncated(e)
        return r

    def ask(self, target: Target, name: str, rdtype: str) -> Observed:
        """What ``target`` serves for (name, rdtype)."""
        if target.error:
            return Observed(error=target.error)
        q = dns.message.make_query(name, rdtype, use_edns=True, payload=1232)
        if target.kind == AUTHORITATIVE:
            q.flags &= ~dns.flags.RD
        where = '%s port %d' % (target.address, target.port)
        tries = 0
        while True:
            tries += 1
            try:
                r = self._exchange(q, target)
            except Truncated as e:
                return Observed(error='%s answered over UDP with a truncated reply (TC flag) and '
                                'asking again over TCP failed (%s): DNS servers must answer '
                                'over TCP too (RFC 7766); allow TCP to it' % (where, e.reason))
            except (OSError, EOFError, dns.exception.DNSException) as e:
                if isinstance(e, dns.exception.Timeout) and tries <= self.retries:
                    continue
                if isinstance(e, OSError) and e.errno in _NO_ROUTE:
                    return Observed(error='not checked: this machine cannot reach %s (%s)'
                                    % (where, e.strerror or e), unchecked=True)
                return Observed(error=failure_text(e, where, self.timeout, tries=tries,
                                                   fix=False))
            target.reachable = True
            rcode = dns.rcode.to_text(r.rcode())
            if rcode == 'SERVFAIL' and tries <= self.retries:
                continue
            return self._interpret(r, rcode, target, name, rdtype, where)

    @staticmethod
    def _interpret(r: Any, rcode: str, target: Target, name: str, rdtype: str,
                   where: str) -> Observed:
        if rcode == 'NXDOMAIN':
            return Observed([], rcode=rcode)
        if rcode == 'REFUSED':
            return Observed(error='%s refused the query for %s %s%s' % (
                where, name, rdtype, ': it does not serve that zone'
                if target.kind == AUTHORITATIVE else ': it does not resolve for this machine'))
        if rcode != 'NOERROR':
            return Observed(error='%s answered %s to the query for %s %s'
                            % (where, rcode, name, rdtype))
        if target.kind == AUTHORITATIVE and not r.flags & dns.flags.AA:
            return Observed(error='%s answered the query for %s %s without authority (no AA '
                            'flag): it is not authoritative for the zone (lame delegation)'
                            % (where, name, rdtype))
        wanted = dns.rdatatype.from_text(rdtype)
        values: List[str] = []
        cname: Optional[str] = None
        for rrset in r.answer:
            if rrset.rdtype == dns.rdatatype.CNAME and name_text(rrset.name) == name:
                cname = name_text(rrset[0].target)
            if rrset.rdtype == wanted:
                for rd in rrset:
                    value = canonical_value(rdtype, rd)
                    if value not in values:
                        values.append(value)
        return Observed(values, cname=cname)

    def ask_all(self, jobs: List[Tuple[Target, str, str]]) -> List[Observed]:
        """[Observed] for [(target, name, rdtype)], in parallel."""
        if not jobs:
            return []
        with ThreadPoolExecutor(max_workers=min(MAX_WORKERS, len(jobs))) as pool:
            futures = [pool.submit(self._ask_safely, *job) for job in jobs]
            return [f.result() for f in futures]

    def _ask_safely(self, target: Target, name: str, rdtype: str) -> Observed:
        try:
            return self.ask(target, name, rdtype)
        except Exception as e:  # one odd answer must not take down the whole round
            return Observed(error='unexpected error asking %s: %s: %s'
                            % (target.label, type(e).__name__, e))

    def txt_lookup(self, targets: List[Target]) -> Callable[[str], Optional[List[str]]]:
        """``lookup(name)`` for the SPF count: TXT strings from the first target that answers,
        [] when the name does not exist, None when none of them could say."""
        def lookup(name: str) -> Optional[List[str]]:
            for target in targets:
                obs = self.ask(target, name_text(to_name(name)), 'TXT')
                if not obs.error:
                    return obs.values
            return None
        return lookup


# -- waiting ----------------------------------------------------------------------------------
def wait_for_answers(resolver: Resolver, targets: List[Target],
                     questions: List[Tuple[str, str]],
                     judge: Callable[[Dict[str, Dict[Tuple[str, str], Observed]]], Tuple[bool, Any]],
                     wait_timeout: float, interval: float = 1.0,
                     max_interval: float = 10.0) -> Tuple[Any, int, float]:
    """Ask every target every question (in parallel) in rounds until ``judge(observed) ->
    (done, value)`` is done or ``wait_timeout`` seconds have passed (``_poll.poll``: back-off
    from ``interval`` up to ``max_interval``, jittered, never past the deadline). ``observed``
    is {target label: {(name, type): Observed}} in the order of ``targets``; each round starts
    with every target unreachable until it answers. Returns (value, rounds, elapsed seconds)."""
    jobs = [(t, name, rdtype) for t in targets for name, rdtype in questions]

    def attempt() -> Tuple[bool, Any]:
        for t in targets:
            t.reachable = False
        answers = iter(resolver.ask_all(jobs))
        observed: Dict[str, Dict[Tuple[str, str], Observed]] = {}
        for t in targets:
            observed[t.label] = dict((q, next(answers)) for q in questions)
        return judge(observed)

    return poll(attempt, wait_timeout, interval, max_interval)
