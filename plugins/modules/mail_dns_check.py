#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright (c) exchangeonline.mail contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function
__metaclass__ = type

DOCUMENTATION = r'''
module: mail_dns_check
short_description: Check that every name server serves a domain's Exchange Online mail records
version_added: 0.1.0
description:
  - Finds the zone's authoritative name servers from its NS records (or takes O(nameservers)),
    asks all of them, and any O(resolvers), the same questions in parallel, and reports per
    check and per server whether they serve the records of the migration pattern.
  - "Checks: C(mx) (the MX rrset the O(pattern) needs), C(autodiscover) (the CNAME),
    C(spf) (exactly one C(v=spf1) record, the Exchange Online include in it, at most 10
    DNS-querying terms counting nested includes, RFC 7208 section 4.6.4), C(dmarc) (RFC 7489
    syntax, and the exact value of O(dmarc) when given), C(dkim) (the selector CNAMEs) and
    C(verification) (the C(MS=) TXT)."
  - With O(wait_timeout), it asks again with a capped back-off until every server passes every
    check or the time is up, so it can follow M(exchangeonline.mail.mail_dns) and wait for the
    secondaries. Such a wait prints nothing until it ends.
  - To see each round, repeat the task instead, with C(until), C(retries) and C(delay) and
    O(wait_timeout=0). Every round that fails then prints one line, before Ansible's
    C(FAILED - RETRYING) line, that names the servers still behind and what they serve
    (RV(summary)). The roles and playbooks of this collection wait that way.
  - Read-only. It fails the task when a check still fails at the end, and the failure carries
    the same C(checks) and C(servers) as a success, so C(register) with C(ignore_errors) or
    C(failed_when) can act on them.
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
    details: Read-only; runs the same in check mode.
  diff_mode:
    support: none
  idempotent:
    support: full
    details: Never changes anything; RV(ignore:changed) is always V(false).
options:
  server:
    description:
      - A server that is authoritative for the zone, usually the primary that
        M(exchangeonline.mail.mail_dns) updates. The zone (unless O(zone) is set) and its NS
        records are looked up there, and the A/AAAA records of in-zone name servers.
      - Also where the targets of SPF C(include:) and C(redirect=) are looked up when no
        O(resolvers) are given.
      - The TSIG options sign only the queries to this server. The name servers and resolvers are
        asked without a key, as the rest of the internet asks them.
      - One of O(server), O(nameservers) and O(resolvers) is required.
    type: str
    required: false
  port:
    description:
      - The DNS port of O(server), and of the name servers found from the NS records and the
        entries of O(nameservers) without a port.
  protocol:
    description:
      - V(udp) asks over UDP and repeats the question over TCP when the answer is truncated;
        V(tcp) always uses TCP.
    default: udp
  timeout:
    description:
      - Seconds to wait for each answer. A query that times out, or is answered with SERVFAIL,
        is sent once more.
  domain:
    description:
      - The mail domain, for example V(contoso.com). Unicode (IDN) names are accepted and handled
        as punycode.
    type: str
    required: true
  pattern:
    description:
      - The migration pattern, which decides the C(mx) check.
      - V(full), the MX rrset is the Exchange Online MX only. V(partial), the Exchange Online MX
        and at least one legacy MX, the legacy MX preferred unless O(primary=exo).
        V(legacy_forward), the domain has MX records (it warns when they include Exchange Online).
      - Without it, the Exchange Online MX must be among the MX records.
    type: str
    choices: [full, partial, legacy_forward]
  primary:
    description:
      - For V(partial), which MX must be preferred (have the lower preference number).
    type: str
    default: legacy
    choices: [legacy, exo]
  records:
    description:
      - The records Exchange Online expects, as rrsets C({name, type, ttl, values}); the
        C(records) return value of M(exchangeonline.mail.domain_info) goes here as it is.
      - The MX host, SPF include, autodiscover target, DKIM targets and verification TXT are taken
        from it; the options below override single values.
    type: list
    elements: dict
  mx_host:
    description:
      - The Exchange Online MX host. Default, the one in O(records), else the classic form (dots
        to dashes plus C(.mail.protection.outlook.com)). That form is wrong for domains added to
        a tenant after 1 July 2026, which get C(*.mx.microsoft) hosts (Message Center
        MC1048624), so give O(records) or this option for them.
    type: str
  mx_preference:
    description:
      - When set, the Exchange Online MX must have this preference.
    type: int
  spf_include:
    description:
      - The SPF include of Exchange Online. Default, the one in O(records), else
        V(spf.protection.outlook.com).
    type: str
  autodiscover_target:
    description:
      - Target of the C(autodiscover) CNAME. Default, the one in O(records), else
        V(autodiscover.outlook.com).
    type: str
  dkim:
    description:
      - "DKIM selector CNAME targets from the tenant, for example
        C({selector1: selector1-contoso-com._domainkey.contoso.onmicrosoft.com}). The C(dkim)
        check runs when there are targets (from here or O(records))."
    type: dict
  verification_txt:
    description:
      - The domain verification TXT value (C(MS=ms12345678)). The C(verification) check runs when
        it is known (from here or O(records)).
    type: str
  dmarc:
    description:
      - The DMARC record that C(_dmarc) must hold, compared tag by tag (white space around tags
        ignored, case kept). Without it any valid DMARC record passes and a missing one is only a
        warning.
    type: str
  mta_sts:
    description:
      - For the C(mta_sts) check (run by default when this is given). The check asks each
        server for C(_mta-sts) TXT and the MX, fetches the policy from
        C(https://mta-sts.<domain>/.well-known/mta-sts.txt) once per round as a sender does
        (a certificate for that name, HTTP 200, text/plain, no redirect followed, at most 64 KiB),
        and fails when the record is missing or invalid, the policy cannot be fetched or used,
        or, in mode enforce, an MX host matches no mx pattern (in mode testing, a warning).
      - With O(mta_sts.mode), the policy must have that mode and max_age (and mx, when given;
        else every MX must match, and a pattern that matches no MX is a warning), and the
        record must carry the id M(exchangeonline.mail.mail_dns) gives that policy (its digest);
        another id means senders keep a policy cached under the old one.
      - A CNAME at C(_mta-sts) (a hosted MTA-STS service) is followed by senders; the record
        in the other zone is not checked, the policy is, and the check warns that it is
        delegated.
    type: dict
    suboptions:
      mode:
        description: The expected mode. Without it, any consistent policy passes.
        type: str
        choices: [enforce, testing, none]
      max_age:
        description: The expected max_age, with O(mta_sts.mode).
        type: int
        default: 604800
      mx:
        description: The expected mx patterns, with O(mta_sts.mode). Default, the MX hosts
          served.
        type: list
        elements: str
      address:
        description: Connect to this host[:port] for the policy instead of C(mta-sts.<domain>)
          port 443; the certificate is still checked for C(mta-sts.<domain>).
        type: str
      ca_path:
        description: PEM file of the authorities to trust for the policy host. Default, the
          system's.
        type: path
      timeout:
        description: Seconds for the whole fetch.
        type: float
        default: 10
  tls_rpt:
    description:
      - The destinations C(_smtp._tls) must hold (C(mailto:) or C(https:) URIs, a bare address
        taken as C(mailto:)), in any order. Given, the C(tls_rpt) check runs by default;
        without it, C(checks=[tls_rpt]) passes any one valid C(v=TLSRPTv1) record and warns
        when there is none.
    type: list
    elements: str
  nameservers:
    description:
      - The authoritative servers to ask instead of those in the zone's NS records, each as
        V(host), V(host:port), V(192.0.2.53), V(2001:db8::53) or V([2001:db8::53]:5353).
        Without a port, O(port) is used.
      - A host name is resolved through O(server) (for in-zone names), then through the system
        resolver; a name with several addresses becomes one server per address.
    type: list
    elements: str
  provider:
    description:
      - The provider of M(exchangeonline.mail.mail_dns) that changes the zone (see its
        O(exchangeonline.mail.mail_dns#module:provider)). The check always asks the name
        servers themselves, whichever provider it is; given, the host names of the name servers
        asked are compared with it, and a warning names the provider to use when the zone is
        served by another service (RV(hosting)). Not given, nothing is compared.
      - The options of the hosted providers (O(api_url), O(api_key), O(api_token), the C(aws_*)
        and C(azure_*) options, the Microsoft identity of O(provider=azure),
        O(hosted_zone_id), ...) are accepted and not used, so that one C(module_defaults) for
        C(group/exchangeonline.mail.dns) serves both modules.
    type: str
    default: null
    choices: [rfc2136, powerdns, route53, azure, cloudflare, manual]
  resolvers:
    description:
      - Recursive resolvers to ask too (with the RD flag), written like O(nameservers); without a
        port, 53. They are reported like the name servers, with C(kind=resolver).
      - When given, SPF include targets are looked up through them.
    type: list
    elements: str
  checks:
    description:
      - The checks to run. Default, every check that applies (C(dkim) and C(verification) only
        when their expected values are known, C(mta_sts) and C(tls_rpt) when O(mta_sts) and
        O(tls_rpt) are given).
      - C(dnssec) (not in the default, name it to run it; it costs three queries per server)
        asks every server for the zone's DNSKEY and SOA with the DO
        bit and validates the chain - the parent's DS (asked through O(resolvers), else
        O(server), else the checked servers) or O(trust_anchor) must match a DNSKEY that signs
        the DNSKEY rrset, and the DNSKEY set must sign the SOA. An unsigned zone without DS
        passes with the note that inbound DANE for Exchange Online needs a signed zone. A
        signed zone whose DS cannot be asked or is missing at the parent warns, as does an
        RRSIG that expires within 3 days. It fails when no DS matches any DNSKEY, a signature
        is bad or expired, or the parent has a DS for an unsigned zone (validating resolvers
        answer SERVFAIL then, and mail to the domain stops).
    type: list
    elements: str
    choices: [mx, autodiscover, spf, dmarc, dkim, verification, mta_sts, tls_rpt, dnssec]
  trust_anchor:
    description:
      - DS records (V(12345 13 2 ABCD...)) or DNSKEY records (V(257 3 13 base64...)) of the
        zone, optionally with owner, class and type in front, that the C(dnssec) check trusts
        instead of asking the parent for the DS (a lab, a zone whose DS is not published yet).
    type: list
    elements: str
  wait_timeout:
    description:
      - Seconds to keep asking until every server passes, from 0 to 86400. V(0) asks once.
    type: float
    default: 0
  interval:
    description:
      - Seconds before the second round, from 0.1 to 3600; the pause doubles after each round
        up to O(max_interval). Every pause varies by up to 10 % (jitter).
    type: float
    default: 1.0
  max_interval:
    description:
      - The longest pause between two rounds, in seconds; at least O(interval) (and 0.1) and at
        most 3600.
    type: float
    default: 10.0
notes:
  - SPF include targets that cannot be resolved from here (for example
    C(spf.protection.outlook.com) on an isolated network) count as one lookup each and are listed
    as unresolved; they never fail the check by themselves.
  - A server on an IPv6 address that this machine has no route to is reported as not checked
    (status V(skip)) rather than failed.
seealso:
  - module: exchangeonline.mail.mail_dns
  - name: RFC 7208, Sender Policy Framework
    description: Section 4.6.4 limits an SPF evaluation to 10 DNS-querying terms.
    link: https://www.rfc-editor.org/rfc/rfc7208#section-4.6.4
  - name: RFC 7489, DMARC
    description: The record format (section 6.3) and policy discovery (section 6.6.3).
    link: https://www.rfc-editor.org/rfc/rfc7489
'''

