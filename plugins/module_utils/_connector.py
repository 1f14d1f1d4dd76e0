# -*- coding: utf-8 -*-
# Copyright (c) exchangeonline.mail contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# Private to this collection: may change without notice.
"""The engine of the connector module: an Exchange Online inbound or outbound connector
(``Get-/New-/Set-/Remove-InboundConnector``, ``...-OutboundConnector``) through the Exchange
admin client.

In the partial pattern the outbound connector carries mail for recipients Exchange Online does
not know (an InternalRelay domain) to the old server; the inbound connector recognises mail from
the old server by its IP addresses or its certificate, with Enhanced Filtering for Connectors
skipping the old server's address so that the original sender's IP is judged. Only the options a
task gives are compared and sent; every other property stays as it is. Parameter shapes: the
cmdlets' pages in MicrosoftDocs/office-docs-powershell (exchange/exchange-ps/ExchangePowerShell).
"""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import ipaddress
from typing import Any, Callable, Dict, List, Mapping, Optional, Tuple

from ansible_collections.exchangeonline.mail.plugins.module_utils._errors import (
    InputError,
    TaskError,
)
from ansible_collections.exchangeonline.mail.plugins.module_utils._exo_admin import (
    ExoAdminClient,
    NotCarriedOut,
    change_and_read_back,
)
from ansible_collections.exchangeonline.mail.plugins.module_utils._graph import GraphError, JSON
from ansible_collections.exchangeonline.mail.plugins.module_utils._identity import Identity
from ansible_collections.exchangeonline.mail.plugins.module_utils._records import (
    RecordError,
    name_text,
    validate_hostname,
)

NOT_FOUND = "couldn't be found"
CONNECTOR_TYPES = {'partner': 'Partner', 'on_premises': 'OnPremises'}
TLS_SETTINGS = {'encryption_only': 'EncryptionOnly',
                'certificate_validation': 'CertificateValidation',
                'domain_validation': 'DomainValidation'}
# option -> (Exchange parameter, kind[, choices]); a kind says how a value is checked, sent and
# compared
COMMON: Dict[str, Tuple[Any, ...]] = {
    'enabled': ('Enabled', 'bool'),
    'connector_type': ('ConnectorType', 'enum', CONNECTOR_TYPES),
    'comment': ('Comment', 'text'),
}
OUTBOUND: Dict[str, Tuple[Any, ...]] = dict(COMMON, **{
    'smart_hosts': ('SmartHosts', 'hosts'),
    'recipient_domains': ('RecipientDomains', 'domains'),
    'tls_settings': ('TlsSettings', 'enum', TLS_SETTINGS),
    'tls_domain': ('TlsDomain', 'domain'),
})
INBOUND: Dict[str, Tuple[Any, ...]] = dict(COMMON, **{
    'sender_domains': ('SenderDomains', 'domains'),
    'sender_ip_addresses': ('SenderIPAddresses', 'ips'),
    'tls_sender_certificate_name': ('TlsSenderCertificateName', 'domain'),
    'restrict_domains_to_ip_addresses': ('RestrictDomainsToIPAddresses', 'bool'),
    'restrict_domains_to_certificate': ('RestrictDomainsToCertificate', 'bool'),
    'require_tls': ('RequireTls', 'bool'),
    'treat_messages_as_internal': ('TreatMessagesAsInternal', 'bool'),
    'ef_skip_last_ip': ('EFSkipLastIP', 'bool'),
    'ef_skip_ips': ('EFSkipIPs', 'ip_ranges'),
})
PROPERTIES = {'outbound': OUTBOUND, 'inbound': INBOUND}
OPTIONS = sorted(set(OUTBOUND) | set(INBOUND))


def cmdlet(verb: str, direction: str) -> str:
    return '%s-%sConnector' % (verb, direction.capitalize())


def _domain(value: Any, option: str, wildcard: bool) -> str:
    """A domain (lower case, punycode, no final dot); ``*`` alone or ``*.`` in front only when
    ``wildcard`` (Exchange takes no wildcard inside a name)."""
    text = str(value if value is not None else '').strip()
    if wildcard and text == '*':
        return text
    prefix = ''
    if wildcard and text.startswith('*.'):
        prefix, text = '*.', text[2:]
    try:
        return prefix + name_text(validate_hostname(text, option)).rstrip('.')
    except RecordError:
        raise InputError('%s: %r is not a domain%s' % (
            option, value, ' (a wildcard only as "*" or "*." in front, for example '
                           '*.contoso.com)' if wildcard else ''))


