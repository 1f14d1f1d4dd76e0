# -*- coding: utf-8 -*-
# Copyright (c) exchangeonline.mail contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# Private to this collection: may change without notice.
"""Where zones live: the seam between the mail_dns engine and a DNS provider.

The planner produces changes (``_patterns.Change``: an rrset's key, what it was, what it becomes);
a provider only reads rrsets and applies change sets. The contract:

* ``find_zone(domain) -> str``: the zone (absolute name) that holds ``domain``.
* ``read_rrsets(zone, names) -> Snapshot``: every rrset at ``names`` (DNSSEC data left out), the
  zone's serial when the provider has one, how it was read, and warnings for the user.
* ``apply_changes(zone, changes)``: apply the change set, each change's ``before`` being its
  precondition (the rrset as it was read; None: the rrset is absent). It raises
  :class:`ConcurrentChange` when a precondition no longer holds, carrying in ``applied`` the
  changes that were applied before it was found (always [] for an ``ATOMIC`` provider);
  :class:`UpdateOutcomeUnknown` when the request went out and no answer says what became of it;
  any other ``DnsError`` when the provider refused it and nothing was applied.
* ``check_plan(changes)``: DnsError for a change the provider cannot make (in check mode too).
* ``served(keys) -> {key: RRset or None}``: what the zone's servers serve now (verification);
  ``wildcard_rrsets(name, zone, phase) -> {type: RRset}``: the wildcard data a name that does not
  exist is answered with; ``serial(zone)``; ``prove_write(zone)``: preflight, prove the right to
  change the zone without changing it (DnsError otherwise); ``writer``: who writes, in words.
* ``guarantee``, what ``apply_changes`` promises:

  - ``ATOMIC``: the whole change set with all its preconditions applies or nothing does (RFC 2136:
    one UPDATE per zone whose prerequisites are the rrsets read, RFC 2136 section 3.2).
  - ``TRANSACTION``: the whole change set applies or nothing does, but the provider takes no
    precondition (PowerDNS: one PATCH of the zone's rrsets, one backend transaction): the engine
    reads the touched names again just before applying, which narrows the window it cannot close.
  - ``RRSET_CAS``: each rrset is compared and swapped on its own (an API with per-record versions
    or ETags): a concurrent change may leave the set half applied.
  - ``NONE``: no precondition at all (a plain record API).
  - ``MANUAL``: nothing is applied; the engine returns the plan as the records to enter.

The engine does the rest from that guarantee (``_mail_dns``): it backs up before applying, re-reads
and re-plans once on a concurrent change (undoing the ``applied`` part first when the provider is
not atomic, and failing with what is still in, the backup kept, when that undo fails; for ``NONE``
and ``TRANSACTION`` it also re-reads just before applying, which narrows the window it cannot close), verifies what
is served after applying, and never takes an unknown outcome as "not applied": it keeps the
backup, reads the zone again and reports what it found. Rollback is a change set like any other.

The providers, chosen by the ``provider`` option in :func:`provider_from_params`: RFC 2136
(``_rfc2136``), the PowerDNS Authoritative HTTP API (``_powerdns``), Amazon Route 53
(``_route53``), Azure DNS (``_azure_dns``), Cloudflare (``_cloudflare``) and a person entering
the records by hand (``_manual``).
"""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

from typing import Any, Dict, Iterable, List, Optional, Sequence, Tuple

from ansible.module_utils.common.parameters import env_fallback

from ansible_collections.exchangeonline.mail.plugins.module_utils._dns_transport import DnsError
from ansible_collections.exchangeonline.mail.plugins.module_utils._patterns import Change
from ansible_collections.exchangeonline.mail.plugins.module_utils._records import (
    RRset,
    name_text,
    to_name,
)

ATOMIC = 'atomic'          # one change set with its preconditions, all or nothing
TRANSACTION = 'transaction'  # one change set, all or nothing, without preconditions
RRSET_CAS = 'rrset_cas'    # compare-and-swap per rrset
NONE = 'none'              # no precondition: the engine re-reads just before applying
MANUAL = 'manual'          # nothing applied: the plan is for a person to enter

Key = Tuple[str, str]  # an rrset's (name, type)


class ConcurrentChange(DnsError):
    """A precondition of the change set no longer holds: the zone changed after it was read.
    ``applied``: the changes applied before that was found (none for an ATOMIC provider)."""

    def __init__(self, message: str, phase: Optional[str] = None, rcode: Optional[str] = None,
                 fields: Optional[Dict[str, Any]] = None,
                 applied: Optional[Iterable[Change]] = None) -> None:
        super(ConcurrentChange, self).__init__(message, phase, rcode=rcode, fields=fields)
        self.applied = list(applied or [])


def enclosing(domain: str) -> List[str]:
    """The zones that may hold ``domain``, closest first: the domain, then each parent down to
    its top-level domain."""
    name = to_name(domain)
    out = []
    while len(name.labels) > 1:
        out.append(name_text(name))
        name = name.parent()
    return out


def partway(error: DnsError, applied: Iterable[Change]) -> DnsError:
    """``error`` carrying the changes applied before it (an RRSET_CAS provider refused halfway),
    which the engine then undoes; a ConcurrentChange keeps those it already carries."""
    setattr(error, 'applied', list(getattr(error, 'applied', None) or []) + list(applied))
    return error


class Snapshot:
    """What was read from the zone: its serial (None when the provider has none), its rrsets
    ({(name, type): RRset}) and how they were read (``method``, the result's read_method)."""

    def __init__(self, zone: str, serial: Optional[int], rrsets: Dict[Key, RRset],
                 method: str) -> None:
        self.zone = zone
        self.serial = serial
        self.rrsets = rrsets
        self.method = method
        self.warnings: List[str] = []  # why it was read the way it was, for the user

    def at(self, names: Iterable[str]) -> Dict[Key, RRset]:
        """The rrsets at ``names``."""
        wanted = set(names)
        return dict((k, v) for k, v in self.rrsets.items() if k[0] in wanted)


