# -*- coding: utf-8 -*-
# Copyright (c) exchangeonline.mail contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# Private to this collection: may change without notice.
"""The Azure DNS provider: a public DNS zone through the Azure Resource Manager REST API.

Identity: the collection's msal app-only token (``_identity``: a client secret or a certificate,
the national clouds), for the scope ``https://management.azure.com/.default`` (or the cloud's own
Resource Manager); the app needs the role "DNS Zone Contributor" on the zone or its resource
group.

Read: ``GET .../dnsZones/<zone>/recordsets`` (api-version 2018-05-01), paged by ``nextLink``,
every record set with its ``etag``. Write: one request per record set, ``PUT`` (create or
replace) or ``DELETE``, each with a precondition (``If-Match`` the etag read, or
``If-None-Match: *`` for a record set that was absent): Azure DNS answers 412 when the record set
changed since, so each record set is compared and swapped on its own (guarantee ``RRSET_CAS``,
Azure DNS docs "Etags"). When a later record set is refused or changed, the engine puts the ones
already written back with the same preconditions (the etags of this run's own writes) and says
so. Record sets that are aliases of an Azure resource (``targetResource``) are kept: a plan that
would change one fails before anything is sent.
"""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

from typing import Any, Callable, Dict, Iterable, List, Optional, Set, Tuple
from urllib.parse import quote, urlsplit

from ansible_collections.exchangeonline.mail.plugins.module_utils._dns_api import (
    ApiClient,
    api_base,
    as_dict,
    plain_http_off_host,
    segment,
)
from ansible_collections.exchangeonline.mail.plugins.module_utils._dns_provider import (
    RRSET_CAS,
    ConcurrentChange,
    Key,
    Snapshot,
    ZoneProvider,
    enclosing,
    partway,
)
from ansible_collections.exchangeonline.mail.plugins.module_utils._identity import origin
from ansible_collections.exchangeonline.mail.plugins.module_utils._dns_transport import (
    DnsError,
    UpdateOutcomeUnknown,
)
from ansible_collections.exchangeonline.mail.plugins.module_utils._patterns import Change
from ansible_collections.exchangeonline.mail.plugins.module_utils._records import (
    RRset,
    RecordError,
    to_name,
)

API_VERSION = '2018-05-01'
# The Resource Manager of each value of the cloud option (learn.microsoft.com/azure/
# azure-government/compare-azure-government-global-azure, .../china/resources-developer-guide).
ARM = {
    'public': 'https://management.azure.com',
    'usgov': 'https://management.usgovcloudapi.net',
    'usgov_dod': 'https://management.usgovcloudapi.net',
    'china': 'https://management.chinacloudapi.cn',
}
ARM_RESOURCE = 'arm'
MAX_PAGES = 500  # 50,000 record sets at 100 per page; Azure DNS allows 10,000 per zone

# record type -> (the property holding its records, rdata -> JSON, JSON -> presentation text)
_Codec = Tuple[str, Callable[[Any], Any], Callable[[Any], str]]


def _host(value: Any) -> str:
    text = str(value or '')
    return text if text.endswith('.') else text + '.'


def _bare(name: Any) -> str:
    return name.to_text(omit_final_dot=True)


def _txt_text(item: Dict[str, Any]) -> str:
    strings = item.get('value')
    if not isinstance(strings, list) or not all(isinstance(v, str) for v in strings):
        raise ValueError('a TXT record\'s value is a list of strings, not %r' % (strings,))
    return ' '.join('"%s"' % s.replace('\\', '\\\\').replace('"', '\\"')
                    for s in item.get('value') or [''])


CODECS: Dict[str, _Codec] = {
    'A': ('ARecords', lambda rd: {'ipv4Address': rd.address},
          lambda item: item['ipv4Address']),
    'AAAA': ('AAAARecords', lambda rd: {'ipv6Address': rd.address},
             lambda item: item['ipv6Address']),
    'MX': ('MXRecords', lambda rd: {'preference': rd.preference, 'exchange': _bare(rd.exchange)},
           lambda item: '%d %s' % (int(item['preference']), _host(item['exchange']))),
    'TXT': ('TXTRecords',
            lambda rd: {'value': [s.decode('utf-8', 'surrogateescape') for s in rd.strings]},
            _txt_text),
    'CNAME': ('CNAMERecord', lambda rd: {'cname': _bare(rd.target)},
              lambda item: _host(item['cname'])),
    'NS': ('NSRecords', lambda rd: {'nsdname': _bare(rd.target)},
           lambda item: _host(item['nsdname'])),
    'PTR': ('PTRRecords', lambda rd: {'ptrdname': _bare(rd.target)},
            lambda item: _host(item['ptrdname'])),
    'SRV': ('SRVRecords', lambda rd: {'priority': rd.priority, 'weight': rd.weight,
                                      'port': rd.port, 'target': _bare(rd.target)},
            lambda item: '%d %d %d %s' % (int(item['priority']), int(item['weight']),
                                          int(item['port']), _host(item['target']))),
    'CAA': ('caaRecords', lambda rd: {'flags': rd.flags, 'tag': rd.tag.decode(),
                                      'value': rd.value.decode('utf-8', 'surrogateescape')},
            lambda item: '%d %s "%s"' % (int(item['flags']), item['tag'],
                                         str(item['value']).replace('"', '\\"'))),
}


