# -*- coding: utf-8 -*-
# Copyright (c) exchangeonline.mail contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# Private to this collection: may change without notice.
"""The ``dnssec`` check of mail_dns_check: is the zone signed, and does its chain of trust hold?

Per server: the zone's DNSKEY rrset and its SOA, asked with the DO bit; the DNSKEY rrset must be
signed by a key that matches a DS of the parent (or a ``trust_anchor``), the SOA by the DNSKEY
set (RFC 4033-4035). Verdicts:

- unsigned (no DNSKEY, no DS): pass with a note (inbound DANE for Exchange Online needs a signed
  zone); a DS at the parent for an unsigned zone: fail (validating resolvers answer SERVFAIL);
- signed, chain valid: pass (warn when an RRSIG expires within ``EXPIRY_WARN`` seconds);
- signed, no DS at the parent: warn (resolvers treat the zone as insecure; mail flows, DANE not);
- signed, broken (no DS matches any DNSKEY, a bad or expired signature): fail.
"""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import time
from typing import Any, Dict, Iterable, List, Optional, Sequence, Tuple

try:  # the module reports a missing dnspython (REQUIRES); the import must not fail before
    import dns.dnssec
    import dns.exception
    import dns.flags
    import dns.message
    import dns.name
    import dns.rcode
    import dns.rdata
    import dns.rdataclass
    import dns.rdatatype
    import dns.rrset
except ImportError:
    pass

from ansible_collections.exchangeonline.mail.plugins.module_utils._checks import (
    FAIL,
    PASS,
    SKIP,
    WARN,
    Outcome,
)
from ansible_collections.exchangeonline.mail.plugins.module_utils._dns_transport import (
    AUTHORITATIVE,
    Resolver,
    Target,
    Truncated,
    _NO_ROUTE,
)
from ansible_collections.exchangeonline.mail.plugins.module_utils._records import RecordError

EXPIRY_WARN = 3 * 86400  # warn when a signature the chain uses expires sooner than this
UNSIGNED_NOTE = 'not signed; inbound DANE for Exchange Online needs a signed zone'
DIGESTS = {1: 'SHA1', 2: 'SHA256', 4: 'SHA384'}


# -- trust anchors ----------------------------------------------------------------------------
def parse_trust_anchor(zone: str, texts: Sequence[str]) -> List[Any]:
    """DS or DNSKEY rdata from ``trust_anchor`` texts (``12345 13 2 ABCD...`` or
    ``257 3 13 base64...``, optionally with owner, class and type in front)."""
    out = []
    for index, text in enumerate(texts):
        words = str(text).split()
        for i, word in enumerate(words):  # drop "zone. [TTL] [IN] DS" in front
            if word.upper() in ('DS', 'DNSKEY'):
                rdtype, rest = word.upper(), words[i + 1:]
                break
        else:
            rdtype = 'DNSKEY' if len(words) > 3 and words[0] in ('256', '257') \
                and words[1] == '3' else 'DS'
            rest = words
        try:
            out.append(dns.rdata.from_text(dns.rdataclass.IN, rdtype, ' '.join(rest)))
        except (dns.exception.DNSException, ValueError) as e:
            raise RecordError('trust_anchor[%d] is not a DS or DNSKEY record of %s (%r): %s. '
                              'Give "<key tag> <algorithm> <digest type> <digest>" or '
                              '"<flags> 3 <algorithm> <public key>"' % (index, zone, text, e))
    return out


def _key_info(key: Any) -> Dict[str, Any]:
    return {'key_tag': dns.dnssec.key_id(key), 'algorithm': int(key.algorithm),
            'flags': int(key.flags)}


def _tags(items: Iterable[Any]) -> str:
    return ', '.join(str(i) for i in sorted(set(items))) or 'none'


def matching_keys(zone: Any, keys: Sequence[Any], anchors: Sequence[Any]) -> List[Any]:
    """The DNSKEYs that a DS or DNSKEY in ``anchors`` names."""
    found = []
    for key in keys:
        for anchor in anchors:
            if anchor.rdtype == dns.rdatatype.DNSKEY:
                hit = anchor == key
            else:
                digest = DIGESTS.get(int(anchor.digest_type))
                hit = bool(digest) and anchor.key_tag == dns.dnssec.key_id(key) \
                    and int(anchor.algorithm) == int(key.algorithm) \
                    and dns.dnssec.make_ds(zone, key, digest) == anchor
            if hit and key not in found:
                found.append(key)
    return found


def _rrset_of(zone: Any, rdtype: str, rdatas: Sequence[Any]) -> Any:
    rrset = dns.rrset.RRset(zone, dns.rdataclass.IN, dns.rdatatype.from_text(rdtype))
    for rd in rdatas:
        rrset.add(rd)
    return rrset


def _expiry(sigs: Sequence[Any]) -> Optional[int]:
    return min((int(s.expiration) for s in sigs), default=None)