class ZoneProvider:
    """The interface a provider implements (see the module docstring for the contract)."""

    guarantee = NONE
    name = ''        # the value of the provider option that chooses it
    warnings: Sequence[str] = ()  # for the user (a provider that has some sets its own list)
    where = ''       # the provider's endpoint, in words, for messages
    timeout = 10.0   # seconds one request may take

    def find_zone(self, domain: str) -> str:
        raise NotImplementedError

    def read_rrsets(self, zone: str, names: Iterable[str]) -> Snapshot:
        raise NotImplementedError

    def apply_changes(self, zone: str, changes: List[Change]) -> None:
        raise NotImplementedError

    def served(self, keys: Iterable[Key]) -> Dict[Key, Optional[RRset]]:
        raise NotImplementedError

    def wildcard_rrsets(self, name: str, zone: str, phase: str = 'read') -> Dict[str, RRset]:
        return {}

    def check_plan(self, changes: List[Change]) -> None:
        """DnsError (phase plan) for a change the provider cannot make, before anything is
        written and in check mode too; nothing by default."""

    def serial(self, zone: str) -> Optional[int]:
        return None

    def prove_write(self, zone: str) -> None:
        raise NotImplementedError

    @property
    def writer(self) -> str:
        return 'the credentials given'

    @property
    def label(self) -> str:
        """Where the zone was changed, as the backup records it."""
        return self.where

    def rereads_before_apply(self) -> bool:
        """True when the provider takes no precondition, so the engine reads again first."""
        return self.guarantee in (NONE, TRANSACTION)


PROVIDERS = ('rfc2136', 'powerdns', 'route53', 'azure', 'cloudflare', 'manual')


def provider_argument_spec() -> Dict[str, Dict[str, Any]]:
    """The options that choose and reach a hosted provider (doc fragment
    exchangeonline.mail.dns_provider); RFC 2136 uses the exchangeonline.mail.dns ones."""
    return dict(
        provider=dict(type='str', default='rfc2136', choices=list(PROVIDERS)),
        api_url=dict(type='str'),
        api_key=dict(type='str', no_log=True),
        powerdns_server_id=dict(type='str', default='localhost'),
        validate_certs=dict(type='bool', default=True),
        ca_path=dict(type='path'),
        aws_access_key_id=dict(type='str', no_log=False),
        aws_secret_access_key=dict(type='str', no_log=True),
        aws_session_token=dict(type='str', no_log=True),
        aws_profile=dict(type='str'),
        aws_endpoint_url=dict(type='str'),
        hosted_zone_id=dict(type='str'),
        api_token=dict(type='str', no_log=True,
                       fallback=(env_fallback, ['CLOUDFLARE_API_TOKEN'])),
        azure_subscription_id=dict(type='str',
                                   fallback=(env_fallback, ['AZURE_SUBSCRIPTION_ID'])),
        azure_resource_group=dict(type='str'),
        azure_endpoint_url=dict(type='str'),
        # the collection's Microsoft identity, for azure: the same options as in
        # _identity.m365_argument_spec (a unit test keeps them equal), written out here so that
        # a DNS module does not import msal
        tenant_id=dict(type='str', fallback=(env_fallback, ['AZURE_TENANT_ID'])),
        client_id=dict(type='str', fallback=(env_fallback, ['AZURE_CLIENT_ID'])),
        client_secret=dict(type='str', no_log=True,
                           fallback=(env_fallback, ['AZURE_CLIENT_SECRET'])),
        client_certificate_path=dict(type='path',
                                     fallback=(env_fallback, ['AZURE_CLIENT_CERTIFICATE_PATH'])),
        client_certificate_password=dict(
            type='str', no_log=True,
            fallback=(env_fallback, ['AZURE_CLIENT_CERTIFICATE_PASSWORD'])),
        cloud=dict(type='str', default='public', choices=['china', 'public', 'usgov', 'usgov_dod']),
        authority_host=dict(type='str'),
    )


def provider_from_params(params: Dict[str, Any]) -> ZoneProvider:
    """The provider the task's options name (``provider``, default rfc2136). A provider's module
    is imported when it is chosen, so a run imports only its own (and route53 its botocore)."""
    name = params.get('provider') or 'rfc2136'
    if name == 'powerdns':
        from ansible_collections.exchangeonline.mail.plugins.module_utils._powerdns import (
            PowerDnsProvider,
        )
        return PowerDnsProvider.from_params(params)
    if name == 'manual':
        from ansible_collections.exchangeonline.mail.plugins.module_utils._manual import (
            ManualProvider,
        )
        return ManualProvider.from_params(params)
    if name == 'azure':
        from ansible_collections.exchangeonline.mail.plugins.module_utils._azure_dns import (
            AzureDnsProvider,
        )
        return AzureDnsProvider.from_params(params)
    if name == 'cloudflare':
        from ansible_collections.exchangeonline.mail.plugins.module_utils._cloudflare import (
            CloudflareProvider,
        )
        return CloudflareProvider.from_params(params)
    if name == 'route53':
        from ansible_collections.exchangeonline.mail.plugins.module_utils._route53 import (
            Route53Provider,
        )
        return Route53Provider.from_params(params)
    from ansible_collections.exchangeonline.mail.plugins.module_utils._rfc2136 import (
        Rfc2136Provider,
    )
    return Rfc2136Provider.from_params(params)
