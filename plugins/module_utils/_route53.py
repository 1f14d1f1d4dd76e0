# -*- coding: utf-8 -*-
# Copyright (c) exchangeonline.mail contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# Private to this collection: may change without notice.
"""The Amazon Route 53 provider: a public hosted zone, through the Route 53 API (botocore).

Write: one ``ChangeResourceRecordSets`` per change set. Route 53 applies a change batch as one
transaction, and a ``DELETE`` must name the rrset exactly as it is (TTL and every value), a
``CREATE`` fails when the rrset exists: each changed rrset is deleted as it was read and created as
planned, so the batch is a compare-and-swap of every touched rrset and the guarantee is
``ATOMIC`` (AWS: ChangeResourceRecordSets, "If any of the changes fail, none of the changes are
made"; "the values must match exactly" for DELETE). ``InvalidChangeBatch`` naming a record "not
found", whose values "do not match" or that "already exists" is a concurrent change.

The change request is sent once (botocore's retries off for it): a retry of a batch that did
arrive would fail as a concurrent change and hide the run's own change. A lost answer is
:class:`UpdateOutcomeUnknown`, settled by the engine from a read of the zone. After the change,
``GetChange`` is polled until Route 53 says ``INSYNC`` (its name servers serve it), bounded.

Read: ``ListResourceRecordSets``; a zone that fits in one page is read whole, a larger one by
the names the plan needs. Alias records and rrsets with a routing policy (``SetIdentifier``) are
kept as they are: a plan that would change one fails before anything is sent. Credentials come
from the options or botocore's usual chain (environment, shared files and profiles, the
instance or task role).
"""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import random
import re
import time
import traceback
from typing import Any, Dict, Iterable, List, Optional, Set, Tuple

from ansible.module_utils.basic import missing_required_lib

from ansible_collections.exchangeonline.mail.plugins.module_utils._dns_provider import (
    ATOMIC,
    ConcurrentChange,
    Key,
    Snapshot,
    ZoneProvider,
    enclosing,
)
from ansible_collections.exchangeonline.mail.plugins.module_utils._dns_transport import (
    DnsError,
    UpdateOutcomeUnknown,
)
from ansible_collections.exchangeonline.mail.plugins.module_utils._patterns import Change
from ansible_collections.exchangeonline.mail.plugins.module_utils._records import (
    DNSSEC_TYPES,
    RRset,
    RecordError,
    name_text,
    to_name,
)

try:
    import botocore.config
    import botocore.exceptions
    import botocore.session
    HAS_BOTOCORE = True
    BOTOCORE_IMPORT_ERROR = None
except ImportError:
    HAS_BOTOCORE = False
    BOTOCORE_IMPORT_ERROR = traceback.format_exc()

PAGE = 300             # ListResourceRecordSets' largest page
MAX_PAGES = 1000       # 300,000 rrsets; a hosted zone holds 10,000 records by default
SYNC_SECONDS = 120.0   # how long GetChange is polled for INSYNC (Route 53: within 60 s)
SYNC_FIRST = 0.2       # seconds before the first GetChange, then doubled up to SYNC_CAP
SYNC_CAP = 10.0
CONCURRENT = ('but it was not found', 'do not match', 'but it already exists')
PREFLIGHT_NAME = '_exchangeonline-mail-preflight'


def _error_of(e: Any) -> Tuple[str, str, Any]:
    """(code, message, HTTP status) of a botocore ClientError."""
    response = getattr(e, 'response', None) or {}
    error = response.get('Error') or {}
    status = (response.get('ResponseMetadata') or {}).get('HTTPStatusCode')
    return str(error.get('Code') or ''), str(error.get('Message') or ''), status


