"""The Azure DNS half: record sets of public zones through Azure Resource Manager (api-version
2018-05-01), on the emulator's HTTPS listener, with tokens its identity half issues for
``https://management.azure.com`` (sources in tests/lab/README.md, "Azure DNS").

* Paths: ``/subscriptions/<s>/providers/Microsoft.Network/dnszones`` (the subscription's zones),
  ``/subscriptions/<s>/resourceGroups/<rg>/providers/Microsoft.Network/dnsZones[/<zone>[/recordsets
  | /<type>/<relative name>]]``, case-insensitive as ARM is; ``api-version`` required (400
  ``MissingApiVersionParameter``).
* Tokens: the audience must be Resource Manager's (401 ``InvalidAuthenticationTokenAudience``
  otherwise), and the app needs a role on the resource group (403 ``AuthorizationFailed`` naming
  the action and scope, with ``add_reader`` only the read actions).
* Record sets carry an ``etag`` that changes with every write. ``PUT`` with ``If-Match`` that is
  not the current etag, with ``If-Match`` on an absent record set, or with ``If-None-Match: *``
  on an existing one is 412 ``PreconditionFailed``; without either header it overwrites. PUT
  answers 201 (created) or 200 with the record set; DELETE 200, or 204 for an absent record set
  without If-Match. A CNAME record set holds one record, is refused at the apex and next to other
  record sets of its name, and another type next to a CNAME is refused (400 ``BadRequest``);
  the SOA and the apex NS record sets cannot be deleted.
* ``fail_next`` (a status and a code) refuses the next write of the record set type it names,
  to test a failure in the middle of a run; ``lose_next_write`` applies the next write and
  closes the connection without an answer, ``drop_next_write`` closes it without applying the
  next PUT. A PUT keeps the ``metadata`` it is sent (and only that: a PUT replaces the record
  set, REST "Record Sets - Create Or Update").
"""

import re
import threading
import uuid

from .common import Response

ARM_RESOURCES = ('https://management.azure.com', 'https://management.azure.com/',
                 'https://management.core.windows.net', 'https://management.core.windows.net/')
API_VERSIONS = ('2018-05-01', '2023-07-01-preview')
PROPS = {'A': 'ARecords', 'AAAA': 'AAAARecords', 'MX': 'MXRecords', 'TXT': 'TXTRecords',
         'CNAME': 'CNAMERecord', 'NS': 'NSRecords', 'PTR': 'PTRRecords', 'SRV': 'SRVRecords',
         'CAA': 'caaRecords', 'SOA': 'SOARecord'}
NAME_SERVERS = ['ns1-07.azure-dns.com.', 'ns2-07.azure-dns.net.', 'ns3-07.azure-dns.org.',
                'ns4-07.azure-dns.info.']
READ_ACTIONS = ('read',)


def arm_error(status, code, message, headers=None):
    return Response(status, {'error': {'code': code, 'message': message}}, headers)


class Lost(Exception):
    """The write was applied; its answer is never sent."""


