#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright (c) exchangeonline.mail contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function
__metaclass__ = type

DOCUMENTATION = r'''
module: mailbox_protocols
short_description: Turn POP3, IMAP and SMTP AUTH on or off for Exchange Online mailboxes
version_added: 0.1.0
description:
  - Reads the protocol switches of every listed mailbox first and sends C(Set-CASMailbox) only
    for the mailboxes that differ; sets the tenant's SMTP AUTH default with C(Set-TransportConfig).
  - When some mailboxes fail, the others stay applied; the result says which succeeded and which
    failed and why, and the task fails.
  - "Needs the application permission C(Exchange.ManageAsApp) and a Microsoft Entra role for the
    app's service principal: C(Exchange Recipient Administrator) or C(Exchange Administrator) for
    C(Set-CASMailbox), C(Exchange Administrator) for O(tenant_smtp_auth) (C(Set-TransportConfig));
    C(Global Reader) only reads, enough for check mode
    (U(https://learn.microsoft.com/powershell/exchange/app-only-auth-powershell-v2), step 5).
    Without it Exchange answers 401 C(User is not allowed to call <cmdlet>); the task fails
    naming the cmdlet and the role to assign, without asking for a new token."
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
    details: Reads only; no Set cmdlet is sent.
  diff_mode:
    support: full
  idempotent:
    support: full
options:
  mailboxes:
    description:
      - The mailboxes (user principal names, e-mail addresses, primary or proxy, or directory
        object ids), resolved by Exchange Online.
      - Up to 50 names are asked one by one; for more, the addresses among them are read by
        C(EmailAddresses) filters of 20 addresses each (only the listed mailboxes, not the whole
        tenant), and only the names no answer holds (such as a UPN
        C(alias@<tenant>.onmicrosoft.com) that differs from every address) are asked one by one.
      - Each C(Set-CASMailbox) is sent as soon as its mailbox is read, O(concurrency) requests in
        flight. When reading fails midway after some were sent, the task fails and the result
        says which mailboxes were changed and which were not read.
      - A name with a wildcard (C(*)) is refused before anything is sent (C(-Identity) takes
        wildcards, so it could name many mailboxes); a name that Exchange finds several
        mailboxes for fails on its own, naming them.
      - When Exchange refuses C(Set-CASMailbox) to the app (401 C(User is not allowed to call
        Set-CASMailbox)), no further one is sent; those mailboxes fail, unchanged.
    type: list
    elements: str
    default: []
  pop:
    description:
      - POP3 on (V(true)) or off (V(false)). Omit to leave it.
    type: bool
  imap:
    description:
      - IMAP on or off. Omit to leave it.
    type: bool
  smtp_auth:
    description:
      - Authenticated SMTP submission for the mailbox. V(inherit) follows the tenant default.
        Omit to leave it.
    type: str
    choices: [enabled, disabled, inherit]
  tenant_smtp_auth:
    description:
      - The tenant's default for mailboxes set to V(inherit). Omit to leave it.
    type: str
    choices: [enabled, disabled]
  concurrency:
    description:
      - Requests in flight to Exchange Online at most (reads and C(Set-CASMailbox) together).
        Exchange documents no per-tenant limit for its REST cmdlets (remote PowerShell allowed 9
        per tenant), and other clients of the tenant share it; when Exchange answers C(You have
        reached the maximum number of concurrent requests per tenant), the task waits
        (C(Retry-After), else back-off), sends that request again and keeps one request fewer in
        flight for the rest of the run (requests refused together count once); a warning says
        how many were refused.
      - From 1 to 64.
    type: int
    default: 8
seealso:
  - module: exchangeonline.mail.mailbox_info
'''

EXAMPLES = r'''
- name: Turn POP3 on for one user (what the admin centre does by hand)
  exchangeonline.mail.mailbox_protocols:
    mailboxes: [adele.vance@contoso.com]
    pop: true

- name: SMTP AUTH only for the scanner mailbox, off by default for everyone else
  exchangeonline.mail.mailbox_protocols:
    mailboxes: [scanner@contoso.com]
    smtp_auth: enabled
    tenant_smtp_auth: disabled
'''