class Route53Provider(ZoneProvider):
    """The hosted zones of one AWS account."""

    guarantee = ATOMIC
    name = 'route53'

    def __init__(self, params: Dict[str, Any]) -> None:
        if not HAS_BOTOCORE:
            raise DnsError('%s (provider route53 uses it; it is imported only then).'
                           % missing_required_lib('botocore'), 'input')
        self.timeout = float(params.get('timeout') or 10.0)
        self.endpoint = params.get('aws_endpoint_url') or None
        self.where = 'Route 53%s' % (' at %s' % self.endpoint if self.endpoint else '')
        self.hosted_zone_id = params.get('hosted_zone_id') or None
        try:
            session = botocore.session.Session(profile=params.get('aws_profile') or None)
            if params.get('aws_access_key_id') or params.get('aws_secret_access_key'):
                if not (params.get('aws_access_key_id') and params.get('aws_secret_access_key')):
                    raise DnsError('aws_access_key_id and aws_secret_access_key go together: '
                                   'give both, or neither to use the usual AWS credential '
                                   'chain.', 'input')
                session.set_credentials(params['aws_access_key_id'],
                                        params['aws_secret_access_key'],
                                        params.get('aws_session_token') or None)
            credentials = session.get_credentials()
        except botocore.exceptions.ProfileNotFound as e:
            raise DnsError('aws_profile: %s. Check ~/.aws/config.' % e, 'input')
        except (botocore.exceptions.BotoCoreError, ValueError) as e:
            raise DnsError('provider route53: reading the AWS credentials failed: %s. Give '
                           'aws_access_key_id and aws_secret_access_key, or check aws_profile '
                           'and the instance or task role.' % e, 'input')
        if credentials is None:
            raise DnsError('provider route53 found no AWS credentials: give aws_access_key_id '
                           'and aws_secret_access_key, or aws_profile, or set them where botocore '
                           'looks (AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY, ~/.aws/credentials, '
                           'an instance or task role).', 'input')
        verify: Any = params.get('ca_path') or True
        if params.get('validate_certs') is False:
            verify = False

        def client(attempts: int) -> Any:
            config = botocore.config.Config(
                connect_timeout=self.timeout, read_timeout=self.timeout,
                retries={'total_max_attempts': attempts, 'mode': 'standard'})
            return session.create_client('route53', region_name='us-east-1',
                                         endpoint_url=self.endpoint, verify=verify,
                                         config=config)
        try:
            self.reader = client(4)   # reads: botocore's standard retries (throttling, network)
            self.writer_client = client(1)  # the change: sent once (see the module docstring)
        except (botocore.exceptions.BotoCoreError, ValueError) as e:
            raise DnsError('provider route53: cannot make a Route 53 client: %s. Check '
                           'aws_endpoint_url.' % e, 'input')
        self._ids: Dict[str, str] = {}       # zone name -> hosted zone id
        # key -> (the ResourceRecordSet as read, its RRset)
        self._raw: Dict[Key, Tuple[Dict[str, Any], RRset]] = {}
        self._special: Set[Key] = set()     # alias and routing-policy rrsets
        self._domain = ''                    # the domain of find_zone (the preflight's names)
        self.calls: Dict[str, int] = {}      # API calls by operation, for the benchmark
        self.warnings: List[str] = []

    @classmethod
    def from_params(cls, params: Dict[str, Any]) -> 'Route53Provider':
        return cls(params)

    @property
    def writer(self) -> str:
        return 'the AWS credentials'

    @property
    def label(self) -> str:
        return 'route53%s' % (' ' + self.endpoint if self.endpoint else '')

    # -- calls --------------------------------------------------------------------------------
    def _call(self, operation: str, phase: str, client: Any = None, **kwargs: Any) -> Any:
        self.calls[operation] = self.calls.get(operation, 0) + 1
        method = getattr(client or self.reader, _snake(operation))
        try:
            return method(**kwargs)
        except botocore.exceptions.ClientError as e:
            status = _error_of(e)[2]
            if operation == 'ChangeResourceRecordSets' and phase == 'apply' and \
                    isinstance(status, int) and status >= 500:
                raise UpdateOutcomeUnknown('the change batch was sent to %s, which answered '
                                           'HTTP %d (%s): it may have been applied'
                                           % (self.where, status, _error_of(e)[0] or e), 'apply')
            raise self._refusal(e, operation, phase)
        except (botocore.exceptions.HTTPClientError,
                botocore.exceptions.ResponseStreamingError) as e:
            # the request may have arrived: a read timeout, a closed connection, any failure
            # after connecting (EndpointConnectionError and the connect timeouts are not these)
            if operation == 'ChangeResourceRecordSets' and phase == 'apply':
                raise UpdateOutcomeUnknown('the change batch was sent to %s, but no answer came '
                                           '(%s)' % (self.where, e), 'apply')
            raise DnsError('no answer from %s to %s (%s). Check the network path, or raise '
                           'timeout.' % (self.where, operation, e), phase)
        except botocore.exceptions.NoCredentialsError as e:
            raise DnsError('%s: %s' % (self.where, e), 'input')
        except botocore.exceptions.BotoCoreError as e:
            # EndpointConnectionError, ConnectTimeoutError, SSLError ...: nothing arrived
            raise DnsError('%s could not be reached for %s: %s. Check aws_endpoint_url, '
                           'proxies and the network path.%s'
                           % (self.where, operation, e, ' Nothing was changed.'
                              if operation == 'ChangeResourceRecordSets' else ''), phase)

    def _refusal(self, e: Any, operation: str, phase: str) -> DnsError:
        code, message, status = _error_of(e)
        said = '%s (HTTP %s): %s' % (code or 'an error', status, message or e)
        if code in ('InvalidClientTokenId', 'UnrecognizedClientException',
                    'SignatureDoesNotMatch', 'IncompleteSignature', 'ExpiredToken',
                    'InvalidAccessKeyId', 'AuthFailure'):
            return DnsError('%s refused the AWS credentials for %s: %s. Check '
                            'aws_access_key_id and aws_secret_access_key (or the profile or role '
                            'botocore found), and aws_session_token for temporary ones.'
                            % (self.where, operation, said), phase)
        if code in ('AccessDenied', 'AccessDeniedException'):
            return DnsError('%s denied %s to these credentials: %s. Allow route53:%s on the '
                            'hosted zone in their IAM policy.'
                            % (self.where, operation, said, operation), phase)
        if code == 'NoSuchHostedZone':
            return DnsError('%s has no such hosted zone (%s): %s. Check hosted_zone_id and '
                            'zone; a zone deleted while the task ran is gone.'
                            % (self.where, self.hosted_zone_id or ', '.join(
                                '%s %s' % kv for kv in sorted(self._ids.items())) or 'none read',
                               said), phase)
        fields = {'rcode': code or None}
        if phase == 'apply' and operation == 'ChangeResourceRecordSets':
            if code == 'InvalidChangeBatch' and any(c in message for c in CONCURRENT):
                return ConcurrentChange('the hosted zone changed after it was read (%s)'
                                        % message, 'apply', rcode=code)
            return DnsError('%s refused the change batch: %s. Nothing was changed: Route 53 '
                            'applies a batch whole or not at all.' % (self.where, said), 'apply',
                            fields=fields)
        return DnsError('%s answered %s with %s' % (self.where, operation, said), phase,
                        fields=fields)

    # -- zones --------------------------------------------------------------------------------
    def find_zone(self, domain: str) -> str:
        self._domain = name_text(to_name(domain))
        if self.hosted_zone_id:
            zone = self._zone_by_id(self.hosted_zone_id, 'zone')
            if not to_name(domain).is_subdomain(to_name(zone)):
                raise DnsError('hosted zone %s is %s, which does not hold %s. Check '
                               'hosted_zone_id.' % (self.hosted_zone_id, zone, domain), 'zone')
            return zone
        tried = enclosing(domain)
        for candidate in tried:
            found = self._zones_named(candidate, 'zone')
            if found:
                return candidate
        raise DnsError('%s has no hosted zone for %s in this account (looked for %s). Give '
                       'hosted_zone_id, or check the credentials\' account.'
                       % (self.where, domain, ', '.join(tried)), 'zone')

    def _zones_named(self, zone: str, phase: str) -> List[str]:
        zones: List[Dict[str, Any]] = []
        kwargs: Dict[str, Any] = {'DNSName': zone, 'MaxItems': '100'}
        for _page in range(10):  # at most 1,000 zones of one name (a private one per VPC)
            answer = self._call('ListHostedZonesByName', phase, **kwargs)
            listed = answer.get('HostedZones') or []
            matching = [z for z in listed if _name(z) == zone]
            zones.extend(matching)
            if not answer.get('IsTruncated') or len(matching) < len(listed):
                break  # past the name
            kwargs = {'DNSName': answer.get('NextDNSName') or zone, 'MaxItems': '100'}
            if answer.get('NextHostedZoneId'):
                kwargs['HostedZoneId'] = answer['NextHostedZoneId']
        public = [z for z in zones if not (z.get('Config') or {}).get('PrivateZone')]
        if len(public) > 1:
            raise DnsError('%s holds %d public hosted zones named %s (%s): give hosted_zone_id '
                           'of the one the registrar delegates to.'
                           % (self.where, len(public), zone, ', '.join(
                               str(z.get('Id')) for z in public)), phase)
        if public:
            self._ids[zone] = _short_id(public[0]['Id'])
            return [zone]
        if zones:
            raise DnsError('%s holds %s only as a private hosted zone, which the Internet does '
                           'not see: mail needs the public zone. Give hosted_zone_id to change '
                           'the private one anyway.' % (self.where, zone), phase)
        return []

    def _zone_by_id(self, zone_id: str, phase: str) -> str:
        answer = self._call('GetHostedZone', phase, Id=_short_id(zone_id))
        zone = name_text(to_name(str((answer.get('HostedZone') or {}).get('Name', ''))))
        self._ids[zone] = _short_id(zone_id)
        return zone

    def _id(self, zone: str, phase: str) -> str:
        if zone not in self._ids:
            if self.hosted_zone_id:
                found = self._zone_by_id(self.hosted_zone_id, phase)
                if found != zone:
                    raise DnsError('hosted zone %s is %s, not %s. Check hosted_zone_id and zone.'
                                   % (self.hosted_zone_id, found, zone), phase)
            elif not self._zones_named(zone, phase):
                raise DnsError('%s has no hosted zone %s in this account. Check zone, or give '
                               'hosted_zone_id.' % (self.where, zone), phase)
        return self._ids[zone]

    # -- reading ------------------------------------------------------------------------------
    def _list(self, zone: str, phase: str, start: Optional[str] = None,
              pages: int = MAX_PAGES) -> Tuple[List[Dict[str, Any]], bool]:
        """(ResourceRecordSets, truncated) from ``start`` (the apex when None), ``pages`` pages
        at most."""
        kwargs: Dict[str, Any] = {'HostedZoneId': self._id(zone, phase), 'MaxItems': str(PAGE)}
        if start:
            kwargs['StartRecordName'] = start
        out: List[Dict[str, Any]] = []
        for _page in range(pages):
            answer = self._call('ListResourceRecordSets', phase, **kwargs)
            out.extend(answer.get('ResourceRecordSets') or [])
            if not answer.get('IsTruncated'):
                return out, False
            if start and out and _name(out[-1]) != name_text(to_name(start)):
                return out, True  # past the name asked for
            kwargs['StartRecordName'] = answer.get('NextRecordName')
            kwargs['StartRecordType'] = answer.get('NextRecordType')
            kwargs.pop('StartRecordIdentifier', None)
            if answer.get('NextRecordIdentifier'):
                kwargs['StartRecordIdentifier'] = answer['NextRecordIdentifier']
        if start or pages < MAX_PAGES:
            return out, True  # as many pages as asked for, and more to come
        raise DnsError('%s: hosted zone %s has more than %d pages of records'
                       % (self.where, zone, pages), phase)

    def _rrsets(self, items: Iterable[Dict[str, Any]], names: Optional[Set[str]],
                phase: str) -> Dict[Key, RRset]:
        found: Dict[Key, RRset] = {}
        for item in items:
            name, rdtype = _name(item), str(item.get('Type', '')).upper()
            if (names is not None and name not in names) or rdtype in DNSSEC_TYPES:
                continue
            key = (name, rdtype)
            values = [str(r.get('Value', '')) for r in item.get('ResourceRecords') or []]
            if item.get('AliasTarget') or item.get('SetIdentifier'):
                self._special.add(key)
                what = ('alias to %s' % (item.get('AliasTarget') or {}).get('DNSName')
                        if item.get('AliasTarget') else
                        'routing policy %s' % item.get('SetIdentifier'))
                # kept as an opaque rrset: its key matters to the plan (a CNAME next to it)
                found.setdefault(key, RRset(name, rdtype, int(item.get('TTL') or 0),
                                            values=[]))
                found[key] = found[key].with_values(found[key].values | {what})
                continue
            try:
                found[key] = RRset.from_texts(name, rdtype, item.get('TTL') or 0, values)
            except RecordError:
                found[key] = RRset(name, rdtype, int(item.get('TTL') or 0), values=values)
            self._raw[key] = (item, found[key])
        return found

    def read_rrsets(self, zone: str, names: Iterable[str]) -> Snapshot:
        wanted = set(names)
        items, truncated = self._list(zone, 'read', pages=1)
        method = 'api'
        if truncated:  # a large zone: only the names the plan needs
            items = []
            for name in sorted(wanted):
                items.extend(self._list(zone, 'read', start=name, pages=5)[0])
            method = 'api-names'
        snapshot = Snapshot(zone, None, self._rrsets(items, None if method == 'api' else wanted,
                                                     'read'), method)
        snapshot.warnings.extend(self.warnings)
        return snapshot

    def served(self, keys: Iterable[Key]) -> Dict[Key, Optional[RRset]]:
        keys = list(keys)
        zone = self._zone_of(keys)
        names = set(k[0] for k in keys)
        items, truncated = self._list(zone, 'verify', pages=1)  # a small zone: one call
        if truncated:
            items = []
            for name in sorted(names):
                items.extend(self._list(zone, 'verify', start=name, pages=5)[0])
        found = self._rrsets(items, names, 'verify')
        return dict((k, found.get(k)) for k in keys)

    def _zone_of(self, keys: List[Key]) -> str:
        for zone in sorted(self._ids, key=len, reverse=True):
            if keys and all(to_name(k[0]).is_subdomain(to_name(zone)) for k in keys):
                return zone
        raise DnsError('%s: no hosted zone read yet for %s' % (self.where, keys), 'verify')

    # -- writing ------------------------------------------------------------------------------
    def check_plan(self, changes: List[Change]) -> None:
        special = [c.key for c in changes if c.key in self._special]
        if special:
            raise DnsError('%s %s is an alias or has a routing policy in Route 53; mail_dns does '
                           'not change those. Nothing was changed: change it in Route 53, or '
                           'leave it out of the plan.' % special[0], 'plan')

    def batch_of(self, changes: List[Change]) -> List[Dict[str, Any]]:
        self.check_plan(changes)
        deletes, creates = [], []
        for c in changes:
            if c.before is not None:
                raw, read = self._raw.get(c.key, (None, None))
                if raw is not None and read is not None and read.same_as(c.before):
                    # the values exactly as Route 53 holds them: a DELETE must match them
                    record = {'Name': raw['Name'], 'Type': raw['Type'], 'TTL': raw['TTL'],
                              'ResourceRecords': raw['ResourceRecords']}
                else:
                    record = _record(c.before)
                deletes.append({'Action': 'DELETE', 'ResourceRecordSet': record})
            if c.after is not None:
                creates.append({'Action': 'CREATE', 'ResourceRecordSet': _record(c.after)})
        return deletes + creates

    def apply_changes(self, zone: str, changes: List[Change]) -> None:
        answer = self._call('ChangeResourceRecordSets', 'apply', self.writer_client,
                            HostedZoneId=self._id(zone, 'apply'),
                            ChangeBatch={'Comment': 'exchangeonline.mail mail_dns',
                                         'Changes': self.batch_of(changes)})
        self._wait_insync((answer.get('ChangeInfo') or {}).get('Id'))

    def _wait_insync(self, change_id: Optional[str]) -> None:
        """Poll GetChange until INSYNC, for SYNC_SECONDS at most; a warning when it is not."""
        if not change_id:
            return
        deadline = time.monotonic() + SYNC_SECONDS
        pause = SYNC_FIRST
        status = 'PENDING'
        while True:
            try:
                status = str((self._call('GetChange', 'verify', Id=change_id)
                              .get('ChangeInfo') or {}).get('Status'))
            except DnsError as e:
                self.warnings.append('the change %s was accepted; asking Route 53 whether it is '
                                     'in sync failed: %s' % (change_id, e))
                return
            if status == 'INSYNC' or time.monotonic() + pause > deadline:
                break
            time.sleep(pause * random.uniform(1.0, 1.25))
            pause = min(pause * 2, SYNC_CAP)
        if status != 'INSYNC':
            self.warnings.append('Route 53 accepted change %s, but after %.0f s it is %s, not '
                                 'INSYNC: its name servers may not serve it yet. '
                                 'exchangeonline.mail.mail_dns_check waits until they do.'
                                 % (change_id, SYNC_SECONDS, status))

    def prove_write(self, zone: str) -> None:
        """A batch that can change nothing: DELETEs, at the names and types every pattern
        writes (the domain's MX and TXT, its autodiscover CNAME), of values no record has.
        Route 53 checks the IAM permission first, for the batch's names and types (a policy may
        restrict them with route53:ChangeResourceRecordSetsNormalizedRecordNames and
        RecordTypes), then the batch: InvalidChangeBatch ("not found", "do not match")
        proves the right to change those records, AccessDenied refuses it."""
        domain = self._domain if self._domain and to_name(self._domain).is_subdomain(
            to_name(zone)) else zone
        probes = [(domain, 'MX', '0 %s.invalid.' % PREFLIGHT_NAME),
                  (domain, 'TXT', '"%s"' % PREFLIGHT_NAME),
                  ('autodiscover.' + domain, 'CNAME', '%s.invalid.' % PREFLIGHT_NAME)]
        try:
            self._call('ChangeResourceRecordSets', 'preflight', self.writer_client,
                       HostedZoneId=self._id(zone, 'preflight'), ChangeBatch={'Changes': [{
                           'Action': 'DELETE', 'ResourceRecordSet': {
                               'Name': name, 'Type': rdtype, 'TTL': 1,
                               'ResourceRecords': [{'Value': value}]}}
                           for name, rdtype, value in probes]})
        except DnsError as e:
            if e.rcode == 'InvalidChangeBatch':
                return
            raise
        raise DnsError('%s accepted the DELETE of records with values mail_dns never writes '
                       '(%s): they should not exist. Check the zone.'
                       % (self.where, ', '.join('%s %s %s' % p for p in probes)), 'preflight')


def _snake(operation: str) -> str:
    return ''.join('_' + c.lower() if c.isupper() else c for c in operation).lstrip('_')


def _short_id(zone_id: str) -> str:
    return str(zone_id).rsplit('/', 1)[-1]


def _name(item: Dict[str, Any]) -> str:
    """The rrset's name as the engine spells it. Route 53 escapes characters as three octal
    digits (``*`` is ``\\052``), DNS presentation format as three decimal ones (``\\042``)."""
    text = re.sub(r'\\([0-7]{3})', lambda m: '\\%03d' % int(m.group(1), 8),
                  str(item.get('Name', '')))
    return name_text(to_name(text))


def _record(rrset: RRset) -> Dict[str, Any]:
    return {'Name': rrset.name, 'Type': rrset.rdtype, 'TTL': rrset.ttl,
            'ResourceRecords': [{'Value': rd.to_text(relativize=False)}
                                for rd in rrset.rdata_list()]}