class AzureDnsApi:
    def __init__(self, emu):
        self.emu = emu
        self.lock = threading.RLock()
        self.subscription = str(uuid.uuid4())
        self.resource_group = 'rg-dns'
        self.zones = {}      # zone name (no final dot) -> {(relative name lower, TYPE): set}
        self.roles = {}      # client id lower -> 'contributor' | 'reader'
        self.writes = []     # (method, zone, type, name) of every write that went in
        self.fail_next = ()  # (TYPE, status, code, message): refuse the next write of TYPE
        self.lose_next_write = False
        self.drop_next_write = False

    # -- state ----------------------------------------------------------------------------------
    def add_zone(self, name):
        name = name.rstrip('.').lower()
        with self.lock:
            self.zones[name] = {
                ('@', 'SOA'): self._new('@', 'SOA', 3600, {'SOARecord': {
                    'host': NAME_SERVERS[0].rstrip('.'), 'email': 'azuredns-hostmaster.microsoft.com',
                    'serialNumber': 1, 'refreshTime': 3600, 'retryTime': 300,
                    'expireTime': 2419200, 'minimumTTL': 300}}),
                ('@', 'NS'): self._new('@', 'NS', 172800, {'NSRecords': [
                    {'nsdname': n} for n in NAME_SERVERS]})}

    def grant(self, client_id, role='contributor', scope='subscription'):
        """A role assignment: ``role`` 'contributor' (DNS Zone Contributor) or 'reader', at
        ``scope`` 'subscription' or 'resource group' (then the subscription's list of zones is
        403, as Resource Manager answers a list above the scope of the role)."""
        with self.lock:
            self.roles[client_id.lower()] = (role, scope)

    @staticmethod
    def _new(name, rdtype, ttl, records, metadata=None):
        return {'name': name, 'type': rdtype, 'etag': str(uuid.uuid4()), 'ttl': ttl,
                'records': records, 'metadata': metadata}

    def put_set(self, zone, name, rdtype, ttl, records, metadata=None):
        """An administrator's own write (the portal): a new etag. ``records`` {property:
        list}; an empty list is an empty record set, as Azure DNS allows."""
        with self.lock:
            self.zones[zone.rstrip('.').lower()][(name.lower(), rdtype)] = self._new(
                name.lower(), rdtype, ttl, records, metadata)

    def record_set(self, zone, name, rdtype):
        with self.lock:
            return self.zones[zone.rstrip('.').lower()].get((name.lower(), rdtype))

    # -- the API --------------------------------------------------------------------------------
    def dispatch(self, method, path, query, body, headers, claims, problem):
        if problem is not None:
            if problem.endswith('Invalid audience.'):
                return arm_error(401, 'InvalidAuthenticationTokenAudience',
                                 "The access token has been obtained for wrong audience or "
                                 "resource '%s'. It should exactly match with one of the allowed "
                                 "audiences 'https://management.core.windows.net/','https://"
                                 "management.core.windows.net','https://management.azure.com/',"
                                 "'https://management.azure.com'." % claims.get('aud'))
            return arm_error(401, 'InvalidAuthenticationToken',
                             'The access token is invalid. (%s)' % problem)
        version = query.get('api-version')
        if not version:
            return arm_error(400, 'MissingApiVersionParameter',
                             "The api-version query parameter (?api-version=) is required for "
                             "all requests.")
        if version not in API_VERSIONS:
            return arm_error(400, 'InvalidApiVersionParameter',
                             "The api-version '%s' is invalid. The supported versions are '%s'."
                             % (version, "','".join(API_VERSIONS)))
        m = re.fullmatch(r'/subscriptions/([^/]+)(?:/resourceGroups/([^/]+))?/providers/'
                         r'Microsoft\.Network/dnszones(?:/([^/]+)(?:/(recordsets|[A-Za-z]+)'
                         r'(?:/([^/]+))?)?)?', path, flags=re.IGNORECASE)
        if not m:
            return arm_error(404, 'InvalidResourceType', "The resource type could not be found "
                             "in the namespace 'Microsoft.Network' for api version '%s'."
                             % version)
        sub, group, zone, kind, rel = m.groups()
        if sub.lower() != self.subscription.lower():
            return arm_error(404, 'SubscriptionNotFound',
                             "The subscription '%s' could not be found." % sub)
        if group is not None and group.lower() != self.resource_group.lower():
            return arm_error(404, 'ResourceGroupNotFound',
                             "Resource group '%s' could not be found." % group)
        write = method in ('PUT', 'DELETE', 'PATCH')
        action = 'Microsoft.Network/dnszones/%s%s' % (
            '%s/' % kind.upper() if kind and kind.lower() != 'recordsets' else '',
            ('delete' if method == 'DELETE' else 'write') if write else 'read')
        role, scope = self.roles.get(str(claims.get('appid') or '').lower(), (None, None))
        if role is None or (write and role != 'contributor') or (
                group is None and scope != 'subscription'):
            scope = path.split('?')[0]
            return arm_error(403, 'AuthorizationFailed',
                             "The client '%s' with object id '%s' does not have authorization to "
                             "perform action '%s' over scope '%s' or the scope is invalid. If "
                             "access was recently granted, please refresh your credentials."
                             % (claims.get('appid'), claims.get('oid'), action, scope))
        with self.lock:
            if zone is None:
                return Response(200, {'value': [self._zone_json(z) for z in sorted(self.zones)]})
            zname = zone.lower()
            if zname not in self.zones:
                return arm_error(404, 'ResourceNotFound',
                                 "The Resource 'Microsoft.Network/dnszones/%s' under resource "
                                 "group '%s' was not found. For more details please go to "
                                 "https://aka.ms/ARMResourceNotFoundFix" % (zone, group))
            if kind is None:
                return Response(200, self._zone_json(zname))
            if kind.lower() == 'recordsets' and rel is None and method == 'GET':
                return self._list(zname, query, path)
            rdtype = kind.upper()
            if rdtype not in PROPS or rel is None:
                return arm_error(400, 'BadRequest', 'The record type %s is not supported.' % kind)
            return self._record_set(method, zname, rdtype, rel.lower(), body, headers)

    def _zone_json(self, zname):
        return {'id': '/subscriptions/%s/resourceGroups/%s/providers/Microsoft.Network/dnszones/%s'
                      % (self.subscription, self.resource_group, zname),
                'name': zname, 'type': 'Microsoft.Network/dnszones', 'location': 'global',
                'etag': '00000002-0000-0000-0000-000000000000',
                'properties': {'maxNumberOfRecordSets': 10000,
                               'numberOfRecordSets': len(self.zones[zname]),
                               'nameServers': [n.rstrip('.') for n in NAME_SERVERS],
                               'zoneType': 'Public'}}

    def _set_json(self, zname, item):
        fqdn = '%s.' % zname if item['name'] == '@' else '%s.%s.' % (item['name'], zname)
        props = {'metadata': item.get('metadata'), 'TTL': item['ttl'], 'fqdn': fqdn,
                 'provisioningState': 'Succeeded', 'targetResource': {}}
        props.update(item['records'])
        return {'id': '/subscriptions/%s/resourceGroups/%s/providers/Microsoft.Network/dnszones/'
                      '%s/%s/%s' % (self.subscription, self.resource_group, zname, item['type'],
                                    item['name']),
                'name': item['name'], 'type': 'Microsoft.Network/dnszones/%s' % item['type'],
                'etag': item['etag'], 'properties': props}

    def _list(self, zname, query, path):
        items = [self._set_json(zname, v) for _k, v in sorted(self.zones[zname].items())]
        top = int(query.get('$top') or 100)
        start = int(query.get('$skiptoken') or 0)
        page = items[start:start + top]
        body = {'value': page}
        if start + top < len(items):
            body['nextLink'] = '%s%s?api-version=%s&$top=%d&$skiptoken=%d' % (
                self.emu.url, path, query['api-version'], top, start + top)
        return Response(200, body)

    def _record_set(self, method, zname, rdtype, rel, body, headers):
        sets = self.zones[zname]
        key = (rel, rdtype)
        current = sets.get(key)
        if_match = headers.get('If-Match')
        if_none = headers.get('If-None-Match')
        if method == 'GET':
            if current is None:
                return arm_error(404, 'NotFound', "The resource record '%s' does not exist in "
                                 "resource group '%s' of subscription '%s'."
                                 % (rel, self.resource_group, self.subscription))
            return Response(200, self._set_json(zname, current))
        if if_match is not None and (current is None or if_match.strip('"') != current['etag']):
            return arm_error(412, 'PreconditionFailed',
                             'The Record set %s has been modified (etag mismatch).' % rel
                             if current is not None else
                             'The Record set %s does not exist.' % rel)
        if if_none == '*' and current is not None:
            return arm_error(412, 'PreconditionFailed', 'The Record set %s exists already and '
                             'hence cannot be created again.' % rel)
        if self.fail_next and self.fail_next[0] == rdtype:
            failure, self.fail_next = tuple(self.fail_next), ()
            return arm_error(failure[1], failure[2], failure[3])
        if method == 'DELETE':
            if current is None:
                return Response(204)
            if rdtype == 'SOA' or (rdtype == 'NS' and rel == '@'):
                return arm_error(400, 'BadRequest', 'The %s record set at the zone apex cannot '
                                 'be deleted.' % rdtype)
            del sets[key]
            self.writes.append(('DELETE', zname, rdtype, rel))
            self._maybe_lose()
            return Response(200)
        if method != 'PUT':
            return arm_error(405, 'MethodNotAllowed', 'The method %s is not allowed.' % method)
        props = (body or {}).get('properties') if isinstance(body, dict) else None
        if not isinstance(props, dict) or not isinstance(props.get('TTL'), int):
            return arm_error(400, 'BadRequest', 'The record set must have properties with a TTL.')
        records = props.get(PROPS[rdtype])
        if records is None or (rdtype != 'CNAME' and not isinstance(records, list)):
            return arm_error(400, 'BadRequest', 'The record set of type %s must have %s.'
                             % (rdtype, PROPS[rdtype]))
        if rdtype == 'CNAME':
            if rel == '@':
                return arm_error(400, 'BadRequest', 'CNAME records are not supported at the '
                                 'zone apex.')
            if any(k[0] == rel and k[1] != 'CNAME' for k in sets):
                return arm_error(400, 'BadRequest', 'The CNAME record set %s conflicts with '
                                 'another record set of that name.' % rel)
        elif (rel, 'CNAME') in sets:
            return arm_error(400, 'BadRequest', 'The record set %s conflicts with the CNAME '
                             'record set of that name.' % rel)
        if self.drop_next_write:  # lost before it arrived: nothing applied, no answer
            self.drop_next_write = False
            raise Lost()
        metadata = props.get('metadata') if isinstance(props.get('metadata'), dict) else None
        item = self._new(rel, rdtype, props['TTL'], {PROPS[rdtype]: records}, metadata)
        sets[key] = item
        self.writes.append(('PUT', zname, rdtype, rel))
        self._maybe_lose()
        return Response(200 if current is not None else 201, self._set_json(zname, item))

    def _maybe_lose(self):
        if self.lose_next_write:
            self.lose_next_write = False
            raise Lost()

    # -- what tests look at ---------------------------------------------------------------------
    def presentation(self, zname):
        """{(absolute name, TYPE): (ttl, sorted presentation values)} of every record set."""
        out = {}
        with self.lock:
            items = list(self.zones[zname.rstrip('.').lower()].values())
        for item in items:
            name = zname.rstrip('.') + '.' if item['name'] == '@' else '%s.%s.' % (
                item['name'], zname.rstrip('.'))
            values = [text_of(item['type'], r) for r in _records(item)]
            if values:
                out[(name, item['type'])] = (item['ttl'], sorted(values))
        return out


