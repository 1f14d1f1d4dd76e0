# -*- coding: utf-8 -*-
# Copyright (c) exchangeonline.mail contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# Private to this collection: may change without notice.
"""Mailboxes at tenant scale: existence, licences and addresses (proxyAddresses, which hold the
routing address) from Graph, protocol switches from Exchange Online, in as few round trips as the
tenant allows.

The whole tenant: Graph's /users cursor (999 per page, with assignedLicenses and assignedPlans,
mapped to SKU and plan names by one /subscribedSkus) runs at the same time as Exchange's
Get-CASMailbox, which a tenant of more than one page reads in partitions by Name, ``concurrency``
requests at once (ExoAdminClient.read_all). A list of names: Graph per user through $batch (20
per request); Exchange per mailbox for a short list, else by EmailAddresses filters of 20
addresses each. The licences of a short list (up to PAGE_THRESHOLD names), and without
Organization.Read.All of any, are read per user (licenseDetails, in $batch).
"""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import json
import os
import tempfile
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Callable, Dict, Iterable, List, Mapping, Optional, Sequence, Set, Tuple

from urllib.parse import quote

from ansible_collections.exchangeonline.mail.plugins.module_utils._errors import (
    InputError,
    TaskError,
)
from ansible_collections.exchangeonline.mail.plugins.module_utils._exo_admin import (
    CONCURRENCY,
    NOT_ALLOWED,
    ExoAdminClient,
)
from ansible_collections.exchangeonline.mail.plugins.module_utils._graph import (
    NULL,
    STR_LIST,
    Check,
    GraphClient,
    GraphError,
    JSON,
    path_segment,
    shape_problem,
)
from ansible_collections.exchangeonline.mail.plugins.module_utils import _service_plans
from ansible_collections.exchangeonline.mail.plugins.module_utils._identity import Identity

PARTS = ('license', 'mailbox', 'protocols', 'routing')
USER_SELECT = 'id,userPrincipalName,mail,proxyAddresses'
LICENSE_SELECT = ',assignedLicenses,assignedPlans'
# Above this many listed mailboxes, filters of 20 addresses beat asking per mailbox.
PAGE_THRESHOLD = 50
# assignedPlan capabilityStatus values under which the plan works (resources/assignedplan:
# Enabled, Warning, Suspended, Deleted, LockedOut; Warning is the grace period)
WORKING = ('Enabled', 'Warning')
SKUS_PERMISSION = 'Organization.Read.All'
# what each entry of all: true holds unless detail is full (the module's RETURN says why)
SUMMARY_KEYS = ('upn', 'has_mailbox', 'exchange_licensed', 'licenses', 'protocols',
                'routing_address', 'proxy_addresses')
SUMMARY_PROTOCOLS = ('pop', 'imap', 'smtp_auth')
# Which Exchange Online plans give a mailbox (and which do not: EXCHANGE_S_FOUNDATION, the
# archives) is data from Microsoft's licensing list, with its date: _service_plans.
# What the collection reads of a Graph user (resources/user), a licenseDetails entry
# (resources/licensedetails) and the cmdlet objects; anything else in an answer is an error.
USER_SHAPE = {'id': str, 'userPrincipalName': str, 'mail': (str, NULL),
              'proxyAddresses': (STR_LIST, NULL), 'assignedLicenses': (list, NULL),
              'assignedPlans': (list, NULL)}
ASSIGNED_LICENSE_SHAPE = {'skuId': str, 'disabledPlans': (STR_LIST, NULL)}
ASSIGNED_PLAN_SHAPE = {'servicePlanId': str, 'capabilityStatus': (str, NULL)}
SKU_SHAPE = {'skuId': str, 'skuPartNumber': str, 'servicePlans': (list, NULL)}
LICENSE_SHAPE = {'skuPartNumber': str, 'servicePlans': (list, NULL)}
PLAN_SHAPE = {'servicePlanId': (str, NULL), 'servicePlanName': (str, NULL),
              'provisioningStatus': (str, NULL)}
# Get-CASMailbox has no UserPrincipalName (its property sets, cmdlet-property-sets.md): a mailbox
# is matched by ExternalDirectoryObjectId (the Graph user id), else by its SMTP addresses.
CAS_SHAPE = {'PopEnabled': bool, 'ImapEnabled': bool,
             'SmtpClientAuthenticationDisabled': (bool, NULL),
             'ExternalDirectoryObjectId': (str, NULL), 'PrimarySmtpAddress': (str, NULL),
             'EmailAddresses': (STR_LIST, NULL)}
TRANSPORT_SHAPE = {'SmtpClientAuthenticationDisabled': bool}


def user_problem(user: Any) -> Optional[str]:
    return shape_problem(user, USER_SHAPE) or next(
        (p for p in [shape_problem(x, ASSIGNED_LICENSE_SHAPE)
                     for x in user.get('assignedLicenses') or []] +
         [shape_problem(x, ASSIGNED_PLAN_SHAPE) for x in user.get('assignedPlans') or []]
         if p), None)


