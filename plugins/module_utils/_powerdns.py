# -*- coding: utf-8 -*-
# Copyright (c) exchangeonline.mail contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# Private to this collection: may change without notice.
"""The PowerDNS provider: a zone on a PowerDNS Authoritative Server, through its HTTP API.

Read: ``GET /api/v1/servers/<id>/zones/<zone>`` (every rrset of the zone with its records).
Write: one ``PATCH`` of the zone's rrsets (``changetype`` REPLACE or DELETE), which PowerDNS
applies in one backend transaction: all of it or, with a 422 answer, none of it (measured with
PowerDNS 4.7: a PATCH with one bad record leaves the other rrsets of it unchanged). It takes no
precondition, so the guarantee is ``TRANSACTION``: the engine reads the touched names again just
before the PATCH. Records that are in the zone but disabled are not served and so not part of the
plan; a PATCH that replaces or deletes their rrset keeps them, disabled, as they were.

A PowerDNS API key is one static secret with every right on every zone of the server (the
``api-key`` setting), so reading the zone with it proves the right to change it; the preflight
also refuses a zone the server holds as a secondary, whose changes the next transfer would undo.
"""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

from typing import Any, Dict, Iterable, List, Optional, Tuple

from ansible_collections.exchangeonline.mail.plugins.module_utils._dns_api import (
    ApiClient,
    api_base,
    plain_http_off_host,
    segment,
)
from ansible_collections.exchangeonline.mail.plugins.module_utils._dns_provider import (
    TRANSACTION,
    Key,
    Snapshot,
    ZoneProvider,
    enclosing,
)
from ansible_collections.exchangeonline.mail.plugins.module_utils._dns_transport import DnsError
from ansible_collections.exchangeonline.mail.plugins.module_utils._patterns import Change
from ansible_collections.exchangeonline.mail.plugins.module_utils._records import (
    DNSSEC_TYPES,
    RRset,
    RecordError,
)

EXAMPLE = 'http://127.0.0.1:8081'
SECONDARY_KINDS = ('slave', 'secondary', 'consumer')