EXAMPLES = r'''
- name: Publish the full pattern, then wait until every name server serves it
  exchangeonline.mail.mail_dns:
    server: ns1.contoso.com
    key_file: /etc/bind/keys/exo-migration.key
    domain: contoso.com
    pattern: full
    backup_path: /var/backups/mail_dns/contoso.com.json

- name: Wait up to five minutes for the secondaries
  exchangeonline.mail.mail_dns_check:
    server: ns1.contoso.com
    domain: contoso.com
    pattern: full
    wait_timeout: 300

- name: Wait up to ten minutes in rounds of 10 s, each failed round naming the servers behind
  exchangeonline.mail.mail_dns_check:
    server: ns1.contoso.com
    domain: contoso.com
    pattern: full
  register: served
  until: served is succeeded or served.phase | default('') != 'check'
  retries: 60
  delay: 10

- name: Check the tenant's own values on given servers and a public resolver
  exchangeonline.mail.mail_dns_check:
    domain: contoso.com
    pattern: partial
    records: "{{ domain_info_result.records }}"
    nameservers:
      - ns1.contoso.com
      - "[2001:db8::53]:53"
    resolvers:
      - 192.0.2.1
    dmarc: "v=DMARC1; p=quarantine; rua=mailto:dmarc@contoso.com"

- name: Only SPF and DMARC, and keep going on failure to report it
  exchangeonline.mail.mail_dns_check:
    server: 192.0.2.53
    domain: contoso.com
    checks: [spf, dmarc]
  register: dns_health
  ignore_errors: true

- name: Show what failed
  ansible.builtin.debug:
    msg: "{{ dns_health.checks | selectattr('status', 'eq', 'fail') | map(attribute='message') }}"
'''

