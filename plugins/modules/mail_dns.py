#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright (c) exchangeonline.mail contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function
__metaclass__ = type

DOCUMENTATION = r'''
module: mail_dns
short_description: Publish the DNS records of an Exchange Online migration pattern (RFC 2136, PowerDNS, Route 53)
version_added: 0.1.0
description:
  - Reads the zone (TSIG-signed zone transfer, or signed queries when transfers are refused),
    plans the records of the chosen migration pattern, writes a backup, and applies every change
    for the zone in B(one) UPDATE message whose prerequisites are the exact rrsets it read. If the
    zone changed in between, it re-reads and re-plans once, then fails without changing anything.
  - "C(full): the domain's MX becomes the Exchange Online MX only; autodiscover CNAME; SPF gains
    Exchange Online."
  - "C(partial): the Exchange Online MX is added behind the existing (legacy) MX, which stays
    preferred unless O(primary=exo); autodiscover CNAME; SPF keeps both senders."
  - "C(legacy_forward): MX untouched; only the autodiscover CNAME (and SPF include) are added. The
    old server keeps receiving and forwards to each account's routing address."
  - O(state=rollback) restores exactly the rrsets saved in O(backup_path), refusing when they were
    changed since (unless O(force=true)). O(state=absent) removes what Exchange Online added.
  - O(state=preflight) proves the access a run needs and changes nothing; see O(state).
  - Never touches SOA or apex NS, never puts a CNAME next to other data, keeps every other TXT
    value and every other SPF mechanism.
  - The zone may live on a hosted provider instead (O(provider)), the PowerDNS API, Amazon
    Route 53, Azure DNS or Cloudflare. The plan, diff, backup, rollback and verification are the same; RV(guarantee)
    says what the provider's write promised.
author:
  - exchangeonline.mail maintainers (@exchangeonline)
extends_documentation_fragment:
  - exchangeonline.mail.dns
  - exchangeonline.mail.dns.provider
  - exchangeonline.mail.attributes
  - exchangeonline.mail.attributes.dns
attributes:
  check_mode:
    support: full
    details: Reads the zone and returns the plan; sends no UPDATE message at all (also not the
      one of O(state=preflight)).
  diff_mode:
    support: full
    details: Shows the touched rrsets before and after as zone-file lines.
  idempotent:
    support: full
options:
  server:
    description:
      - With O(provider=rfc2136) (the default, where it is required), the authoritative DNS
        server to read from and send RFC 2136 updates to, usually the primary of the zone. A host
        name or an IPv4/IPv6 address.
      - With O(provider=manual) (required there too), one of the zone's authoritative servers to
        read it from.
      - Not used by the hosted providers, which read and write through their API.
    type: str
    required: false
  domain:
    description:
      - The mail domain, for example V(contoso.com). Unicode (IDN) names are accepted and handled
        as punycode.
      - Required unless O(state=rollback).
    type: str
  pattern:
    description:
      - The migration pattern. Required with O(state=present).
      - V(none) makes no migration change and publishes only the records given explicitly
        (O(verification_txt), O(dkim), O(dmarc)), for example the verification TXT before the
        domain is verified.
    type: str
    choices: [full, partial, legacy_forward, none]
  state:
    description:
      - V(present) applies the pattern, V(absent) removes what Exchange Online added (its MX, the
        autodiscover CNAME, its SPF include, the DKIM CNAMEs and the given verification TXT and
        DMARC record), V(rollback) restores the backup in O(backup_path).
      - V(preflight) changes nothing and proves what V(present) needs, before a run changes
        anything anywhere (the collection's migrate playbook does this for every domain first).
        It finds the zone of O(domain) (a wrong TSIG secret, a key the server does not know and a
        domain the server does not serve fail here) and reads the names V(present) reads, as
        V(present) reads them (signed zone transfer or signed queries; a delegation to another
        zone fails). Then, outside check mode, it sends an UPDATE whose only content is a
        prerequisite (the zone's SOA exists, RFC 2136 section 2.4.1) and no update. It changes
        nothing, and a NOERROR answer proves that the server takes updates of the zone from the
        key (RV(update_proven)). A per-name policy (BIND C(update-policy), Knot DNS
        C(update-owner)) is checked per record, and this message has none, so it is proven only
        by the real update. In check mode no UPDATE is sent, RV(update_proven) is V(false) and a
        warning says so.
      - Only O(domain), O(zone), the connection options and the options that name records
        (O(dkim)) matter to V(preflight); O(pattern) is not required.
    type: str
    default: present
    choices: [present, absent, rollback, preflight]
  records:
    description:
      - The records Exchange Online expects, as rrsets C({name, type, ttl, values}); the
        C(records) return value of M(exchangeonline.mail.domain_info) goes here as it is.
      - The MX host, SPF include, autodiscover target and DKIM targets are taken from it; the
        options below override single values.
    type: list
    elements: dict
  mx_host:
    description:
      - The Exchange Online MX host. Defaults to the classic form (dots to dashes plus
        C(.mail.protection.outlook.com)); domains added to a tenant after 1 July 2026 get
        C(*.mx.microsoft) hosts instead (Message Center MC1048624), so give the value Graph
        returns (O(records)).
    type: str
  mx_preference:
    description:
      - Preference of the Exchange Online MX, from 0 to 65535. Default V(0) for V(full) and
        O(primary=exo); for V(partial) with O(primary=legacy) the highest legacy preference plus
        10.
    type: int
  legacy_mx:
    description:
      - For V(partial), the legacy MX records to keep. Default, the MX records the zone has now
        that are not Exchange Online's.
    type: list
    elements: dict
    suboptions:
      host:
        description: The legacy mail server's host name.
        type: str
        required: true
      preference:
        description: Its MX preference.
        type: int
        default: 10
  primary:
    description:
      - For V(partial), which server receives first. V(legacy) keeps the old server preferred;
        V(exo) puts Exchange Online in front with the legacy MX as fallback.
    type: str
    default: legacy
    choices: [legacy, exo]
  spf:
    description:
      - V(merge) adds the Exchange Online include to the existing C(v=spf1) record, keeping every
        other mechanism and every other TXT value; V(replace) makes the SPF record Exchange Online
        only; V(keep) leaves SPF alone.
    type: str
    default: merge
    choices: [merge, replace, keep]
  spf_include:
    description:
      - The SPF include of Exchange Online. Default, the one in O(records), else
        V(spf.protection.outlook.com).
    type: str
  spf_all:
    description:
      - The C(all) mechanism to set. Default, the existing one is kept; a new record gets V(-all)
        for V(full) and V(~all) otherwise.
    type: str
    choices: ['-all', '~all', '?all']
  autodiscover_target:
    description:
      - Target of the C(autodiscover) CNAME. Default, the one in O(records), else
        V(autodiscover.outlook.com).
    type: str
  dkim:
    description:
      - "DKIM selector CNAME targets from the tenant, for example
        C({selector1: selector1-contoso-com._domainkey.contoso.onmicrosoft.com}). Never computed."
    type: dict
  verification_txt:
    description:
      - The domain verification TXT value (C(MS=ms12345678)) to add at the domain.
    type: str
  dmarc:
    description:
      - A DMARC record to publish at C(_dmarc), for example C(v=DMARC1; p=quarantine).
    type: str
  mta_sts:
    description:
      - Publish MTA-STS (RFC 8461) at C(_mta-sts), as C(v=STSv1; id=<id>), where the id is a
        digest of the policy, so that a changed policy gets a new id and the same one keeps its
        id. The policy names the MX hosts the zone has after this run (see O(mta_sts.mx)); it is
        returned in RV(mta_sts) for the web server, since Exchange Online does not host it.
      - Before a new id is published, the policy is fetched from
        C(https://mta-sts.<domain>/.well-known/mta-sts.txt) as a sender would (certificate for
        that name, HTTP 200, text/plain, no redirect) and must be that policy, or the task fails
        in phase C(mta_sts) and changes nothing; a sender that fetched another policy under the
        new id would keep it for max_age. In check mode that is a warning (the run would stop
        there) and RV(mta_sts.served) is V(false).
      - Without this option a run that changes the MX of a domain that publishes MTA-STS warns
        that its policy must follow. O(state=absent) leaves C(_mta-sts) as it is (removing it
        does not remove cached policies, RFC 8461 section 8.3) and warns.
    type: dict
    suboptions:
      mode:
        description: V(testing) reports failures only, V(enforce) makes senders refuse an MX
          that does not match or has no valid certificate, V(none) withdraws the policy.
        type: str
        choices: [enforce, testing, none]
        default: testing
      max_age:
        description: Seconds senders keep the policy, from 0 to 31557600.
        type: int
        default: 604800
      mx:
        description:
          - The policy's mx patterns, each a host name or C(*.) and a name that matches exactly
            one more label (C(*.mx.microsoft) does not match C(a.b-v1.mx.microsoft)).
          - Default, the exact MX hosts of the zone after this run; in mode V(enforce), when the
            run changes the MX, the hosts it removes too (resolvers hand them out until their TTL
            has passed, RFC 8461 section 8.1), with a warning to run again later without them.
          - In mode V(enforce) every MX host must match a pattern, or the task fails; in
            V(testing) it warns.
        type: list
        elements: str
      address:
        description: Connect to this host[:port] to fetch the policy instead of
          C(mta-sts.<domain>) port 443; the certificate is still checked for C(mta-sts.<domain>).
        type: str
      ca_path:
        description: PEM file of the authorities to trust for the policy host. Default, the
          system's.
        type: path
      timeout:
        description: Seconds for the whole fetch.
        type: float
        default: 10
      policy_check:
        description: Fetch the policy before publishing a new id (see above). V(false)
          publishes it without looking.
        type: bool
        default: true
  tls_rpt:
    description:
      - Publish SMTP TLS reporting (RFC 8460) at C(_smtp._tls) as C(v=TLSRPTv1; rua=...), where
        senders report failed TLS to the domain's MX. Each item is a C(mailto:) or C(https:)
        URI; a bare address becomes C(mailto:). A TLS-RPT record with the same destinations is
        kept as it is.
    type: list
    elements: str
  ttl:
    description:
      - TTL of the rrsets this module writes, from 0 to 2147483647 (RFC 2181). Default, an
        existing rrset keeps its TTL and a new one gets 3600. A TTL-only difference is a change.
    type: int
  on_conflict:
    description:
      - What to do with records that stand where the pattern needs another (data at the name of
        a CNAME, a CNAME where MX/TXT must go, another DMARC record). V(fail) changes nothing and
        says what is in the way; V(replace) removes them (they go into the backup).
    type: str
    default: fail
    choices: [fail, replace]
  backup_path:
    description:
      - JSON file (mode 0600) that receives the prior rrsets of everything the run touches,
        before the update is sent. A later run to the same file keeps the earliest state of each
        rrset, so one rollback undoes a series of runs. Required for O(state=rollback).
      - An existing file that is not a backup this module wrote is refused, never overwritten.
      - The backup is kept when the update's outcome is not known (see RV(outcome)).
      - A run that changes the zone without it warns that C(state=rollback) cannot undo the
        change; check mode writes nothing and does not warn.
    type: path
  force:
    description:
      - With O(state=rollback), restore even rrsets that were changed since the backup.
    type: bool
    default: false
notes:
  - One UPDATE message per zone carries all changes; on BIND it is one serial bump and one journal
    transaction. Secondaries pick the change up by NOTIFY/IXFR; use
    M(exchangeonline.mail.mail_dns_check) to wait until every authoritative server serves it.
seealso:
  - module: exchangeonline.mail.mail_dns_check
  - name: RFC 2136, Dynamic Updates in the Domain Name System
    description: The update protocol, including prerequisites.
    link: https://www.rfc-editor.org/rfc/rfc2136
  - name: External DNS records for Office 365
    description: Microsoft's list of the records Exchange Online needs.
    link: https://learn.microsoft.com/en-us/microsoft-365/enterprise/external-domain-name-system-records
'''