class AzureDnsProvider(ZoneProvider):
    """The public DNS zones of one subscription (and resource group, when given)."""

    guarantee = RRSET_CAS
    name = 'azure'

    def __init__(self, params: Dict[str, Any]) -> None:
        from ansible_collections.exchangeonline.mail.plugins.module_utils._identity import (
            HAS_M365_LIBS,
            Identity,
            IdentityError,
        )
        if not HAS_M365_LIBS:
            raise DnsError('provider azure needs the Python libraries msal and requests on the '
                           'host that runs the module (pip install msal requests).', 'input')
        self.subscription = str(params.get('azure_subscription_id') or '').strip()
        if not self.subscription:
            raise DnsError('provider azure needs azure_subscription_id, the subscription that '
                           'holds the DNS zone (or set AZURE_SUBSCRIPTION_ID).', 'input')
        if not all(c.isalnum() or c == '-' for c in self.subscription):
            raise DnsError('azure_subscription_id %r is not a subscription ID (a GUID).'
                           % self.subscription[:100], 'input')
        self.resource_group = str(params.get('azure_resource_group') or '').strip() or None
        cloud = params.get('cloud') or 'public'
        self.arm = api_base(params.get('azure_endpoint_url') or ARM.get(cloud, ARM['public']),
                            'azure_endpoint_url', ARM['public'])
        self.timeout = params.get('timeout') or 10.0
        self.where = 'Azure DNS at %s (subscription %s)' % (self.arm, self.subscription)
        try:
            self.identity = Identity(dict(params, timeout=max(self.timeout, 10.0)),
                                     resources={ARM_RESOURCE: ARM.get(cloud, ARM['public'])})
        except IdentityError as e:
            raise DnsError('provider azure: %s' % e, 'input')
        self._identity_error = IdentityError
        self.client = ApiClient(self.arm, {}, self.where, self.timeout,
                                ApiClient.verify_of(params))
        self.warnings: List[str] = []
        if plain_http_off_host(self.arm):
            self.warnings.append('azure_endpoint_url %s is plain http:// to another host: the '
                                 'Resource Manager token crosses the network in clear.'
                                 % self.arm)
        self._groups: Dict[str, str] = {}   # zone -> its resource group
        self._etags: Dict[Key, str] = {}     # rrset -> its etag, as read or as written
        self._special: Set[Key] = set()      # alias record sets (targetResource)
        self._metadata: Dict[Key, Any] = {}  # the metadata (tags) of each record set read
        self._zone = ''

    @classmethod
    def from_params(cls, params: Dict[str, Any]) -> 'AzureDnsProvider':
        return cls(params)

    @property
    def writer(self) -> str:
        return 'the app (client_id) and its role on the zone'

    @property
    def label(self) -> str:
        return 'azure %s/subscriptions/%s' % (self.arm, self.subscription)

    # -- requests -----------------------------------------------------------------------------
    def _headers(self, phase: str) -> Dict[str, str]:
        try:
            token = self.identity.token(ARM_RESOURCE)
        except self._identity_error as e:
            raise DnsError('provider azure could not get a token for Azure Resource Manager: '
                           '%s' % e, phase)
        return {'Authorization': 'Bearer ' + token}

    def _refusal(self, what: str, phase: str) -> Any:
        def explain(status: int, body: Any, text: str) -> DnsError:
            error = as_dict(as_dict(body).get('error'))
            code = error.get('code')
            said = '%s: %s' % (code, error.get('message')) if code else text
            if status == 401:
                return DnsError('%s refused the token of client_id %s (HTTP 401 %s). Check '
                                'tenant_id, client_id and its secret or certificate.'
                                % (self.where, self.identity.client_id, said), phase,
                                rcode='HTTP 401')
            if status == 403:
                scope = '' if self.resource_group else (
                    ' When its role is on the resource group only, give azure_resource_group '
                    '(the list of the subscription\'s zones needs a role on the subscription).')
                return DnsError('%s refused %s (HTTP 403 %s). Give the app of client_id %s the '
                                'role DNS Zone Contributor on the zone or its resource group.%s'
                                % (self.where, what, said, self.identity.client_id, scope),
                                phase, rcode='HTTP 403')
            if status == 412:
                return ConcurrentChange('%s refused %s: it changed since it was read (HTTP 412 '
                                        '%s)' % (self.where, what, said), phase,
                                        rcode='HTTP 412')
            return DnsError('%s refused %s (HTTP %d %s)' % (self.where, what, status, said),
                            phase, rcode='HTTP %d' % status)
        return explain

    def _request(self, method: str, path: str, what: str, phase: str, body: Any = None,
                 ok: Tuple[int, ...] = (200,), headers: Optional[Dict[str, str]] = None,
                 changes: bool = False) -> Tuple[int, Any]:
        sep = '&' if '?' in path else '?'
        if 'api-version=' not in path:
            path += '%sapi-version=%s' % (sep, API_VERSION)
        self.client.headers = dict(self._headers(phase), **(headers or {}))
        return self.client.request(method, path, body, ok=ok, phase=phase, changes=changes,
                                   refusal=self._refusal(what, phase))

    def _pages(self, path: str, what: str, phase: str) -> List[Dict[str, Any]]:
        items: List[Dict[str, Any]] = []
        for _page in range(MAX_PAGES):
            _status, body = self._request('GET', path, what, phase)
            if not isinstance(body, dict) or not isinstance(body.get('value'), list):
                raise DnsError('%s answered GET %s with JSON that is not a list (no value)'
                               % (self.where, path.split('?')[0]), phase)
            items.extend(i for i in body['value'] if isinstance(i, dict))
            link = body.get('nextLink')
            if not link:
                return items
            relative = self._relative(link)
            if relative is None:
                raise DnsError('%s answered with a nextLink to another host (%r); it is not '
                               'followed.' % (self.where, str(link)[:200]), phase)
            path = relative
        raise DnsError('%s kept answering with another page after %d pages of %s'
                       % (self.where, MAX_PAGES, what), phase)

    def _relative(self, link: Any) -> Optional[str]:
        """The path and query of a nextLink on Resource Manager's own origin (an explicit
        default port or another case of the host is the same origin), else None."""
        if not isinstance(link, str) or origin(link) is None or origin(link) != origin(self.arm):
            return None
        parts = urlsplit(link)
        base = urlsplit(self.arm).path.rstrip('/')
        if parts.username or parts.password or not parts.path.startswith(base + '/'):
            return None
        return parts.path[len(base):] + ('?' + parts.query if parts.query else '')

    def _group_path(self, group: str) -> str:
        return '/subscriptions/%s/resourceGroups/%s' % (segment(self.subscription),
                                                        segment(group))

    def _zone_path(self, zone: str) -> str:
        return '%s/providers/Microsoft.Network/dnsZones/%s' % (
            self._group_path(self._groups[zone]), segment(zone.rstrip('.')))

    def _rrset_path(self, zone: str, key: Key) -> str:
        name, rdtype = key
        relative = to_name(name).relativize(to_name(zone)).to_text()
        return '%s/%s/%s' % (self._zone_path(zone), rdtype, quote(relative, safe='@'))

    # -- the contract -------------------------------------------------------------------------
    def find_zone(self, domain: str) -> str:
        """The closest enclosing public zone: in azure_resource_group, else anywhere in the
        subscription (one list of its zones)."""
        if self.resource_group:
            path = '%s/providers/Microsoft.Network/dnsZones' % self._group_path(
                self.resource_group)
            where = 'resource group %s' % self.resource_group
        else:
            path = '/subscriptions/%s/providers/Microsoft.Network/dnsZones' % segment(
                self.subscription)
            where = 'the subscription'
        zones: Dict[str, List[str]] = {}
        for item in self._pages(path, 'the list of DNS zones', 'zone'):
            zone_name = str(item.get('name') or '').lower().rstrip('.') + '.'
            props = as_dict(item.get('properties'))
            if props.get('zoneType', 'Public') != 'Public':
                continue
            group = _group_of(str(item.get('id') or '')) or self.resource_group or ''
            zones.setdefault(zone_name, []).append(group)
        tried = enclosing(domain)
        for candidate in tried:
            groups = zones.get(candidate)
            if groups:
                if len(set(g.lower() for g in groups)) > 1:
                    raise DnsError('%s has zone %s in several resource groups (%s). Give '
                                   'azure_resource_group.' % (self.where, candidate,
                                                              ', '.join(sorted(groups))), 'zone')
                self._groups[candidate] = groups[0]
                return candidate
        raise DnsError('%s has no public DNS zone for %s in %s (asked for %s). Check '
                       'azure_subscription_id and azure_resource_group.'
                       % (self.where, domain, where, ', '.join(tried)), 'zone')

    def _rrsets(self, zone: str, phase: str) -> Dict[Key, RRset]:
        if zone not in self._groups and self.find_zone(zone) != zone:
            raise DnsError('%s has no DNS zone %s; the zone that holds it is %s. Give that as '
                           'zone, or leave zone out.' % (self.where, zone, self.find_zone(zone)),
                           phase)
        found: Dict[Key, RRset] = {}
        self._special = set()
        etags: Dict[Key, str] = {}
        for item in self._pages(self._zone_path(zone) + '/recordsets',
                                'the record sets of zone %s' % zone, phase):
            rrset = self._rrset_of(zone, item, phase)
            if rrset is None:
                continue
            etags[rrset.key] = str(item.get('etag') or '')
            if rrset.values:  # an empty record set (Azure allows them) serves nothing
                found[rrset.key] = rrset
        self._etags = etags
        self._zone = zone
        return found

    def _rrset_of(self, zone: str, item: Dict[str, Any], phase: str = 'read') -> Optional[RRset]:
        """The rrset of one record set's JSON (None for the SOA); an alias of an Azure
        resource is kept opaque and noted, so that a plan cannot change it."""
        rdtype = str(item.get('type') or '').rsplit('/', 1)[-1].upper()
        props = as_dict(item.get('properties'))
        fqdn = props.get('fqdn') or '%s.%s' % (item.get('name'), zone)
        name = str(fqdn).lower() if item.get('name') != '@' else zone
        if not name.endswith('.'):
            name += '.'
        if isinstance(props.get('metadata'), dict):
            self._metadata[(name, rdtype)] = props['metadata']  # kept by every PUT
        target = props.get('targetResource')
        codec = CODECS.get(rdtype)
        records = props.get(codec[0]) if codec else None
        if records is None and rdtype == 'CAA':
            records = props.get('CAARecords')  # the SDKs' spelling
        records = [records] if isinstance(records, dict) else records or []
        try:
            ttl = int(props.get('TTL') or 0)
            if isinstance(target, dict) and target.get('id'):
                self._special.add((name, rdtype))
                return RRset(name, rdtype, ttl, values=['alias %s' % target['id']])
            if rdtype == 'SOA':
                return None
            if codec is None:  # a type this provider does not write: only its key matters
                return RRset(name, rdtype, ttl, values=[repr(props)[:200]])
            return RRset.from_texts(name, rdtype, ttl, [codec[2](r) for r in records])
        except (KeyError, TypeError, ValueError, AttributeError, RecordError) as e:
            raise DnsError('%s answered record set %s %s in a shape that is not the documented '
                           'one (%s): %r' % (self.where, name, rdtype, e, records), phase)

    def read_rrsets(self, zone: str, names: Iterable[str]) -> Snapshot:
        snapshot = Snapshot(zone, None, self._rrsets(zone, 'read'), 'api')
        snapshot.warnings.extend(self.warnings)
        return snapshot

    def served(self, keys: Iterable[Key]) -> Dict[Key, Optional[RRset]]:
        rrsets = self._rrsets(self._zone, 'verify')
        return dict((k, rrsets.get(k)) for k in keys)

    def check_plan(self, changes: List[Change]) -> None:
        for c in changes:
            if c.key in self._special:
                raise DnsError('%s %s is an alias record set of an Azure resource; mail_dns '
                               'does not change those. Nothing was changed: change it in Azure, '
                               'or leave it out of the plan.' % c.key, 'plan')
            if c.after is not None and c.key[1] not in CODECS:
                raise DnsError('provider azure does not write %s records (%s). Nothing was '
                               'changed.' % (c.key[1], c.key[0]), 'plan')

    def body_of(self, rrset: RRset) -> Dict[str, Any]:
        prop, encode, _decode = CODECS[rrset.rdtype]
        records = [encode(rd) for rd in rrset.rdata_list()]
        props: Dict[str, Any] = {'TTL': rrset.ttl,
                                 prop: records[0] if prop.endswith('Record') else records}
        if rrset.key in self._metadata:  # a PUT replaces the record set: its tags stay
            props['metadata'] = self._metadata[rrset.key]
        return {'properties': props}

    def apply_changes(self, zone: str, changes: List[Change]) -> None:
        """One request per record set, each with its precondition; deletions first (a CNAME
        may replace other data). A refusal or a 412 carries the changes applied before it."""
        self.check_plan(changes)
        self._zone = zone
        done: List[Change] = []
        for c in sorted(changes, key=lambda c: c.after is not None):
            action = 'deletion' if c.after is None else 'change'
            what = 'the %s of %s %s' % ((action,) + c.key)
            # the etag read: of the record set, or of an empty one (no records) where the plan
            # creates records
            etag = self._etags.get(c.key)
            if c.before is not None and not etag:
                raise partway(ConcurrentChange('%s: record set %s %s has no etag from the read'
                                               % ((self.where,) + c.key), 'apply'), done)
            headers = {'If-Match': etag} if etag else {'If-None-Match': '*'}
            try:
                try:
                    self._write(zone, c, what, headers)
                except UpdateOutcomeUnknown as e:
                    state = self._settled(zone, c, e)
                    if state is None:
                        raise
                    if state == 'not applied':
                        # once more with the same precondition: should the first one still
                        # land, this one is refused (412) and the change is re-planned
                        self._write(zone, c, what, headers)
            except DnsError as e:
                raise partway(e, done)
            done.append(c)

    def _write(self, zone: str, change: Change, what: str, headers: Dict[str, str]) -> None:
        path = self._rrset_path(zone, change.key)
        if change.after is None:
            self._request('DELETE', path, what, 'apply', ok=(200, 204), headers=headers,
                          changes=True)
            self._etags.pop(change.key, None)
            return
        _status, body = self._request('PUT', path, what, 'apply', self.body_of(change.after),
                                      ok=(200, 201), headers=headers, changes=True)
        new = as_dict(body).get('etag')
        if isinstance(new, str) and new:
            self._etags[change.key] = new
        else:  # written, but without the etag an undo would need: it then reads it again
            self._etags.pop(change.key, None)

    def _settled(self, zone: str, change: Change, lost: DnsError) -> Optional[str]:
        """After a write whose answer was lost, a read of the record set: 'applied' (its etag
        taken), 'not applied', None when the read fails too (the outcome stays unknown);
        ConcurrentChange when it is neither as read nor as planned."""
        try:
            status, body = self._request('GET', self._rrset_path(zone, change.key),
                                         'the record set %s %s' % change.key, 'apply',
                                         ok=(200, 404))
            now = self._rrset_of(zone, as_dict(body), 'apply') if status == 200 else None
        except DnsError:
            return None
        if now is not None and not now.values:
            now = None  # an empty record set serves nothing
        if (now is None) if change.after is None else (now is not None
                                                       and now.same_as(change.after)):
            if now is not None:
                self._etags[change.key] = str(as_dict(body).get('etag') or '')
            self.warnings.append('%s; a read of the record set shows it applied' % lost.message)
            return 'applied'
        if (now is None) if change.before is None else (now is not None
                                                        and now.same_as(change.before)):
            self.warnings.append('%s; a read of the record set shows it not applied, so it was '
                                 'sent once more' % lost.message)
            return 'not applied'
        raise ConcurrentChange('%s: a read shows record set %s %s as neither before nor '
                               'planned (someone else changed it)'
                               % ((lost.message,) + change.key), 'apply')

    def prove_write(self, zone: str) -> None:
        """A write that can change nothing: the deletion of a record set that cannot exist,
        with If-Match an etag no record set has. Resource Manager checks the role first (403
        AuthorizationFailed); then Azure DNS answers 412 or, for an absent record set, 200 or
        204. Any of those proves the right to change the zone."""
        key = ('_exchangeonline-mail-preflight.%s' % zone, 'TXT')
        try:
            self._request('DELETE', self._rrset_path(zone, key), 'the preflight deletion of '
                          'an absent record set', 'preflight', ok=(200, 204),
                          headers={'If-Match': '"exchangeonline-mail-preflight"'}, changes=False)
        except ConcurrentChange:
            return


def _group_of(resource_id: str) -> Optional[str]:
    parts = resource_id.split('/')
    for i, part in enumerate(parts[:-1]):
        if part.lower() == 'resourcegroups':
            return parts[i + 1]
    return None
