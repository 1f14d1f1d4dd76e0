# -*- coding: utf-8 -*-
# Copyright (c) exchangeonline.mail contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# Private to this collection: may change without notice.
"""The engine of the dkim module: a domain's DKIM signing config in Exchange Online, through the
Exchange admin client (``Get-``, ``New-``, ``Set-``, ``Rotate-DkimSigningConfig``).

The selector CNAME targets come only from the tenant (``Selector1CNAME``, ``Selector2CNAME``):
domains added since May 2025 get ``selector1-<dashed>._domainkey.<prefix>.<x>-v1.dkim.mail.
microsoft``, which nobody can compute. Exchange refuses to enable signing until both
``selectorN._domainkey.<domain>`` CNAMEs resolve to them ("CNAME record does not exist for this
config. Please publish the following two CNAME records first."), so the refusal is reported with
both records to publish. There is no Remove-DkimSigningConfig: ``state: absent`` disables.
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

SELECTORS = ('selector1', 'selector2')
CNAME_MISSING = 'cname record does not exist'
NOT_FOUND = "couldn't be found"
DOCS = 'https://learn.microsoft.com/defender-office-365/email-authentication-dkim-configure'


def config_state(obj: Optional[Mapping[str, Any]]) -> Optional[Dict[str, Any]]:
    """What the module shows of a signing config (None: there is none)."""
    if obj is None:
        return None
    sizes = [s for s in (obj.get('Selector1KeySize'), obj.get('Selector2KeySize'))
             if isinstance(s, int) and not isinstance(s, bool)]
    return {'enabled': obj.get('Enabled') is True, 'status': obj.get('Status'),
            'selector1_cname': _target(obj.get('Selector1CNAME')),
            'selector2_cname': _target(obj.get('Selector2CNAME')),
            'key_size': max(sizes) if sizes else None,
            'rotate_on_date': obj.get('RotateOnDate'),
            'selector_after_rotate': obj.get('SelectorAfterRotateOnDate')}


def _target(value: Any) -> Optional[str]:
    return str(value).strip().rstrip('.').lower() if value else None


def cname_records(domain: str, state: Mapping[str, Any]) -> List[str]:
    """The two CNAMEs to publish, as ``owner CNAME target`` lines."""
    return ['%s._domainkey.%s CNAME %s' % (sel, domain, state.get(sel + '_cname') or '?')
            for sel in SELECTORS]


class DkimConfig:
    """The dkim task: ``run()`` is its result dict; a failure raises TaskError/GraphError."""

    def __init__(self, params: Mapping[str, Any], check_mode: bool = False,
                 diff_mode: bool = False) -> None:
        self.params = params
        self.check_mode = check_mode
        self.diff_mode = diff_mode
        self.domain = domain_name(params['domain'])
        self.identity = Identity(params, check_mode)
        self.exo = ExoAdminClient(self.identity)
        self.warnings: List[str] = []

    def read(self, phase: str = 'Get-DkimSigningConfig') -> Optional[JSON]:
        try:
            found = self.exo.invoke('Get-DkimSigningConfig', {'Identity': self.domain},
                                    phase=phase)
        except GraphError as e:
            if e.status == 404 or NOT_FOUND in str(e):
                return None
            raise
        return found[0] if found else None

    def send(self, cmdlet: str, parameters: Dict[str, Any], wanted: Mapping[str, Any],
             before: Optional[Dict[str, Any]]) -> Optional[JSON]:
        """Send a changing cmdlet and read the config back (also after a refusal or a lost
        answer: it may have been carried out, which is never assumed either way)."""
        def done(obj: Any) -> bool:
            state = config_state(obj)
            return state is not None and all(state.get(k) == v for k, v in wanted.items())
        try:
            return change_and_read_back(self.exo, cmdlet, parameters, self.read, done,
                                        self.warnings, 'the signing config')
        except NotCarriedOut as e:
            self.fail(e.error, cmdlet, before, config_state(e.now), reachable=e.reachable)
            raise  # fail always raises

    def fail(self, error: GraphError, cmdlet: str, before: Optional[Dict[str, Any]],
             after: Optional[Dict[str, Any]], reachable: bool) -> None:
        fields: Dict[str, Any] = {'before': before, 'after': after, 'domain': self.domain,
                                  'status': error.status, 'code': error.code,
                                  'request_id': error.request_id}
        known = after if after is not None else before
        if known is not None:
            fields.update(self.result_fields(known))
        if not reachable:
            fields['changed'] = 'unknown'
        if CNAME_MISSING in (error.graph_message or '').lower() and known is not None:
            records = cname_records(self.domain, known)
            raise TaskError(
                'Exchange Online refused to enable DKIM signing for %s because the selector '
                'CNAMEs are not published (or not yet seen): publish %s (for example '
                'exchangeonline.mail.mail_dns with pattern none and dkim: the dkim value of '
                'this result), wait until every name server serves them '
                '(exchangeonline.mail.mail_dns_check), then run this task again. Nothing else '
                'was changed. Exchange said: %s' % (self.domain, ' and '.join(records),
                                                    error.graph_message),
                phase='enable', fields=fields)
        text = str(error)
        if after is None and not reachable:
            text += ('; reading the config back failed too, so whether %s was carried out is '
                     'not known: run the task again (it reads first)' % cmdlet)
        raise TaskError(text, phase=cmdlet, fields=fields)

    @staticmethod
    def result_fields(state: Mapping[str, Any]) -> Dict[str, Any]:
        targets = dict((sel, state[sel + '_cname']) for sel in SELECTORS
                       if state.get(sel + '_cname'))
        return {'selector1_cname': state.get('selector1_cname'),
                'selector2_cname': state.get('selector2_cname'),
                'dkim': targets, 'enabled': state.get('enabled'), 'status': state.get('status'),
                'key_size': state.get('key_size')}

    def run(self) -> Dict[str, Any]:
        p = self.params
        state_wanted = p.get('state') or 'present'
        enabled = bool(p.get('enabled', True)) and state_wanted == 'present'
        key_size = int(p.get('key_size') or 2048)
        obj = self.read()
        before = config_state(obj)
        actions: List[str] = []
        after = before
        if before is None:
            if state_wanted == 'absent':
                return self.finish(None, None, actions)
            actions.append('create %s' % ('enabled' if enabled else 'disabled'))
            if self.check_mode:  # the targets are not known until it is created
                return self.finish(None, None, actions)
            # Always created disabled, then enabled when asked: a refusal (CNAMEs missing)
            # then leaves a config whose targets the result can name.
            after = config_state(self.send('New-DkimSigningConfig', {
                'DomainName': self.domain, 'Enabled': False, 'KeySize': key_size},
                {'enabled': False}, None))
            if enabled:
                after = self.set_enabled(True, after, before)
        elif before['enabled'] != enabled:
            actions.append('enable' if enabled else 'disable')
            if not self.check_mode:
                after = self.set_enabled(enabled, before, before)
            else:
                after = dict(before, enabled=enabled)
        if p.get('rotate') and state_wanted == 'present':
            actions.append('rotate')
            if not self.check_mode:
                try:
                    self.exo.invoke('Rotate-DkimSigningConfig',
                                    {'Identity': self.domain, 'KeySize': key_size},
                                    phase='Rotate-DkimSigningConfig')
                except GraphError as e:
                    self.fail(e, 'Rotate-DkimSigningConfig', before, after, reachable=True)
                after = config_state(self.read(phase='read back after Rotate-DkimSigningConfig'))
        return self.finish(before, after, actions)

    def set_enabled(self, enabled: bool, current: Optional[Dict[str, Any]],
                    before: Optional[Dict[str, Any]]) -> Optional[Dict[str, Any]]:
        try:
            return config_state(self.send('Set-DkimSigningConfig', {
                'Identity': self.domain, 'Enabled': enabled}, {'enabled': enabled}, before))
        except TaskError as e:
            if e.phase == 'enable' and current is not None and before is None:
                # the config was created by this run: say so, with its targets
                e.fields.update(self.result_fields(current), changed=True,
                                after=current)
            raise

    def finish(self, before: Optional[Dict[str, Any]], after: Optional[Dict[str, Any]],
               actions: List[str]) -> Dict[str, Any]:
        shown = after if after is not None else before
        result: Dict[str, Any] = {'changed': bool(actions), 'domain': self.domain,
                                  'actions': actions, 'before': before, 'after': after,
                                  'selector1_cname': None, 'selector2_cname': None, 'dkim': {},
                                  'enabled': False, 'status': None, 'key_size': None}
        if shown is not None:
            result.update(self.result_fields(shown))
        if self.diff_mode and actions:
            result['diff'] = {'before': _diff_text(before), 'after': _diff_text(after),
                              'before_header': 'DKIM %s' % self.domain,
                              'after_header': 'DKIM %s' % self.domain}
        if self.warnings:
            result['warnings'] = self.warnings
        return result


def _diff_text(state: Optional[Mapping[str, Any]]) -> str:
    if state is None:
        return ''
    return ''.join('%s: %s\n' % (k, state.get(k)) for k in (
        'enabled', 'status', 'key_size', 'selector1_cname', 'selector2_cname'))
