#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright (c) exchangeonline.mail contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function
__metaclass__ = type

DOCUMENTATION = r'''
module: connector
short_description: Create, change or remove an Exchange Online inbound or outbound connector
version_added: 0.1.0
description:
  - Reads the connector by name (C(Get-OutboundConnector), C(Get-InboundConnector)) and creates
    it (C(New-...Connector)), changes it (C(Set-...Connector)) or removes it
    (C(Remove-...Connector)), then reads it back.
  - Only the options the task gives are compared and sent; every other property of the
    connector stays as it is. Lists (hosts, domains, addresses) are compared as sets, without
    regard to order or case.
  - In the partial pattern the B(outbound) connector sends mail for recipients that Exchange
    Online does not know (the accepted domain is C(InternalRelay), see
    M(exchangeonline.mail.accepted_domain)) to the old server, and the B(inbound) connector
    recognises mail from the old server by its IP addresses or its TLS certificate; Enhanced
    Filtering for Connectors (O(ef_skip_last_ip), O(ef_skip_ips)) makes Exchange Online judge
    the original sender's address, not the old server's, when MX points at the old server
    first.
  - A connector in test mode is found too (C(Get-OutboundConnector) shows those only with
    C(IncludeTestModeConnectors)), so it is changed, never created a second time.
  - A failed change is read back before the task fails (an answer lost after the change leaves
    it made); when the read fails too, the task fails with C(changed=unknown).
  - "Needs the application permission C(Exchange.ManageAsApp) and the Microsoft Entra role
    C(Exchange Administrator) for the app's service principal (C(Global Reader) only reads,
    enough for check mode)."
author:
  - exchangeonline.mail maintainers (@exchangeonline)
extends_documentation_fragment:
  - exchangeonline.mail.m365
  - exchangeonline.mail.m365.exchange
  - exchangeonline.mail.attributes
  - exchangeonline.mail.attributes.m365
attributes:
  check_mode:
    support: full
    details: Reads only; no New-, Set- or Remove- cmdlet is sent.
  diff_mode:
    support: full
  idempotent:
    support: full
options:
  direction:
    description:
      - V(outbound) for a connector from Exchange Online to another server, V(inbound) for one
        that accepts mail from another server.
    type: str
    required: true
    choices: [outbound, inbound]
  name:
    description:
      - The connector's name (its identity), up to 64 characters.
    type: str
    required: true
  state:
    description:
      - V(absent) removes the connector (then give no other property).
    type: str
    choices: [present, absent]
    default: present
  enabled:
    description:
      - Whether the connector is used (C(Enabled)). New connectors are enabled.
    type: bool
  connector_type:
    description:
      - C(ConnectorType). V(on_premises) for your own organisation's server (the old server of a
        migration), V(partner) for a partner or service. New connectors are V(partner) unless
        given.
    type: str
    choices: [partner, on_premises]
  comment:
    description:
      - C(Comment), a note for administrators.
    type: str
  smart_hosts:
    description:
      - Outbound. The servers the mail goes to (C(SmartHosts)), host names or IPv4 addresses,
        without a port (Exchange Online delivers on port 25). Given, the connector routes to
        them (C(UseMXRecord) V(false)); an empty list routes by the recipient domain's MX
        instead.
      - Needed to create an outbound connector.
    type: list
    elements: str
  recipient_domains:
    description:
      - Outbound. The recipient domains whose mail uses the connector (C(RecipientDomains)),
        for example V(contoso.com) or V(*.contoso.com).
    type: list
    elements: str
  tls_settings:
    description:
      - Outbound. C(TlsSettings). V(encryption_only) requires TLS, V(certificate_validation)
        also a certificate from a trusted authority, V(domain_validation) also the name in
        O(tls_domain). Not given on a new connector, Exchange Online uses opportunistic TLS.
    type: str
    choices: [encryption_only, certificate_validation, domain_validation]
  tls_domain:
    description:
      - Outbound. The name the smart host's certificate must carry (C(TlsDomain)); only with
        O(tls_settings=domain_validation), which needs it.
    type: str
  sender_domains:
    description:
      - Inbound. The sender domains the connector accepts mail for (C(SenderDomains)), V(*)
        for all. A new inbound connector gets V([*]) unless given (C(New-InboundConnector)
        requires it).
    type: list
    elements: str
  sender_ip_addresses:
    description:
      - Inbound. The IPv4 addresses or CIDR ranges (V(/24) to V(/32)) mail through the
        connector comes from (C(SenderIPAddresses)). IPv6 is not supported by Exchange Online.
      - An V(on_premises) inbound connector needs these or O(tls_sender_certificate_name).
    type: list
    elements: str
  tls_sender_certificate_name:
    description:
      - Inbound. The name in the sending server's TLS certificate (C(TlsSenderCertificateName)),
        for example V(mail.contoso.com) or V(*.contoso.com).
    type: str
  restrict_domains_to_ip_addresses:
    description:
      - Inbound. Reject mail from O(sender_domains) that does not come from
        O(sender_ip_addresses) (C(RestrictDomainsToIPAddresses); partner connectors).
    type: bool
  restrict_domains_to_certificate:
    description:
      - Inbound. Accept mail only when the sender's certificate matches
        O(tls_sender_certificate_name) (C(RestrictDomainsToCertificate); partner connectors).
    type: bool
  require_tls:
    description:
      - Inbound. Reject mail not sent over TLS (C(RequireTls); partner connectors).
    type: bool
  treat_messages_as_internal:
    description:
      - Inbound. Treat mail from the connector as internal (C(TreatMessagesAsInternal)); only
        for an V(on_premises) connector, and it skips anti-spam filtering for it, so use it
        only for your own server.
    type: bool
  ef_skip_last_ip:
    description:
      - Inbound. Enhanced Filtering for Connectors (C(EFSkipLastIP)). V(true) skips the last hop
        (the server that handed the mail to Exchange Online), so the address before it is
        judged; V(false) skips the addresses of O(ef_skip_ips) instead, and with none of them
        Enhanced Filtering is off.
    type: bool
  ef_skip_ips:
    description:
      - Inbound. The addresses Enhanced Filtering skips (C(EFSkipIPs)) with
        O(ef_skip_last_ip=false), as addresses, CIDR ranges or ranges (V(192.0.2.1-192.0.2.9));
        for example the old server's address.
    type: list
    elements: str
notes:
  - Creating inbound connectors is restricted in Microsoft 365 E5 developer subscriptions
    (C(New-InboundConnector)).
seealso:
  - module: exchangeonline.mail.accepted_domain
  - name: Configure mail flow using connectors in Exchange Online
    description: What inbound and outbound connectors do.
    link: https://learn.microsoft.com/exchange/mail-flow-best-practices/use-connectors-to-configure-mail-flow/use-connectors-to-configure-mail-flow
  - name: Enhanced Filtering for Connectors
    description: Why the MX pointing at another server first needs it.
    link: https://learn.microsoft.com/exchange/mail-flow-best-practices/use-connectors-to-configure-mail-flow/enhanced-filtering-for-connectors
'''