def _host(value: Any, option: str) -> str:
    """A smart host: a host name or an IPv4 address, without a port (Exchange Online sends to
    smart hosts on port 25)."""
    text = str(value if value is not None else '').strip()
    if ':' in text and not text.startswith('['):
        raise InputError('%s: %r has a port or is an IPv6 address; give a host name or an IPv4 '
                         'address (Exchange Online delivers to smart hosts on port 25)'
                         % (option, value))
    try:
        return str(ipaddress.IPv4Address(text))
    except ValueError:
        return _domain(text, option, wildcard=False)


def _ip(value: Any, option: str, ranges: bool) -> str:
    """An IPv4 address or CIDR range (/24 to /32, SenderIPAddresses); with ``ranges`` also a
    range ``first-last`` (EFSkipIPs). IPv6 is not supported by either parameter."""
    text = str(value if value is not None else '').strip()
    try:
        if ranges and '-' in text:
            first, last = (ipaddress.IPv4Address(p.strip()) for p in text.split('-', 1))
            if last < first:
                raise ValueError('the range ends before it begins')
            return '%s-%s' % (first, last)
        if '/' in text:
            net = ipaddress.IPv4Network(text, strict=False)
            if not ranges and not 24 <= net.prefixlen <= 32:
                raise ValueError('Exchange Online takes /24 to /32 here')
            return '%s/%d' % (text.split('/', maxsplit=1)[0].strip(), net.prefixlen)
        return str(ipaddress.IPv4Address(text))
    except ValueError as e:
        raise InputError('%s: %r is not an IPv4 address or range Exchange Online takes (%s; '
                         'IPv6 addresses are not supported)' % (option, value, e))


def _same_ip(text: str) -> str:
    """A comparable form of an address, CIDR range or range."""
    if '/' in text:
        return str(ipaddress.IPv4Network(text, strict=False))
    return text


def wanted_value(option: str, spec: Tuple[Any, ...], value: Any) -> Any:
    """An option's value as the module compares it (checked; InputError when it is not valid)."""
    kind = spec[1]
    if kind == 'enum':
        return value
    if kind == 'bool' or kind == 'text':
        return value
    if kind == 'domain':
        return _domain(value, option, wildcard=True) if value not in (None, '') else None
    items = [v for v in value if str(v).strip()]
    if kind == 'hosts':
        return sorted(set(_host(v, option) for v in items))
    if kind == 'domains':
        return sorted(set(_domain(v, option, wildcard=True) for v in items))
    return sorted(set(_same_ip(_ip(v, option, ranges=kind == 'ip_ranges')) for v in items))


def _read_value(spec: Tuple[Any, ...], value: Any) -> Any:
    """A property as Exchange reads it back, in the module's terms."""
    kind = spec[1]
    if kind == 'enum':
        for choice, name in spec[2].items():
            if str(value or '').lower() == name.lower():
                return choice
        return None if value in (None, '') else str(value)
    if kind == 'bool':
        return value if isinstance(value, bool) else None
    if kind == 'text':
        return value if value not in (None, '') else None
    if kind == 'domain':
        return str(value).rstrip('.').lower() if value not in (None, '') else None
    if value in (None, ''):
        return []
    values = value if isinstance(value, list) else [value]
    out = []
    for item in values:
        text = str(item).strip()
        if kind == 'domains':
            # SenderDomains reads back as an address space, "smtp:*.contoso.com;1"
            if text.lower().startswith('smtp:'):
                text = text[5:]
            text = text.rsplit(';', 1)[0] if ';' in text else text
            text = text.rstrip('.').lower()
        elif kind in ('ips', 'ip_ranges'):
            try:
                text = _same_ip(text)
            except ValueError:
                pass
        else:
            text = text.rstrip('.').lower()
        out.append(text)
    return sorted(set(out))


def _send_value(spec: Tuple[Any, ...], value: Any) -> Any:
    if spec[1] == 'enum':
        return spec[2][value] if value is not None else None
    return value


def connector_state(direction: str, obj: Optional[Mapping[str, Any]]) -> Optional[Dict[str, Any]]:
    """What the module shows of a connector (None: there is none)."""
    if obj is None:
        return None
    state = dict((option, _read_value(spec, obj.get(spec[0])))
                 for option, spec in PROPERTIES[direction].items())
    if direction == 'outbound':
        state['use_mx_record'] = obj.get('UseMXRecord') is True
        state['test_mode'] = obj.get('TestMode') is True
    state['name'] = obj.get('Name') or obj.get('Identity')
    return state


def diff_text(state: Optional[Mapping[str, Any]], options: List[str]) -> str:
    if state is None:
        return ''
    lines = []
    for option in options:
        value = state.get(option)
        if isinstance(value, list):
            lines.append('%s: [%s]' % (option, ', '.join(value)))
        else:
            lines.append('%s: %s' % (option, 'null' if value is None else
                                     str(value).lower() if isinstance(value, bool) else value))
    return '\n'.join(lines) + '\n'


