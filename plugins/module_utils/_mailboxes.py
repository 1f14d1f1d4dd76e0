# -*- coding: utf-8 -*-
# Copyright (c) exchangeonline.mail contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# Private to this collection: may change without notice.
"""Mailboxes at tenant scale: existence, licences and addresses (proxyAddresses, which hold the
routing address) from Graph, protocol switches from Exchange Online, in as few round trips as the
tenant allows.

For many or all mailboxes the tenant is paged once (Graph /users 999 per page, Get-CASMailbox
1,000 per page); per-user Graph parts go through $batch (20 per request, bounded concurrency); a
short list asks Exchange per mailbox, in parallel.
"""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

from concurrent.futures import ThreadPoolExecutor
from typing import Any, Dict, Iterable, List, Mapping, Optional, Sequence, Set, Tuple

from urllib.parse import quote

from ansible_collections.exchangeonline.mail.plugins.module_utils._errors import InputError
from ansible_collections.exchangeonline.mail.plugins.module_utils._exo_admin import ExoAdminClient
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
# Above this many listed mailboxes, paging the whole tenant once beats asking per mailbox.
PAGE_THRESHOLD = 50
PARALLEL = 4
# Which Exchange Online plans give a mailbox (and which do not: EXCHANGE_S_FOUNDATION, the
# archives) is data from Microsoft's licensing list, with its date: _service_plans.
# What the collection reads of a Graph user (resources/user), a licenseDetails entry
# (resources/licensedetails) and the cmdlet objects; anything else in an answer is an error.
USER_SHAPE = {'id': str, 'userPrincipalName': str, 'mail': (str, NULL),
              'proxyAddresses': (STR_LIST, NULL)}
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
    return shape_problem(user, USER_SHAPE)


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
        self.identity = Identity(params, check_mode)
        self.graph = GraphClient(self.identity)
        self.exo = ExoAdminClient(self.identity)
        self.include = set(params.get('include') or PARTS)  # the argument spec's choices

    # -- who ------------------------------------------------------------------------------------
    def users(self) -> List[Tuple[str, Optional[JSON]]]:
        """[(asked, graph user or None)] in the order asked (all: the tenant's order)."""
        if self.params.get('all'):
            users = self.graph.get_all('/users', params={'$select': USER_SELECT, '$top': '999'},
                                       phase='list users', permission='User.Read.All',
                                       check=user_problem)
            return [(u['userPrincipalName'], u) for u in users]
        asked = list(dict.fromkeys(self.params.get('mailboxes') or []))
        found = self.batch_checked([{'id': str(i), 'method': 'GET', 'url': '/users/%s?$select=%s'
                                     % (path_segment(name, 'mailboxes'), USER_SELECT)}
                                    for i, name in enumerate(asked)], 'read users', user_problem)
        missing = [i for i in range(len(asked)) if found[str(i)][0] == 404]
        if missing:  # not a UPN: maybe a mail address or a proxy address
            by_address = self.batch_checked([{
                'id': str(i), 'method': 'GET',
                'url': '/users?$select=%s&$filter=%s' % (USER_SELECT, quote(
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

    def licences(self, users: Sequence[JSON]) -> Dict[str, List[JSON]]:
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
        """{graph user id: object} for the users that have an Exchange Online mailbox."""
        if self.params.get('all') or len(users) > PAGE_THRESHOLD:
            objects = self.exo.invoke(cmdlet, {'ResultSize': 'Unlimited'}, check=cas_problem)
        else:
            def one(user: JSON) -> List[Any]:
                try:
                    return self.exo.invoke(cmdlet, {'Identity': user['id']}, check=cas_problem)
                except GraphError as e:
                    if e.status == 404 or 'couldn\'t be found' in (e.graph_message or ''):
                        return []
                    raise
            with ThreadPoolExecutor(max_workers=PARALLEL) as pool:
                objects = [o for found in pool.map(one, users) for o in found]
        return match_mailboxes(objects, users)

    def tenant_smtp_auth_disabled(self) -> bool:
        config = self.exo.invoke('Get-TransportConfig', check=transport_problem)
        return bool(config and config[0]['SmtpClientAuthenticationDisabled'])

    # -- the result -------------------------------------------------------------------------
    def info(self) -> Dict[str, Any]:
        asked = self.users()
        users = [u for dummy, u in asked if u is not None]
        licences = self.licences(users) if 'license' in self.include and users else {}
        need_cas = self.include & set(('mailbox', 'protocols'))
        cas = self.exchange_objects('Get-CASMailbox', users) if need_cas and users else {}
        tenant_disabled = self.tenant_smtp_auth_disabled() \
            if 'protocols' in self.include else None
        result: List[Dict[str, Any]] = []
        for name, user in asked:
            entry: Dict[str, Any] = {'upn': name, 'exists': user is not None}
            if user is None:
                result.append(entry)
                continue
            uid = user['id']
            entry.update(upn=user.get('userPrincipalName'), id=uid, mail=user.get('mail'))
            if 'license' in self.include:
                entry['exchange_licensed'] = exchange_licensed(licences.get(uid))
                entry['licenses'] = sorted(s.get('skuPartNumber') for s in licences.get(uid, []))
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
        out: Dict[str, Any] = {'changed': False, 'mailboxes': result, 'count': len(result)}
        if tenant_disabled is not None:
            out['tenant'] = {'smtp_auth': not tenant_disabled}
        return out


def _q(text: str) -> str:
    return text.replace("'", "''")


def _batch_error(phase: str, status: int, body: Any, permission: str) -> GraphError:
    code, message, request_id, dummy = GraphClient.error_fields(body)
    hint = None
    if status == 403:
        hint = 'the app needs the application permission %s with admin consent' % permission
    return GraphError(phase, status, code, message, request_id, None, 'GET', '$batch', hint)


SMTP_AUTH_VALUES = {'enabled': False, 'disabled': True, 'inherit': None}  # -> ...Disabled


def protocol_state(cas: Mapping[str, Any]) -> Dict[str, Any]:
    return {'pop': bool(cas.get('PopEnabled')), 'imap': bool(cas.get('ImapEnabled')),
            'smtp_auth': smtp_auth_setting(cas.get('SmtpClientAuthenticationDisabled'))}


class ProtocolChange:
    """Read every listed mailbox's switches, send Set-CASMailbox only where they differ."""

    def __init__(self, params: Mapping[str, Any], check_mode: bool = False,
                 diff_mode: bool = False) -> None:
        self.params = params
        self.check_mode = check_mode
        self.diff_mode = diff_mode
        self.identity = Identity(params, check_mode)
        self.exo = ExoAdminClient(self.identity)
        self.wanted = dict((k, params.get(k)) for k in ('pop', 'imap', 'smtp_auth')
                           if params.get(k) is not None)

    def read(self, names: Sequence[str]) -> Dict[str, Optional[JSON]]:
        """{name: CAS object or None}; the tenant paged once for long lists. A name is an SMTP
        address, an ExternalDirectoryObjectId or anything Exchange's -Identity takes (a UPN);
        names the page does not hold (a UPN that is no address) are asked one by one."""
        found: Dict[str, Optional[JSON]] = {}
        if len(names) > PAGE_THRESHOLD:
            objects = self.exo.invoke('Get-CASMailbox', {'ResultSize': 'Unlimited'},
                                      check=cas_problem)
            index: Dict[str, JSON] = {}
            for obj in objects:
                keys = mailbox_addresses(obj) | set(
                    str(obj.get(k)).lower() for k in ('ExternalDirectoryObjectId', 'Identity')
                    if obj.get(k))
                for key in keys:
                    index.setdefault(key, obj)
            found = dict((n, index[n.lower()]) for n in names if n.lower() in index)
        rest = [n for n in names if n not in found]

        def one(name: str) -> Optional[JSON]:
            try:
                found = self.exo.invoke('Get-CASMailbox', {'Identity': name}, check=cas_problem)
            except GraphError as e:
                if e.status == 404 or 'couldn\'t be found' in str(e):
                    return None
                raise
            return found[0] if found else None
        with ThreadPoolExecutor(max_workers=PARALLEL) as pool:
            found.update(zip(rest, pool.map(one, rest)))
        return found

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
            entry.update(failed=True, changed=False, after=None,
                         msg='%s; the outcome is unknown (reading the mailbox back failed: %s)'
                             % (error, problem))
        else:
            entry.update(failed=True, changed=now != entry['before'], after=now, msg=error)

    def set_one(self, item: Tuple[str, JSON, Dict[str, Any]]) -> Optional[str]:
        name, cas, after = item
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
            return str(e)

    def run(self) -> Dict[str, Any]:
        names = list(dict.fromkeys(self.params.get('mailboxes') or []))
        current = self.read(names) if names and self.wanted else {}
        entries: List[Dict[str, Any]] = []
        todo: List[Tuple[str, JSON, Dict[str, Any]]] = []
        warnings: List[str] = []
        for name in names if self.wanted else []:
            cas = current.get(name)
            if cas is None:
                entries.append({'mailbox': name, 'changed': False, 'failed': True,
                                'msg': 'no Exchange Online mailbox %s' % name})
                continue
            before = protocol_state(cas)
            after = dict(before, **self.wanted)
            entry: Dict[str, Any] = {'mailbox': name, 'before': before, 'after': after,
                                     'changed': before != after}
            entries.append(entry)
            if entry['changed']:
                todo.append((name, cas, after))
        if todo and not self.check_mode:
            with ThreadPoolExecutor(max_workers=PARALLEL) as pool:
                errors = list(pool.map(self.set_one, todo))
            by_name = dict((e['mailbox'], e) for e in entries)
            for (name, cas, dummy), error in zip(todo, errors):
                if error:
                    self.settle(by_name[name], cas, error, warnings)
        result: Dict[str, Any] = {'mailboxes': entries, 'warnings': warnings}
        tenant_error: Optional[Tuple[str, str]] = None
        if self.params.get('tenant_smtp_auth'):
            try:
                result['tenant'], tenant_error = self.tenant_default(warnings)
            except GraphError as e:  # Get-TransportConfig: the mailboxes' outcome stands
                tenant_error = (e.phase, str(e))
        tenant_changed = bool(result.get('tenant', {}).get('changed'))
        failed = [e for e in entries if e.get('failed')]
        result['changed'] = tenant_changed or any(e['changed'] for e in entries)
        result['changed_count'] = sum(1 for e in entries if e['changed'])
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
        config = self.exo.invoke('Get-TransportConfig', check=transport_problem)
        return bool(config and config[0]['SmtpClientAuthenticationDisabled'])

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
    details = '; '.join('%s: %s' % (e['mailbox'], e['msg']) for e in failed)
    if len(entries) == 1:
        return '%s failed: %s' % (failed[0]['mailbox'], failed[0]['msg'])
    others = len(entries) - len(failed)
    if not others:
        return 'all %d mailboxes failed: %s' % (len(entries), details)
    changed = sum(1 for e in entries if e['changed'])
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
            lines.append('%s: pop=%s imap=%s smtp_auth=%s' % (e['mailbox'], s['pop'], s['imap'],
                                                              s['smtp_auth']))
    if tenant and tenant['changed']:
        lines.append('tenant: smtp_auth=%s' % tenant[side]['smtp_auth'])
    return '\n'.join(lines) + '\n'