def sku_problem(sku: Any) -> Optional[str]:
    return shape_problem(sku, SKU_SHAPE) or next(
        (p for p in (shape_problem(plan, PLAN_SHAPE) for plan in sku.get('servicePlans') or [])
         if p), None)


def users_problem(body: Any) -> Optional[str]:
    return shape_problem(body, {'value': list}) or next(
        (p for p in map(user_problem, body['value']) if p), None)


def license_problem(sku: Any) -> Optional[str]:
    return shape_problem(sku, LICENSE_SHAPE) or next(
        (p for p in (shape_problem(plan, PLAN_SHAPE) for plan in sku.get('servicePlans') or [])
         if p), None)


def licenses_problem(body: Any) -> Optional[str]:
    return shape_problem(body, {'value': list}) or next(
        (p for p in map(license_problem, body['value']) if p), None)


def cas_problem(cas: Any) -> Optional[str]:
    return shape_problem(cas, CAS_SHAPE)


def transport_problem(config: Any) -> Optional[str]:
    return shape_problem(config, TRANSPORT_SHAPE)


def smtp_addresses(values: Optional[Iterable[str]]) -> List[str]:
    """Plain addresses from proxy address strings ('SMTP:a@b', 'smtp:c@d'), primary first."""
    out: List[str] = []
    for value in values or []:
        if value[:5].lower() == 'smtp:':
            address = value[5:]
            if value.startswith('SMTP:'):
                out.insert(0, address)
            else:
                out.append(address)
    return out


def mailbox_addresses(obj: Mapping[str, Any]) -> Set[str]:
    """The lower-case SMTP addresses of a cmdlet object: PrimarySmtpAddress and every smtp:/SMTP:
    entry of EmailAddresses."""
    found = smtp_addresses(obj.get('EmailAddresses'))
    found.append(obj.get('PrimarySmtpAddress') or '')
    return set(a.lower() for a in found if a)


def user_addresses(user: Mapping[str, Any]) -> Set[str]:
    """The lower-case SMTP addresses of a Graph user: mail and its smtp: proxyAddresses."""
    found = smtp_addresses(user.get('proxyAddresses')) + [user.get('mail') or '']
    return set(a.lower() for a in found if a)


def match_mailboxes(objects: Iterable[JSON], users: Sequence[JSON]) -> Dict[str, JSON]:
    """{graph user id: cmdlet object}: an object that carries ExternalDirectoryObjectId (the
    Graph user id) belongs to that user only; one without it, by an SMTP address
    (case-insensitive) that one user alone of ``users`` has. Never by UPN, which Get-CASMailbox
    does not carry."""
    by_id = dict((u['id'].lower(), u) for u in users)
    owners: Dict[str, Set[str]] = {}
    for user in users:
        for address in user_addresses(user):
            owners.setdefault(address, set()).add(user['id'])
    out: Dict[str, JSON] = {}
    for obj in objects:
        directory_id = str(obj.get('ExternalDirectoryObjectId') or '').lower()
        if directory_id:
            user_ids = set([by_id[directory_id]['id']]) if directory_id in by_id else set()
        else:
            user_ids = set(uid for a in mailbox_addresses(obj) if len(owners.get(a, ())) == 1
                           for uid in owners[a])
        if len(user_ids) == 1:
            out.setdefault(user_ids.pop(), obj)
    return out


def primary_address(user: Mapping[str, Any]) -> Optional[str]:
    """A Graph user's primary SMTP address: its SMTP: proxy address, else mail."""
    return next(iter(smtp_addresses(user.get('proxyAddresses'))), None) or user.get('mail')


def address_owner(address: str, users: Sequence[JSON]) -> JSON:
    """The one of Graph's ``users`` found by ``address`` that it belongs to: the only one, else
    the only one whose proxyAddresses hold it (Exchange's own addresses; ``mail`` alone can be
    set on a user without a mailbox); InputError when that is still not one user."""
    if len(users) == 1:
        return users[0]
    holders = [u for u in users if address.lower() in
               set(a.lower() for a in smtp_addresses(u.get('proxyAddresses')))]
    if len(holders) == 1:
        return holders[0]
    named = sorted(u['userPrincipalName'] for u in holders or users)
    raise InputError('mailboxes: %s is an address of %d users (%s): give the user principal '
                     'name' % (address, len(named), ', '.join(named)))


def routing_address(addresses: Iterable[str]) -> Optional[str]:
    for address in addresses:
        if address.lower().endswith('.mail.onmicrosoft.com'):
            return address
    return None


def effective_smtp_auth(mailbox_disabled: Optional[bool],
                        tenant_disabled: Optional[bool]) -> Tuple[bool, str]:
    """(enabled, source): the mailbox setting wins unless it is null (then the tenant's)."""
    if mailbox_disabled is None:
        return (not tenant_disabled), 'tenant'
    return (not mailbox_disabled), 'mailbox'


