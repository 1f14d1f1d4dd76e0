# -*- coding: utf-8 -*-
# Copyright (c) exchangeonline.mail contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# Private to this collection: may change without notice.
"""Asking many DNS servers the same questions, and waiting until they all give the right answers.

* :class:`Resolver` sends one query to one server: UDP (TCP when the answer is truncated), one
  retry on timeout or SERVFAIL, and every failure turned into an :class:`Observed` error text,
  never an exception. Queries of a round run in parallel.
* :func:`discover_targets` finds a zone's authoritative servers from its NS records.
* :func:`poll` is the wait loop: monotonic clock, capped exponential back-off.
* :class:`CheckRun` is the engine of mail_dns_check and ties these to the pure checks in
  ``_checks``.
"""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import errno
import ipaddress
import random
import socket
import time
import traceback

from ansible_collections.exchangeonline.mail.plugins.module_utils._checks import (
    Expectation,
    FAIL,
    Observed,
    behind,
    failure_message,
    judge_all,
    report,
    summary_line,
)
from ansible_collections.exchangeonline.mail.plugins.module_utils._patterns import (
    EXO_AUTODISCOVER,
    EXO_SPF_INCLUDE,
    Spec,
    options_from_records,
)
from ansible_collections.exchangeonline.mail.plugins.module_utils._records import (
    RecordError,
    canonical_value,
    name_text,
    to_name,
)
from ansible_collections.exchangeonline.mail.plugins.module_utils._rfc2136 import (
    DnsError,
    DnsServer,
)

try:
    from concurrent.futures import ThreadPoolExecutor
    import dns.exception
    import dns.flags
    import dns.message
    import dns.query
    import dns.rcode
    import dns.rdatatype
    HAS_DNSPYTHON = True
    DNSPYTHON_IMPORT_ERROR = None
except ImportError:
    HAS_DNSPYTHON = False
    DNSPYTHON_IMPORT_ERROR = traceback.format_exc()

MAX_WORKERS = 8
AUTHORITATIVE, RESOLVER = 'authoritative', 'resolver'
# Errors that mean "this machine cannot reach that address family", not "the server is down".
_NO_ROUTE = (errno.ENETUNREACH, errno.EADDRNOTAVAIL, errno.EAFNOSUPPORT)


# -- servers ----------------------------------------------------------------------------------
def split_host_port(text, default_port, what='server'):
    """(host, port) from ``host``, ``host:port``, ``[v6]``, ``[v6]:port`` or a bare IPv6;
    ``what`` names the option in messages."""
    if not isinstance(text, str) or not text.strip():
        raise RecordError('%s: a name server must be a non-empty string, got %r' % (what, text))
    text = text.strip()
    shown = '%s %r' % (what, text if len(text) <= 80 else text[:80] + '...')
    port = default_port
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


def _ip_or_fail(host, shown):
    try:
        ipaddress.ip_address(host)
    except ValueError:
        raise RecordError('%s is not a valid server: %r is not an IPv6 address' % (shown, host))


def is_ip(host):
    try:
        ipaddress.ip_address(host)
        return True
    except ValueError:
        return False


class Target:
    """One address to ask: an authoritative name server or a recursive resolver."""

    __slots__ = ('label', 'host', 'address', 'port', 'kind', 'error', 'reachable')

    def __init__(self, label, host, address, port, kind, error=None):
        self.label = label
        self.host = host
        self.address = address
        self.port = port
        self.kind = kind
        self.error = error
        self.reachable = False

    def to_dict(self):
        d = {'name': self.label, 'host': self.host, 'address': self.address, 'port': self.port,
             'kind': self.kind, 'reachable': self.reachable}
        if self.error:
            d['error'] = self.error
        return d


def addresses_of(host, server=None):
    """([addresses], error): an IP as it is; a name from ``server`` (in-zone A/AAAA), then from
    the system resolver."""
    if is_ip(host):
        return [host], None
    found = []
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
        if info[4][0] not in found:
            found.append(info[4][0])
    return found, None


def make_targets(host, port, kind, server=None, label=None):
    """Targets for one server entry: one per address of ``host``."""
    label = label or host.rstrip('.')
    addresses, error = addresses_of(host, server)
    if error:
        return [Target(label, host, None, port, kind, error)]
    if len(addresses) == 1:
        return [Target(label, host, addresses[0], port, kind)]
    return [Target('%s/%s' % (label, a), host, a, port, kind) for a in addresses]


def discover_nameservers(server, zone):
    """The host names in the zone's NS rrset, as ``server`` serves it."""
    r = server.query(to_name(zone), 'NS', phase='find name servers')
    rcode = dns.rcode.to_text(r.rcode())
    if rcode != 'NOERROR':
        raise DnsError('find name servers', '%s answered %s to the NS query for %s. Set zone, '
                       'or give nameservers.' % (server.where, rcode, zone), rcode=rcode)
    hosts = []
    for rrset in r.answer:
        if rrset.rdtype == dns.rdatatype.NS and name_text(rrset.name) == zone:
            hosts.extend(name_text(rd.target) for rd in rrset)
    if not hosts:
        raise DnsError('find name servers', '%s has no NS records for %s. Give nameservers.'
                       % (server.where, zone))
    return sorted(set(hosts))


