# -*- coding: utf-8 -*-
# Copyright (c) exchangeonline.mail contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# Private to this collection: may change without notice.
"""The Cloudflare provider: a zone on Cloudflare DNS, through the API v4 with an API token.

Read: ``GET /zones/<id>/dns_records`` (paged by ``result_info``), one record per item with its
``id``. Write: one ``POST /zones/<id>/dns_records/batch`` per change set: of each changed rrset,
the records the plan drops (or whose TTL changes) are deleted by id and the ones it adds posted;
a record it keeps stays as it is, with its id, comment and tags. Cloudflare runs a batch "in a
single database transaction" (deletes first, then posts; API reference "Batch DNS Records"), so it
applies whole or not at all. The only precondition it takes is that each deleted id still exists,
so the guarantee is ``TRANSACTION``: the engine reads the names again just before the batch, and
a batch refused because a record is gone is a concurrent change (re-read, re-planned once). A
record whose content cannot be read back exactly is kept opaque, and a plan that would change
its rrset fails before anything is sent.

Records are written "DNS only" (``proxied: false``): a proxied record is served as Cloudflare's
own addresses, which breaks autodiscover and MX targets; a proxied record at a name the plan
reads gives a warning that says so. TTL 1 is Cloudflare's "automatic", 300 seconds. TXT content
is quoted character strings (RFC 1035), as the API documents it; an unquoted one is read as one
string. The preflight deletes a record id that cannot exist: Cloudflare checks the token's DNS
Write first, then answers 81044 "Record does not exist", which proves the right and changes
nothing.
"""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import re
from typing import Any, Dict, Iterable, List, Optional, Set, Tuple
from urllib.parse import quote

from ansible_collections.exchangeonline.mail.plugins.module_utils._dns_api import (
    ApiClient,
    api_base,
    as_dict,
    plain_http_off_host,
    segment,
)
from ansible_collections.exchangeonline.mail.plugins.module_utils._dns_provider import (
    TRANSACTION,
    ConcurrentChange,
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
    make_rdata,
    to_name,
)

API_URL = 'https://api.cloudflare.com/client/v4'
PER_PAGE = 1000       # DNS records per page (List DNS Records: at most 5,000,000)
ZONES_PER_PAGE = 50   # List Zones: per_page from 5 to 50
MAX_PAGES = 200
AUTOMATIC_TTL = 300   # ttl 1: "automatic", 300 seconds
BATCH_LIMIT = 200     # records per batch on the Free plan ("Batch record changes", limits)
PROXIABLE = ('A', 'AAAA', 'CNAME')
# The codes of a token refused: malformed header (6003), authentication error (10000),
# invalid access token (9109), invalid API token (1000)
TOKEN_CODES = (6003, 10000, 9109, 1000)
# The codes of a batch refused because a record it deletes is not there (any more)
GONE_CODES = (81044, 1032)
PREFLIGHT_ID = '0' * 32
ZONE_ID = re.compile(r'^[0-9a-fA-F]{32}$')


def _cf_name(name: str) -> str:
    return name.rstrip('.')


def _txt_content(rd: Any) -> str:
    return ' '.join('"%s"' % s.decode('utf-8', 'surrogateescape').replace('\\', '\\\\')
                    .replace('"', '\\"') for s in rd.strings)


