# -*- coding: utf-8 -*-
# Copyright (c) exchangeonline.mail contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# Private to this collection: may change without notice.
"""Tenant domains through Graph: state, expected DNS records as rrsets, add/verify/services.

Graph shapes: domain resource (learn.microsoft.com/graph/api/resources/domain),
domainDnsRecord and its subtypes domainDnsMxRecord / domainDnsTxtRecord / domainDnsCnameRecord /
domainDnsSrvRecord / domainDnsUnavailableRecord (.../resources/domaindnsrecord).
"""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import re
from typing import Any, Dict, Iterable, List, Mapping, Optional, Tuple

from ansible_collections.exchangeonline.mail.plugins.module_utils._errors import InputError
from ansible_collections.exchangeonline.mail.plugins.module_utils._graph import (
    NULL,
    STR_LIST,
    GraphClient,
    GraphError,
    JSON,
    path_segment,
    shape_problem,
)
from ansible_collections.exchangeonline.mail.plugins.module_utils._identity import (
    Identity,
    token_roles,
)
from ansible_collections.exchangeonline.mail.plugins.module_utils._poll import Backoff
from ansible_collections.exchangeonline.mail.plugins.module_utils._records import (
    name_text,
    to_name,
    validate_hostname,
)

READ, WRITE = 'Domain.Read.All', 'Domain.ReadWrite.All'
TYPES = {'mx': 'MX', 'txt': 'TXT', 'cname': 'CNAME', 'srv': 'SRV'}
DOMAIN_FIELDS = (('id', 'id'), ('authenticationType', 'authentication_type'),
                 ('isDefault', 'is_default'), ('isInitial', 'is_initial'),
                 ('isRoot', 'is_root'), ('isVerified', 'is_verified'),
                 ('supportedServices', 'supported_services'))
# What the collection reads of a domain and of a domainDnsRecord (resources/domain,
# resources/domaindnsrecord and its subtypes); anything else in an answer is an error.
DOMAIN_SHAPE = {'id': str, 'isVerified': bool, 'supportedServices': STR_LIST,
                'authenticationType': (str, NULL), 'isDefault': (bool, NULL),
                'isInitial': (bool, NULL), 'isRoot': (bool, NULL)}
RECORD_SHAPE = {'recordType': str, 'label': str, 'ttl': int, 'isOptional': (bool, NULL),
                'supportedService': (str, NULL)}
RECORD_VALUE_SHAPES: Dict[str, Dict[str, Any]] = {
    'mx': {'mailExchange': str, 'preference': int}, 'txt': {'text': str},
    'cname': {'canonicalName': str},
    'srv': {'nameTarget': str, 'port': int, 'priority': int, 'weight': int,
            'service': (str, NULL), 'protocol': (str, NULL)}}
MAX_TTL = 2147483647  # RFC 2181 section 8
# verify is sent again while the TXT record is not visible yet: first after 5 s, doubling up to
# 60 s (each pause stretched by up to 25 %, so the hosts of one tenant, one per domain, do not
# ask in step), all within verify_timeout
VERIFY_FIRST, VERIFY_CAP = 5.0, 60.0
# An SRV record's service or protocol: one label, an underscore then letters, digits and hyphens
# (RFC 2782, RFC 6335 5.1; Graph's _sipfederationtls is longer than RFC 6335's 15 characters).
SRV_PART = re.compile(r'_[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?')
# A label of an owner name Graph gives, as text (lower case, punycode): what host names and
# the underscore names of SRV, DKIM and the like use; an escaped octet (space, dot) is none.
OWNER_LABEL = re.compile(r'[a-z0-9_-]{1,63}')


def domain_summary(graph_domain: Optional[Mapping[str, Any]]) -> Optional[Dict[str, Any]]:
    if graph_domain is None:
        return None
    return dict((snake, graph_domain.get(camel)) for camel, snake in DOMAIN_FIELDS)