def unique_labels(targets):
    seen = set()
    for t in targets:
        if t.label in seen:
            t.label = '%s (%s)' % (t.label, t.kind)
        seen.add(t.label)
    return targets


# -- queries ----------------------------------------------------------------------------------
class Truncated(Exception):
    """A UDP answer was truncated and the same question over TCP failed."""

    def __init__(self, exc):
        super(Truncated, self).__init__(str(exc))
        self.reason = 'connection refused' if isinstance(exc, ConnectionRefusedError) else (
            '%s: %s' % (type(exc).__name__, exc) if str(exc) else type(exc).__name__)


class Resolver:
    """Sends queries; every outcome is an Observed, never an exception."""

    def __init__(self, timeout=10.0, protocol='udp', retries=1):
        self.timeout = timeout
        self.protocol = protocol
        self.retries = retries

    def _exchange(self, q, target):
        if self.protocol == 'tcp':
            return dns.query.tcp(q, target.address, port=target.port, timeout=self.timeout)
        family = socket.AF_INET6 if ':' in target.address else socket.AF_INET
        sock = socket.socket(family, socket.SOCK_DGRAM)
        try:
            # A connected socket hears the ICMP port-unreachable: "refused" at once, no timeout.
            sock.setblocking(False)
            sock.connect((target.address, target.port))
            r = dns.query.udp(q, target.address, port=target.port, timeout=self.timeout,
                              sock=sock)
        finally:
            sock.close()
        if r.flags & dns.flags.TC:
            try:
                r = dns.query.tcp(q, target.address, port=target.port, timeout=self.timeout)
            except (OSError, EOFError, dns.exception.DNSException) as e:
                raise Truncated(e)
        return r

    def ask(self, target, name, rdtype):
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
            except dns.exception.Timeout:
                if tries <= self.retries:
                    continue
                return Observed(error='no answer from %s within %.1f s (%d tries)'
                                % (where, self.timeout, tries))
            except ConnectionRefusedError:
                return Observed(error='connection refused by %s: no DNS server listens there'
                                % where)
            except OSError as e:
                if e.errno in _NO_ROUTE:
                    return Observed(error='not checked: this machine cannot reach %s (%s)'
                                    % (where, e.strerror or e), unchecked=True)
                return Observed(error='network error talking to %s: %s' % (where, e))
            except dns.exception.DNSException as e:
                return Observed(error='bad answer from %s: %s' % (where, e))
            target.reachable = True
            rcode = dns.rcode.to_text(r.rcode())
            if rcode == 'SERVFAIL' and tries <= self.retries:
                continue
            return self._interpret(r, rcode, target, name, rdtype, where)

    @staticmethod
    def _interpret(r, rcode, target, name, rdtype, where):
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
        values, cname = [], None
        for rrset in r.answer:
            if rrset.rdtype == dns.rdatatype.CNAME and name_text(rrset.name) == name:
                cname = name_text(rrset[0].target)
            if rrset.rdtype == wanted:
                for rd in rrset:
                    value = canonical_value(rdtype, rd)
                    if value not in values:
                        values.append(value)
        return Observed(values, cname=cname)

    def ask_all(self, jobs):
        """[Observed] for [(target, name, rdtype)], in parallel."""
        if not jobs:
            return []
        with ThreadPoolExecutor(max_workers=min(MAX_WORKERS, len(jobs))) as pool:
            futures = [pool.submit(self._ask_safely, *job) for job in jobs]
            return [f.result() for f in futures]

    def _ask_safely(self, target, name, rdtype):
        try:
            return self.ask(target, name, rdtype)
        except Exception as e:  # one odd answer must not take down the whole round
            return Observed(error='unexpected error asking %s: %s: %s'
                            % (target.label, type(e).__name__, e))

    def txt_lookup(self, targets):
        """``lookup(name)`` for the SPF count: TXT strings from the first target that answers,
        [] when the name does not exist, None when none of them could say."""
        def lookup(name):
            for target in targets:
                obs = self.ask(target, name_text(to_name(name)), 'TXT')
                if not obs.error:
                    return obs.values
            return None
        return lookup


# -- waiting ----------------------------------------------------------------------------------
def poll(attempt, wait_timeout, interval=1.0, max_interval=10.0, clock=time.monotonic,
         sleep=time.sleep):
    """Call ``attempt() -> (done, value)`` until done or ``wait_timeout`` seconds have passed;
    the pause doubles from ``interval`` up to ``max_interval`` (each with 10 % jitter, so many
    hosts checking at once spread out) and never overshoots the deadline.
    Returns (value, rounds, elapsed seconds)."""
    start = clock()
    deadline = start + max(wait_timeout, 0)
    delay = interval
    rounds = 0
    while True:
        rounds += 1
        done, value = attempt()
        now = clock()
        if done or now >= deadline:
            return value, rounds, now - start
        sleep(min(delay * random.uniform(0.9, 1.1), deadline - now))
        delay = min(delay * 2, max_interval)