EXAMPLES = r'''
- name: Mail for recipients Exchange Online does not know goes to the old server
  exchangeonline.mail.connector:
    direction: outbound
    name: To the old server
    connector_type: on_premises
    smart_hosts: [mail.contoso.com]
    recipient_domains: [contoso.com]
    tls_settings: domain_validation
    tls_domain: mail.contoso.com

- name: Mail from the old server is recognised, and Enhanced Filtering skips it
  exchangeonline.mail.connector:
    direction: inbound
    name: From the old server
    connector_type: on_premises
    sender_domains: ['*']
    sender_ip_addresses: [192.0.2.25]
    ef_skip_ips: [192.0.2.25]

- name: Gone at the cut-over
  exchangeonline.mail.connector:
    direction: outbound
    name: To the old server
    state: absent
'''

RETURN = r'''
direction:
  description: V(outbound) or V(inbound).
  returned: always
  type: str
name:
  description: The connector's name.
  returned: always
  type: str
exists:
  description: Whether the connector exists after the task (in check mode, would).
  returned: success
  type: bool
connector:
  description: The connector after the task, as read back (in check mode, as it would be),
    with every property the module knows of its direction under the option names (lists
    sorted, domains in lower case, SenderDomains without their C(smtp:) and cost), plus
    C(name), and for outbound connectors C(use_mx_record) and C(test_mode); null when there
    is none.
  returned: success
  type: dict
  sample: {name: To the old server, enabled: true, connector_type: on_premises,
           smart_hosts: [mail.contoso.com], recipient_domains: [contoso.com],
           tls_settings: domain_validation, tls_domain: mail.contoso.com,
           use_mx_record: false, test_mode: false, comment: null}
before:
  description: The same before the task (null when there was no connector).
  returned: always
  type: dict
after:
  description: The same as RV(connector).
  returned: success
  type: dict
sent:
  description: The Exchange parameters the New- or Set- cmdlet carried (or would, in check
    mode), besides Name or Identity; an empty list for a removal.
  returned: when changed
  type: list
  elements: str
  sample: [SmartHosts, UseMXRecord]
phase:
  description: On failure, where it failed (V(input), V(plan) for options that do not go
    together, V(token), V(Get-OutboundConnector) and the other cmdlets by name, V(read back)).
  returned: on failure
  type: str
'''

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.exchangeonline.mail.plugins.module_utils._identity import (
    HAS_M365_LIBS,
    M365_IMPORT_ERROR,
    M365_LIMITS,
    m365_argument_spec,
)
from ansible_collections.exchangeonline.mail.plugins.module_utils._run import run_module