def domain_name(value: Any) -> str:
    """The domain option as Graph's domain id (lower-case, ASCII), or an InputError (RecordError
    from validate_hostname) naming it."""
    name = validate_hostname(value, 'domain')  # its messages name the option
    if len(name.labels) < 3:
        raise InputError('domain %r is not a domain a tenant can have: give at least two '
                         'labels, for example contoso.com' % value)
    return name_text(name).rstrip('.')


def srv_owner(record: Mapping[str, Any]) -> Any:
    """The DNS owner name of a domainDnsSrvRecord: ``_service._protocol.label`` (RFC 2782).

    Graph gives the three apart: ``label`` is the SRV record's *name* property, ``service`` and
    ``protocol`` its *service* and *protocol* (resources/domaindnssrvrecord), as Microsoft's DNS
    set-up pages list Service ``_sip``, Protocol ``_tls``, Name ``@``. No capture of a real answer
    is public, so a service or protocol without its leading underscore gets one, and a label that
    already starts with them is taken as the whole owner name. InputError (RecordError from
    to_name) when they are no DNS labels.
    """
    label = to_name(record['label'], what='label')
    prefix = []
    for field in ('service', 'protocol'):
        value = (record.get(field) or '').strip()
        if value:
            prefix.append(value if value.startswith('_') else '_' + value)
    if not prefix:
        return label
    given = to_name('.'.join(prefix), origin=label, what='service and protocol')
    for field in ('service', 'protocol'):
        value = (record.get(field) or '').strip()
        if value and not SRV_PART.fullmatch(value if value.startswith('_') else '_' + value):
            raise InputError('%s %r is not one DNS label (an underscore, then letters, digits '
                             'and hyphens, RFC 2782)' % (field, value))
    wanted = [part.lower() for part in given.labels[:len(given) - len(label)]]
    if [part.lower() for part in label.labels[:len(wanted)]] == wanted:
        return label
    return given


def record_owner(record: Mapping[str, Any]) -> Any:
    """The DNS owner name of a domainDnsRecord (RecordError when it is none, InputError when a
    label of it is not made of letters, digits, hyphens and underscores)."""
    if (record.get('recordType') or '').lower() == 'srv':
        owner = srv_owner(record)
    else:
        owner = to_name(record.get('label') or '', what='label')
    for part in name_text(owner).rstrip('.').split('.'):
        if not OWNER_LABEL.fullmatch(part):
            raise InputError('label %r holds %s, not only letters, digits, hyphens and '
                             'underscores' % (record.get('label'), part))
    return owner


def record_problem(record: Any, domain: str) -> Optional[str]:
    """What is wrong with one domainDnsRecord of ``domain`` (None: nothing)."""
    problem = shape_problem(record, RECORD_SHAPE) or shape_problem(
        record, RECORD_VALUE_SHAPES.get(record['recordType'].lower(), {}))
    if problem:
        return problem
    if not 0 <= record['ttl'] <= MAX_TTL:
        return 'ttl %d is not a DNS TTL' % record['ttl']
    try:
        owner = record_owner(record)
    except InputError as e:  # RecordError too
        return e.message
    if not owner.is_subdomain(to_name(domain)):
        return 'the owner %s (label %r) is not in the domain %s' % (
            name_text(owner), record['label'], domain)
    return None


def record_value(record: Mapping[str, Any]) -> Optional[str]:
    """The zone-file value of one Graph domainDnsRecord, or None for unavailable records."""
    rtype = (record.get('recordType') or '').lower()
    if rtype == 'mx':
        return '%s %s' % (record.get('preference'), record.get('mailExchange'))
    if rtype == 'txt':
        return record.get('text')
    if rtype == 'cname':
        return record.get('canonicalName')
    if rtype == 'srv':
        return '%s %s %s %s' % (record.get('priority'), record.get('weight'), record.get('port'),
                                record.get('nameTarget'))
    return None