def _iso(stamp: int) -> str:
    return time.strftime('%Y-%m-%dT%H:%M:%SZ', time.gmtime(stamp))


def judge_zone(zone_text: str, dnskeys: Any, dnskey_sigs: Any, soa: Any, soa_sigs: Any,
               ds: Optional[List[Any]], anchors: Optional[List[Any]], where: str,
               now: Optional[float] = None, warn_seconds: int = EXPIRY_WARN) -> Outcome:
    """The verdict for one server (pure). ``dnskeys``/``soa``: RRsets or None; ``*_sigs``:
    their RRSIG RRsets or None; ``ds``: the parent's DS rdata ([] none, None unknown);
    ``anchors``: trust_anchor rdata (used instead of ``ds``) or None."""
    zone = dns.name.from_text(zone_text)
    now = time.time() if now is None else now
    ds_texts = [rd.to_text() for rd in ds or []]
    found: Dict[str, Any] = {'signed': bool(dnskeys), 'dnskey': [], 'ds': ds_texts}
    if anchors is not None:
        found['trust_anchor'] = [rd.to_text() for rd in anchors]
    if not dnskeys:
        if ds:
            ds_tags = _tags([d.key_tag for d in ds])
            return Outcome(FAIL, found, '%s serves no DNSKEY for %s, but the parent publishes '
                           'DS (key tags %s): validating resolvers answer SERVFAIL for the '
                           'domain and mail to it stops. Remove the stale DS at the registrar, '
                           'or sign the zone again' % (where, zone_text, ds_tags))
        return Outcome(PASS, found, UNSIGNED_NOTE)
    keys = list(dnskeys)
    found['dnskey'] = [_key_info(k) for k in keys]
    key_tags = _tags([dns.dnssec.key_id(k) for k in keys])
    used = anchors if anchors is not None else ds
    what = 'trust_anchor' if anchors is not None else 'the DS at the parent'
    matched: List[Any] = []
    if used:
        matched = matching_keys(zone, keys, used)
        if not matched:
            return Outcome(FAIL, found, '%s serves DNSKEY key tags %s for %s, but no key matches '
                           '%s (%s): the chain of trust is broken and validating resolvers '
                           'answer SERVFAIL. Publish the DS of the current key at the '
                           'registrar (and remove the stale one)'
                           % (where, key_tags, zone_text, what,
                              '; '.join(d.to_text() for d in used)))
    trusted = _rrset_of(zone, 'DNSKEY', matched or keys)
    by_tag = set(dns.dnssec.key_id(k) for k in (matched or keys))
    sigs = [s for s in (dnskey_sigs or []) if s.key_tag in by_tag]
    problems = []
    if not sigs:
        problems.append('the DNSKEY rrset has no RRSIG by key tag(s) %s' % _tags(by_tag))
    else:
        try:
            dns.dnssec.validate(dnskeys, _rrset_of(zone, 'RRSIG', sigs), {zone: trusted},
                                now=now)
        except dns.exception.DNSException as e:  # ValidationFailure, unsupported
            problems.append('the RRSIG of the DNSKEY rrset by key tag(s) %s does not validate '
                            '(%s)' % (_tags([s.key_tag for s in sigs]), e))
    if not soa or not soa_sigs:
        problems.append('the SOA has no RRSIG')
    else:
        try:
            dns.dnssec.validate(soa, soa_sigs, {zone: dnskeys}, now=now)
        except dns.exception.DNSException as e:  # ValidationFailure, unsupported
            problems.append('the RRSIG of the SOA (key tags %s) does not validate with the '
                            'DNSKEY set (%s)' % (_tags([s.key_tag for s in soa_sigs]), e))
    expires = _expiry(list(sigs) + list(soa_sigs or []))
    if expires is not None:
        found['rrsig_expires'] = _iso(expires)
    if problems:
        return Outcome(FAIL, found, '%s: %s is signed (key tags %s) but %s: validating '
                       'resolvers answer SERVFAIL. Re-sign the zone (check the signer and the '
                       'server clock)' % (where, zone_text, key_tags, '; '.join(problems)))
    detail = 'signed, chain valid: key tags %s (algorithm %s), RRSIG expires %s' % (
        key_tags, _tags([int(k.algorithm) for k in keys]), found.get('rrsig_expires'))
    if expires is not None and expires - now < warn_seconds:
        return Outcome(WARN, found, '%s: %s; the signature expires in less than %d day(s): '
                       're-sign the zone (is the signer running?)'
                       % (where, detail, warn_seconds // 86400))
    if used is None:
        return Outcome(WARN, found, '%s; but the parent DS could not be asked (no server '
                       'answered for the parent zone): give resolvers or trust_anchor to check '
                       'the chain' % detail)
    if not used:
        return Outcome(WARN, found, '%s; but the parent publishes no DS, so resolvers treat '
                       'the zone as insecure (no DANE): publish the DS of key tag(s) %s at '
                       'the registrar' % (detail, _tags([dns.dnssec.key_id(k) for k in keys
                                                         if k.flags & 1])))
    return Outcome(PASS, found, detail + ', matching %s' % what)


# -- asking -----------------------------------------------------------------------------------
def _ask(resolver: Resolver, target: Target, name: str, rdtype: str) -> Tuple[Any, Optional[str]]:
    """(response, None) or (None, why not)."""
    if target.error:
        return None, target.error
    q = dns.message.make_query(name, rdtype, want_dnssec=True, use_edns=True, payload=1232)
    if target.kind == AUTHORITATIVE:
        q.flags &= ~dns.flags.RD
    where = '%s port %d' % (target.address, target.port)
    error = 'no answer'
    for dummy in range(resolver.retries + 1):
        try:
            r = resolver._exchange(q, target)  # pylint: disable=protected-access
        except Truncated as e:
            return None, '%s: truncated over UDP and TCP failed (%s)' % (where, e.reason)
        except (OSError, EOFError, dns.exception.DNSException) as e:
            error = '%s did not answer the %s query for %s: %s' % (
                where, rdtype, name, type(e).__name__ if not str(e) else e)
            if isinstance(e, dns.exception.Timeout):
                continue
            if isinstance(e, OSError) and e.errno in _NO_ROUTE:
                return None, 'not checked: this machine cannot reach %s (%s)' % (
                    where, e.strerror or e)
            return None, error
        target.reachable = True
        rcode = dns.rcode.to_text(r.rcode())
        if rcode not in ('NOERROR', 'NXDOMAIN'):
            error = '%s answered %s to the %s query for %s' % (where, rcode, rdtype, name)
            if rcode == 'SERVFAIL':
                continue
            return None, error
        return r, None
    return None, error


def _pick(r: Any, zone: Any, rdtype: str) -> Tuple[Any, Any]:
    data = sigs = None
    wanted = dns.rdatatype.from_text(rdtype)
    for rrset in r.answer:
        if rrset.name != zone:
            continue
        if rrset.rdtype == wanted:
            data = rrset
        elif rrset.rdtype == dns.rdatatype.RRSIG and rrset.covers == wanted:
            sigs = rrset
    return data, sigs


def parent_ds(resolver: Resolver, targets: Sequence[Target], zone_text: str
              ) -> Tuple[Optional[List[Any]], str]:
    """(the DS rdata of the zone as the parent serves them, [] none, None unknown; who said)."""
    zone = dns.name.from_text(zone_text)
    for target in targets:
        r, error = _ask(resolver, target, zone_text, 'DS')
        if error or r is None:
            continue
        ds, dummy = _pick(r, zone, 'DS')
        if ds:
            return list(ds), target.label
        soa_owner = [rrset.name for rrset in r.authority if rrset.rdtype == dns.rdatatype.SOA]
        from_parent = bool(soa_owner) and soa_owner[0] != zone and zone.is_subdomain(soa_owner[0])
        if target.kind != AUTHORITATIVE or from_parent:
            return [], target.label  # the parent (or a resolver) says: no DS
        # the child zone answered for itself: this server does not serve the parent
    return None, ''


def check_dnssec(resolver: Resolver, targets: Sequence[Target], zone_text: str,
                 ds_targets: Sequence[Target], trust_anchor: Optional[Sequence[str]] = None,
                 now: Optional[float] = None) -> Dict[str, Outcome]:
    """{server label: Outcome} of the dnssec check for ``zone_text`` on each target."""
    zone = dns.name.from_text(zone_text)
    anchors = parse_trust_anchor(zone_text, trust_anchor) if trust_anchor else None
    ds: Optional[List[Any]] = None
    if anchors is None:
        ds, dummy = parent_ds(resolver, ds_targets, zone_text)
    out: Dict[str, Outcome] = {}
    for target in targets:
        where = target.label
        answers = {}
        error = None
        for rdtype in ('DNSKEY', 'SOA'):
            r, error = _ask(resolver, target, zone_text, rdtype)
            if error:
                break
            answers[rdtype] = _pick(r, zone, rdtype)
        if error:
            unchecked = error.startswith('not checked')
            out[where] = Outcome(SKIP if unchecked else FAIL, None, error, answered=False)
            continue
        dnskeys, dnskey_sigs = answers['DNSKEY']
        soa, soa_sigs = answers['SOA']
        out[where] = judge_zone(zone_text, dnskeys, dnskey_sigs, soa, soa_sigs, ds, anchors,
                                where, now)
    return out


def find_zone_of(resolver: Resolver, targets: Sequence[Target], domain: str) -> str:
    """The zone holding ``domain``: the SOA owner the first answering target names."""
    for target in targets:
        r, error = _ask(resolver, target, domain, 'SOA')
        if error or r is None:
            continue
        for section in (r.answer, r.authority):
            for rrset in section:
                if rrset.rdtype == dns.rdatatype.SOA:
                    return rrset.name.to_text().lower()
    return domain