RETURN = r'''
ok:
  description: True when no check failed on any server (warnings and skipped checks do not count).
  returned: always
  type: bool
  sample: true
checks:
  description: One entry per check that ran, in the order mx, autodiscover, spf, dmarc, dkim,
    verification, dnssec.
  returned: always
  type: list
  elements: dict
  contains:
    name:
      description: The check.
      type: str
      sample: mx
    status:
      description: V(fail) when it failed on any server, else V(warn) when it warned on any, else
        V(pass) (V(skip) when no server could be asked).
      type: str
      sample: pass
    message:
      description: What was found, per group of servers that agree.
      type: str
    expected:
      description: What the check expects (a text; for C(dkim) a dict selector -> target).
      type: raw
    servers:
      description: Per server label, a dict with C(status), C(found) (the values the server
        serves, for C(dkim) a dict selector -> target) and C(message); the C(spf) check adds
        C(lookups) (the count of DNS-querying terms) and C(unresolved) (targets that could not
        be resolved from here). For C(dnssec), C(found) is a dict with C(signed) (bool),
        C(dnskey) (a list of dicts with C(key_tag), C(algorithm), C(flags)), C(ds) (the parent's
        DS texts), C(trust_anchor) (when given) and C(rrsig_expires) (the earliest expiry of the
        signatures checked, ISO 8601 UTC). For C(mta_sts), C(found) is a dict with C(records)
        (the v=STSv1 values), C(id) and C(policy) (C(mode), C(max_age), C(mx) of the policy
        served), when there are.
      type: dict
  sample:
    - name: mx
      status: fail
      message: found 10 mail.contoso.com.; expected only 0 contoso-com.mail.protection.outlook.com.
        (full, every other MX removed)
      expected: only contoso-com.mail.protection.outlook.com.
      servers:
        ns1.contoso.com:
          status: fail
          found: ["10 mail.contoso.com."]
          message: found 10 mail.contoso.com.; expected only 0
            contoso-com.mail.protection.outlook.com. (full, every other MX removed)
hosting:
  description:
    - Where the zone is hosted, told from the host names of the authoritative servers asked.
  returned: when authoritative servers were asked
  type: dict
  contains:
    service:
      description: The DNS service whose name servers serve the zone (V(Amazon Route 53),
        V(Azure DNS), V(Cloudflare), V(Google Cloud DNS), V(GoDaddy), V(IONOS), ...), or V(null)
        when they are none of those (the zone's own servers).
      type: str
    provider:
      description: The O(provider) of M(exchangeonline.mail.mail_dns) for that service
        (V(manual) for a service without one in this collection), or V(null).
      type: str
    nameservers:
      description: The host names asked.
      type: list
      elements: str
  sample: {service: Amazon Route 53, provider: route53, nameservers: [ns-1.awsdns-01.org]}
servers:
  description: The servers that were asked.
  returned: always
  type: list
  elements: dict
  contains:
    name:
      description: The label used in C(checks[].servers); the host, or host/address when a host
        has several addresses.
      type: str
    host:
      description: The host name (or address) as found in NS or given.
      type: str
    address:
      description: The address asked; null when the host could not be resolved.
      type: str
    port:
      description: The port asked.
      type: int
    kind:
      description: V(authoritative) or V(resolver).
      type: str
    reachable:
      description: Whether it answered in the last round.
      type: bool
    error:
      description: Why it could not be asked (its host name did not resolve).
      type: str
      returned: when it could not be asked
  sample:
    - name: ns1.contoso.com
      host: ns1.contoso.com.
      address: 192.0.2.53
      port: 53
      kind: authoritative
      reachable: true
zone:
  description: The zone whose NS records were used.
  returned: when the name servers were found from NS records
  type: str
  sample: contoso.com.
domain:
  description: The domain in punycode, absolute.
  returned: always
  type: str
  sample: contoso.com.
behind:
  description: Per server that fails a check (in the order of RV(servers)), what it serves for
    each failing check in a few words (V(MX 10 mail.contoso.com.), V(no autodiscover CNAME),
    C(SPF "v=spf1 ... -all")), or once why it gave no answer. Empty when every check passes.
  returned: always
  type: dict
  sample:
    ns2.contoso.com: ["MX 10 mail.contoso.com.", "no autodiscover CNAME"]
summary:
  description: One line for a round of waiting, from RV(behind) (values longer than 100
    characters are cut). Printed before Ansible's C(FAILED - RETRYING) line when the task
    repeats with C(until) or C(retries).
  returned: always
  type: str
  sample: "1 of 2 servers behind: ns2.contoso.com serves MX 10 mail.contoso.com., no autodiscover
    CNAME"
rounds:
  description: How many times the servers were asked.
  returned: always
  type: int
  sample: 1
elapsed:
  description: Seconds from the first round to the last answer.
  returned: always
  type: float
  sample: 0.042
phase:
  description: On a failure, where it failed (V(input), V(key), V(connect), V(find zone),
    V(find name servers)), or V(check) when every check ran and at least one failed.
  returned: on failure
  type: str
'''

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.exchangeonline.mail.plugins.module_utils._options import (
    MTA_STS_LIMITS,
    PAUSE,
    PREFERENCE,
    mta_sts_options,
    seconds,
)
from ansible_collections.exchangeonline.mail.plugins.module_utils._run import run_module
from ansible_collections.exchangeonline.mail.plugins.module_utils._dns_provider import (
    PROVIDERS,
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

CHECK_CHOICES = ['mx', 'autodiscover', 'spf', 'dmarc', 'dkim', 'verification', 'mta_sts',
                 'tls_rpt', 'dnssec']


# The libraries the module needs: names, whether they imported, the import traceback.
REQUIRES = ('dnspython', HAS_DNSPYTHON, DNSPYTHON_IMPORT_ERROR)
LIMITS = dict(DNS_LIMITS, mx_preference=PREFERENCE, wait_timeout=seconds(86400, above=False),
              interval=PAUSE, max_interval=PAUSE, **MTA_STS_LIMITS)


def module_kwargs():
    """AnsibleModule's arguments; the action plugin validates with the same spec."""
    argument_spec = dict(
        dns_argument_spec(),
        # The checker can work from given name servers or resolvers alone, and prefers UDP.
        server=dict(type='str'),
        protocol=dict(type='str', default='udp', choices=['tcp', 'udp']),
        domain=dict(type='str', required=True),
        pattern=dict(type='str', choices=['full', 'partial', 'legacy_forward']),
        primary=dict(type='str', default='legacy', choices=['legacy', 'exo']),
        records=dict(type='list', elements='dict'),
        mx_host=dict(type='str'),
        mx_preference=dict(type='int'),
        spf_include=dict(type='str'),
        autodiscover_target=dict(type='str'),
        dkim=dict(type='dict'),
        verification_txt=dict(type='str'),
        dmarc=dict(type='str'),
        mta_sts=dict(type='dict', options=mta_sts_options(for_check=True)),
        tls_rpt=dict(type='list', elements='str'),
        nameservers=dict(type='list', elements='str'),
        **dict(provider_argument_spec(),
               provider=dict(type='str', choices=list(PROVIDERS))),
        resolvers=dict(type='list', elements='str'),
        checks=dict(type='list', elements='str', choices=CHECK_CHOICES),
        trust_anchor=dict(type='list', elements='str'),
        wait_timeout=dict(type='float', default=0),
        interval=dict(type='float', default=1.0),
        max_interval=dict(type='float', default=10.0),
    )
    return dict(
        argument_spec=argument_spec,
        supports_check_mode=True,
        mutually_exclusive=DNS_MUTUALLY_EXCLUSIVE,
        required_by=DNS_REQUIRED_BY,
        required_one_of=[('server', 'nameservers', 'resolvers')],
    )


def work(params, check_mode, diff_mode):
    """The result dict, failed when a check fails; raises RecordError/DnsError on bad input."""
    from ansible_collections.exchangeonline.mail.plugins.module_utils._mail_dns_check import (
        MailDnsCheck,
    )
    result = MailDnsCheck(params).result()
    if not result['ok']:
        result.update(failed=True, phase='check')
    return result


def main():
    run_module(AnsibleModule(**module_kwargs()), work, LIMITS, REQUIRES)


if __name__ == '__main__':
    main()