# -- the engine of mail_dns_check -------------------------------------------------------------
def expectation_from_params(p):
    """The Expectation from module parameters (explicit options win over ``records``)."""
    p = dict(p)
    for option, value in options_from_records(p.get('records'), p.get('domain')).items():
        if p.get(option) is None:
            p[option] = value
    spec = Spec(p['domain'], pattern=p.get('pattern') or 'full', mx_host=p.get('mx_host'),
                mx_preference=p.get('mx_preference'), primary=p.get('primary') or 'legacy',
                spf_include=p.get('spf_include') or EXO_SPF_INCLUDE,
                autodiscover_target=p.get('autodiscover_target') or EXO_AUTODISCOVER,
                dkim=p.get('dkim'), verification_txt=p.get('verification_txt'),
                dmarc=p.get('dmarc'))
    return Expectation(spec, p.get('pattern'), p.get('checks'))


class CheckRun:
    def __init__(self, params):
        self.params = params
        self.warnings = []
        self.zone = None

    def _validate(self):
        p = self.params
        if (p.get('wait_timeout') or 0) < 0:
            raise RecordError('wait_timeout must be 0 or more seconds')
        if p.get('interval', 1.0) <= 0 or p.get('max_interval', 10.0) < p.get('interval', 1.0):
            raise RecordError('interval must be above 0 and max_interval at least interval')
        if p.get('timeout', 10.0) <= 0:
            raise RecordError('timeout must be above 0 seconds')

    def targets(self, expect):
        """(targets to check, targets for the SPF include lookups)."""
        p = self.params
        server = DnsServer.from_params(p) if p.get('server') else None
        port = p.get('port') or 53
        targets = []
        if p.get('nameservers'):
            for index, text in enumerate(p['nameservers']):
                host, ns_port = split_host_port(text, port, 'nameservers[%d]' % index)
                targets.extend(make_targets(host, ns_port, AUTHORITATIVE, server, label=text))
        elif server is not None:
            self.zone = name_text(to_name(p['zone'], what='zone')) if p.get('zone') \
                else server.find_zone(expect.domain)
            if not to_name(expect.domain).is_subdomain(to_name(self.zone)):
                raise RecordError('domain %s is not inside zone %s' % (expect.domain, self.zone))
            for host in discover_nameservers(server, self.zone):
                targets.extend(make_targets(host, port, AUTHORITATIVE, server))
        resolvers = []
        for index, text in enumerate(p.get('resolvers') or []):
            host, r_port = split_host_port(text, 53, 'resolvers[%d]' % index)
            resolvers.extend(make_targets(host, r_port, RESOLVER, server, label=text))
        targets = unique_labels(targets + resolvers)
        if resolvers:
            lookup_targets = resolvers
        elif server is not None:
            lookup_targets = [Target(p['server'], p['server'], server.address, port,
                                     AUTHORITATIVE)]
        else:
            lookup_targets = [t for t in targets if not t.error][:1]
        return targets, lookup_targets

    def run(self):
        self._validate()
        p = self.params
        expect = expectation_from_params(p)
        targets, lookup_targets = self.targets(expect)
        resolver = Resolver(p.get('timeout') or 10.0, p.get('protocol') or 'udp')
        questions = expect.questions()
        jobs = [(t, name, rdtype) for t in targets for name, rdtype in questions]

        def attempt():
            for t in targets:
                t.reachable = False
            answers = iter(resolver.ask_all(jobs))
            observed = {}
            for t in targets:
                observed[t.label] = dict((q, next(answers)) for q in questions)
            judged = judge_all(expect, observed, resolver.txt_lookup(lookup_targets))
            checks = report(expect, judged)
            return all(c['status'] != FAIL for c in checks), (checks, judged)

        wait_timeout = p.get('wait_timeout') or 0
        (checks, judged), rounds, elapsed = poll(attempt, wait_timeout, p.get('interval', 1.0),
                                                 p.get('max_interval', 10.0))
        ok = all(c['status'] != FAIL for c in checks)
        result = {'changed': False, 'ok': ok, 'domain': expect.domain, 'checks': checks,
                  'servers': [t.to_dict() for t in targets], 'rounds': rounds,
                  'elapsed': round(elapsed, 3), 'behind': behind(judged),
                  'summary': summary_line(judged)}
        if self.zone:
            result['zone'] = self.zone
        if not ok:
            result['msg'] = failure_message(expect.domain, checks, rounds, elapsed, wait_timeout)
        if self.warnings:
            result['warnings'] = self.warnings
        return result