EXAMPLES = r'''
- name: Move all mail to Exchange Online (MX replaced), with a backup
  exchangeonline.mail.mail_dns:
    server: ns1.contoso.com
    key_file: /etc/bind/keys/exo-migration.key
    domain: contoso.com
    pattern: full
    mx_host: contoso-com.mail.protection.outlook.com
    backup_path: /var/backups/mail_dns/contoso.com.json
  register: migration

- name: Keep the old server preferred and add Exchange Online behind it
  exchangeonline.mail.mail_dns:
    server: 192.0.2.53
    key_name: exo-migration
    key_secret: "{{ vault_tsig_secret }}"
    domain: contoso.com
    pattern: partial
    backup_path: /var/backups/mail_dns/contoso.com.json

- name: Feed the tenant's own values from domain_info
  exchangeonline.mail.mail_dns:
    server: 192.0.2.53
    key_file: /etc/bind/keys/exo-migration.key
    domain: contoso.com
    pattern: full
    records: "{{ domain_info_result.records }}"
    backup_path: /var/backups/mail_dns/contoso.com.json

- name: Before changing anything anywhere, prove that the key may read and update the zone
  exchangeonline.mail.mail_dns:
    server: 192.0.2.53
    key_file: /etc/bind/keys/exo-migration.key
    domain: contoso.com
    state: preflight

- name: Undo it exactly
  exchangeonline.mail.mail_dns:
    server: 192.0.2.53
    key_file: /etc/bind/keys/exo-migration.key
    state: rollback
    backup_path: /var/backups/mail_dns/contoso.com.json

- name: The same on a PowerDNS server, through its HTTP API
  exchangeonline.mail.mail_dns:
    provider: powerdns
    api_url: http://127.0.0.1:8081
    api_key: "{{ vault_pdns_api_key }}"
    domain: contoso.com
    pattern: full
    backup_path: /var/backups/mail_dns/contoso.com.json

- name: DNS at a registrar without an API - print the records to enter
  exchangeonline.mail.mail_dns:
    provider: manual
    server: ns1.registrar.example
    domain: contoso.com
    pattern: full
    backup_path: /var/backups/mail_dns/contoso.com.json
  register: by_hand

- name: A zone hosted in Amazon Route 53 (credentials from the environment or the instance role)
  exchangeonline.mail.mail_dns:
    provider: route53
    domain: contoso.com
    pattern: partial
    backup_path: /var/backups/mail_dns/contoso.com.json

- name: An Azure DNS zone, with the app that has DNS Zone Contributor on it
  exchangeonline.mail.mail_dns:
    provider: azure
    azure_subscription_id: 00000000-0000-0000-0000-000000000001
    tenant_id: contoso.onmicrosoft.com
    client_id: 00000000-0000-0000-0000-000000000002
    client_secret: "{{ vault_azure_dns_secret }}"
    domain: contoso.com
    pattern: full
    backup_path: /var/backups/mail_dns/contoso.com.json

- name: A Cloudflare zone (the token from CLOUDFLARE_API_TOKEN)
  exchangeonline.mail.mail_dns:
    provider: cloudflare
    domain: contoso.com
    pattern: full
    backup_path: /var/backups/mail_dns/contoso.com.json
'''

