# -*- coding: utf-8 -*-
# Copyright (c) exchangeonline.mail contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# Private to this collection: may change without notice.
"""The RFC 2136 provider: a zone on an authoritative server that takes dynamic updates.

Its guarantee is ``ATOMIC`` (see ``_dns_provider``): reads never use UPDATE packets (a
TSIG-signed AXFR when the server allows it, else signed queries), and a change set is one UPDATE
whose prerequisites are the exact rrsets that were read, so a zone that changed in between makes
the server refuse the whole message (RFC 2136 section 3.2). The messages and the connection are
the transport's (``_dns_transport``); what is here is what to ask and what the answers mean.
"""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

from typing import Any, Dict, Iterable, List, Optional, Tuple

from ansible_collections.exchangeonline.mail.plugins.module_utils._dns_provider import (
    ATOMIC,
    ConcurrentChange,
    Key,
    Snapshot,
    ZoneProvider,
)
from ansible_collections.exchangeonline.mail.plugins.module_utils._dns_transport import (
    UNKNOWN_KEY_HINT,
    DnsError,
    DnsServer,
    UpdateOutcomeUnknown,
    ZoneTooLarge,
)
from ansible_collections.exchangeonline.mail.plugins.module_utils._patterns import Change
from ansible_collections.exchangeonline.mail.plugins.module_utils._records import RRset

try:
    import dns.name
    import dns.rcode
    import dns.tsig
    import dns.update
except ImportError:
    pass  # the module reports the missing dnspython (_dns_transport.HAS_DNSPYTHON)

PREREQ_FAILED = ('NXRRSET', 'YXRRSET', 'NXDOMAIN', 'YXDOMAIN')
# A zone of more records than this is read by queries for the names a plan needs, not by zone
# transfer: measured on BIND 9.18 over loopback, a 20,000-record zone takes about 1.9 s to
# transfer, the queries for a plan's names about 10 ms; at 1,000 records the transfer is still
# about 0.1 s. The UPDATE's prerequisites guard the rrsets either way (RFC 2136 section 3.2).
TRANSFER_LIMIT = 1000


