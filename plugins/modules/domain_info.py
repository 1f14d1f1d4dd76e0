#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright (c) exchangeonline.mail contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function
__metaclass__ = type

DOCUMENTATION = r'''
module: domain_info
short_description: A tenant domain's state and the DNS records Exchange Online expects, from Graph
version_added: 0.1.0
description:
  - Reads the domain from Microsoft Graph and returns its state, the service configuration records
    the tenant expects (for the Email service by default) as rrsets that
    M(exchangeonline.mail.mail_dns) takes as they are in its O(exchangeonline.mail.mail_dns#module:records)
    option, and the verification TXT record.
  - Always prefer these values over computed ones. Domains added to a tenant after 1 July 2026
    get C(*.mx.microsoft) MX hosts, and Microsoft names these records the only source of truth
    (Message Center MC1048624).
  - An SRV record (for example of V(OfficeCommunicationsOnline)) is named
    C(_service._protocol.<label>) (RFC 2782) from the C(service), C(protocol) and C(label)
    Graph gives apart, such as C(_sip._tls.contoso.com).
  - Every answer is checked against Graph's documented shape (the domain resource, each
    record's type, label inside the domain, TTL and value fields); anything else fails the task
    naming the endpoint, so a proxy page or a broken answer never reads as RV(exists=true).
  - "Needs the application permission C(Domain.Read.All)."
  - RV(permissions) lists the application permissions in each token's C(roles) claim.
author:
  - exchangeonline.mail maintainers (@exchangeonline)
extends_documentation_fragment:
  - exchangeonline.mail.m365
  - exchangeonline.mail.attributes
  - exchangeonline.mail.attributes.m365
attributes:
  check_mode:
    support: full
  diff_mode:
    support: none
  idempotent:
    support: full
options:
  domain:
    description:
      - The domain, for example V(contoso.com). Unicode names are accepted.
      - It must be a DNS host name of at least two labels (letters, digits and hyphens per
        label); anything else is refused before Graph is asked.
    type: str
    required: true
  services:
    description:
      - Which services' records to return in RV(records), as Graph names them
        (V(Email), V(OfficeCommunicationsOnline), V(Intune)).
    type: list
    elements: str
    default: [Email]
  include_verification:
    description:
      - Also return the verification records of an already verified domain.
    type: bool
    default: false
  token_permissions:
    description:
      - The resources whose app-only tokens to list the application permissions of, in
        RV(permissions). V(graph) is Microsoft Graph, the token this module uses anyway;
        V(exchange) is Office 365 Exchange Online, which holds C(Exchange.ManageAsApp) and
        C(SMTP.SendAsApp). Its token is acquired for this, and nothing is sent to Exchange
        Online.
      - For a preflight, to say which permission an app lacks before a run changes anything.
    type: list
    elements: str
    choices: [graph, exchange]
    default: [graph]
seealso:
  - module: exchangeonline.mail.domain
  - module: exchangeonline.mail.mail_dns
  - name: "List serviceConfigurationRecords"
    description: The Graph call behind RV(records).
    link: https://learn.microsoft.com/en-us/graph/api/domain-list-serviceconfigurationrecords
'''

EXAMPLES = r'''
- name: What does the tenant expect for contoso.com?
  exchangeonline.mail.domain_info:
    tenant_id: "{{ tenant_id }}"
    client_id: "{{ client_id }}"
    client_certificate_path: /etc/exo/app.pem
    domain: contoso.com
  register: expected

- name: Publish exactly that
  exchangeonline.mail.mail_dns:
    server: ns1.contoso.com
    key_file: /etc/bind/keys/exo.key
    domain: contoso.com
    pattern: full
    records: "{{ expected.records }}"
'''

RETURN = r'''
exists:
  description: Whether the tenant has the domain.
  returned: always
  type: bool
domain:
  description: The domain's state (null when it does not exist).
  returned: always
  type: dict
  contains:
    id:
      description: The domain name.
      type: str
    authentication_type:
      description: V(Managed) or V(Federated).
      type: str
    is_default:
      description: Whether it is the tenant's default domain.
      type: bool
    is_initial:
      description: Whether it is the initial onmicrosoft.com domain.
      type: bool
    is_root:
      description: Whether it is a root domain.
      type: bool
    is_verified:
      description: Whether ownership is verified.
      type: bool
    supported_services:
      description: The services enabled for the domain.
      type: list
      elements: str
records:
  description:
    - The expected records of the chosen services as rrsets, ready for
      M(exchangeonline.mail.mail_dns).
  returned: always
  type: list
  elements: dict
  sample:
    - {name: contoso.com., type: MX, ttl: 3600, values: ["0 contoso-com.mail.protection.outlook.com"],
       services: [Email], optional: false}
verification_records:
  description: The verification TXT record as an rrset (for an unverified domain, or with
    O(include_verification)).
  returned: always
  type: list
  elements: dict
verification_txt:
  description: The verification value, C(MS=ms########).
  returned: when verification records were read
  type: str
permissions:
  description:
    - For each resource of O(token_permissions), the application permissions (app roles) in the
      C(roles) claim of its app-only token, sorted; an empty list when the token has none, null
      when the token is not a JWT whose claims can be read.
    - Read from the token without checking its signature, to name what an app lacks in a
      message; Microsoft Graph and Exchange Online decide for themselves on every call.
  returned: always
  type: dict
  sample: {graph: [Domain.ReadWrite.All, User.Read.All], exchange: [Exchange.ManageAsApp]}
graph_records:
  description: The service configuration records exactly as Graph returned them.
  returned: when the domain exists
  type: list
  elements: dict
phase:
  description: On failure, where it failed.
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
        services=dict(type='list', elements='str', default=['Email']),
        include_verification=dict(type='bool', default=False),
        # names of APIs, not a secret
        token_permissions=dict(type='list', elements='str', choices=['graph', 'exchange'],
                               default=['graph'], no_log=False),
    )
    return dict(argument_spec=argument_spec, supports_check_mode=True,
                mutually_exclusive=[('client_secret', 'client_certificate_path')])


def work(params, check_mode, diff_mode):
    from ansible_collections.exchangeonline.mail.plugins.module_utils._domains import Domains
    return Domains(params, check_mode).info()


def main():
    run_module(AnsibleModule(**module_kwargs()), work, LIMITS, REQUIRES)


if __name__ == '__main__':
    main()