def smtp_auth_setting(mailbox_disabled: Optional[bool]) -> str:
    if mailbox_disabled is None:
        return 'inherit'
    return 'disabled' if mailbox_disabled else 'enabled'


def exchange_licensed(license_details: Optional[Iterable[Mapping[str, Any]]]) -> bool:
    for sku in license_details or []:
        for plan in sku.get('servicePlans') or []:
            if _service_plans.gives_mailbox(plan) and \
                    (plan.get('provisioningStatus') or 'Success') not in ('Disabled',):
                return True
    return False


class Mailboxes:
    def __init__(self, params: Mapping[str, Any], check_mode: bool = False) -> None:
        self.params = params
        self.check_mode = check_mode
        self.identity = Identity(params, check_mode)
        concurrency = params.get('concurrency') or CONCURRENCY
        self.graph = GraphClient(self.identity, concurrency=concurrency)
        self.exo = ExoAdminClient(self.identity, concurrency=concurrency)
        self.include = set(params.get('include') or PARTS)  # the argument spec's choices
        self.warnings: List[str] = []
        self.license_source = 'assignedPlans'

    # -- who ------------------------------------------------------------------------------------
    def select(self) -> str:
        return USER_SELECT + (LICENSE_SELECT if 'license' in self.include else '')

    def users(self) -> List[Tuple[str, Optional[JSON]]]:
        """[(asked, graph user or None)] in the order asked (all: the tenant's order)."""
        select = self.select()
        if self.params.get('all'):
            users = self.graph.get_all('/users', params={'$select': select, '$top': '999'},
                                       phase='list users', permission='User.Read.All',
                                       check=user_problem)
            return [(u['userPrincipalName'], u) for u in users]
        asked = list(dict.fromkeys(self.params.get('mailboxes') or []))
        found = self.batch_checked([{'id': str(i), 'method': 'GET', 'url': '/users/%s?$select=%s'
                                     % (path_segment(name, 'mailboxes'), select)}
                                    for i, name in enumerate(asked)], 'read users', user_problem)
        missing = [i for i in range(len(asked)) if found[str(i)][0] == 404]
        if missing:  # not a UPN: maybe a mail address or a proxy address
            by_address = self.batch_checked([{
                'id': str(i), 'method': 'GET',
                'url': '/users?$select=%s&$filter=%s' % (select, quote(
                    "mail eq '%s' or proxyAddresses/any(p:p eq 'smtp:%s')"
                    % (_q(asked[i]), _q(asked[i])), safe=''))}
                for i in missing], 'find users by address', users_problem)
            for i in missing:
                status, body = by_address[str(i)]
                hits = body['value'] if status == 200 else []
                found[str(i)] = (200, address_owner(asked[i], hits)) if hits else (404, None)
        out: List[Tuple[str, Optional[JSON]]] = []
        for i, name in enumerate(asked):
            status, body = found[str(i)]
            if status == 200:
                out.append((name, body))
            elif status == 404:
                out.append((name, None))
            else:
                raise _batch_error('read user %s' % name, status, body, 'User.Read.All')
        return out

    # -- parts ------------------------------------------------------------------------------
    def batch_checked(self, items: Sequence[JSON], phase: str,
                      check: Check) -> Dict[str, Tuple[int, Any]]:
        """graph.batch, with each 200 body checked by ``check`` (GraphError naming the item)."""
        results = self.graph.batch(items, phase=phase)
        for item in items:
            status, body = results[item['id']]
            problem = check(body) if status == 200 else None
            if problem:
                raise self.graph.invalid(phase, status, item['method'], '%s/$batch (%s)'
                                         % (self.graph.base, item['url']), problem, body)
        return results

    def subscribed_skus(self) -> Optional[Dict[str, JSON]]:
        """{skuId (lower case): subscribedSku} of the tenant, or None when the app may not read
        them (403: the licences are then read per user, with a warning)."""
        try:
            skus = self.graph.get_all('/subscribedSkus', phase='read subscribed SKUs',
                                      permission=SKUS_PERMISSION, check=sku_problem)
        except GraphError as e:
            if e.status != 403:
                raise
            self.warnings.append(
                'the app may not read the tenant\'s subscribed SKUs (GET /subscribedSkus '
                'answered 403), so the licences were read per user (licenseDetails, one request '
                'each in $batch): grant the application permission %s to read them from the '
                'user list at once' % SKUS_PERMISSION)
            return None
        return dict((s['skuId'].lower(), s) for s in skus)

    def licences(self, users: Sequence[JSON],
                 skus: Optional[Mapping[str, JSON]]) -> Dict[str, Tuple[bool, List[str]]]:
        """{user id: (exchange_licensed, SKU part numbers)}: from the users' assignedPlans and
        assignedLicenses with the tenant's SKUs, else (``skus`` None) per user."""
        if skus is None:
            self.license_source = 'licenseDetails'
            return dict((uid, (exchange_licensed(details), sorted(
                str(d.get('skuPartNumber')) for d in details)))
                for uid, details in self.licence_details(users).items())
        names = dict((plan['servicePlanId'].lower(), plan.get('servicePlanName'))
                     for sku in skus.values() for plan in sku.get('servicePlans') or []
                     if isinstance(plan.get('servicePlanId'), str))
        out: Dict[str, Tuple[bool, List[str]]] = {}
        for user in users:
            plans = user.get('assignedPlans') or []
            licensed = any(_service_plans.gives_mailbox({
                'servicePlanId': p['servicePlanId'],
                'servicePlanName': names.get(p['servicePlanId'].lower())})
                and (p.get('capabilityStatus') or 'Enabled') in WORKING for p in plans)
            parts = sorted((skus.get(lic['skuId'].lower()) or {}).get('skuPartNumber') or
                           lic['skuId'] for lic in user.get('assignedLicenses') or [])
            out[user['id']] = (licensed, parts)
        return out

    def licence_details(self, users: Sequence[JSON]) -> Dict[str, List[JSON]]:
        ids = [u['id'] for u in users]
        got = self.batch_checked([{'id': str(i), 'method': 'GET',
                                   'url': '/users/%s/licenseDetails' % path_segment(uid, 'id')}
                                  for i, uid in enumerate(ids)], 'read licences',
                                 licenses_problem)
        out: Dict[str, List[JSON]] = {}
        for i, uid in enumerate(ids):
            status, body = got[str(i)]
            if status != 200:
                raise _batch_error('read licences', status, body, 'User.Read.All')
            out[uid] = (body or {}).get('value') or []
        return out

    def exchange_objects(self, cmdlet: str, users: Sequence[JSON]) -> Dict[str, JSON]:
        """{graph user id: object} for the listed users that have an Exchange Online mailbox
        (the whole tenant: read_all)."""
        if len(users) > PAGE_THRESHOLD:  # one address each finds the mailbox (else: by id)
            objects = [o for chunk in self.exo.read_by_addresses(
                cmdlet, (primary_address(u) or '' for u in users), check=cas_problem)
                for o in chunk]
            have = match_mailboxes(objects, users)
            objects.extend(self.each_mailbox(cmdlet, [u for u in users if u['id'] not in have]))
        else:
            objects = self.each_mailbox(cmdlet, users)
        return match_mailboxes(objects, users)

    def each_mailbox(self, cmdlet: str, users: Sequence[JSON]) -> List[JSON]:
        """The objects of ``cmdlet`` -Identity <user id>, up to ``concurrency`` at once."""
        def one(user: JSON) -> List[Any]:
            try:
                return self.exo.invoke(cmdlet, {'Identity': user['id']}, check=cas_problem)
            except GraphError as e:
                if e.status == 404 or 'couldn\'t be found' in (e.graph_message or ''):
                    return []
                raise
        if not users:
            return []
        with ThreadPoolExecutor(max_workers=min(self.exo.concurrency, len(users))) as pool:
            return [o for found in pool.map(one, users) for o in found]

    def tenant_smtp_auth_disabled(self) -> bool:
        return tenant_smtp_auth_disabled(self.exo)

    # -- the result -------------------------------------------------------------------------
    def read(self) -> Tuple[List[Tuple[str, Optional[JSON]]], Dict[str, Tuple[bool, List[str]]],
                            Dict[str, JSON], Optional[bool]]:
        """(asked, licences, CAS objects, tenant default): for the whole tenant the Graph and
        Exchange sides at the same time, for a list the users first (Exchange needs them)."""
        need_cas = self.include & set(('mailbox', 'protocols'))
        want_licence = 'license' in self.include
        many = self.params.get('all') or len(self.params.get('mailboxes') or []) > PAGE_THRESHOLD
        with ThreadPoolExecutor(max_workers=4) as sides:
            # a short list reads its few licences per user (no further permission for that)
            skus = sides.submit(self.subscribed_skus if many else lambda: None) \
                if want_licence else None
            tenant = None
            if self.params.get('all'):
                if 'protocols' in self.include:
                    tenant = sides.submit(self.tenant_smtp_auth_disabled)
                whole = sides.submit(self.exo.read_all, 'Get-CASMailbox', cas_problem) \
                    if need_cas else None
                try:
                    asked = self.users()
                except Exception:
                    self.exo.stopping.set()  # no need to wait for the whole Exchange read
                    raise
                users = [u for dummy, u in asked if u is not None]
                objects = whole.result() if whole is not None else []
                cas = match_mailboxes(objects, users) if need_cas else {}
            else:  # Exchange once Graph has answered (a Graph failure asks Exchange nothing)
                asked = self.users()
                users = [u for dummy, u in asked if u is not None]
                if 'protocols' in self.include:
                    tenant = sides.submit(self.tenant_smtp_auth_disabled)
                cas = self.exchange_objects('Get-CASMailbox', users) \
                    if need_cas and users else {}
            licences = self.licences(users, skus.result()) if skus is not None and users else {}
            tenant_disabled = tenant.result() if tenant is not None else None
        return asked, licences, cas, tenant_disabled

    def info(self) -> Dict[str, Any]:
        asked, licences, cas, tenant_disabled = self.read()
        need_cas = self.include & set(('mailbox', 'protocols'))
        result: List[Dict[str, Any]] = []
        for name, user in asked:
            entry: Dict[str, Any] = {'upn': name, 'exists': user is not None}
            if user is None:
                result.append(entry)
                continue
            uid = user['id']
            entry.update(upn=user.get('userPrincipalName'), id=uid, mail=user.get('mail'))
            if 'license' in self.include:
                entry['exchange_licensed'], entry['licenses'] = licences.get(uid, (False, []))
            if need_cas:
                entry['has_mailbox'] = uid in cas
            if 'protocols' in self.include and uid in cas:
                c = cas[uid]
                enabled, source = effective_smtp_auth(c.get('SmtpClientAuthenticationDisabled'),
                                                      tenant_disabled)
                entry['protocols'] = {
                    'pop': bool(c.get('PopEnabled')), 'imap': bool(c.get('ImapEnabled')),
                    'smtp_auth': enabled, 'smtp_auth_source': source,
                    'smtp_auth_setting': smtp_auth_setting(
                        c.get('SmtpClientAuthenticationDisabled'))}
            if 'routing' in self.include:
                addresses = smtp_addresses(user.get('proxyAddresses'))
                entry['proxy_addresses'] = addresses
                entry['routing_address'] = routing_address(addresses)
            result.append(entry)
        refused = self.exo.window.summary()
        if refused:
            self.warnings.append(refused)
        out: Dict[str, Any] = {'changed': False, 'count': len(result),
                               'warnings': self.warnings}
        if tenant_disabled is not None:
            out['tenant'] = {'smtp_auth': not tenant_disabled}
        if 'license' in self.include:
            out['license_source'] = self.license_source
        out.update(self.shaped(result))
        return out

    def shaped(self, entries: List[Dict[str, Any]]) -> Dict[str, Any]:
        """The mailboxes part of the result: every entry whole (detail full), or for all: true
        the summary keys, and with output_path the whole entries in that file instead."""
        path = self.params.get('output_path')
        detail = self.params.get('detail') or ('summary' if self.params.get('all') else 'full')
        out: Dict[str, Any] = {'detail': detail}
        if path and self.check_mode:
            self.warnings.append('check mode writes no file: %s was not written; mailboxes '
                                 'holds what it would hold (detail %s)' % (path, detail))
        elif path:
            write_json(path, entries)
            out.update(output_path=path, summary=summary_counts(entries))
            return out
        if detail == 'summary':
            entries = [summary_entry(e) for e in entries]
        out['mailboxes'] = entries
        return out


