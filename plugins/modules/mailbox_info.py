#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright (c) exchangeonline.mail contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function
__metaclass__ = type

DOCUMENTATION = r'''
module: mailbox_info
short_description: Which mailboxes exist in Exchange Online, their licences, protocols and routing
version_added: 0.1.0
description:
  - For a list of mailboxes or the whole tenant, in one task, returns whether each user exists,
    has an Exchange Online licence and mailbox, whether POP3, IMAP and SMTP AUTH are on (SMTP AUTH
    as the effective value and where it comes from, the mailbox or the tenant default), its routing
    address C(alias@<tenant>.mail.onmicrosoft.com) and its proxy addresses; and the tenant's SMTP
    AUTH default.
  - Existence, licences and addresses come from Microsoft Graph; the protocol switches from the
    Exchange Online admin endpoint (Graph has none). For many or all mailboxes the tenant is
    paged once (1,000 per page) instead of asking per user.
  - "Needs the application permissions C(User.Read.All) (Graph) and C(Exchange.ManageAsApp) with a
    Microsoft Entra role for the app's service principal (Exchange Online) for O(include=mailbox)
    and O(include=protocols): C(Global Reader) (read-only) or C(Exchange Administrator)
    (U(https://learn.microsoft.com/powershell/exchange/app-only-auth-powershell-v2), step 5).
    Without it Exchange answers 401 C(User is not allowed to call Get-CASMailbox); the task fails
    naming the cmdlet and the role to assign, without asking for a new token."
  - A Graph user is matched to its Exchange mailbox by its directory object id
    (C(ExternalDirectoryObjectId); a mailbox that names another user is never this user's),
    else by an SMTP address the two share and no other user asked for has (C(mail),
    C(proxyAddresses), C(PrimarySmtpAddress), C(EmailAddresses), in any case); never by user
    principal name, which C(Get-CASMailbox) does not return (a UPN
    C(alias@<tenant>.onmicrosoft.com) with the primary address C(first.last@contoso.com) is
    matched all the same).
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
  diff_mode:
    support: none
  idempotent:
    support: full
options:
  mailboxes:
    description:
      - User principal names or e-mail addresses (primary or proxy). Mutually exclusive with
        O(all).
      - An address that Graph finds on several users names the one whose C(proxyAddresses)
        hold it; when that is still more than one, the task fails naming them.
      - Each name reaches Graph as one percent-encoded URL path segment, never as path or
        query (a name like C(a@contoso.com?$expand=manager) is just a user that does not
        exist). A name holding control characters, or V(.) or V(..), is refused.
    type: list
    elements: str
  all:
    description:
      - Every user of the tenant.
    type: bool
    default: false
  include:
    description:
      - Which parts to read; fewer parts, fewer requests.
    type: list
    elements: str
    choices: [license, mailbox, protocols, routing]
    default: [license, mailbox, protocols, routing]
seealso:
  - module: exchangeonline.mail.mailbox_protocols
'''

EXAMPLES = r'''
- name: One user, as in the admin centre
  exchangeonline.mail.mailbox_info:
    mailboxes: [adele.vance@contoso.com]
  register: info

- name: Every mailbox, for the legacy server's forwarding map
  exchangeonline.mail.mailbox_info:
    all: true
    include: [mailbox, routing]
  register: tenant
'''

RETURN = r'''
mailboxes:
  description: One entry per mailbox asked for (or per user of the tenant with O(all)).
  returned: always
  type: list
  elements: dict
  contains:
    upn:
      description: The user principal name (as asked, when the user does not exist).
      type: str
    exists:
      description: Whether the user exists in the tenant.
      type: bool
    exchange_licensed:
      description:
        - Whether a licence gives the user an Exchange Online service plan that comes with a
          mailbox (Plan 1 or 2, Kiosk, Essentials, their Government forms, and the legacy small
          and midsize business and POP plans), not disabled. Not Exchange Foundation or the
          archiving plans.
        - The plans, matched by C(servicePlanId) or name, are those of Microsoft's "Product
          names and service plan identifiers for licensing" list as of 2026-06-24, plus
          C(EXCHANGE_LITE), which that list does not have. C(has_mailbox) is
          Exchange's own answer.
      type: bool
    licenses:
      description: The SKU part numbers of the user's licences.
      type: list
      elements: str
    has_mailbox:
      description: Whether the user has an Exchange Online mailbox.
      type: bool
    protocols:
      description: POP3, IMAP and SMTP AUTH; C(smtp_auth) is the effective value,
        C(smtp_auth_source) says whether the mailbox or the tenant default decides it, and
        C(smtp_auth_setting) is the mailbox's own setting (V(enabled), V(disabled), V(inherit)).
      type: dict
      sample: {pop: true, imap: false, smtp_auth: true, smtp_auth_source: mailbox,
               smtp_auth_setting: enabled}
    routing_address:
      description: The C(alias@<tenant>.mail.onmicrosoft.com) address the legacy server forwards
        to.
      type: str
    proxy_addresses:
      description: Every SMTP address of the mailbox, primary first.
      type: list
      elements: str
tenant:
  description: The tenant's default, C({smtp_auth} = not Get-TransportConfig
    SmtpClientAuthenticationDisabled).
  returned: when protocols are included
  type: dict
count:
  description: Number of entries in RV(mailboxes).
  returned: always
  type: int
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

PARTS = ['license', 'mailbox', 'protocols', 'routing']


# The libraries the module needs: names, whether they imported, the import traceback.
REQUIRES = ('msal and requests', HAS_M365_LIBS, M365_IMPORT_ERROR)
LIMITS = M365_LIMITS


def module_kwargs():
    """AnsibleModule's arguments; the action plugin validates with the same spec."""
    argument_spec = m365_argument_spec()
    argument_spec.update(
        mailboxes=dict(type='list', elements='str'),
        all=dict(type='bool', default=False),
        include=dict(type='list', elements='str', choices=PARTS, default=PARTS),
    )
    return dict(argument_spec=argument_spec, supports_check_mode=True,
                mutually_exclusive=[('client_secret', 'client_certificate_path'),
                                    ('mailboxes', 'all')],
                required_one_of=[('mailboxes', 'all')])


def work(params, check_mode, diff_mode):
    from ansible_collections.exchangeonline.mail.plugins.module_utils._mailboxes import Mailboxes
    return Mailboxes(params, check_mode).info()


def main():
    run_module(AnsibleModule(**module_kwargs()), work, LIMITS, REQUIRES)


if __name__ == '__main__':
    main()
