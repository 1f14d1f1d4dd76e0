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
    Exchange Online admin endpoint (Graph has none). With O(all), Graph's user list (999 per
    page) and Exchange's C(Get-CASMailbox) are read at the same time; a tenant of more than
    1,000 mailboxes is read from Exchange in partitions by mailbox C(Name) (C(-Filter "Name -like
    'a*'") and so on, split further where one is large), O(concurrency) requests at once. For a
    list of more than 50 names, Exchange is asked by C(EmailAddresses) filters of 20 addresses
    each, else per mailbox.
  - With O(all) or more than 50 names, licences come from the users' C(assignedLicenses) and
    C(assignedPlans) on the same user list, named by one C(GET /subscribedSkus), which needs the
    application permission C(Organization.Read.All); without it, and for up to 50 names, they are
    read per user (C(licenseDetails), 20 users per C($batch) request), slower for many users, so
    that case warns.
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
  concurrency:
    description:
      - Requests in flight at most, to Exchange Online and to Graph each. Exchange documents no
        per-tenant limit for its REST cmdlets (remote PowerShell allowed 9 per tenant), and other
        clients of the tenant share it; when Exchange answers C(You have reached the maximum
        number of concurrent requests per tenant), the task waits (C(Retry-After), else
        back-off), sends that request again and keeps one request fewer in flight for the rest
        of the run (requests refused together count once); a warning says how many were
        refused.
      - From 1 to 64.
    type: int
    default: 8
  detail:
    description:
      - V(full) returns every field of RV(mailboxes); V(summary) only C(upn), C(has_mailbox),
        C(exchange_licensed), C(licenses), C(protocols) (C(pop), C(imap), C(smtp_auth)),
        C(routing_address) and C(proxy_addresses), which is what a report or a forwarding map
        needs and makes a 50,000-mailbox result cheaper for Ansible to carry.
      - Default V(summary) with O(all), else V(full).
    type: str
    choices: [full, summary]
  output_path:
    description:
      - Write every entry, whole (as with O(detail=full)), as a JSON list to this file on the host
        that runs the module, instead of returning them; the result then holds RV(summary) and
        RV(output_path). For the whole tenant in a report or a later task (C(lookup('file')) or
        M(ansible.builtin.slurp)) without carrying it through Ansible's result.
      - The file is replaced whole or not at all, with mode 0600 (it holds addresses). The task
        still reports C(changed=false), as nothing in the tenant changes. In check mode no file is
        written; the entries are returned in RV(mailboxes), with a warning.
    type: path
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

- name: The whole tenant, in full, into a file for a report
  exchangeonline.mail.mailbox_info:
    all: true
    output_path: /var/tmp/mailboxes.json
  register: report
'''

RETURN = r'''
mailboxes:
  description:
    - One entry per mailbox asked for (or per user of the tenant with O(all)).
    - With O(detail=summary) (the default with O(all)), only C(upn), C(has_mailbox),
      C(exchange_licensed), C(licenses), C(protocols) (C(pop), C(imap), C(smtp_auth)),
      C(routing_address) and C(proxy_addresses).
  returned: unless O(output_path) is given (in check mode, always)
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
  description: Number of entries in RV(mailboxes) (or in the file of O(output_path)).
  returned: always
  type: int
detail:
  description: V(full) or V(summary), what RV(mailboxes) holds.
  returned: always
  type: str
license_source:
  description: Where the licences were read, V(assignedPlans) (the user list with
    C(/subscribedSkus), for O(all) or more than 50 names) or V(licenseDetails) (per user, for up
    to 50 names, or when the app may not read the SKUs).
  returned: when licences are included
  type: str
output_path:
  description: The file the entries were written to.
  returned: when O(output_path) is given
  type: str
summary:
  description: With O(output_path), how many users exist, have a mailbox, are licensed, and
    have POP3, IMAP and SMTP AUTH on.
  returned: when O(output_path) is given
  type: dict
  sample: {users: 50000, mailboxes: 42750, exchange_licensed: 45000, pop: 42750, imap: 42750,
           smtp_auth: 0}
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
from ansible_collections.exchangeonline.mail.plugins.module_utils._options import CONCURRENCY_RANGE
from ansible_collections.exchangeonline.mail.plugins.module_utils._run import run_module

PARTS = ['license', 'mailbox', 'protocols', 'routing']


# The libraries the module needs: names, whether they imported, the import traceback.
REQUIRES = ('msal and requests', HAS_M365_LIBS, M365_IMPORT_ERROR)
LIMITS = dict(M365_LIMITS, concurrency=CONCURRENCY_RANGE)


def module_kwargs():
    """AnsibleModule's arguments; the action plugin validates with the same spec."""
    argument_spec = m365_argument_spec()
    argument_spec.update(
        mailboxes=dict(type='list', elements='str'),
        all=dict(type='bool', default=False),
        include=dict(type='list', elements='str', choices=PARTS, default=PARTS),
        concurrency=dict(type='int', default=8),
        detail=dict(type='str', choices=['full', 'summary']),
        output_path=dict(type='path'),
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