def tenant_smtp_auth_disabled(exo: ExoAdminClient) -> bool:
    """The tenant's SMTP AUTH default: Get-TransportConfig SmtpClientAuthenticationDisabled."""
    config = exo.invoke('Get-TransportConfig', check=transport_problem)
    return bool(config and config[0]['SmtpClientAuthenticationDisabled'])


def summary_entry(entry: Mapping[str, Any]) -> Dict[str, Any]:
    out = dict((k, entry[k]) for k in SUMMARY_KEYS if k in entry)
    if 'protocols' in out:
        out['protocols'] = dict((k, out['protocols'][k]) for k in SUMMARY_PROTOCOLS)
    return out


def summary_counts(entries: Sequence[Mapping[str, Any]]) -> Dict[str, int]:
    """How many entries exist, have a mailbox, are licensed, have each protocol on."""
    def count(test: Callable[[Mapping[str, Any]], Any]) -> int:
        return sum(1 for e in entries if test(e))
    return {'users': count(lambda e: e.get('exists')),
            'mailboxes': count(lambda e: e.get('has_mailbox')),
            'exchange_licensed': count(lambda e: e.get('exchange_licensed')),
            'pop': count(lambda e: (e.get('protocols') or {}).get('pop')),
            'imap': count(lambda e: (e.get('protocols') or {}).get('imap')),
            'smtp_auth': count(lambda e: (e.get('protocols') or {}).get('smtp_auth'))}


