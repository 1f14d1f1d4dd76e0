#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright (c) exchangeonline.mail contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function
__metaclass__ = type

DOCUMENTATION = r'''
module: domain
short_description: Add a domain to the Microsoft 365 tenant, verify it, and set its services
version_added: 0.1.0
description:
  - Adds the domain to the tenant through Microsoft Graph when it is missing, verifies it once its
    C(MS=ms########) TXT record is published (retrying for O(verify_timeout) seconds while DNS
    catches up), and sets its supported services (V(Email) for Exchange Online).
  - The verification TXT value is returned, so a playbook can publish it with
    M(exchangeonline.mail.mail_dns) between two calls of this module.
  - An answer that is not Graph's documented domain resource fails the task naming the
    endpoint; nothing is changed on the strength of it.
  - "Needs the application permission C(Domain.ReadWrite.All)."
author:
  - exchangeonline.mail maintainers (@exchangeonline)
extends_documentation_fragment:
  - exchangeonline.mail.m365
  - exchangeonline.mail.attributes
  - exchangeonline.mail.attributes.m365
attributes:
  check_mode:
    support: full
    details: Reads only; reports the actions it would take.
  diff_mode:
    support: full
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
  state:
    description:
      - V(present) adds (and with O(verify) verifies) the domain; V(absent) removes it from the
        tenant (never the initial or default domain).
    type: str
    default: present
    choices: [present, absent]
  verify:
    description:
      - Verify the domain when it is not verified yet. Its verification TXT record must be
        published first.
    type: bool
    default: true
  verify_timeout:
    description:
      - Seconds to keep retrying verification while the TXT record is not visible to Microsoft
        yet (back-off from 5 to 60 s), from 0 to 86400. V(0) tries once.
    type: float
    default: 0
  supported_services:
    description:
      - The services the domain is used for, as Graph names them, for example V([Email]). Omit to
        leave them as they are. Services other than the initial ones need a verified domain.
    type: list
    elements: str
seealso:
  - module: exchangeonline.mail.domain_info
  - module: exchangeonline.mail.mail_dns
  - name: "Verify domain"
    description: The Graph call behind O(verify).
    link: https://learn.microsoft.com/en-us/graph/api/domain-verify
'''

EXAMPLES = r'''
- name: Add the domain (not verified yet) and learn its verification TXT
  exchangeonline.mail.domain:
    domain: contoso.com
    verify: false
  register: added

- name: Publish only the verification TXT (pattern none changes nothing else)
  exchangeonline.mail.mail_dns:
    server: ns1.contoso.com
    key_file: /etc/bind/keys/exo.key
    domain: contoso.com
    pattern: none
    verification_txt: "{{ added.verification_txt }}"

- name: Verify and enable Exchange Online for it
  exchangeonline.mail.domain:
    domain: contoso.com
    verify_timeout: 600
    supported_services: [Email]
'''

RETURN = r'''
actions:
  description: What was done (or would be, in check mode), in order.
  returned: always
  type: list
  elements: str
  sample: [add, verify, set supported services]
domain:
  description: The domain's state afterwards (see M(exchangeonline.mail.domain_info)).
  returned: always
  type: dict
before:
  description: The domain's state before (null when the tenant did not have it).
  returned: always
  type: dict
verification_txt:
  description: The verification value C(MS=ms########) to publish as TXT at the domain.
  returned: when the domain is not verified and exists (or was just added)
  type: str
verification_records:
  description: The verification TXT record as an rrset for M(exchangeonline.mail.mail_dns).
  returned: when the domain is not verified and exists (or was just added)
  type: list
  elements: dict
phase:
  description: On failure, where it failed (V(token), V(add domain), V(verify domain), ...).
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
from ansible_collections.exchangeonline.mail.plugins.module_utils._options import seconds
from ansible_collections.exchangeonline.mail.plugins.module_utils._run import run_module


# The libraries the module needs: names, whether they imported, the import traceback.
REQUIRES = ('msal and requests', HAS_M365_LIBS, M365_IMPORT_ERROR)
LIMITS = dict(M365_LIMITS, verify_timeout=seconds(86400, above=False))


def module_kwargs():
    """AnsibleModule's arguments; the action plugin validates with the same spec."""
    argument_spec = m365_argument_spec()
    argument_spec.update(
        domain=dict(type='str', required=True),
        state=dict(type='str', default='present', choices=['present', 'absent']),
        verify=dict(type='bool', default=True),
        verify_timeout=dict(type='float', default=0),
        supported_services=dict(type='list', elements='str'),
    )
    return dict(argument_spec=argument_spec, supports_check_mode=True,
                mutually_exclusive=[('client_secret', 'client_certificate_path')])


def work(params, check_mode, diff_mode):
    from ansible_collections.exchangeonline.mail.plugins.module_utils._domains import Domains
    domains = Domains(params, check_mode)
    if params['state'] == 'absent':
        result = domains.absent(check_mode)
    else:
        result = domains.present(check_mode)
    if diff_mode and result['changed']:
        result['diff'] = {'before': result['before'] or {}, 'after': result['domain'] or {},
                          'before_header': domains.name, 'after_header': domains.name}
    return result


def main():
    run_module(AnsibleModule(**module_kwargs()), work, LIMITS, REQUIRES)


if __name__ == '__main__':
    main()