class PowerDnsProvider(ZoneProvider):
    """The zones of one PowerDNS server (``server_id``, usually ``localhost``)."""

    guarantee = TRANSACTION
    name = 'powerdns'

    def __init__(self, api_url: str, api_key: str, server_id: str = 'localhost',
                 timeout: float = 10.0, verify: Any = True) -> None:
        self.api_url = api_base(api_url, 'api_url', EXAMPLE)
        if not api_key:
            raise DnsError('provider powerdns needs api_key: the api-key setting of the '
                           'PowerDNS server (pdns.conf).', 'input')
        self.server_id = server_id or 'localhost'
        self.timeout = timeout
        self.where = 'the PowerDNS API at %s' % self.api_url
        self.client = ApiClient(self.api_url, {'X-API-Key': api_key}, self.where, timeout, verify)
        self.warnings: List[str] = []
        if plain_http_off_host(self.api_url):
            self.warnings.append('api_url %s is plain http:// to another host: the API key '
                                 'crosses the network in clear. Put the API behind https:// '
                                 '(ca_path for a private CA).' % self.api_url)
        # rrsets whose records are all or partly disabled: {key: [record dicts, disabled]}
        self._disabled: Dict[Key, List[Dict[str, Any]]] = {}
        self._zone = ''  # the zone read or changed last (served() asks its rrsets again)

    @classmethod
    def from_params(cls, params: Dict[str, Any]) -> 'PowerDnsProvider':
        if not params.get('api_url'):
            raise DnsError('provider powerdns needs api_url, the base URL of the PowerDNS API '
                           '(the webserver-address and webserver-port of pdns.conf), for '
                           'example %s.' % EXAMPLE, 'input')
        return cls(params['api_url'], params.get('api_key') or '',
                   params.get('powerdns_server_id') or 'localhost', params.get('timeout') or 10.0,
                   ApiClient.verify_of(params))

    @property
    def writer(self) -> str:
        return 'the API key'

    @property
    def label(self) -> str:
        return '%s (server %s)' % (self.api_url, self.server_id)

    # -- requests -----------------------------------------------------------------------------
    def _zone_path(self, zone: str) -> str:
        return '/api/v1/servers/%s/zones/%s' % (segment(self.server_id), segment(zone))

    def _refusal(self, zone: Optional[str], phase: str) -> Any:
        def explain(status: int, body: Any, text: str) -> DnsError:
            error = body.get('error') if isinstance(body, dict) else None
            said = error if isinstance(error, str) and error else text
            if status in (401, 403):
                return DnsError('%s refused the API key (HTTP %d: %s). Check api_key: it must '
                                'be the api-key setting of the server\'s pdns.conf.'
                                % (self.where, status, said), phase)
            if status == 404 and zone:
                return DnsError('%s has no zone %s on server %s (HTTP 404: %s). Check zone '
                                'and powerdns_server_id (pdnsutil list-all-zones lists them).'
                                % (self.where, zone, self.server_id, said), phase,
                                rcode='HTTP 404')
            if status == 422 and phase == 'apply':
                return DnsError('%s refused the change of zone %s (HTTP 422: %s). Nothing was '
                                'changed: PowerDNS applies the whole change in one transaction '
                                'or none of it.' % (self.where, zone, said), phase)
            return DnsError('%s answered HTTP %d (%s)%s' % (
                self.where, status, said, ' for zone %s' % zone if zone else ''), phase)
        return explain

    def _get_zone(self, zone: str, phase: str, rrsets: bool = True) -> Dict[str, Any]:
        path = self._zone_path(zone) + ('' if rrsets else '?rrsets=false')
        _status, body = self.client.request('GET', path, phase=phase,
                                            refusal=self._refusal(zone, phase))
        if not isinstance(body, dict) or not isinstance(body.get('name'), str) or (
                rrsets and not isinstance(body.get('rrsets'), list)):
            raise DnsError('%s answered GET %s with JSON that is not a zone (no name%s)'
                           % (self.where, path, ' or rrsets' if rrsets else ''), phase)
        return body

    # -- the contract -------------------------------------------------------------------------
    def find_zone(self, domain: str) -> str:
        """The closest enclosing zone the server holds: the domain, then each parent."""
        tried = enclosing(domain)
        for candidate in tried:
            try:
                self._get_zone(candidate, 'zone', rrsets=False)
                return candidate
            except DnsError as e:
                if e.rcode != 'HTTP 404':
                    raise
        raise DnsError('%s holds no zone for %s (asked for %s). Give zone, or check '
                       'powerdns_server_id.' % (self.where, domain, ', '.join(tried)), 'zone')

    def _rrsets(self, zone: str, phase: str) -> Tuple[Optional[int], Dict[Key, RRset]]:
        body = self._get_zone(zone, phase)
        self._disabled = {}
        found: Dict[Key, RRset] = {}
        for item in body['rrsets']:
            if not isinstance(item, dict) or not isinstance(item.get('records'), list):
                raise DnsError('%s answered zone %s with an rrset that is not the documented '
                               'JSON: %r' % (self.where, zone, item), phase)
            name = str(item.get('name', '')).lower()
            rdtype = str(item.get('type', '')).upper()
            if rdtype in DNSSEC_TYPES:
                continue
            enabled = [r.get('content') for r in item['records']
                       if isinstance(r, dict) and not r.get('disabled')]
            disabled = [r for r in item['records'] if isinstance(r, dict) and r.get('disabled')]
            if disabled:
                self._disabled[(name, rdtype)] = disabled
            if not enabled:
                continue
            try:
                found[(name, rdtype)] = RRset.from_texts(name, rdtype, item.get('ttl', 0),
                                                         [str(c) for c in enabled])
            except RecordError:
                # a type dnspython does not know (PowerDNS' ALIAS, LUA): only its key matters
                found[(name, rdtype)] = RRset(name, rdtype, int(item.get('ttl') or 0),
                                              values=[str(c) for c in enabled])
        serial = body.get('serial')
        return (serial if isinstance(serial, int) else None), found

    def read_rrsets(self, zone: str, names: Iterable[str]) -> Snapshot:
        self._zone = zone
        serial, rrsets = self._rrsets(zone, 'read')
        snapshot = Snapshot(zone, serial, rrsets, 'api')
        snapshot.warnings.extend(self.warnings)
        return snapshot

    def served(self, keys: Iterable[Key]) -> Dict[Key, Optional[RRset]]:
        _serial, rrsets = self._rrsets(self._zone, 'verify')
        return dict((k, rrsets.get(k)) for k in keys)

    def serial(self, zone: str) -> Optional[int]:
        serial = self._get_zone(zone, 'verify', rrsets=False).get('serial')
        return serial if isinstance(serial, int) else None

    def patch_of(self, changes: List[Change]) -> Dict[str, Any]:
        rrsets: List[Dict[str, Any]] = []
        for c in changes:
            name, rdtype = c.key
            kept = self._disabled.get(c.key, [])
            if c.after is None and not kept:
                rrsets.append({'name': name, 'type': rdtype, 'changetype': 'DELETE'})
                continue
            records = [{'content': rd.to_text(relativize=False), 'disabled': False}
                       for rd in (c.after.rdata_list() if c.after is not None else [])]
            # a disabled record the plan now enables is that record (PowerDNS refuses the same
            # content twice in one rrset: "Duplicate record in RRset")
            enabled = set(r['content'] for r in records)
            kept = [r for r in kept if r.get('content') not in enabled]
            # an rrset removed but with disabled records: those stay, at the TTL it had
            ttl = c.after.ttl if c.after is not None else c.before.ttl if c.before else 3600
            rrsets.append({'name': name, 'type': rdtype, 'ttl': ttl, 'changetype': 'REPLACE',
                           'records': records + [dict(r, disabled=True) for r in kept]})
        return {'rrsets': rrsets}

    def apply_changes(self, zone: str, changes: List[Change]) -> None:
        self._zone = zone
        self.client.request('PATCH', self._zone_path(zone), self.patch_of(changes), ok=(204, 200),
                            phase='apply', changes=True, refusal=self._refusal(zone, 'apply'))

    def prove_write(self, zone: str) -> None:
        kind = str(self._get_zone(zone, 'preflight', rrsets=False).get('kind', '')).lower()
        if kind in SECONDARY_KINDS:
            raise DnsError('%s holds zone %s as a %s zone: a change there is undone by the next '
                           'transfer from its primary. Change the zone where it is primary.'
                           % (self.where, zone, kind), 'preflight')