# The libraries the module needs: names, whether they imported, the import traceback.
REQUIRES = ('msal and requests', HAS_M365_LIBS, M365_IMPORT_ERROR)
LIMITS = M365_LIMITS


def module_kwargs():
    """AnsibleModule's arguments; the action plugin validates with the same spec."""
    argument_spec = m365_argument_spec()
    argument_spec.update(
        direction=dict(type='str', required=True, choices=['outbound', 'inbound']),
        name=dict(type='str', required=True),
        state=dict(type='str', default='present', choices=['present', 'absent']),
        enabled=dict(type='bool'),
        connector_type=dict(type='str', choices=['partner', 'on_premises']),
        comment=dict(type='str'),
        smart_hosts=dict(type='list', elements='str'),
        recipient_domains=dict(type='list', elements='str'),
        tls_settings=dict(type='str', choices=['encryption_only', 'certificate_validation',
                                               'domain_validation']),
        tls_domain=dict(type='str'),
        sender_domains=dict(type='list', elements='str'),
        sender_ip_addresses=dict(type='list', elements='str'),
        tls_sender_certificate_name=dict(type='str'),
        restrict_domains_to_ip_addresses=dict(type='bool'),
        restrict_domains_to_certificate=dict(type='bool'),
        require_tls=dict(type='bool'),
        treat_messages_as_internal=dict(type='bool'),
        ef_skip_last_ip=dict(type='bool'),
        ef_skip_ips=dict(type='list', elements='str'),
    )
    return dict(argument_spec=argument_spec, supports_check_mode=True,
                mutually_exclusive=[('client_secret', 'client_certificate_path')])


def work(params, check_mode, diff_mode):
    from ansible_collections.exchangeonline.mail.plugins.module_utils._connector import (
        Connector,
    )
    return Connector(params, check_mode, diff_mode).run()


def main():
    run_module(AnsibleModule(**module_kwargs()), work, LIMITS, REQUIRES)


if __name__ == '__main__':
    main()
