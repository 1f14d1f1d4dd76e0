# -*- coding: utf-8 -*-
# Copyright (c) exchangeonline.mail contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# Private to this collection: may change without notice.
"""Which Exchange Online service plans give a user a mailbox: data, with its source and date.

Source: Microsoft's "Product names and service plan identifiers for licensing"
(SOURCE_URL; the page says it was last updated on 2025-10-29) and the CSV it links (CSV_URL),
read as copied on LIST_DATE (KelvinTegelaar/CIPP-API ``Config/ConversionTable.csv``, commit
850f6a2 "New Licence Updates": Microsoft's header and rows, 5,990 of them). Every service plan
of that list whose name holds ``EXCHANGE`` is in MAILBOX_PLANS or NO_MAILBOX_PLANS below, so a
reader sees each decision. The list does not say which plans give a mailbox: that is read from
the plans' friendly names. A plan is matched by its ``servicePlanId`` (a GUID, which does not
change) or by its ``servicePlanName``; Graph's licenseDetails carry both
(resources/serviceplaninfo).

The only sure test of one user's mailbox stays Exchange itself (the CAS mailbox) or Graph's
mailboxSettings (404 ``MailboxNotEnabledForRESTAPI``): a licence says what Exchange will
provision, not that it has.
"""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

from typing import Any, Mapping

SOURCE_URL = 'https://learn.microsoft.com/entra/identity/users/licensing-service-plan-reference'
CSV_URL = ('https://download.microsoft.com/download/e/3/e/e3e9faf2-f28b-490a-9ada-c6089a1fc5b0/'
           'Product%20names%20and%20service%20plan%20identifiers%20for%20licensing.csv')
LIST_DATE = '2026-06-24'

# (servicePlanName, servicePlanId, friendly name as in Microsoft's list): plans that give a mailbox.
MAILBOX_PLANS = (
    ('EXCHANGE_S_STANDARD', '9aaf7827-d63c-4b61-89c3-182f06f82e5c', 'Exchange Online (Plan 1)'),
    ('EXCHANGE_S_ENTERPRISE', 'efb87545-963c-4e0d-99df-69c6916d9eb0', 'Exchange Online (Plan 2)'),
    ('EXCHANGE_S_DESKLESS', '4a82b400-a79f-41a4-b4e2-e94f5787b113', 'Exchange Online Kiosk'),
    ('EXCHANGE_S_ESSENTIALS', '1126bef5-da20-4f07-b45e-ad25d2581aa8', 'EXCHANGE ESSENTIALS'),
    ('EXCHANGE_S_STANDARD_GOV', 'e9b4930a-925f-45e2-ac2a-3f7788ca6fdd',
     'Exchange Online (Plan 1) for Government'),
    ('EXCHANGE_S_ENTERPRISE_GOV', '8c3069c0-ccdb-44be-ab77-986203a67df2',
     'Exchange Online (Plan 2) for Government'),
    ('EXCHANGE_S_DESKLESS_GOV', '88f4d7ef-a73b-4246-8047-516022144c9f',
     'Exchange Online (Kiosk) for Government'),  # in M365_F1_GOV (Microsoft 365 F3 GCC)
    # legacy products: MIDSIZEPACK, LITEPACK / LITEPACK_P2, EXCHANGETELCO (a hosted POP mailbox)
    ('EXCHANGE_S_STANDARD_MIDMARKET', 'fc52cc4b-ed7d-472d-bbe7-b081c23ecc56',
     'EXCHANGE ONLINE PLAN'),
    ('EXCHANGE_L_STANDARD', 'd42bdbd6-c335-4231-ab3d-c8f348d5aff5', 'EXCHANGE ONLINE (P1)'),
    ('EXCHANGE_B_STANDARD', '90927877-dcff-4af6-b346-2332c0b15bb7', 'EXCHANGE ONLINE POP'),
)

# (servicePlanName, servicePlanId, friendly name, why): Exchange plans of the same list that
# give no mailbox of their own.
NO_MAILBOX_PLANS = (
    ('EXCHANGE_S_FOUNDATION', '113feb6c-3fe4-4440-bddc-54d774bf0318', 'Exchange Foundation',
     'lets other services keep data in Exchange; in 246 products, most without a mailbox'),
    ('EXCHANGE_S_FOUNDATION_GOV', '922ba911-5694-4e99-a794-73aed9bfeec8',
     'Exchange Foundation for Government', 'as EXCHANGE_S_FOUNDATION (also named '
     'EXCHANGE_FOUNDATION_GOV in one product)'),
    ('EXCHANGE_S_ARCHIVE', 'da040e0a-b393-4bea-bb76-928b3fa1cf5a',
     'EXCHANGE ONLINE ARCHIVING FOR EXCHANGE SERVER', 'an archive for an on-premises mailbox'),
    ('EXCHANGE_S_ARCHIVE_ADDON', '176a09a6-7ec5-4039-ac02-b2791c6ba793',
     'Exchange Online Archiving for Exchange Online', 'an archive added to a mailbox that '
     'another plan gives'),
    ('EXCHANGE_ANALYTICS', '34c0d7a0-a70f-4668-9238-47f9fc208882',
     'Microsoft MyAnalytics (Full)', 'analytics'),
    ('EXCHANGE_ANALYTICS_GOV', '208120d1-9adb-4daf-8c22-816bd5d237e7',
     'Microsoft MyAnalytics for Government (Full)', 'analytics'),
    ('EXCHANGEONLINE_MULTIGEO', '897d51f1-2cfa-4848-9b30-469149f5e68e',
     'Exchange Online Multi-Geo', 'where mailboxes are kept, not a mailbox'),
)
# Not about mailboxes either, though their names hold EXCHANGE: MIP_S_Exchange,
# MIP_S_EXCHANGE_CO (data classification), PRIVACY_MANGEMENT_*_EXCHANGE* (Priva), and the
# malformed row "EXCHANGE_S_FOUNDATION PBI_PREMIUM_EM1_ADDON" (two plans in one).

# Known from other sources, not in Microsoft's list (so no servicePlanId): matched by name only.
# EXCHANGE_LITE: CIPP-API lists it among the plans that give a mailbox
# (Config/BaselineStandards/Exchange Standards/*.json, Test-CIPPStandardLicense).
OTHER_SOURCE_MAILBOX_PLANS = ('EXCHANGE_LITE',)

_IDS = frozenset(plan_id for dummy, plan_id, dummy2 in MAILBOX_PLANS)
_NAMES = frozenset([name for name, dummy, dummy2 in MAILBOX_PLANS] +
                   list(OTHER_SOURCE_MAILBOX_PLANS))


def gives_mailbox(plan: Mapping[str, Any]) -> bool:
    """Whether a licenseDetails servicePlan ({servicePlanId, servicePlanName, ...}) is one that
    gives a mailbox, by its id or its name (its provisioningStatus is the caller's business)."""
    plan_id = plan.get('servicePlanId')
    if isinstance(plan_id, str) and plan_id.strip().lower() in _IDS:
        return True
    name = plan.get('servicePlanName')
    return isinstance(name, str) and name.strip().upper() in _NAMES