def write_json(path: str, data: Any) -> None:
    """``data`` as JSON in ``path``, whole or not at all (a temporary file in the same
    directory, mode 0600: the file holds addresses, renamed over the path); InputError when the
    directory cannot take it."""
    directory = os.path.dirname(os.path.abspath(path)) or '.'
    try:
        fd, tmp = tempfile.mkstemp(prefix='.mailbox_info.', dir=directory)
    except OSError as e:
        raise InputError('output_path: cannot write in %s: %s' % (directory, e.strerror))
    try:
        with os.fdopen(fd, 'w') as f:
            json.dump(data, f, separators=(',', ':'))
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except (OSError, ValueError) as e:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise InputError('output_path: cannot write %s: %s' % (path, getattr(e, 'strerror', e)))


def _q(text: str) -> str:
    return text.replace("'", "''")


def _batch_error(phase: str, status: int, body: Any, permission: str) -> GraphError:
    code, message, request_id, dummy = GraphClient.error_fields(body)
    hint = None
    if status == 403:
        hint = 'the app needs the application permission %s with admin consent' % permission
    return GraphError(phase, status, code, message, request_id, None, 'GET', '$batch', hint)


SMTP_AUTH_VALUES = {'enabled': False, 'disabled': True, 'inherit': None}  # -> ...Disabled
AMBIGUOUS = '_exo_ambiguous'  # the key of a read that found several mailboxes for one name
MESSAGE_ITEMS = 10  # failed mailboxes a failure message names (the result has them all)


