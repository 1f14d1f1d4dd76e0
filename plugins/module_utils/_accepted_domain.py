# -*- coding: utf-8 -*-
# Copyright (c) exchangeonline.mail contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# Private to this collection: may change without notice.
"""The engine of the accepted_domain module: an accepted domain's DomainType in Exchange Online
(``Get-AcceptedDomain``, ``Set-AcceptedDomain -DomainType``) through the Exchange admin client.

In the partial pattern both Exchange Online and the old server receive mail for the whole
domain. Authoritative, Exchange Online rejects mail to a recipient it does not know; as
InternalRelay it relays that mail on, through the outbound connector whose recipient domains
match, to the old server ("Manage accepted domains in Exchange Online", learn.microsoft.com).
"""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

from typing import Any, Dict, List, Mapping, Optional

from ansible_collections.exchangeonline.mail.plugins.module_utils._domains import domain_name
from ansible_collections.exchangeonline.mail.plugins.module_utils._errors import TaskError
from ansible_collections.exchangeonline.mail.plugins.module_utils._exo_admin import (
    ExoAdminClient,
    NotCarriedOut,
    change_and_read_back,
)
from ansible_collections.exchangeonline.mail.plugins.module_utils._graph import GraphError, JSON
from ansible_collections.exchangeonline.mail.plugins.module_utils._identity import Identity

# the module's choices -> Exchange's AcceptedDomainType names (ExternalRelay exists only in
# on-premises Exchange: Set-AcceptedDomain, -DomainType)
DOMAIN_TYPES = {'authoritative': 'Authoritative', 'internal_relay': 'InternalRelay'}
NOT_FOUND = "couldn't be found"


def domain_type_choice(value: Any) -> Optional[str]:
    """The module's name of an Exchange DomainType (None for one it does not know)."""
    for choice, name in DOMAIN_TYPES.items():
        if str(value or '').lower() == name.lower():
            return choice
    return None


def accepted_state(obj: Optional[Mapping[str, Any]]) -> Optional[Dict[str, Any]]:
    if obj is None:
        return None
    return {'domain_type': domain_type_choice(obj.get('DomainType')),
            'exchange_domain_type': obj.get('DomainType'),
            'default': obj.get('Default') is True,
            'initial': obj.get('InitialDomain') is True,
            'match_subdomains': obj.get('MatchSubDomains') is True}


class AcceptedDomain:
    """The accepted_domain task: ``run()`` is its result dict; failures raise TaskError."""

    def __init__(self, params: Mapping[str, Any], check_mode: bool = False,
                 diff_mode: bool = False) -> None:
        self.params = params
        self.check_mode = check_mode
        self.diff_mode = diff_mode
        self.domain = domain_name(params['domain'])
        self.identity = Identity(params, check_mode)
        self.exo = ExoAdminClient(self.identity)
        self.warnings: List[str] = []

    def read(self, phase: str = 'Get-AcceptedDomain') -> Optional[JSON]:
        try:
            found = self.exo.invoke('Get-AcceptedDomain', {'Identity': self.domain},
                                    phase=phase)
        except GraphError as e:
            if e.status == 404 or NOT_FOUND in str(e):
                return None
            raise
        # only the object of this domain: an Identity that is not an accepted domain returns
        # every accepted domain (Get-AcceptedDomain, "Caution"), never a not-found error
        mine = [o for o in found if isinstance(o, dict) and
                str(o.get('DomainName') or o.get('Name') or '').rstrip('.').lower() == self.domain]
        return mine[0] if mine else None

    def run(self) -> Dict[str, Any]:
        wanted: Optional[str] = self.params.get('domain_type')
        before = accepted_state(self.read())
        if before is None:
            raise TaskError(
                '%s is not an accepted domain of the tenant (Get-AcceptedDomain found none): '
                'add it and verify it with Email among its services '
                '(exchangeonline.mail.domain), then run this task again. Nothing was changed.'
                % self.domain, phase='Get-AcceptedDomain', fields={'domain': self.domain})
        after = before
        changed = wanted is not None and before['domain_type'] != wanted
        if changed and wanted != 'authoritative' and before['initial']:
            raise TaskError(
                '%s is the tenant\'s initial domain: it stays authoritative, since mail to the '
                'moved mailboxes is forwarded to their <name>@<tenant>.mail.onmicrosoft.com '
                'addresses, which must not be relayed on (a loop). Nothing was changed.'
                % self.domain, phase='plan', fields={'domain': self.domain, 'before': before})
        if wanted is not None and changed and self.check_mode:
            after = dict(before, domain_type=wanted, exchange_domain_type=DOMAIN_TYPES[wanted])
        elif wanted is not None and changed:
            after = self.set_type(wanted, before)
        result: Dict[str, Any] = {'changed': changed, 'domain': self.domain,
                                  'before': before, 'after': after}
        result.update(after)
        if self.diff_mode and changed:
            result['diff'] = {'before': 'domain_type: %s\n' % before['domain_type'],
                              'after': 'domain_type: %s\n' % wanted,
                              'before_header': 'accepted domain %s' % self.domain,
                              'after_header': 'accepted domain %s' % self.domain}
        if self.warnings:
            result['warnings'] = self.warnings
        return result

    def set_type(self, wanted: str, before: Dict[str, Any]) -> Dict[str, Any]:
        def done(obj: Any) -> bool:
            state = accepted_state(obj)
            return state is not None and state['domain_type'] == wanted
        try:
            now = change_and_read_back(
                self.exo, 'Set-AcceptedDomain',
                {'Identity': self.domain, 'DomainType': DOMAIN_TYPES[wanted]},
                self.read, done, self.warnings, 'the accepted domain')
        except NotCarriedOut as e:
            raise e.task_error('Set-AcceptedDomain', 'the domain', {
                'domain': self.domain, 'before': before,
                'after': accepted_state(e.now) or before})
        after = accepted_state(now)
        if after is None or after['domain_type'] != wanted:
            raise TaskError(
                'Set-AcceptedDomain answered, but %s reads back as DomainType %s, not %s: run '
                'the task again; if it stays so, check the domain in the Exchange admin centre'
                % (self.domain, (after or {}).get('exchange_domain_type'), DOMAIN_TYPES[wanted]),
                phase='read back', fields={'domain': self.domain, 'before': before,
                                           'after': after, 'changed': 'unknown'})
        return after