RETURN = r'''
mailboxes:
  description: One entry per mailbox.
  returned: always
  type: list
  elements: dict
  contains:
    mailbox:
      description: The mailbox as given.
      type: str
    changed:
      description:
        - Whether its switches were changed (or would be).
        - V(unknown) when C(Set-CASMailbox) failed and reading the mailbox back failed too, so
          it may have been carried out; run the task again (it reads first). The task then
          reports changed (Ansible turns the module's V(unknown) into V(true), never into
          V(false)), and RV(unknown_count) counts those mailboxes.
      type: raw
    before:
      description: C({pop, imap, smtp_auth}) before.
      type: dict
    after:
      description:
        - C({pop, imap, smtp_auth}) after.
        - When C(Set-CASMailbox) failed, what Exchange reads back afterwards (a lost answer or a
          500 may come after the change was made; the retries send the same values, so nothing
          changes twice); V(null) when reading back failed too, and the outcome is unknown. A
          mailbox read back as asked is no failure, with a warning.
      type: dict
    failed:
      description: Present and true when this mailbox could not be read or set.
      type: bool
    msg:
      description: Why it failed.
      type: str
tenant:
  description: The tenant default before and after, when O(tenant_smtp_auth) is given. It is set
    after the mailboxes; when C(Set-TransportConfig) fails, C(after) is what Exchange reads back
    (V(null) when that fails too), and the mailboxes' entries still say what they got.
  returned: when O(tenant_smtp_auth) is set
  type: dict
changed_count:
  description: Number of mailboxes changed.
  returned: always
  type: int
unknown_count:
  description: Number of mailboxes whose outcome is unknown (see C(changed) of RV(mailboxes)).
  returned: when there are any
  type: int
phase:
  description: On failure, where it failed. Before any mailbox was handled, the step that failed
    (C(token), C(Get-CASMailbox), ...); when single mailboxes failed (see RV(mailboxes)),
    V(Get-CASMailbox) when each of them was not found, V(Set-CASMailbox) when setting one was
    refused; V(Set-TransportConfig) (or V(Get-TransportConfig)) when the tenant default
    failed.
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
from ansible_collections.exchangeonline.mail.plugins.module_utils._options import CONCURRENCY_RANGE
from ansible_collections.exchangeonline.mail.plugins.module_utils._run import run_module


# The libraries the module needs: names, whether they imported, the import traceback.
REQUIRES = ('msal and requests', HAS_M365_LIBS, M365_IMPORT_ERROR)
LIMITS = dict(M365_LIMITS, concurrency=CONCURRENCY_RANGE)


def module_kwargs():
    """AnsibleModule's arguments; the action plugin validates with the same spec."""
    argument_spec = m365_argument_spec()
    argument_spec.update(
        mailboxes=dict(type='list', elements='str', default=[]),
        pop=dict(type='bool'),
        imap=dict(type='bool'),
        smtp_auth=dict(type='str', choices=['enabled', 'disabled', 'inherit']),
        tenant_smtp_auth=dict(type='str', choices=['enabled', 'disabled']),
        concurrency=dict(type='int', default=8),
    )
    return dict(argument_spec=argument_spec, supports_check_mode=True,
                mutually_exclusive=[('client_secret', 'client_certificate_path')],
                required_one_of=[('pop', 'imap', 'smtp_auth', 'tenant_smtp_auth')])


def work(params, check_mode, diff_mode):
    from ansible_collections.exchangeonline.mail.plugins.module_utils._mailboxes import (
        ProtocolChange)
    return ProtocolChange(params, check_mode, diff_mode).run()


def main():
    run_module(AnsibleModule(**module_kwargs()), work, LIMITS, REQUIRES)


if __name__ == '__main__':
    main()
