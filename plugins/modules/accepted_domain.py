#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright (c) exchangeonline.mail contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function
__metaclass__ = type

DOCUMENTATION = r'''
module: accepted_domain
short_description: Read or set an accepted domain's type (Authoritative, InternalRelay) in Exchange Online
version_added: 0.1.0
description:
  - Reads the accepted domain (C(Get-AcceptedDomain)) and, with O(domain_type), sets its
    C(DomainType) (C(Set-AcceptedDomain)), then reads it back.
  - In the partial pattern both Exchange Online and the old server receive mail for the whole
    domain. As V(authoritative), Exchange Online rejects mail for a recipient it does not know;
    as V(internal_relay) it relays that mail on through the outbound connector whose recipient
    domains match to the server where the mailbox
    still is. At the cut-over to the full pattern the domain goes back to V(authoritative).
  - A failed C(Set-AcceptedDomain) is read back before the task fails (an answer lost after the
    change leaves it made); when the read fails too, the task fails with C(changed=unknown).
  - "Needs the application permission C(Exchange.ManageAsApp) and the Microsoft Entra role
    C(Exchange Administrator) for the app's service principal (C(Global Reader) only reads,
    enough for check mode and for reading)."
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
    details: Reads only; no Set-AcceptedDomain is sent.
  diff_mode:
    support: full
  idempotent:
    support: full
options:
  domain:
    description:
      - The accepted domain, for example V(contoso.com). Unicode (IDN) names are accepted and
        handled as punycode.
    type: str
    required: true
  domain_type:
    description:
      - The type to set. Without it, the task only reads.
      - V(internal_relay) is for a shared address space (some mailboxes still on another
        server). Exchange Online has no V(ExternalRelay) (C(Set-AcceptedDomain) has it only in
        on-premises Exchange).
    type: str
    choices: [authoritative, internal_relay]
seealso:
  - name: Manage accepted domains in Exchange Online
    description: What each domain type does with mail for unknown recipients.
    link: https://learn.microsoft.com/exchange/mail-flow-best-practices/manage-accepted-domains/manage-accepted-domains
'''

EXAMPLES = r'''
- name: Relay mail for recipients Exchange Online does not know (the partial pattern)
  exchangeonline.mail.accepted_domain:
    domain: contoso.com
    domain_type: internal_relay

- name: Authoritative again at the cut-over
  exchangeonline.mail.accepted_domain:
    domain: contoso.com
    domain_type: authoritative
'''

RETURN = r'''
domain:
  description: The domain in punycode.
  returned: always
  type: str
domain_type:
  description: The domain's type after the task (in check mode, as it would be), as the module
    names it (V(authoritative), V(internal_relay)); null for a type the
    module does not know (RV(exchange_domain_type) has it).
  returned: success
  type: str
  sample: internal_relay
exchange_domain_type:
  description: Exchange's own C(DomainType), for example V(InternalRelay).
  returned: success
  type: str
default:
  description: Whether it is the tenant's default domain.
  returned: success
  type: bool
initial:
  description: Whether it is the tenant's initial (onmicrosoft.com) domain.
  returned: success
  type: bool
match_subdomains:
  description: Whether Exchange Online takes mail for its subdomains too (C(MatchSubDomains)).
  returned: success
  type: bool
before:
  description: C({domain_type, exchange_domain_type, default, initial, match_subdomains}) before.
  returned: always
  type: dict
after:
  description: The same after the task, as read back (in check mode, as it would be).
  returned: always
  type: dict
phase:
  description: On failure, where it failed (V(token), V(Get-AcceptedDomain) also when the
    domain is not an accepted domain, V(Set-AcceptedDomain), V(read back)).
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
        domain=dict(type='str', required=True),
        domain_type=dict(type='str', choices=['authoritative', 'internal_relay']),
    )
    return dict(argument_spec=argument_spec, supports_check_mode=True,
                mutually_exclusive=[('client_secret', 'client_certificate_path')])


def work(params, check_mode, diff_mode):
    from ansible_collections.exchangeonline.mail.plugins.module_utils._accepted_domain import (
        AcceptedDomain,
    )
    return AcceptedDomain(params, check_mode, diff_mode).run()


def main():
    run_module(AnsibleModule(**module_kwargs()), work, LIMITS, REQUIRES)


if __name__ == '__main__':
    main()