def records_to_rrsets(records: Optional[Iterable[Mapping[str, Any]]],
                      services: Optional[Iterable[str]] = None) -> List[Dict[str, Any]]:
    """Graph records (checked with record_problem) -> [{name, type, ttl, values, services,
    optional}], grouped per rrset.

    ``services`` (e.g. ['Email']) keeps only records of those services (case-insensitive).
    """
    wanted = set(s.lower() for s in services) if services else None
    rrsets: Dict[Tuple[str, str], Dict[str, Any]] = {}
    for record in records or []:
        rdtype = TYPES.get((record.get('recordType') or '').lower())
        value = record_value(record)
        service = record.get('supportedService') or ''
        if rdtype is None or value is None:
            continue
        if wanted is not None and service.lower() not in wanted:
            continue
        name = name_text(record_owner(record))
        key = (name, rdtype)
        rr = rrsets.setdefault(key, {'name': name, 'type': rdtype, 'ttl': record['ttl'],
                                     'values': [], 'services': [], 'optional': True})
        if value not in rr['values']:
            rr['values'].append(value)
        if service and service not in rr['services']:
            rr['services'].append(service)
        rr['ttl'] = min(rr['ttl'], record['ttl'])
        rr['optional'] = rr['optional'] and bool(record.get('isOptional'))
    return [rrsets[k] for k in sorted(rrsets)]