class Connector:
    """The connector task: ``run()`` is its result dict; failures raise TaskError."""

    def __init__(self, params: Mapping[str, Any], check_mode: bool = False,
                 diff_mode: bool = False) -> None:
        self.params = params
        self.check_mode = check_mode
        self.diff_mode = diff_mode
        self.direction: str = params['direction']
        self.name = str(params['name'] or '').strip()
        self.props = PROPERTIES[self.direction]
        self.wanted = self.wanted_properties()
        self.identity = Identity(params, check_mode)
        self.exo = ExoAdminClient(self.identity)
        self.warnings: List[str] = []

    def wanted_properties(self) -> Dict[str, Any]:
        """The options the task gives, checked, in the module's terms (InputError first)."""
        if not self.name or len(self.name) > 64:
            raise InputError('name must be 1 to 64 characters (the connector\'s Name)')
        other = 'inbound' if self.direction == 'outbound' else 'outbound'
        given = [o for o in OPTIONS if self.params.get(o) is not None]
        wrong = [o for o in given if o not in self.props]
        if wrong:
            raise InputError('%s: only for an %s connector; this task manages an %s connector '
                             '(direction: %s)' % (', '.join(wrong), other, self.direction,
                                                  self.direction))
        if self.params['state'] == 'absent':
            if given:
                raise InputError('state absent removes the connector: give no properties (%s)'
                                 % ', '.join(given))
            return {}
        wanted = dict((o, wanted_value(o, self.props[o], self.params[o])) for o in given)
        if 'smart_hosts' in wanted:
            wanted['use_mx_record'] = not wanted['smart_hosts']
        return wanted

    # -- reading -------------------------------------------------------------------------------
    def get(self, parameters: Dict[str, Any], phase: str) -> Optional[JSON]:
        try:
            found = self.exo.invoke(cmdlet('Get', self.direction), parameters, phase=phase)
        except GraphError as e:
            if e.status == 404 or NOT_FOUND in str(e):
                return None
            raise
        mine = [o for o in found if isinstance(o, dict) and
                str(o.get('Name') or o.get('Identity') or '').lower() == self.name.lower()]
        return mine[0] if mine else None

    def read(self, phase: Optional[str] = None) -> Optional[JSON]:
        """The connector, or None. Get-OutboundConnector leaves out connectors in test mode
        unless IncludeTestModeConnectors is $true (which returns only those), so a missing
        outbound connector is looked for there too, not created twice."""
        phase = phase or cmdlet('Get', self.direction)
        obj = self.get({'Identity': self.name}, phase)
        if obj is None and self.direction == 'outbound':
            obj = self.get({'Identity': self.name, 'IncludeTestModeConnectors': True}, phase)
        return obj

    # -- the task ------------------------------------------------------------------------------
    def run(self) -> Dict[str, Any]:
        present = self.params['state'] == 'present'
        raw = self.read()
        before = connector_state(self.direction, raw)
        if present:
            merged = dict(before or {}, **self.wanted)
            self.check_combination(merged, before is None)
        if not present:
            changes: Dict[str, Any] = {}
            changed = before is not None
        elif before is None:
            changes = self.new_properties()
            changed = True
        else:
            changes = dict((o, v) for o, v in self.wanted.items() if before.get(o) != v)
            changed = bool(changes)
        after = before
        if changed and self.check_mode:
            after = dict(before or self.empty(), **changes) if present else None
        elif changed and not present:
            self.remove(before)
            after = None
        elif changed:
            after = self.send(before, changes)
        result: Dict[str, Any] = {'changed': changed, 'direction': self.direction,
                                  'name': self.name, 'exists': after is not None,
                                  'connector': after, 'before': before, 'after': after}
        if changes or not present:
            result['sent'] = sorted(self.props[o][0] if o in self.props else 'UseMXRecord'
                                    for o in changes) if present else []
        if self.diff_mode and changed:
            shown = sorted(set(changes) | set(self.wanted)) or sorted(self.props)
            result['diff'] = {'before': diff_text(before, shown), 'after': diff_text(after, shown),
                              'before_header': '%s connector %s' % (self.direction, self.name),
                              'after_header': '%s connector %s' % (self.direction, self.name)}
        if self.warnings:
            result['warnings'] = self.warnings
        return result

    def empty(self) -> Dict[str, Any]:
        state = connector_state(self.direction, {'Name': self.name}) or {}
        state.update(enabled=True, connector_type='partner')
        return state

    def new_properties(self) -> Dict[str, Any]:
        """What New- sends: the given options, and the inbound connector's SenderDomains, which
        New-InboundConnector requires, as ``*`` (every sender domain) when not given."""
        props = dict((o, v) for o, v in self.wanted.items() if v is not None)  # nothing to set
        if self.direction == 'inbound' and 'sender_domains' not in props:
            props['sender_domains'] = ['*']
        return props

    def check_combination(self, state: Mapping[str, Any], creating: bool) -> None:
        """Combinations Exchange refuses or that would not work, before anything is sent."""
        problems = []
        if state.get('tls_domain') and state.get('tls_settings') != 'domain_validation':
            problems.append('tls_domain is used only with tls_settings domain_validation '
                            '(Set-OutboundConnector, TlsDomain)')
        if state.get('tls_settings') == 'domain_validation' and not state.get('tls_domain'):
            problems.append('tls_settings domain_validation needs tls_domain (the name the '
                            'smart host\'s certificate must carry)')
        if self.direction == 'outbound' and creating and not state.get('smart_hosts'):
            problems.append('smart_hosts is needed to create an outbound connector here (the '
                            'server the mail goes to; Exchange Online wants SmartHosts when '
                            'UseMXRecord is $false)')
        if state.get('ef_skip_last_ip') and state.get('ef_skip_ips'):
            problems.append('ef_skip_last_ip true skips only the last hop; ef_skip_ips names '
                            'the addresses to skip instead and is used only with '
                            'ef_skip_last_ip false (New-InboundConnector, EFSkipIPs): give '
                            'one of them')
        if state.get('treat_messages_as_internal') and \
                state.get('connector_type') != 'on_premises':
            problems.append('treat_messages_as_internal true needs connector_type on_premises '
                            '(New-InboundConnector, TreatMessagesAsInternal)')
        if self.direction == 'inbound' and state.get('connector_type') == 'on_premises' and \
                not state.get('sender_ip_addresses') and \
                not state.get('tls_sender_certificate_name'):
            problems.append('an on_premises inbound connector recognises your server by '
                            'sender_ip_addresses or tls_sender_certificate_name: give one')
        if problems:
            raise InputError('; '.join(problems) + '. Nothing was changed.', phase='plan',
                             fields={'direction': self.direction, 'name': self.name})

    # -- changing ------------------------------------------------------------------------------
    def parameters(self, props: Mapping[str, Any]) -> Dict[str, Any]:
        out: Dict[str, Any] = {}
        for option, value in props.items():
            if option == 'use_mx_record':
                out['UseMXRecord'] = value
            else:
                spec = self.props[option]
                out[spec[0]] = _send_value(spec, value)
        return out

    def send(self, before: Optional[Dict[str, Any]], changes: Dict[str, Any]) -> Dict[str, Any]:
        verb = 'New' if before is None else 'Set'
        name = cmdlet(verb, self.direction)
        parameters = self.parameters(changes)
        if changes.get('use_mx_record') is False:
            # SmartHosts "must be specified on the same command line" as UseMXRecord $false
            parameters['SmartHosts'] = self.wanted['smart_hosts']
        parameters.update({'Name': self.name} if before is None else {'Identity': self.name})

        def done(obj: Any) -> bool:
            state = connector_state(self.direction, obj)
            return state is not None and all(state.get(o) == v for o, v in changes.items())
        now = self.change(name, parameters, done, before)
        after = connector_state(self.direction, now)
        off = sorted(o for o, v in changes.items() if (after or {}).get(o) != v)
        if after is None or off:
            raise TaskError(
                '%s answered, but the connector %s reads back %s: run the task again; if it '
                'stays so, look at the connector in the Exchange admin centre (Mail flow, '
                'Connectors)' % (name, self.name, 'as missing' if after is None else
                                 'with %s not as asked' % ', '.join(off)),
                phase='read back', fields={'direction': self.direction, 'name': self.name,
                                           'before': before, 'after': after,
                                           'changed': 'unknown'})
        return after

    def remove(self, before: Optional[Dict[str, Any]]) -> None:
        self.change(cmdlet('Remove', self.direction), {'Identity': self.name, 'Confirm': False},
                    lambda obj: obj is None, before)

    def change(self, name: str, parameters: Dict[str, Any], done: Callable[[Any], bool],
               before: Optional[Dict[str, Any]]) -> Any:
        try:
            return change_and_read_back(self.exo, name, parameters, self.read, done,
                                        self.warnings, 'the connector')
        except NotCarriedOut as e:
            raise e.task_error(name, 'the connector', {
                'direction': self.direction, 'name': self.name, 'before': before,
                'after': connector_state(self.direction, e.now) if e.reachable else before})