class Rfc2136Provider(ZoneProvider):
    """A zone read and written on one server, with (optional) TSIG."""

    guarantee = ATOMIC
    name = 'rfc2136'

    def __init__(self, server: DnsServer) -> None:
        self.server = server
        # ZoneProvider's attributes: the server's, which do not change once it is made.
        self.where = server.where
        self.timeout = server.timeout

    @classmethod
    def from_params(cls, params: dict) -> 'Rfc2136Provider':
        return cls(DnsServer.from_params(params))

    @property
    def writer(self) -> str:
        key = self.server.key_text
        return 'the key %s' % key if key else 'unsigned updates'

    @property
    def label(self) -> str:
        return '%s:%d' % (self.server.server_text, self.server.port)

    def find_zone(self, domain: str) -> str:
        return self.server.find_zone(domain)

    def served(self, keys: Iterable[Key]) -> Dict[Key, Optional[RRset]]:
        return self.server.served(keys)

    def wildcard_rrsets(self, name: str, zone: str, phase: str = 'read') -> Dict[str, RRset]:
        return self.server.wildcard_rrsets(name, zone, phase)

    def serial(self, zone: str) -> int:
        return self.server.serial(zone)

    # -- reading ------------------------------------------------------------------------------
    def read_rrsets(self, zone: str, names: Iterable[str]) -> Snapshot:
        """A Snapshot holding every rrset at ``names`` (and the SOA serial): by zone transfer
        for a zone of up to TRANSFER_LIMIT records, else by signed queries (method
        ``query-large-zone``; a transfer refused or blocked: ``query``, saying why)."""
        names = list(names)
        try:
            serial, rrsets = self.server.transfer(zone, TRANSFER_LIMIT)
            return Snapshot(zone, serial, rrsets, 'axfr')
        except ZoneTooLarge:
            snapshot = self._read_queries(zone, names)
            snapshot.method = 'query-large-zone'
            return snapshot
        except DnsError as e:
            # A transfer the server refuses, cannot serve, or that a firewall drops: the
            # signed queries may still get through (they use protocol; a transfer uses TCP).
            if e.rcode not in ('REFUSED', 'NOTAUTH', 'NOTIMP', 'SERVFAIL') and \
                    not e.transfer_blocked:
                raise
            refused = e
        key = self.server.key_text
        # A signed transfer refused: either the key is unknown (the queries get BADKEY too) or
        # it is only kept from transferring the zone (the queries work).
        key_refused = key is not None and refused.rcode in ('REFUSED', 'NOTAUTH')
        try:
            snapshot = self._read_queries(zone, names)
        except DnsError as e:
            if key_refused and e.tsig_error == 'BADKEY':
                raise DnsError('%s does not know the TSIG key %s: it refused the key for the '
                               'zone transfer of %s and for queries (BADKEY), so the key is '
                               'unknown to it, not only kept from transferring the zone. %s'
                               % (self.where, key, zone, UNKNOWN_KEY_HINT), 'read',
                               rcode='NOTAUTH')
            raise
        if key_refused:
            snapshot.warnings.append(
                '%s: the TSIG key %s is not allowed to transfer %s, though the server accepts '
                'it for queries, so the records were read with signed queries (read_method: '
                'query). To read by zone transfer, allow the key to transfer the zone (BIND: '
                'allow-transfer { key "%s"; }; Knot DNS: an acl with key: %s and action: '
                'transfer).' % (refused.message, key, zone, key, key))
        return snapshot

    def _read_queries(self, zone: str, names: Iterable[str]) -> Snapshot:
        rrsets: Dict[Key, RRset] = {}
        for name in sorted(set(names)):
            found = self.server.rrsets_at(name, 'read')
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

    # -- writing ------------------------------------------------------------------------------
    def _message(self, zone: str) -> Any:
        s = self.server
        return dns.update.UpdateMessage(zone, keyring=s.keyring, keyname=s.keyname,
                                        keyalgorithm=s.algorithm or dns.tsig.default_algorithm)

    def build_update(self, zone: str, changes: List[Change]) -> Any:
        """One UPDATE message: prerequisites are each touched rrset exactly as read."""
        u = self._message(zone)
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
        adds: List[Tuple[Any, RRset]] = []  # (dnspython name, rrset)
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

    def apply_changes(self, zone: str, changes: List[Change]) -> None:
        """Send the changes as one UPDATE. ConcurrentChange when the prerequisites fail,
        UpdateOutcomeUnknown when its answer is lost."""
        r = self.server.send_update(self.build_update(zone, changes))
        rcode = dns.rcode.to_text(r.rcode())
        if rcode == 'NOERROR':
            return
        if rcode in PREREQ_FAILED:
            raise ConcurrentChange('zone %s changed after it was read (%s): a prerequisite of the '
                                   'update no longer holds' % (zone, rcode), 'apply', rcode=rcode)
        raise DnsError('%s answered %s to the update of zone %s: %s Nothing was changed.'
                       % (self.where, rcode, zone, self._refusal(rcode, zone)), 'apply',
                       rcode=rcode)

    def _refusal(self, rcode: str, zone: str, probe: bool = False) -> str:
        """What an UPDATE refused with ``rcode`` means, and what to do (``probe``: the update
        that carries only a prerequisite, so no record can be what was refused)."""
        key = self.server.key_text
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

    def prove_write(self, zone: str) -> None:
        """Send an UPDATE that changes nothing: its only content is the prerequisite "the zone's
        SOA exists" (RFC 2136 section 2.4.1) and its update section is empty. A server that takes
        updates of the zone from this key answers NOERROR. It proves the right to update the
        zone, not a per-name policy (BIND update-policy, Knot DNS update-owner): those are
        checked per record, and this message has none. DnsError (phase preflight) otherwise."""
        u = self._message(zone)
        u.present(dns.name.from_text(zone), 'SOA')
        try:
            r = self.server.send_update(u, phase='preflight')
        except UpdateOutcomeUnknown as e:
            raise DnsError('%s, for an UPDATE that changes nothing (its only '
                           'prerequisite: the SOA of %s exists), so whether the server takes '
                           'updates is not proven. Nothing was changed; check the server, then '
                           'run again.' % (e.message, zone), 'preflight')
        rcode = dns.rcode.to_text(r.rcode())
        if rcode != 'NOERROR':
            raise DnsError('%s answered %s to an UPDATE of zone %s that changes '
                           'nothing (its only prerequisite: the SOA exists): %s Nothing was '
                           'changed.' % (self.where, rcode, zone,
                                         self._refusal(rcode, zone, probe=True)), 'preflight',
                           rcode=rcode)