class Domains:
    def __init__(self, params: Mapping[str, Any], check_mode: bool = False) -> None:
        self.params = params
        self.name = domain_name(params.get('domain'))
        self.path = '/domains/' + path_segment(self.name, 'domain')
        self.identity = Identity(params, check_mode)
        self.graph = GraphClient(self.identity)
        self.warnings: List[str] = []

    def domain_problem(self, body: Any) -> Optional[str]:
        problem = shape_problem(body, DOMAIN_SHAPE)
        if problem is None and body['id'].lower().rstrip('.') != self.name:
            problem = 'it is the domain %r, not %s' % (body['id'], self.name)
        return problem

    def get(self) -> Optional[JSON]:
        """The Graph domain resource, or None when the tenant does not have the domain."""
        try:
            return self.graph.get(self.path, phase='read domain', permission=READ,
                                  check=self.domain_problem)
        except GraphError as e:
            if e.status == 404:
                return None
            raise

    def records(self, kind: str, phase: str) -> List[JSON]:
        return self.graph.get_all('%s/%s' % (self.path, kind), phase=phase, permission=READ,
                                  check=lambda r: record_problem(r, self.name))

    def verification_rrsets(self) -> List[Dict[str, Any]]:
        records = self.records('verificationDnsRecords', 'read verification records')
        txt = [r for r in records if r['recordType'].lower() == 'txt']
        return records_to_rrsets(txt)

    def service_records(self) -> List[JSON]:
        return self.records('serviceConfigurationRecords', 'read service records')

    # -- domain_info ------------------------------------------------------------------------
    def info(self) -> Dict[str, Any]:
        p = self.params
        domain = self.get()
        result: Dict[str, Any] = {
            'changed': False, 'exists': domain is not None,
            'domain': domain_summary(domain), 'records': [],
            'verification_records': [], 'warnings': [],
            'permissions': dict((resource, token_roles(self.identity.token(resource)))
                                for resource in p.get('token_permissions') or [])}
        if domain is None:
            result['warnings'].append('the tenant does not have the domain %s; add it with '
                                      'exchangeonline.mail.domain' % self.name)
            return result
        services = p.get('services') or ['Email']
        raw = self.service_records()
        result['records'] = records_to_rrsets(raw, services)
        result['graph_records'] = raw
        missing = [s for s in services
                   if s.lower() not in [x.lower() for x in domain.get('supportedServices') or []]]
        if missing:
            result['warnings'].append(
                'the domain\'s supportedServices do not include %s, so Graph returns no records '
                'for it; set them with exchangeonline.mail.domain' % ', '.join(missing))
        if not domain.get('isVerified') or p.get('include_verification'):
            result['verification_records'] = self.verification_rrsets()
            txt = [v for rr in result['verification_records'] for v in rr['values']]
            if txt:
                result['verification_txt'] = txt[0]
        return result

    # -- domain -----------------------------------------------------------------------------
    def present(self, check_mode: bool) -> Dict[str, Any]:
        p = self.params
        domain = self.get()
        before = domain_summary(domain)
        actions: List[str] = []
        if domain is None:
            actions.append('add')
            if not check_mode:
                domain = self.add()
        result: Dict[str, Any] = {}
        if domain is not None and not domain.get('isVerified'):
            # what to publish, whether or not this run verifies
            rrsets = self.verification_rrsets()
            result['verification_records'] = rrsets
            txt = [v for rr in rrsets for v in rr['values']]
            if txt:
                result['verification_txt'] = txt[0]
        if p.get('verify') and not (domain or {}).get('isVerified'):
            actions.append('verify')
            if not check_mode:
                domain = self.verify(result.get('verification_txt'))
        wanted = p.get('supported_services')
        if wanted is not None:
            have = (domain or {}).get('supportedServices') or []
            if sorted(s.lower() for s in have) != sorted(s.lower() for s in wanted):
                actions.append('set supported services')
                if not check_mode:
                    self.graph.request('PATCH', self.path,
                                       json={'supportedServices': list(wanted)},
                                       phase='set supported services', permission=WRITE)
                    domain = self.get()
        after: Optional[Dict[str, Any]] = (domain_summary(domain) if domain is not None
                                           else {'id': self.name})
        if check_mode:
            after = dict(before or {'id': self.name, 'is_verified': False,
                                    'supported_services': []})
            if 'verify' in actions:
                after['is_verified'] = True
            if wanted is not None:
                after['supported_services'] = list(wanted)
        result.update(changed=bool(actions), actions=actions, domain=after, before=before)
        if self.warnings:
            result['warnings'] = self.warnings
        return result

    def add(self) -> JSON:
        """POST the domain; a lost answer is settled by reading it back."""
        try:
            return self.graph.request('POST', '/domains', json={'id': self.name},
                                      phase='add domain', permission=WRITE,
                                      check=self.domain_problem, idempotent=False)[1]
        except GraphError as e:
            if e.code != 'OutcomeUnknown':
                raise
            domain = self.get()
            if domain is None:
                raise GraphError('add domain', e.status, e.code, '%s; reading it back shows the '
                                 'tenant has no domain %s, so it was not added: run again'
                                 % (e.graph_message, self.name), method='POST', url='/domains')
            self.warnings.append('the answer to adding %s was lost; reading it back shows it '
                                 'was added' % self.name)
            return domain

    def verify(self, txt: Optional[str]) -> JSON:
        """POST verify, retried until verify_timeout while the TXT is not visible yet (Graph
        answers 400 or 404 then); a pause that would end past verify_timeout is not made."""
        bound = Backoff(self.params.get('verify_timeout') or 0, floor=VERIFY_FIRST,
                        cap=VERIFY_CAP)
        while True:
            try:
                return self.graph.request('POST', self.path + '/verify',
                                          phase='verify domain', permission=WRITE,
                                          check=self.domain_problem)[1]
            except GraphError as e:
                if e.status not in (400, 404) or not bound.pause(room=0.0):
                    if txt and e.status in (400, 404):
                        raise GraphError(e.phase, e.status, e.code, e.graph_message,
                                         e.request_id, e.date, 'POST',
                                         self.path + '/verify',
                                         'publish the TXT record "%s" at %s (for example with '
                                         'exchangeonline.mail.mail_dns verification_txt), '
                                         'wait until it is visible, or raise verify_timeout'
                                         % (txt, self.name))
                    raise

    def absent(self, check_mode: bool) -> Dict[str, Any]:
        domain = self.get()
        if domain is None:
            return {'changed': False, 'actions': [], 'domain': None, 'before': None}
        if domain.get('isInitial') or domain.get('isDefault'):
            raise InputError('%s is the tenant\'s %s domain; Microsoft 365 does not remove it'
                             % (self.name, 'initial' if domain.get('isInitial') else 'default'))
        if not check_mode:
            self.graph.request('DELETE', self.path, phase='remove domain', permission=WRITE)
        return {'changed': True, 'actions': ['remove'], 'domain': None,
                'before': domain_summary(domain)}