def protocol_state(cas: Mapping[str, Any]) -> Dict[str, Any]:
    return {'pop': bool(cas.get('PopEnabled')), 'imap': bool(cas.get('ImapEnabled')),
            'smtp_auth': smtp_auth_setting(cas.get('SmtpClientAuthenticationDisabled'))}


class ProtocolChange:
    """Read the listed mailboxes' switches and send Set-CASMailbox where they differ, each Set
    as soon as its mailbox is read."""

    def __init__(self, params: Mapping[str, Any], check_mode: bool = False,
                 diff_mode: bool = False) -> None:
        self.params = params
        self.check_mode = check_mode
        self.diff_mode = diff_mode
        self.identity = Identity(params, check_mode)
        self.exo = ExoAdminClient(self.identity,
                                  concurrency=params.get('concurrency') or CONCURRENCY)
        self.wanted = dict((k, params.get(k)) for k in ('pop', 'imap', 'smtp_auth')
                           if params.get(k) is not None)
        self.refusal: Optional[str] = None  # Exchange's RBAC refusal of Set-CASMailbox

    def read(self, names: Sequence[str],
             arrived: Callable[[str, Optional[JSON]], None]) -> None:
        """``arrived(name, CAS object or None)`` for every name, as the answers come. A name is
        an SMTP address, an ExternalDirectoryObjectId or anything Exchange's -Identity takes (a
        UPN). Above PAGE_THRESHOLD names, the addresses are read by EmailAddresses filters
        (ExoAdminClient.read_by_addresses); the names no answer holds (a UPN that is no
        address) are asked one by one."""
        rest = list(names)
        if len(names) > PAGE_THRESHOLD:
            waiting: Dict[str, List[str]] = {}
            for name in names:
                if '@' in name:
                    waiting.setdefault(name.lower(), []).append(name)
            for chunk in self.exo.read_by_addresses('Get-CASMailbox', list(waiting),
                                                    check=cas_problem):
                for obj in chunk:
                    keys = mailbox_addresses(obj) | set(
                        str(obj.get(k)).lower() for k in ('ExternalDirectoryObjectId',
                                                          'Identity') if obj.get(k))
                    for key in keys:
                        for name in waiting.pop(key, ()):
                            arrived(name, obj)
            done = set(n for n in names if '@' in n and n.lower() not in waiting)
            rest = [n for n in names if n not in done]

        def one(name: str) -> Optional[JSON]:
            try:
                found = self.exo.invoke('Get-CASMailbox', {'Identity': name}, check=cas_problem)
            except GraphError as e:
                if e.status == 404 or 'couldn\'t be found' in str(e):
                    return None
                raise
            if len(found) > 1:
                return {AMBIGUOUS: '%s names %d mailboxes (%s): give one address or directory '
                                   'id each' % (name, len(found), ', '.join(sorted(
                                       str(o.get('PrimarySmtpAddress')) for o in found)[:5]))}
            return found[0] if found else None
        if rest:
            with ThreadPoolExecutor(max_workers=min(self.exo.concurrency, len(rest))) as pool:
                for name, obj in zip(rest, pool.map(one, rest)):
                    arrived(name, obj)

    @staticmethod
    def identity_of(cas: Mapping[str, Any], name: str) -> Any:
        return cas.get('ExternalDirectoryObjectId') or cas.get('Identity') or name

    def settle(self, entry: Dict[str, Any], cas: Mapping[str, Any], error: str,
               warnings: List[str]) -> None:
        """A Set-CASMailbox failed, yet Exchange may have carried it out (an answer lost, a 500
        after the write): what the mailbox is now is read back, never assumed."""
        try:
            found = self.exo.invoke('Get-CASMailbox', {'Identity': self.identity_of(
                cas, entry['mailbox'])}, check=cas_problem)
            now, problem = (protocol_state(found[0]), None) if found else (None, 'no mailbox')
        except GraphError as e:
            now, problem = None, str(e)
        if now is not None and now == entry['after']:
            warnings.append('%s: Set-CASMailbox failed (%s), but read back afterwards the '
                            'mailbox is as asked' % (entry['mailbox'], error))
        elif now is None:
            entry.update(failed=True, changed='unknown', after=None,
                         msg='%s; the outcome is unknown (reading the mailbox back failed: %s)'
                             % (error, problem))
        else:
            entry.update(failed=True, changed=now != entry['before'], after=now, msg=error)

    def set_one(self, item: Tuple[str, JSON, Dict[str, Any]]) -> Optional[Tuple[str, bool]]:
        """None when Exchange took the Set, else (why, certain): ``certain`` when it surely was
        not carried out (Exchange's RBAC refusal; after one, no further Set is sent)."""
        name, cas, after = item
        if self.refusal is not None:
            return 'not sent: %s' % self.refusal, True
        parameters: Dict[str, Any] = {'Identity': self.identity_of(cas, name)}
        if 'pop' in self.wanted:
            parameters['PopEnabled'] = after['pop']
        if 'imap' in self.wanted:
            parameters['ImapEnabled'] = after['imap']
        if 'smtp_auth' in self.wanted:
            parameters['SmtpClientAuthenticationDisabled'] = SMTP_AUTH_VALUES[after['smtp_auth']]
        try:
            self.exo.invoke('Set-CASMailbox', parameters, phase='Set-CASMailbox')
            return None
        except GraphError as e:
            if e.status == 401 and NOT_ALLOWED.match(e.graph_message or ''):
                self.refusal = str(e)  # the app may not set any mailbox: stop here
                return str(e), True
            return str(e), False
        except Exception as e:  # pylint: disable=broad-except
            # a token that could not be renewed, say: the Set may or may not have gone out
            return '%s: %s' % (getattr(e, 'phase', None) or 'Set-CASMailbox', e), False

    def run(self) -> Dict[str, Any]:
        names = list(dict.fromkeys(self.params.get('mailboxes') or []))
        wild = [n for n in names if '*' in n]
        if wild:  # -Identity takes wildcards: one name could set many mailboxes
            raise InputError('mailboxes: %s holds a wildcard (*); name each mailbox by its '
                             'address, user principal name or directory id. Nothing was sent.'
                             % ', '.join(wild[:5]))
        found: Dict[str, Dict[str, Any]] = {}
        sent: List[Tuple[str, JSON, Any]] = []
        warnings: List[str] = []
        with ThreadPoolExecutor(max_workers=self.exo.concurrency) as setter:
            def arrived(name: str, cas: Optional[JSON]) -> None:
                if name in found:
                    return
                if cas is None or AMBIGUOUS in cas:
                    found[name] = {'mailbox': name, 'changed': False, 'failed': True,
                                   'msg': cas[AMBIGUOUS] if cas else
                                   'no Exchange Online mailbox %s' % name}
                    return
                before = protocol_state(cas)
                after = dict(before, **self.wanted)
                found[name] = {'mailbox': name, 'before': before, 'after': after,
                               'changed': before != after}
                if before != after and not self.check_mode:
                    sent.append((name, cas, setter.submit(self.set_one, (name, cas, after))))
            read_error: Optional[TaskError] = None
            try:
                if names and self.wanted:
                    self.read(names, arrived)
            except TaskError as e:  # the Sets already sent are waited for and reported
                if not sent:
                    raise
                read_error = e
            errors = [(name, cas, future.result()) for name, cas, future in sent]
            # what a failed Set did is read back, as many at once as the Sets went out
            unsure = [(found[name], cas, error[0]) for name, cas, error in errors
                      if error and not error[1]]
            list(setter.map(lambda u: self.settle(u[0], u[1], u[2], warnings), unsure))
        for name, cas, error in errors:
            if error and error[1]:
                found[name].update(failed=True, changed=False, after=found[name]['before'],
                                   msg=error[0])
        if read_error is not None:
            for name in names:  # short: the task's msg has the error once
                found.setdefault(name, {'mailbox': name, 'changed': False, 'failed': True,
                                        'msg': 'not read: reading failed before it (%s)'
                                               % read_error.phase})
        entries = [found[n] for n in names if n in found]
        result: Dict[str, Any] = {'mailboxes': entries, 'warnings': warnings}
        tenant_error: Optional[Tuple[str, str]] = None
        if read_error is not None:
            changed = sum(1 for e in entries if e['changed'] is True)
            tenant_error = (read_error.phase, '%s; before it failed, %d of %d mailboxes were '
                            'read and %d of them changed (see mailboxes); run the task again: '
                            'it reads first' % (read_error, len(entries) - sum(
                                1 for e in entries if e.get('msg', '').startswith('not read')),
                                len(names), changed))
        elif self.params.get('tenant_smtp_auth'):
            try:
                result['tenant'], tenant_error = self.tenant_default(warnings)
            except GraphError as e:  # Get-TransportConfig: the mailboxes' outcome stands
                tenant_error = (e.phase, str(e))
        tenant_changed = bool(result.get('tenant', {}).get('changed'))
        failed = [e for e in entries if e.get('failed')]
        result['changed'] = tenant_changed or any(e['changed'] is True for e in entries) or (
            'unknown' if any(e['changed'] == 'unknown' for e in entries) else False)
        result['changed_count'] = sum(1 for e in entries if e['changed'] is True)
        unknown = sum(1 for e in entries if e['changed'] == 'unknown')
        if unknown:
            result['unknown_count'] = unknown
        refused = self.exo.window.summary()
        if refused:
            warnings.append(refused)
        if self.diff_mode and result['changed']:
            result['diff'] = {'before': _diff_lines(entries, 'before', result.get('tenant')),
                              'after': _diff_lines(entries, 'after', result.get('tenant'))}
        if failed:
            # where single mailboxes failed: not found when read, or refused when set
            result.update(failed=True, msg=failure_message(entries, failed, self.check_mode),
                          phase='Set-CASMailbox' if any('before' in e for e in failed)
                          else 'Get-CASMailbox')
        if not warnings:
            del result['warnings']
        if tenant_error is not None:
            phase, msg = tenant_error
            if entries:
                msg += '; the mailboxes before it: ' + (
                    failure_message(entries, failed, self.check_mode) if failed else
                    '%d %s as asked (%d %s)' % (
                        len(entries), 'would be set' if self.check_mode else 'set',
                        result['changed_count'],
                        'would change' if self.check_mode else 'changed now'))
            result.update(failed=True, phase=phase, msg=msg)
        return result

    def tenant_disabled(self) -> bool:
        return tenant_smtp_auth_disabled(self.exo)

    def tenant_default(
            self, warnings: List[str]) -> Tuple[Dict[str, Any], Optional[Tuple[str, str]]]:
        """(the tenant's result entry, (phase, message) of a failure or None): the tenant's SMTP
        AUTH default read, and set where it differs; a failed Set-TransportConfig is read back
        like a mailbox's (see settle)."""
        disabled_now = self.tenant_disabled()
        want_disabled = self.params['tenant_smtp_auth'] == 'disabled'
        entry: Dict[str, Any] = {'before': {'smtp_auth': not disabled_now},
                                 'after': {'smtp_auth': not want_disabled},
                                 'changed': disabled_now != want_disabled}
        if not entry['changed'] or self.check_mode:
            return entry, None
        try:
            self.exo.invoke('Set-TransportConfig',
                            {'SmtpClientAuthenticationDisabled': want_disabled},
                            phase='Set-TransportConfig')
            return entry, None
        except GraphError as e:
            error = str(e)
        try:
            now, problem = self.tenant_disabled(), None
        except GraphError as e:
            now, problem = None, str(e)
        if now == want_disabled:
            warnings.append('tenant: Set-TransportConfig failed (%s), but read back afterwards '
                            'the default is as asked' % error)
            return entry, None
        if now is None:
            entry.update(after=None, changed=False)
            return entry, ('Set-TransportConfig', '%s; the outcome is unknown (reading the '
                           'tenant default back failed: %s)' % (error, problem))
        entry.update(after={'smtp_auth': not now}, changed=now != disabled_now)
        return entry, ('Set-TransportConfig', error)