RETURN = r'''
plan:
  description: The changes, one per rrset, in the order of (name, type).
  returned: always
  type: list
  elements: dict
  contains:
    action:
      description: V(create), V(update) or V(delete).
      type: str
    name:
      description: Absolute owner name.
      type: str
    type:
      description: Record type.
      type: str
    ttl:
      description: TTL after the change (before it, for V(delete)).
      type: int
    values:
      description: Values after the change (before it, for V(delete)); TXT unquoted and joined.
      type: list
      elements: str
    values_before:
      description: For V(update), the values before.
      type: list
      elements: str
    ttl_before:
      description: For V(update), the TTL before.
      type: int
    reason:
      description: Why the change is made.
      type: str
  sample:
    - action: update
      name: contoso.com.
      type: MX
      ttl: 3600
      values: ["0 contoso-com.mail.protection.outlook.com."]
      values_before: ["10 mail.contoso.com."]
      ttl_before: 3600
before:
  description: The touched rrsets as they were, as C({name, type, ttl, values}).
  returned: always
  type: list
  elements: dict
after:
  description: The touched rrsets as they are after the run (or would be, in check mode).
  returned: always
  type: list
  elements: dict
zone:
  description: The zone that was changed.
  returned: always
  type: str
  sample: contoso.com.
domain:
  description: The domain in punycode, absolute.
  returned: when O(state) is not V(rollback)
  type: str
mx_host:
  description: The Exchange Online MX host used.
  returned: when O(state) is not V(rollback)
  type: str
mx_host_computed:
  description: True when O(mx_host) was computed from the domain rather than given.
  returned: when it was computed
  type: bool
serial_before:
  description:
    - SOA serial when the zone was read.
    - V(null) with O(provider=route53), whose SOA serial does not follow changes, and with
      O(provider=azure) and O(provider=cloudflare), whose APIs do not show it.
  returned: always
  type: int
serial_after:
  description:
    - SOA serial after the update (equal to RV(serial_before) when nothing changed).
    - V(null) with O(provider=route53), O(provider=azure) and O(provider=cloudflare).
  returned: always
  type: int
hosting:
  description:
    - With O(state=preflight), where the zone is hosted, told from its apex NS records; when
      they name another service than O(provider) changes, a warning names the provider to use.
    - The same keys as RV(exchangeonline.mail.mail_dns_check#module:hosting).
  returned: with O(state=preflight), when the zone's apex NS records were read
  type: dict
manual:
  description:
    - With O(provider=manual), the records to enter at the DNS host, per record. Deleting a
      record and adding one of the same name and type is how a value is changed.
  returned: with O(provider=manual) when something is left to enter
  type: dict
  contains:
    delete:
      description: The records to delete, each with C(name) (absolute), C(host) (relative to the
        zone, V(@) for the apex), C(type), C(ttl) and C(value).
      type: list
      elements: dict
    add:
      description: The records to add, in the same form.
      type: list
      elements: dict
    zone_lines:
      description: The same as zone-file lines; a deletion is a comment line C(; delete:).
      type: list
      elements: str
    table:
      description: The same as the lines of a table (action, host, type, TTL, value).
      type: list
      elements: str
pending:
  description: With O(provider=manual), V(true) while records are left to enter.
  returned: with O(provider=manual)
  type: bool
provider:
  description: The provider that read and changed the zone (O(provider)).
  returned: always
  type: str
  sample: rfc2136
guarantee:
  description:
    - What the provider's write promised, and so what held for this run.
    - V(atomic) (RFC 2136, Route 53) is every change of the run applied together or none of
      them, and only if every touched rrset was still as it was read.
    - V(transaction) (PowerDNS, Cloudflare) is every change applied together or none of them;
      the provider takes no precondition (Cloudflare only that the records it deletes are still
      there), so the touched names were read again just before the write.
    - V(rrset_cas) (Azure DNS) is each rrset written only if it was still as it was read. When
      one is refused after others were written, those are put back; the failure says so and
      lists them in C(restored).
    - V(manual) is nothing applied; the changes are in RV(manual), for a person to make.
  returned: always
  type: str
  sample: atomic
read_method:
  description:
    - How the zone was read, V(axfr) or V(query) (RFC 2136), V(api) (the whole zone through a
      provider's API) or V(api-names) (a Route 53 zone larger than one page of 300 rrsets, read
      by the names the plan needs).
    - V(query-large-zone) (RFC 2136) for a zone of more than 1,000 records; the transfer is
      stopped there and the names the plan needs are read by signed queries instead (a
      20,000-record zone takes about 1.9 s to transfer, the queries about 10 ms); the UPDATE's
      prerequisites guard those rrsets as they guard a transferred zone's.
    - V(query) when the server refused the zone transfer. A transfer refused to the TSIG key
      (REFUSED, or NOTAUTH with the TSIG error BADKEY or BADSIG, as Knot DNS answers when the
      zone's transfer ACL names no key) is read with signed queries, and a warning says that the
      key is not allowed to transfer the zone. When the queries get BADKEY too, the task fails
      saying that the server does not know the key.
  returned: always
  type: str
attempts:
  description: Number of UPDATE attempts (2 when the zone changed underneath and was re-planned).
  returned: when an update was sent
  type: int
update_reply:
  description:
    - V(lost) when the UPDATE was sent but its answer never came (the connection closed, or the
      answer was later than O(timeout)). The zone is then read again to learn what happened, and
      the backup is kept whatever the outcome.
  returned: when the answer to the update was lost
  type: str
  sample: lost
outcome:
  description:
    - What a read of the zone showed after a lost answer. V(applied) (the task succeeds, with a
      warning), V(not applied) (the task fails; nothing changed; run again), or V(unknown) (the
      task fails with C(changed=true); the zone holds neither state, or could not be read; check
      it, then run again or roll back from O(backup_path)).
    - A failed task still carries RV(plan), RV(before), RV(after) and RV(backup_path) then.
  returned: when the answer to the update was lost
  type: str
  sample: applied
backup_path:
  description: The backup file.
  returned: when O(backup_path) is set
  type: str
mta_sts:
  description:
    - With O(mta_sts), the policy whose id is published, to serve at RV(mta_sts.url).
  returned: when O(mta_sts) is set and O(state=present); a task failed in phase C(mta_sts)
    carries it too
  type: dict
  contains:
    policy:
      description: The policy file's text (CRLF lines).
      type: str
      sample: "version: STSv1\r\nmode: testing\r\nmx: contoso-com.mail.protection.outlook.com\r\nmax_age: 604800\r\n"
    id:
      description: The id of the policy, in the C(_mta-sts) record.
      type: str
    record:
      description: The C(_mta-sts) TXT value.
      type: str
    url:
      description: Where senders fetch the policy.
      type: str
    mode:
      description: The policy's mode.
      type: str
    max_age:
      description: The policy's max_age.
      type: int
    mx:
      description: The policy's mx patterns.
      type: list
      elements: str
    served:
      description: V(true) when the URL served this policy, V(false) when not, V(null) when it
        was not fetched (the id was already published, or O(mta_sts.policy_check=false)).
      type: bool
tls_rpt:
  description: With O(tls_rpt), the C(_smtp._tls) TXT value.
  returned: when O(tls_rpt) is set and O(state=present)
  type: str
  sample: v=TLSRPTv1; rua=mailto:tls-reports@contoso.com
update_proven:
  description:
    - With O(state=preflight), V(true) when the server answered NOERROR to the UPDATE that
      changes nothing; V(false) in check mode (nothing is sent).
  returned: when O(state=preflight)
  type: bool
phase:
  description: On failure, where it failed (V(input), V(key), V(connect), V(find zone), V(read),
    V(plan), V(mta_sts) for a policy host that does not serve the policy, V(backup), V(apply),
    V(rollback), V(preflight) for the refused UPDATE of O(state=preflight)).
  returned: on failure
  type: str
'''

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.exchangeonline.mail.plugins.module_utils._options import (
    MTA_STS_LIMITS,
    PREFERENCE,
    TTL,
    mta_sts_options,
)
from ansible_collections.exchangeonline.mail.plugins.module_utils._run import run_module
from ansible_collections.exchangeonline.mail.plugins.module_utils._dns_provider import (
    provider_argument_spec,
)
from ansible_collections.exchangeonline.mail.plugins.module_utils._dns_transport import (
    DNS_LIMITS,
    DNS_MUTUALLY_EXCLUSIVE,
    DNS_REQUIRED_BY,
    DNSPYTHON_IMPORT_ERROR,
    HAS_DNSPYTHON,
    dns_argument_spec,
)