class CloudflareProvider(ZoneProvider):
    """The zones one API token may edit."""

    guarantee = TRANSACTION
    name = 'cloudflare'

    def __init__(self, api_token: str, api_url: str = API_URL, zone_id: Optional[str] = None,
                 timeout: float = 10.0, verify: Any = True) -> None:
        self.api_url = api_base(api_url or API_URL, 'api_url', API_URL)
        if not api_token:
            raise DnsError('provider cloudflare needs api_token: an API token with the '
                           'permission Zone DNS Edit on the zone (or set CLOUDFLARE_API_TOKEN).',
                           'input')
        if zone_id is not None and not ZONE_ID.match(zone_id):
            raise DnsError('hosted_zone_id %r is not a Cloudflare zone ID (32 hexadecimal '
                           'digits, on the zone\'s Overview page).' % zone_id[:100], 'input')
        self.zone_id = zone_id
        self.timeout = timeout
        self.where = 'the Cloudflare API at %s' % self.api_url
        self.client = ApiClient(self.api_url, {'Authorization': 'Bearer ' + api_token},
                                self.where, timeout, verify)
        self.warnings: List[str] = []
        if plain_http_off_host(self.api_url):
            self.warnings.append('api_url %s is plain http:// to another host: the API token '
                                 'crosses the network in clear.' % self.api_url)
        self._ids: Dict[str, str] = {}                # zone -> zone id
        self._nameservers: Dict[str, Any] = {}        # zone -> the name servers Cloudflare gave
        # rrset -> {value: (the id of its record, its TTL)}
        self._records: Dict[Key, Dict[str, Tuple[str, int]]] = {}
        self._opaque: Set[Key] = set()                # rrsets with content not read back
        self._proxied: Set[Key] = set()
        self._zone = ''

    @classmethod
    def from_params(cls, params: Dict[str, Any]) -> 'CloudflareProvider':
        return cls(params.get('api_token') or '', params.get('api_url') or API_URL,
                   params.get('hosted_zone_id'), params.get('timeout') or 10.0,
                   ApiClient.verify_of(params))

    @property
    def writer(self) -> str:
        return 'the API token'

    @property
    def label(self) -> str:
        return 'cloudflare %s' % self.api_url

    # -- requests -----------------------------------------------------------------------------
    def _refusal(self, what: str, phase: str) -> Any:
        def explain(status: int, body: Any, text: str) -> DnsError:
            errors = body.get('errors') if isinstance(body, dict) else None
            errors = [e for e in errors or [] if isinstance(e, dict)]
            said = '; '.join('%s %s' % (e.get('code'), e.get('message')) for e in errors) or text
            codes = set(e.get('code') for e in errors)
            if status in (401, 403) or codes & set(TOKEN_CODES):
                return DnsError('%s refused the API token for %s (HTTP %d: %s). Check api_token: '
                                'it needs the permission Zone DNS Edit on this zone.'
                                % (self.where, what, status, said), phase,
                                rcode='HTTP %d' % status)
            if phase in ('apply', 'preflight') and codes & set(GONE_CODES):
                return ConcurrentChange('%s refused %s: a record it deletes is gone, so the '
                                        'zone changed since it was read (%s)'
                                        % (self.where, what, said), phase)
            if phase == 'apply':
                return DnsError('%s refused %s (HTTP %d: %s). Nothing was changed: Cloudflare '
                                'runs the whole batch in one transaction or none of it.'
                                % (self.where, what, status, said), phase,
                                rcode='HTTP %d' % status)
            return DnsError('%s refused %s (HTTP %d: %s)' % (self.where, what, status, said),
                            phase, rcode='HTTP %d' % status)
        return explain

    def _call(self, method: str, path: str, what: str, phase: str, body: Any = None,
              changes: bool = False) -> Dict[str, Any]:
        _status, answer = self.client.request(method, path, body, ok=(200,), phase=phase,
                                              changes=changes,
                                              refusal=self._refusal(what, phase))
        if not isinstance(answer, dict) or answer.get('success') is not True:
            if changes:  # a 200 for a change: Cloudflare's envelope says success; take it in
                return answer if isinstance(answer, dict) else {}
            raise DnsError('%s answered %s with JSON that is not the documented envelope '
                           '(no success: true): %r' % (self.where, what, str(answer)[:300]),
                           phase)
        return answer

    def _list(self, path: str, what: str, phase: str,
              per_page: int = PER_PAGE) -> List[Dict[str, Any]]:
        items: List[Dict[str, Any]] = []
        sep = '&' if '?' in path else '?'
        for page in range(1, MAX_PAGES + 1):
            answer = self._call('GET', '%s%spage=%d&per_page=%d' % (path, sep, page, per_page),
                                what, phase)
            result = answer.get('result')
            if not isinstance(result, list):
                raise DnsError('%s answered %s without a list of results' % (self.where, what),
                               phase)
            items.extend(r for r in result if isinstance(r, dict))
            info = as_dict(answer.get('result_info'))
            pages = info.get('total_pages')
            if not result or not isinstance(pages, int) or page >= pages:
                return items
        raise DnsError('%s kept answering with another page after %d pages of %s'
                       % (self.where, MAX_PAGES, what), phase)

    # -- the contract -------------------------------------------------------------------------
    def find_zone(self, domain: str) -> str:
        if self.zone_id:
            answer = self._call('GET', '/zones/%s' % segment(self.zone_id),
                                'zone %s' % self.zone_id, 'zone')
            result = as_dict(answer.get('result'))
            zone = str(result.get('name') or '').lower().rstrip('.') + '.'
            if not to_name(domain).is_subdomain(to_name(zone)):
                raise DnsError('Cloudflare zone %s is %s, which does not hold %s. Check '
                               'hosted_zone_id.' % (self.zone_id, zone, domain), 'zone')
            self._ids[zone] = self.zone_id
            self._nameservers[zone] = result.get('name_servers')
            return zone
        tried = enclosing(domain)
        for candidate in tried:
            found = [z for z in self._list('/zones?name=%s' % quote(_cf_name(candidate), safe=''),
                                           'the zones named %s' % candidate, 'zone',
                                           ZONES_PER_PAGE)
                     if str(z.get('name', '')).lower().rstrip('.') == _cf_name(candidate)]
            if len(found) > 1:
                raise DnsError('%s has %d zones named %s (in several accounts). Give '
                               'hosted_zone_id.' % (self.where, len(found), candidate), 'zone')
            if found:
                self._ids[candidate] = str(found[0].get('id'))
                self._nameservers[candidate] = found[0].get('name_servers')
                return candidate
        raise DnsError('%s shows the API token no zone for %s (asked for %s). Check that the '
                       'zone is on Cloudflare and that the token may read it (Zone Read), or '
                       'give hosted_zone_id.' % (self.where, domain, ', '.join(tried)), 'zone')

    def _zone_path(self, zone: str) -> str:
        if zone not in self._ids and self.find_zone(zone) != zone:
            raise DnsError('%s has no zone %s; the zone that holds it is %s. Give that as zone, '
                           'or leave zone out.' % (self.where, zone, self.find_zone(zone)),
                           'zone')
        return '/zones/%s' % segment(self._ids[zone])

    def _rrsets(self, zone: str, phase: str) -> Dict[Key, RRset]:
        rdatas: Dict[Key, Dict[str, Any]] = {}
        ttls: Dict[Key, int] = {}
        by_value: Dict[Key, Dict[str, Tuple[str, int]]] = {}
        opaque: Set[Key] = set()
        proxied: Set[Key] = set()
        for item in self._list(self._zone_path(zone) + '/dns_records',
                               'the records of zone %s' % zone, phase):
            rdtype = str(item.get('type') or '').upper()
            if rdtype in DNSSEC_TYPES or not item.get('id'):
                continue
            key = (str(item.get('name') or '').lower().rstrip('.') + '.', rdtype)
            try:
                ttl = int(item.get('ttl') or 1)
                text = self._text_of(rdtype, item)
            except (TypeError, ValueError) as e:
                raise DnsError('%s answered record %s %s in a shape that is not the documented '
                               'one (%s): %r' % (self.where, key[0], rdtype, e, item), phase)
            ttl = AUTOMATIC_TTL if ttl == 1 else ttl
            ttls[key] = min(ttl, ttls.get(key, ttl))
            if item.get('proxied'):
                proxied.add(key)
            try:
                one = RRset.from_texts(key[0], rdtype, ttl, [text])
                value, rd = next(iter(one.rdatas.items()))
            except RecordError:  # a type or content dnspython does not read: kept as it is
                opaque.add(key)
                value, rd = text, None
            rdatas.setdefault(key, {})[value] = rd
            by_value.setdefault(key, {})[value] = (str(item['id']), ttl)
        found = dict((key, RRset(key[0], key[1], ttls[key], rdatas=values))
                     for key, values in rdatas.items())
        servers = self._nameservers.get(zone)
        if isinstance(servers, list) and servers and (zone, 'NS') not in found:
            # Cloudflare's own apex NS, which the records do not list: where the zone is served
            try:
                found[(zone, 'NS')] = RRset.from_texts(zone, 'NS', 86400, [
                    str(n).rstrip('.') + '.' for n in servers])
            except RecordError:
                pass
        self._records = by_value
        self._opaque = opaque
        self._proxied = proxied
        self._zone = zone
        return found

    @staticmethod
    def _text_of(rdtype: str, item: Dict[str, Any]) -> str:
        content = str(item.get('content') or '')
        data = as_dict(item.get('data'))
        if rdtype == 'MX':
            return '%d %s.' % (int(item.get('priority') or 0), content.rstrip('.'))
        if rdtype == 'TXT':
            if content.startswith('"'):
                return content
            # unquoted content (records from before Cloudflare quoted TXT): one text, in
            # strings of at most 255 bytes
            raw = content.encode('utf-8', 'surrogateescape')
            return ' '.join('"%s"' % raw[i:i + 255].decode('utf-8', 'surrogateescape')
                            .replace('\\', '\\\\').replace('"', '\\"')
                            for i in range(0, max(len(raw), 1), 255))
        if rdtype in ('CNAME', 'NS', 'PTR'):
            return content.rstrip('.') + '.'
        if rdtype == 'SRV' and data:
            return '%d %d %d %s.' % (int(data.get('priority') or 0), int(data.get('weight') or 0),
                                     int(data.get('port') or 0),
                                     str(data.get('target') or '').rstrip('.'))
        if rdtype == 'CAA' and data:
            return '%d %s "%s"' % (int(data.get('flags') or 0), data.get('tag'),
                                   str(data.get('value') or '').replace('"', '\\"'))
        return content

    def read_rrsets(self, zone: str, names: Iterable[str]) -> Snapshot:
        rrsets = self._rrsets(zone, 'read')
        snapshot = Snapshot(zone, None, rrsets, 'api')
        snapshot.warnings.extend(self.warnings)
        wanted = set(names)
        for key in sorted(self._proxied):
            if key[0] in wanted:
                snapshot.warnings.append(
                    '%s %s is proxied by Cloudflare: resolvers get Cloudflare\'s addresses, '
                    'not this record, which breaks mail and autodiscover. Set it to DNS only '
                    '(a record mail_dns writes is always DNS only).' % key)
        return snapshot

    def served(self, keys: Iterable[Key]) -> Dict[Key, Optional[RRset]]:
        rrsets = self._rrsets(self._zone, 'verify')
        return dict((k, rrsets.get(k)) for k in keys)

    def check_plan(self, changes: List[Change]) -> None:
        for c in changes:
            if c.key in self._opaque:
                raise DnsError('%s %s holds a record whose content Cloudflare shows in a form '
                               'mail_dns cannot read back exactly; it does not change it. '
                               'Nothing was changed: fix the record in Cloudflare.' % c.key,
                               'plan')
        count = sum(len(self._records.get(c.key, {})) + (len(c.after.values) if c.after else 0)
                    for c in changes)
        if count > BATCH_LIMIT:
            raise DnsError('the plan deletes and adds %d Cloudflare records, more than the %d '
                           'one batch may hold on every plan. Nothing was changed: split the '
                           'records into several tasks.' % (count, BATCH_LIMIT), 'plan')

    def record_of(self, name: str, rdtype: str, ttl: int, rd: Any) -> Dict[str, Any]:
        record: Dict[str, Any] = {'name': _cf_name(name), 'type': rdtype, 'ttl': ttl or 1}
        if rdtype in PROXIABLE:
            record['proxied'] = False
        if rdtype == 'MX':
            record.update(priority=rd.preference, content=rd.exchange.to_text(
                omit_final_dot=True))
        elif rdtype == 'TXT':
            record['content'] = _txt_content(rd)
        elif rdtype in ('CNAME', 'NS', 'PTR'):
            record['content'] = rd.target.to_text(omit_final_dot=True)
        elif rdtype == 'SRV':
            record['data'] = {'priority': rd.priority, 'weight': rd.weight, 'port': rd.port,
                              'target': rd.target.to_text(omit_final_dot=True)}
        elif rdtype == 'CAA':
            record['data'] = {'flags': rd.flags, 'tag': rd.tag.decode(),
                              'value': rd.value.decode('utf-8', 'surrogateescape')}
        else:
            record['content'] = rd.to_text(relativize=False)
        return record

    def batch_of(self, changes: List[Change]) -> Dict[str, Any]:
        """The records of each changed rrset that the plan drops (or whose TTL changes) deleted
        by id, the ones it adds posted; a record it keeps as it is stays, with its id, comment
        and tags."""
        deletes: List[Dict[str, str]] = []
        posts: List[Dict[str, Any]] = []
        for c in changes:
            read = self._records.get(c.key, {})
            if c.before is not None and not read:
                raise ConcurrentChange('%s %s was not in the zone when it was read again'
                                       % c.key, 'apply')
            after = c.after
            keep = set(v for v in (after.values if after is not None else ())
                       if after is not None and v in read and read[v][1] == after.ttl)
            deletes.extend({'id': record_id} for value, (record_id, _ttl) in sorted(read.items())
                           if value not in keep)
            if c.after is not None:
                posts.extend(self.record_of(c.key[0], c.key[1], c.after.ttl,
                                            rd if rd is not None else make_rdata(c.key[1], value))
                             for value, rd in sorted(c.after.rdatas.items()) if value not in keep)
        batch: Dict[str, Any] = {}
        if deletes:
            batch['deletes'] = deletes
        if posts:
            batch['posts'] = posts
        return batch

    def apply_changes(self, zone: str, changes: List[Change]) -> None:
        self.check_plan(changes)
        self._zone = zone
        self._call('POST', self._zone_path(zone) + '/dns_records/batch', 'the batch of '
                   'changes to zone %s' % zone, 'apply', self.batch_of(changes), changes=True)
        self._records = {}  # the ids changed: a later change set reads them again

    def prove_write(self, zone: str) -> None:
        """A batch that can change nothing: the deletion of a record id that does not exist
        (81044 after the token's DNS Write was checked)."""
        try:
            self._call('POST', self._zone_path(zone) + '/dns_records/batch', 'the preflight '
                       'batch (the deletion of an absent record) of zone %s' % zone, 'preflight',
                       {'deletes': [{'id': PREFLIGHT_ID}]}, changes=False)
        except ConcurrentChange:
            return
        raise DnsError('%s deleted record %s, which cannot exist, without an error: the '
                       'preflight cannot tell whether the token may change zone %s.'
                       % (self.where, PREFLIGHT_ID, zone), 'preflight')