def failure_message(entries: Sequence[Mapping[str, Any]], failed: Sequence[Mapping[str, Any]],
                    check_mode: bool) -> str:
    """What failed, worded for one mailbox, for all of them and for some (then what became of
    the others, or would in check mode), then each failure."""
    details = '; '.join('%s: %s' % (e['mailbox'], e['msg']) for e in failed[:MESSAGE_ITEMS])
    if len(failed) > MESSAGE_ITEMS:
        details += '; and %d more (see mailboxes)' % (len(failed) - MESSAGE_ITEMS)
    if len(entries) == 1:
        return '%s failed: %s' % (failed[0]['mailbox'], failed[0]['msg'])
    others = len(entries) - len(failed)
    if not others:
        return 'all %d mailboxes failed: %s' % (len(entries), details)
    changed = sum(1 for e in entries if e['changed'] is True)
    if check_mode:
        state = 'would be set as asked (%d would change)' % changed
    else:
        state = '%s set as asked (%d changed now)' % ('is' if others == 1 else 'are', changed)
    return '%d of %d mailboxes failed; the other %s %s: %s' % (
        len(failed), len(entries), 'one' if others == 1 else others, state, details)


def _diff_lines(entries: Iterable[Mapping[str, Any]], side: str,
                tenant: Optional[Mapping[str, Any]]) -> str:
    lines: List[str] = []
    for e in entries:
        if e.get('changed') and side in e:
            s = e[side]
            if s is None:  # changed: unknown, the read-back failed
                lines.append('%s: unknown (Set-CASMailbox failed and reading the mailbox back '
                             'failed)' % e['mailbox'])
                continue
            lines.append('%s: pop=%s imap=%s smtp_auth=%s' % (e['mailbox'], s['pop'], s['imap'],
                                                              s['smtp_auth']))
    if tenant and tenant['changed']:
        lines.append('tenant: smtp_auth=%s' % tenant[side]['smtp_auth'])
    return '\n'.join(lines) + '\n'