# The libraries the module needs: names, whether they imported, the import traceback.
REQUIRES = ('dnspython', HAS_DNSPYTHON, DNSPYTHON_IMPORT_ERROR)
LIMITS = dict(DNS_LIMITS, mx_preference=PREFERENCE, ttl=TTL,
              **dict(MTA_STS_LIMITS, **{'legacy_mx.preference': PREFERENCE}))


def module_kwargs():
    """AnsibleModule's arguments; the action plugin validates with the same spec."""
    argument_spec = dns_argument_spec()
    argument_spec['server']['required'] = False  # required_if provider rfc2136, below
    argument_spec.update(provider_argument_spec())
    argument_spec.update(
        domain=dict(type='str'),
        pattern=dict(type='str', choices=['full', 'partial', 'legacy_forward', 'none']),
        state=dict(type='str', default='present',
                   choices=['present', 'absent', 'rollback', 'preflight']),
        records=dict(type='list', elements='dict'),
        mx_host=dict(type='str'),
        mx_preference=dict(type='int'),
        legacy_mx=dict(type='list', elements='dict', options=dict(
            host=dict(type='str', required=True),
            preference=dict(type='int', default=10),
        )),
        primary=dict(type='str', default='legacy', choices=['legacy', 'exo']),
        spf=dict(type='str', default='merge', choices=['merge', 'replace', 'keep']),
        spf_include=dict(type='str'),
        spf_all=dict(type='str', choices=['-all', '~all', '?all']),
        autodiscover_target=dict(type='str'),
        dkim=dict(type='dict'),
        verification_txt=dict(type='str'),
        dmarc=dict(type='str'),
        mta_sts=dict(type='dict', options=mta_sts_options(for_check=False)),
        tls_rpt=dict(type='list', elements='str'),
        ttl=dict(type='int'),
        on_conflict=dict(type='str', default='fail', choices=['fail', 'replace']),
        backup_path=dict(type='path'),
        force=dict(type='bool', default=False),
    )
    return dict(
        argument_spec=argument_spec,
        supports_check_mode=True,
        mutually_exclusive=DNS_MUTUALLY_EXCLUSIVE,
        required_by=DNS_REQUIRED_BY,
        required_if=[
            ('provider', 'rfc2136', ('server',)),
            ('provider', 'manual', ('server',)),
            ('state', 'present', ('domain', 'pattern')),
            ('state', 'absent', ('domain',)),
            ('state', 'preflight', ('domain',)),
            ('state', 'rollback', ('backup_path',)),
        ],
    )


def work(params, check_mode, diff_mode):
    """The result dict; raises RecordError/DnsError (see _run.run_work)."""
    from ansible_collections.exchangeonline.mail.plugins.module_utils._mail_dns import (
        MailDnsEngine,
    )
    return MailDnsEngine(params, check_mode, diff_mode).result()


def main():
    run_module(AnsibleModule(**module_kwargs()), work, LIMITS, REQUIRES)


if __name__ == '__main__':
    main()