def _records(item):
    records = item['records'].get(PROPS[item['type']])
    return [records] if isinstance(records, dict) else list(records or [])


def _dot(name):
    return name if name.endswith('.') else name + '.'


def text_of(rdtype, r):
    if rdtype == 'A':
        return r['ipv4Address']
    if rdtype == 'AAAA':
        return r['ipv6Address']
    if rdtype == 'MX':
        return '%d %s' % (r['preference'], _dot(r['exchange']))
    if rdtype == 'TXT':
        return ' '.join('"%s"' % s.replace('\\', '\\\\').replace('"', '\\"') for s in r['value'])
    if rdtype == 'CNAME':
        return _dot(r['cname'])
    if rdtype == 'NS':
        return _dot(r['nsdname'])
    if rdtype == 'PTR':
        return _dot(r['ptrdname'])
    if rdtype == 'SRV':
        return '%d %d %d %s' % (r['priority'], r['weight'], r['port'], _dot(r['target']))
    if rdtype == 'CAA':
        return '%d %s "%s"' % (r['flags'], r['tag'], r['value'])
    if rdtype == 'SOA':
        return '%s %s %d %d %d %d %d' % (_dot(r['host']), _dot(r['email']), r['serialNumber'],
                                         r['refreshTime'], r['retryTime'], r['expireTime'],
                                         r['minimumTTL'])
    raise ValueError(rdtype)
