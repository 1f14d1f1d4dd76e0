# -*- coding: utf-8 -*-
# Copyright (c) exchangeonline.mail contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# Private to this collection: may change without notice.
"""The engine of mail_dns_check: ask the servers (``_dns_transport``), judge their answers
(the pure checks of ``_checks``), in rounds until they pass or the wait is over."""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

from typing import Any, Dict, List, Optional, Tuple

from ansible_collections.exchangeonline.mail.plugins.module_utils._checks import (
    Expectation,
    FAIL,
    Key,
    Observed,
    Outcome,
    behind,
    failure_message,
    judge_all,
    report,
    summary_line,
)
from ansible_collections.exchangeonline.mail.plugins.module_utils._dns_hosting import (
    hosting_of,
    provider_hint,
)
from ansible_collections.exchangeonline.mail.plugins.module_utils._dns_transport import (
    AUTHORITATIVE,
    RESOLVER,
    DnsServer,
    Resolver,
    Target,
    discover_nameservers,
    make_targets,
    split_host_port,
    unique_labels,
    wait_for_answers,
)
from ansible_collections.exchangeonline.mail.plugins.module_utils._dnssec import (
    check_dnssec,
    find_zone_of,
)
from ansible_collections.exchangeonline.mail.plugins.module_utils._https_policy import (
    fetch_policy,
)
from ansible_collections.exchangeonline.mail.plugins.module_utils._mail_policy import (
    Spec,
    require_inside,
)
from ansible_collections.exchangeonline.mail.plugins.module_utils._records import (
    RecordError,
    name_text,
    to_name,
)

# A round's verdict: (the checks list the module returns, {check: {server label: Outcome}}).
Verdict = Tuple[List[Dict[str, Any]], Dict[str, Dict[str, Outcome]]]


# -- the engine of mail_dns_check -------------------------------------------------------------
def expectation_from_params(p: dict) -> Expectation:
    """The Expectation from module parameters (explicit options win over ``records``)."""
    return Expectation(Spec.from_params(p), p.get('pattern'), p.get('checks'))


class MailDnsCheck:
    """The mail_dns_check task: ``result()`` is its result dict (``ok`` false when a check
    fails); bad input raises RecordError or DnsError."""

    def __init__(self, params: dict) -> None:
        self.params = params
        self.warnings: List[str] = []
        self.zone: Optional[str] = None

    def _check_intervals(self) -> None:
        """The one rule between options the argument spec cannot say (their ranges it checks)."""
        p = self.params
        if p.get('max_interval', 10.0) < p.get('interval', 1.0):
            raise RecordError('max_interval must be at least interval')

    def servers_to_ask(self, expect: Expectation) -> Tuple[List[Target], List[Target]]:
        """(targets to check, targets for the SPF include lookups)."""
        p = self.params
        server = DnsServer.from_params(p) if p.get('server') else None
        port = p.get('port') or 53
        targets = []
        if p.get('nameservers'):
            for index, text in enumerate(p['nameservers']):
                host, ns_port = split_host_port(text, port, 'nameservers[%d]' % index)
                targets.extend(make_targets(host, ns_port, AUTHORITATIVE, server, label=text))
        elif server is not None:
            self.zone = name_text(to_name(p['zone'], what='zone')) if p.get('zone') \
                else server.find_zone(expect.domain)
            require_inside(expect.domain, self.zone)
            for host in discover_nameservers(server, self.zone):
                targets.extend(make_targets(host, port, AUTHORITATIVE, server))
        resolvers = []
        for index, text in enumerate(p.get('resolvers') or []):
            host, r_port = split_host_port(text, 53, 'resolvers[%d]' % index)
            resolvers.extend(make_targets(host, r_port, RESOLVER, server, label=text))
        targets = unique_labels(targets + resolvers)
        if resolvers:
            lookup_targets = resolvers
        elif server is not None:
            lookup_targets = [Target(p['server'], p['server'], server.address, port,
                                     AUTHORITATIVE)]
        else:
            lookup_targets = [t for t in targets if not t.error][:1]
        return targets, lookup_targets

    def dnssec(self, resolver: Resolver, expect: Expectation, targets: List[Target],
               lookup_targets: List[Target]) -> Dict[str, Outcome]:
        """{server label: Outcome} of the dnssec check (``_dnssec``); the parent's DS from the
        resolvers, else ``server``, else the checked servers (when they serve the parent)."""
        p = self.params
        zone = self.zone or (name_text(to_name(p['zone'], what='zone')) if p.get('zone')
                             else find_zone_of(resolver, targets, expect.domain))
        return check_dnssec(resolver, targets, zone, lookup_targets + targets,
                            p.get('trust_anchor'))

    def mta_sts(self, expect: Expectation,
                observed: Dict[str, Dict[Key, Observed]]) -> Dict[str, Outcome]:
        """{server label: Outcome} of the mta_sts check; the policy is fetched once per round,
        when a server publishes a record."""
        wanted = expect.spec.mta_sts
        fetched: List[Tuple[Optional[str], Optional[str]]] = []

        def fetch() -> Tuple[Optional[str], Optional[str]]:
            if not fetched:
                got = fetch_policy(expect.domain, wanted.address if wanted else None,
                                   wanted.ca_path if wanted else None,
                                   wanted.timeout if wanted else 10.0)
                fetched.append((got.text, got.error))
            return fetched[0]
        return dict((label, expect.judge_mta_sts(answers, fetch))
                    for label, answers in observed.items())

    def result(self) -> dict:
        self._check_intervals()
        p = self.params
        expect = expectation_from_params(p)
        targets, lookup_targets = self.servers_to_ask(expect)
        resolver = Resolver(p.get('timeout') or 10.0, p.get('protocol') or 'udp')
        questions = expect.questions()

        def judge(observed: Dict[str, Dict[Key, Observed]]) -> Tuple[bool, Verdict]:
            judged = judge_all(expect, observed, resolver.txt_lookup(lookup_targets))
            if 'dnssec' in judged:
                judged['dnssec'] = self.dnssec(resolver, expect, targets, lookup_targets)
            if 'mta_sts' in judged:
                judged['mta_sts'] = self.mta_sts(expect, observed)
            checks = report(expect, judged)
            return all(c['status'] != FAIL for c in checks), (checks, judged)

        wait_timeout = p.get('wait_timeout') or 0
        (checks, judged), rounds, elapsed = wait_for_answers(
            resolver, targets, questions, judge, wait_timeout, p.get('interval', 1.0),
            p.get('max_interval', 10.0))
        ok = all(c['status'] != FAIL for c in checks)
        result = {'changed': False, 'ok': ok, 'domain': expect.domain, 'checks': checks,
                  'servers': [t.to_dict() for t in targets], 'rounds': rounds,
                  'elapsed': round(elapsed, 3), 'behind': behind(judged),
                  'summary': summary_line(judged)}
        if self.zone:
            result['zone'] = self.zone
        hosts = [t.host for t in targets if t.kind == AUTHORITATIVE]
        if hosts:
            result['hosting'] = hosting_of(hosts)
            hint = provider_hint(result['hosting'], p.get('provider'),
                                 self.zone or expect.domain)
            if hint:
                self.warnings.append(hint)
        if not ok:
            result['msg'] = failure_message(expect.domain, checks, rounds, elapsed, wait_timeout)
        if self.warnings:
            result['warnings'] = self.warnings
        return result
