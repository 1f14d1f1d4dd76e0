#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright (c) exchangeonline.mail contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function
__metaclass__ = type

DOCUMENTATION = r'''
module: dkim
short_description: Create, enable, disable or rotate a domain's DKIM signing config in Exchange Online
version_added: 0.1.0
description:
  - Reads the domain's DKIM signing config (C(Get-DkimSigningConfig)), creates it when it is
    missing (C(New-DkimSigningConfig) with O(key_size)), enables or disables it
    (C(Set-DkimSigningConfig -Enabled)) and rotates its keys (C(Rotate-DkimSigningConfig)) when
    asked, then reads it back.
  - Returns the two selector CNAME targets from the tenant (C(Selector1CNAME),
    C(Selector2CNAME)). Domains added since May 2025 get targets such as
    C(selector1-contoso-com._domainkey.contoso.n-v1.dkim.mail.microsoft), which cannot be
    computed; RV(dkim) goes into the C(dkim) option of M(exchangeonline.mail.mail_dns) as it is.
  - Exchange Online refuses to enable signing until both C(selector1._domainkey.<domain>) and
    C(selector2._domainkey.<domain>) CNAMEs resolve to their targets. Then the task fails in
    phase V(enable), naming both CNAMEs (owner and target) and what to do, and still returns
    the targets; nothing else is changed. To get there in one run, create the config with
    O(enabled=false), publish the CNAMEs, wait for every name server, then enable (the role
    M(exchangeonline.mail.mail_authentication) does this).
  - A missing config wanted enabled is created disabled first and then enabled, so that a
    refusal leaves a config whose targets the result names.
  - Exchange Online has no cmdlet that removes a signing config; O(state=absent) disables it.
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
    details: Reads only; no New, Set or Rotate cmdlet is sent. For a domain without a config,
      the targets are not known yet (RV(dkim) is empty).
  diff_mode:
    support: full
  idempotent:
    support: partial
    details: Every run with O(rotate=true) rotates the keys again (Exchange refuses a second
      rotation while one is in progress); everything else is idempotent.
options:
  domain:
    description:
      - The accepted domain, for example V(contoso.com). Unicode (IDN) names are accepted and
        handled as punycode.
    type: str
    required: true
  enabled:
    description:
      - Whether Exchange Online signs the domain's outbound mail with its own keys.
    type: bool
    default: true
  key_size:
    description:
      - Key size in bits of a config this task creates, and of the new key of a rotation.
        (Exchange's own default is 1024; this module always sends the size.)
    type: int
    default: 2048
    choices: [1024, 2048]
  state:
    description:
      - V(present) creates the config when it is missing; V(absent) disables it (there is no
        cmdlet that removes it) and creates none.
    type: str
    default: present
    choices: [present, absent]
  rotate:
    description:
      - Rotate the keys (C(Rotate-DkimSigningConfig)); the other selector becomes active after
        Exchange's delay (C(RotateOnDate)). Not idempotent; only for an enabled config.
    type: bool
    default: false
seealso:
  - module: exchangeonline.mail.mail_dns
  - module: exchangeonline.mail.mail_dns_check
  - name: Set up DKIM to sign mail from your Microsoft 365 domain
    description: Microsoft's steps, the CNAME target forms and the Status values.
    link: https://learn.microsoft.com/defender-office-365/email-authentication-dkim-configure
'''

EXAMPLES = r'''
- name: Create the signing config disabled and learn its CNAME targets
  exchangeonline.mail.dkim:
    domain: contoso.com
    enabled: false
  register: dkim_config

- name: Publish both selector CNAMEs
  exchangeonline.mail.mail_dns:
    domain: contoso.com
    pattern: none
    dkim: "{{ dkim_config.dkim }}"
    backup_path: /var/backups/mail_dns/contoso.com-dkim.json

- name: Wait until every name server serves them
  exchangeonline.mail.mail_dns_check:
    domain: contoso.com
    checks: [dkim]
    dkim: "{{ dkim_config.dkim }}"
    wait_timeout: 600

- name: Enable signing
  exchangeonline.mail.dkim:
    domain: contoso.com
'''

RETURN = r'''
dkim:
  description: The selector CNAME targets, C({selector1, selector2}), for the C(dkim) option of
    M(exchangeonline.mail.mail_dns) and M(exchangeonline.mail.mail_dns_check); empty when there
    is no config (check mode before it is created).
  returned: always
  type: dict
  sample:
    selector1: selector1-contoso-com._domainkey.contoso.n-v1.dkim.mail.microsoft
    selector2: selector2-contoso-com._domainkey.contoso.n-v1.dkim.mail.microsoft
selector1_cname:
  description: The target of C(selector1._domainkey.<domain>) (C(Selector1CNAME)).
  returned: always
  type: str
selector2_cname:
  description: The target of C(selector2._domainkey.<domain>) (C(Selector2CNAME)).
  returned: always
  type: str
enabled:
  description: Whether signing is enabled (after the change; in check mode, as it would be).
  returned: always
  type: bool
status:
  description: Exchange's C(Status) of the config (V(Valid), V(CnameMissing), V(NoDKIMKeys),
    ...); null without a config.
  returned: always
  type: str
key_size:
  description: The larger of the two selectors' key sizes.
  returned: always
  type: int
actions:
  description: What was done (or would be), for example V(create disabled), V(enable),
    V(disable), V(rotate).
  returned: always
  type: list
  elements: str
before:
  description: C({enabled, status, selector1_cname, selector2_cname, key_size, rotate_on_date,
    selector_after_rotate}) before; null when there was no config.
  returned: always
  type: dict
after:
  description: The same after, as read back; null in check mode when nothing exists yet.
  returned: always
  type: dict
domain:
  description: The domain in punycode.
  returned: always
  type: str
phase:
  description: On failure, where it failed (V(token), V(Get-DkimSigningConfig),
    V(New-DkimSigningConfig), V(Set-DkimSigningConfig), V(Rotate-DkimSigningConfig), or
    V(enable) when Exchange refused because the CNAMEs are not published).
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
        enabled=dict(type='bool', default=True),
        key_size=dict(type='int', default=2048, choices=[1024, 2048]),
        state=dict(type='str', default='present', choices=['present', 'absent']),
        rotate=dict(type='bool', default=False),
    )
    return dict(argument_spec=argument_spec, supports_check_mode=True,
                mutually_exclusive=[('client_secret', 'client_certificate_path')])


def work(params, check_mode, diff_mode):
    from ansible_collections.exchangeonline.mail.plugins.module_utils._dkim import DkimConfig
    return DkimConfig(params, check_mode, diff_mode).run()


def main():
    run_module(AnsibleModule(**module_kwargs()), work, LIMITS, REQUIRES)


if __name__ == '__main__':
    main()
