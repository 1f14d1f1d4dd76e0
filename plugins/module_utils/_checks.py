# -*- coding: utf-8 -*-
# Copyright (c) exchangeonline.mail contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# Private to this collection: may change without notice.
"""The checks of mail_dns_check as pure functions: what each server served -> pass/fail and why.

No I/O here. The transport (``_dns_transport``) turns answers into :class:`Observed` values; the
SPF lookup count follows include/redirect targets through a ``lookup(name)`` callable that the
caller provides (a fake one in unit tests).
"""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

from typing import Any, Callable, Dict, Iterable, List, Mapping, Optional, Sequence, Tuple, Union

from ansible_collections.exchangeonline.mail.plugins.module_utils._mail_policy import (
    Spec,
    dkim_selector,
    dmarc_problems,
    dmarc_report_domains,
    exo_in_order,
    mx_expectation,
    parse_dmarc,
    parse_spf,
    spf_has_include,
    spf_terms,
    split_mx,
)
from ansible_collections.exchangeonline.mail.plugins.module_utils._mta_sts import (
    MtaStsWanted,
    TlsRptWanted,
    is_sts_record,
    mx_matches,
    is_tlsrpt_record,
    parse_policy,
    parse_sts_record,
    parse_tlsrpt_record,
    policy_url,
    same_rua,
    sts_name,
    tlsrpt_name,
)
from ansible_collections.exchangeonline.mail.plugins.module_utils._records import RecordError

CHECKS = ('mx', 'autodiscover', 'spf', 'dmarc', 'dkim', 'verification', 'mta_sts', 'tls_rpt',
          'dnssec')
# run only when named in checks (mta_sts and tls_rpt also when their option is given)
OPT_IN = ('dnssec', 'mta_sts', 'tls_rpt')
PASS, FAIL, WARN, SKIP = 'pass', 'fail', 'warn', 'skip'
SPF_LOOKUP_LIMIT = 10
# Terms that cost a DNS query at the receiver (RFC 7208 section 4.6.4).
SPF_DNS_MECHANISMS = ('include', 'a', 'mx', 'ptr', 'exists')
SPF_MECHANISMS = SPF_DNS_MECHANISMS + ('all', 'ip4', 'ip6')
# Stop following includes well past the limit: the verdict is clear and loops stay cheap.
SPF_FOLLOW_CAP = 3 * SPF_LOOKUP_LIMIT

Key = Tuple[str, str]  # a question: (name, type)
# lookup(name) -> the TXT strings at name, [] when it does not exist, None when it cannot be said
Lookup = Callable[[str], Optional[List[str]]]


class Observed:
    """What one server answered to one question.

    ``values``: canonical values (TXT joined, names absolute lower-case); empty for NXDOMAIN or
    no data. ``error``: text when the server gave no usable answer (then ``values`` is None).
    ``unchecked``: the server could not be asked from here at all (no IPv6 route); its checks
    are skipped rather than failed. ``cname``: the CNAME target at the name, when there is one.
    """

    __slots__ = ('values', 'error', 'unchecked', 'cname', 'rcode')

    def __init__(self, values: Optional[Iterable[str]] = None, error: Optional[str] = None,
                 unchecked: bool = False, cname: Optional[str] = None,
                 rcode: str = 'NOERROR') -> None:
        self.values: Optional[List[str]] = None if error else list(values or [])
        self.error = error
        self.unchecked = unchecked
        self.cname = cname
        self.rcode = rcode

    def __repr__(self) -> str:
        return 'Observed(%r, error=%r)' % (self.values, self.error)


class Outcome:
    """The verdict of one check on one server; ``answered`` is false when the server gave no
    usable answer (``message`` then says why)."""

    __slots__ = ('status', 'found', 'message', 'extra', 'answered')

    def __init__(self, status: str, found: Any, message: str, answered: bool = True,
                 **extra: Any) -> None:
        """``found``: what the check found, as the result shows it (a list of values, a CNAME
        target or None, {selector: target})."""
        self.status = status
        self.found = found
        self.message = message
        self.answered = answered
        self.extra = extra

    def to_dict(self) -> Dict[str, Any]:
        d = {'status': self.status, 'found': self.found, 'message': self.message}
        d.update(self.extra)
        return d


# -- MX ---------------------------------------------------------------------------------------
def _mx_text(records: List[Tuple[int, str]]) -> str:
    return ', '.join('%d %s' % r for r in records) or 'no MX records'


def check_mx(found: Iterable[str], mx_host: str, pattern: Optional[str] = None,
             primary: str = 'legacy', preference: Optional[int] = None) -> Outcome:
    """The domain's MX rrset (canonical values ``'<pref> <host>'``) against the pattern.

    full: exactly the Exchange Online MX. partial: the Exchange Online MX and at least one legacy
    MX, ordered by ``primary``. legacy_forward: any MX (Exchange Online is not expected in it).
    None (no pattern given): the Exchange Online MX is among them.
    """
    split = split_mx(found, mx_host)
    records = split.records
    shown = _mx_text(records)
    exo, other_exo, legacy = split.ours, split.other_exo, split.legacy
    if not records:
        return Outcome(FAIL, [], 'no MX records: mail to the domain goes to its A record or '
                       'bounces')
    values = ['%d %s' % r for r in records]
    if pattern == 'legacy_forward':
        if exo or other_exo:
            return Outcome(WARN, values, 'legacy_forward keeps the old server in front, but the MX '
                           'includes Exchange Online: %s' % shown)
        return Outcome(PASS, values, 'MX kept on the legacy server: %s' % shown)
    if not exo:
        return Outcome(FAIL, values, 'found %s; the Exchange Online MX %s is missing'
                       % (shown, mx_host))
    exo_pref = min(r[0] for r in exo)
    if preference is not None and any(r[0] != preference for r in exo):
        return Outcome(FAIL, values, 'found %s; expected %s with preference %d'
                       % (shown, mx_host, preference))
    if pattern == 'full':
        extra = [r for r in records if r[1] != mx_host]
        if extra or len(exo) > 1:
            return Outcome(FAIL, values, 'found %s; expected only %d %s (full: every other MX '
                           'removed)' % (shown, exo_pref, mx_host))
        return Outcome(PASS, values, 'MX is Exchange Online only: %s' % shown)
    if pattern == 'partial':
        if not legacy:
            return Outcome(FAIL, values, 'found %s; partial keeps at least one legacy MX next to '
                           'Exchange Online' % shown)
        in_order = exo_in_order(primary, exo_pref, [r[0] for r in legacy])
        if primary == 'exo' and not in_order:
            return Outcome(FAIL, values, 'found %s; with primary: exo the Exchange Online MX must '
                           'have a lower preference number than every legacy MX' % shown)
        if primary != 'exo' and not in_order:
            return Outcome(FAIL, values, 'found %s; with primary: legacy the legacy MX must have a '
                           'lower preference number than the Exchange Online MX' % shown)
        if other_exo:
            return Outcome(WARN, values, 'found %s; another Exchange Online MX host is listed too'
                           % shown)
        return Outcome(PASS, values, 'Exchange Online MX next to the legacy MX, %s first: %s'
                       % ('Exchange Online' if primary == 'exo' else 'legacy', shown))
    return Outcome(PASS, values, 'the Exchange Online MX is published: %s' % shown)


# -- CNAME ------------------------------------------------------------------------------------
def check_cname(name: str, found: Sequence[str], target: str) -> Outcome:
    """``found``: the CNAME target(s) at ``name`` (canonical)."""
    if not found:
        return Outcome(FAIL, None, 'no CNAME at %s; expected one to %s' % (name, target))
    if list(found) != [target]:
        return Outcome(FAIL, sorted(found)[0], '%s is a CNAME to %s; expected %s'
                       % (name, ', '.join(sorted(found)), target))
    return Outcome(PASS, target, '%s is a CNAME to %s' % (name, target))


def check_dkim(found: Mapping[str, Optional[str]], expected: Mapping[str, str]) -> Outcome:
    """``found``: {selector name: CNAME target or None}; ``expected``: {selector name: CNAME
    target}."""
    wrong = []
    for name in sorted(expected):
        have = found.get(name)
        if have != expected[name]:
            wrong.append('%s is %s, expected a CNAME to %s'
                         % (name, 'a CNAME to ' + have if have else 'missing', expected[name]))
    shown = dict((dkim_selector(n), found.get(n)) for n in sorted(expected))
    if wrong:
        return Outcome(FAIL, shown, '; '.join(wrong))
    return Outcome(PASS, shown, 'all %d DKIM selector CNAMEs point to the tenant' % len(expected))


# -- SPF --------------------------------------------------------------------------------------
class SpfCount:
    """The result of following one SPF record: ``lookups`` counted as a receiver would,
    ``unresolved`` targets (counted once each, not followed), ``problems`` (permanent errors at
    receivers) and ``notes`` (worth knowing, not errors)."""

    def __init__(self) -> None:
        self.lookups = 0
        self.unresolved: List[str] = []
        self.problems: List[str] = []
        self.notes: List[str] = []
        self.followed: List[str] = []


def count_spf_lookups(record: str, lookup: Lookup, domain: Optional[str] = None) -> SpfCount:
    """Count the DNS-querying terms of ``record``, following include: and redirect= targets
    through ``lookup(name) -> list of TXT strings, or None when it does not resolve``."""
    count = SpfCount()
    cache: Dict[str, Optional[List[str]]] = {}

    def fetch(name: str) -> Optional[List[str]]:
        if name not in cache:
            cache[name] = lookup(name)
        return cache[name]

    def walk(rec: str, stack: Tuple[str, ...]) -> None:
        terms = spf_terms(rec)
        has_all = any(t[:2] == ('mechanism', 'all') for t in terms)
        for kind, name, arg in terms:
            if kind == 'modifier':
                if name == 'redirect' and has_all:
                    _add(count.notes, 'redirect=%s is ignored: the record has an all mechanism'
                         % arg)
                elif name == 'redirect':
                    count.lookups += 1
                    follow(name, arg, stack)
                continue
            if name not in SPF_MECHANISMS:
                count.problems.append('unknown mechanism %r in %s' % (name, stack[-1]))
                continue
            if name not in SPF_DNS_MECHANISMS:
                continue
            count.lookups += 1
            if name == 'ptr':
                _add(count.notes, 'ptr is deprecated (RFC 7208 section 5.5) and slow for '
                                  'receivers; list the addresses instead')
            elif name == 'include':
                follow(name, arg, stack)
            elif name == 'exists' and not arg:
                count.problems.append('exists without a domain in %s' % stack[-1])

    def follow(kind: str, target: Optional[str], stack: Tuple[str, ...]) -> None:
        if not target:
            count.problems.append('%s without a domain in %s' % (kind, stack[-1]))
            return
        if '%' in target:
            count.unresolved.append('%s (a macro, expanded per message)' % target)
            return
        target = target.lower().rstrip('.')
        if target in stack:
            count.problems.append('%s loop: %s' % (kind, ' -> '.join(stack + (target,))))
            return
        if count.lookups > SPF_FOLLOW_CAP:
            return
        txts = fetch(target)
        if txts is None:
            count.unresolved.append(target)
            return
        records = [t for t in txts if parse_spf(t)]
        if not records:
            count.problems.append('%s:%s has no SPF record, a permanent error at receivers'
                                  % (kind, target))
        elif len(records) > 1:
            count.problems.append('%s:%s has %d v=spf1 records, a permanent error at receivers'
                                  % (kind, target, len(records)))
        else:
            count.followed.append(target)
            walk(records[0], stack + (target,))

    walk(record, ((domain or 'the record').rstrip('.'),))
    return count


def _add(items: List[str], text: str) -> None:
    if text not in items:
        items.append(text)


def check_spf(txt_values: Iterable[str], include: str, lookup: Lookup,
              domain: Optional[str] = None) -> Outcome:
    """The domain's TXT values: exactly one v=spf1 record, the Exchange Online include in it,
    at most 10 DNS-querying terms in all (includes followed through ``lookup``)."""
    records = sorted(v for v in txt_values if parse_spf(v))
    if not records:
        return Outcome(FAIL, [], 'no v=spf1 record; expected one with include:%s' % include)
    if len(records) > 1:
        return Outcome(FAIL, records, '%d v=spf1 records (%s); RFC 7208 section 4.5 makes that a '
                       'permanent error for every receiver: merge them into one'
                       % (len(records), ' | '.join(records)))
    record = records[0]
    count = count_spf_lookups(record, lookup, domain)
    problems: List[str] = []
    if include and not spf_has_include(record, include):
        problems.append('include:%s is missing' % include)
    if count.lookups > SPF_LOOKUP_LIMIT:
        problems.append('%s%d DNS-querying terms, over the limit of %d (RFC 7208 section 4.6.4); '
                        'flatten includes or replace a/mx with ip4/ip6'
                        % ('more than ' if count.lookups > SPF_FOLLOW_CAP else '', count.lookups,
                           SPF_LOOKUP_LIMIT))
    problems.extend(count.problems)
    notes = list(count.notes)
    spf = parse_spf(record)
    if spf is not None and any(t.is_all and t.passes for t in spf.terms):
        notes.append('+all lets every host on the internet send as the domain')
    lookups = '%d of %d DNS lookups' % (count.lookups, SPF_LOOKUP_LIMIT)
    if count.unresolved:
        lookups += ' (not resolved from here, counted once each: %s)' % ', '.join(count.unresolved)
    extra: Dict[str, Any] = {'lookups': count.lookups, 'unresolved': count.unresolved}
    if problems:
        return Outcome(FAIL, [record], '%s; %s' % ('; '.join(problems), lookups), **extra)
    if notes:
        return Outcome(WARN, [record], '%s; %s' % ('; '.join(notes), lookups), **extra)
    return Outcome(PASS, [record], 'one SPF record with include:%s, %s' % (include, lookups),
                   **extra)


# -- DMARC ------------------------------------------------------------------------------------
def check_dmarc(txt_values: Iterable[str], expected: Optional[str] = None,
                name: str = '_dmarc', lookup: Optional[Lookup] = None) -> Outcome:
    """The TXT values at _dmarc: one valid DMARC record; equal to ``expected`` when given. With
    ``lookup``, a report destination in another domain must authorize the reports (RFC 7489
    section 7.1: ``<domain>._report._dmarc.<destination>`` TXT ``v=DMARC1``); a missing one
    warns, since receivers then send no reports there."""
    records = sorted(v for v in txt_values if parse_dmarc(v))
    if not records:
        if expected:
            return Outcome(FAIL, [], 'no DMARC record at %s; expected %s' % (name, expected))
        return Outcome(WARN, [], 'no DMARC record at %s: receivers apply no DMARC policy. '
                       'Publish one, for example v=DMARC1; p=none; rua=mailto:dmarc@<domain>'
                       % name)
    if len(records) > 1:
        return Outcome(FAIL, records, '%d DMARC records at %s; RFC 7489 section 6.6.3 makes '
                       'receivers ignore all of them' % (len(records), name))
    record = records[0]
    problems, notes = dmarc_problems(record)
    if expected and parse_dmarc(record) != parse_dmarc(expected):
        problems.insert(0, 'found %s, expected %s' % (record, expected))
    if problems:
        return Outcome(FAIL, records, '; '.join(problems))
    parsed = parse_dmarc(record)
    domain = name[len('_dmarc.'):] if name.startswith('_dmarc.') else ''
    if lookup is not None and parsed is not None and domain:
        for dest in dmarc_report_domains(parsed, domain):
            owner = '%s._report._dmarc.%s' % (domain.rstrip('.'), dest)
            found = lookup(owner)
            if found is None:
                notes.append('the report destination %s could not be asked whether it takes '
                             'reports for %s (%s TXT)' % (dest, domain.rstrip('.'), owner))
            elif not any(v.strip().startswith('v=DMARC1') for v in found):
                notes.append('reports go to %s, which does not authorize them: %s has no TXT '
                             'v=DMARC1, so receivers send no reports there (RFC 7489 section '
                             '7.1). Ask the owner of %s to publish %s TXT "v=DMARC1", or send '
                             'the reports to an address in %s'
                             % (dest, owner, dest, owner, domain.rstrip('.')))
    if notes:
        return Outcome(WARN, records, '; '.join(notes))
    return Outcome(PASS, records, 'valid DMARC record: %s' % record)


# -- MTA-STS and TLS-RPT ----------------------------------------------------------------------
# fetch() -> (policy text or None, why there is none); called at most once per round
PolicyFetch = Callable[[], Tuple[Optional[str], Optional[str]]]


def check_mta_sts(txt_values: Iterable[str], mx_values: Iterable[str], domain: str,
                  fetch: PolicyFetch, wanted: Optional[MtaStsWanted] = None,
                  cname: Optional[str] = None) -> Outcome:
    """One server's _mta-sts TXT (or the CNAME there) and MX, with the policy the policy host
    serves (RFC 8461): one valid v=STSv1 record, a policy a sender can use, that policy matching
    every MX host (enforce: fail; testing: warn). With ``wanted.mode``: that mode and max_age
    (and mx, when given), and the id of the policy served: mail_dns publishes the digest of the
    policy as its id, so another id means senders keep a policy cached under the old one."""
    name = sts_name(domain)
    url = policy_url(domain)
    records = sorted(v for v in txt_values if is_sts_record(v))
    hosts = sorted(h.rstrip('.') for h in (v.split(' ', 1)[-1] for v in mx_values) if h != '.')
    expect = wanted is not None and wanted.mode is not None
    found: Dict[str, Any] = {'records': records, 'id': None, 'policy': None}
    notes: List[str] = []
    policy_id: Optional[str] = None
    if not records and cname:
        # delegated (a hosted MTA-STS service): senders follow the CNAME; the record there is
        # another zone's, so only the policy is judged here
        found['cname'] = cname
        notes.append('%s is a CNAME to %s, whose record is not checked here' % (name, cname))
    elif not records:
        if expect:
            return Outcome(FAIL, found, 'no MTA-STS record at %s; expected one (publish it with '
                           'exchangeonline.mail.mail_dns mta_sts)' % name)
        return Outcome(WARN, found, 'no MTA-STS record at %s: senders fall back to '
                       'unauthenticated TLS. Serve a policy at %s and publish its id with '
                       'exchangeonline.mail.mail_dns (mta_sts)' % (name, url))
    elif len(records) > 1:
        return Outcome(FAIL, found, '%d v=STSv1 records at %s; senders then use no policy (RFC '
                       '8461 section 3.1)' % (len(records), name))
    else:
        policy_id, problems = parse_sts_record(records[0])
        if problems:
            return Outcome(FAIL, found, '%s: %s' % (records[0], '; '.join(problems)))
        found['id'] = policy_id
    text, error = fetch()
    if text is None:
        return Outcome(FAIL, found, '%s is published, but %s' % (records[0] if records else name,
                                                                 error))
    policy, problems = parse_policy(text)
    if policy is None:
        return Outcome(FAIL, found, '%s serves a policy senders cannot use: %s'
                       % (url, '; '.join(problems)))
    found['policy'] = policy.to_dict()
    if expect and wanted is not None:
        want = (wanted.mode, wanted.max_age)
        if (policy.mode, policy.max_age) != want or \
                (wanted.mx is not None and set(policy.mx) != set(wanted.mx)):
            return Outcome(FAIL, found, '%s serves a stale policy (%s), not the expected one '
                           '(mode %s, max_age %d%s): serve the policy mail_dns returned in mta_sts'
                           % (url, policy.describe(), wanted.mode, wanted.max_age,
                              ', mx %s' % ', '.join(wanted.mx) if wanted.mx is not None else ''))
        if policy_id is not None and policy_id != policy.policy_id():
            return Outcome(FAIL, found, '%s has the id %s, not %s, the id of the policy served: '
                           'senders keep what they cached under the old id. Publish it with '
                           'exchangeonline.mail.mail_dns (mta_sts)'
                           % (name, policy_id, policy.policy_id()))
        extra = [p for p in policy.mx if not any(mx_matches(h, p) for h in hosts)]
        if wanted.mx is None and extra:
            notes.append('the policy also names %s, which no MX host is (left from a move? once '
                         'the old MX has expired from caches, publish the policy without it '
                         'with mail_dns)' % ', '.join(extra))
    unmatched = policy.unmatched(hosts)
    if unmatched and policy.mode != 'none':
        message = ('the policy at %s (mode %s) has no pattern that matches the MX host(s) %s '
                   '(mx %s; *. matches exactly one label)'
                   % (url, policy.mode, ', '.join(unmatched), ', '.join(policy.mx)))
        if policy.mode == 'enforce':
            return Outcome(FAIL, found, message + ': senders refuse to deliver there')
        notes.insert(0, message + ': senders would refuse them in mode enforce')
    if notes:
        return Outcome(WARN, found, '; '.join(notes))
    return Outcome(PASS, found, 'MTA-STS mode %s (id %s): the policy at %s names every MX'
                   % (policy.mode, policy_id, url))


def check_tls_rpt(txt_values: Iterable[str], domain: str,
                  wanted: Optional[TlsRptWanted] = None) -> Outcome:
    """The TXT values at _smtp._tls: one valid v=TLSRPTv1 record (RFC 8460 section 3), with the
    ``wanted`` destinations when given."""
    name = tlsrpt_name(domain)
    records = sorted(v for v in txt_values if is_tlsrpt_record(v))
    if not records:
        if wanted is not None:
            return Outcome(FAIL, [], 'no TLS-RPT record at %s; expected %s'
                           % (name, wanted.record()))
        return Outcome(WARN, [], 'no TLS-RPT record at %s: no sender reports failed TLS to the '
                       'MX. Publish one with exchangeonline.mail.mail_dns (tls_rpt)' % name)
    if len(records) > 1:
        return Outcome(FAIL, records, '%d v=TLSRPTv1 records at %s; senders then send no '
                       'reports (RFC 8460 section 3)' % (len(records), name))
    rua, problems = parse_tlsrpt_record(records[0])
    if problems:
        return Outcome(FAIL, records, '%s: %s' % (records[0], '; '.join(problems)))
    if wanted is not None and not same_rua(rua, wanted.rua):
        return Outcome(FAIL, records, 'found %s, expected %s' % (records[0], wanted.record()))
    return Outcome(PASS, records, 'TLS reports go to %s' % ', '.join(rua))


# -- verification -----------------------------------------------------------------------------
def check_verification(txt_values: Sequence[str], expected: Optional[str]) -> Outcome:
    ms = sorted(v for v in txt_values if v.startswith('MS='))
    if expected in txt_values:
        return Outcome(PASS, ms, 'verification TXT %s is published' % expected)
    return Outcome(FAIL, ms, 'verification TXT %s is missing%s' % (
        expected, '; found %s' % ', '.join(ms) if ms else ''))


# -- the whole evaluation ---------------------------------------------------------------------
class Expectation:
    """What every server should serve: the policy of ``spec`` (a ``_mail_policy.Spec``, used as
    it is), judged by ``pattern`` (None: only that the Exchange Online MX is published) on the
    selected ``checks``."""

    def __init__(self, spec: Spec, pattern: Optional[str] = None,
                 checks: Optional[Sequence[str]] = None) -> None:
        self.spec = spec
        self.pattern = pattern
        applicable = {'dkim': bool(spec.dkim), 'verification': bool(spec.verification_txt)}
        if checks:
            for check in checks:
                if check not in CHECKS:
                    raise RecordError('unknown check %r: choose from %s'
                                      % (check, ', '.join(CHECKS)))
                if not applicable.get(check, True):
                    raise RecordError('checks has %s, but there is no expected value for it: '
                                      'give %s (or records)'
                                      % (check, 'dkim' if check == 'dkim' else 'verification_txt'))
            self.checks = [c for c in CHECKS if c in checks]
        else:
            given = {'mta_sts': spec.mta_sts is not None, 'tls_rpt': spec.tls_rpt is not None}
            self.checks = [c for c in CHECKS if applicable.get(c, True) and
                           (c not in OPT_IN or given.get(c, False))]

    @property
    def domain(self) -> str:
        return self.spec.domain

    def questions(self) -> List[Key]:
        """The (name, type) queries each server is asked, for the selected checks."""
        out: List[Key] = []
        for check in self.checks:
            for q in self.questions_of(check):
                if q not in out:
                    out.append(q)
        return out

    def questions_of(self, check: str) -> List[Key]:
        s = self.spec
        if check == 'mx':
            return [(s.domain, 'MX')]
        if check in ('spf', 'verification'):
            return [(s.domain, 'TXT')]
        if check == 'autodiscover':
            return [(s.autodiscover_name, 'CNAME')]
        if check == 'dmarc':
            return [(s.dmarc_name, 'TXT')]
        if check == 'dnssec':  # asked by _dnssec, with the DO bit
            return []
        if check == 'mta_sts':
            return [(sts_name(s.domain), 'TXT'), (s.domain, 'MX')]
        if check == 'tls_rpt':
            return [(tlsrpt_name(s.domain), 'TXT')]
        return [(name, 'CNAME') for name in sorted(s.dkim)]

    def expected(self, check: str) -> Union[None, str, Dict[str, str]]:
        s = self.spec
        if check == 'mx':
            return mx_expectation(s.mx_host, self.pattern, s.primary, s.mx_preference)
        if check == 'autodiscover':
            return s.autodiscover_target
        if check == 'spf':
            return 'one v=spf1 record with include:%s, at most %d DNS lookups' % (
                s.spf_include, SPF_LOOKUP_LIMIT)
        if check == 'dmarc':
            return s.dmarc or 'a valid DMARC record (optional)'
        if check == 'dkim':
            return dict((dkim_selector(n), t) for n, t in sorted(s.dkim.items()))
        if check == 'dnssec':
            return 'unsigned, or signed with a chain of trust from the parent DS (or trust_anchor)'
        if check == 'mta_sts':
            if s.mta_sts is not None and s.mta_sts.mode is not None:
                return 'mode %s, max_age %d, mx %s, served at %s, its id at %s' % (
                    s.mta_sts.mode, s.mta_sts.max_age,
                    ', '.join(s.mta_sts.mx) if s.mta_sts.mx is not None else 'the MX hosts',
                    policy_url(s.domain), sts_name(s.domain))
            return 'one v=STSv1 record, and a policy at %s that names every MX' % (
                policy_url(s.domain))
        if check == 'tls_rpt':
            return s.tls_rpt.record() if s.tls_rpt is not None else 'one valid v=TLSRPTv1 record'
        return s.verification_txt

    def judge_mta_sts(self, answers: Mapping[Key, Observed], fetch: PolicyFetch) -> Outcome:
        """The mta_sts Outcome on one server; ``fetch`` gets the served policy."""
        observed = [answers[q] for q in self.questions_of('mta_sts')]
        for obs in observed:
            if obs.error:
                return Outcome(SKIP if obs.unchecked else FAIL, None, obs.error, answered=False)
        return check_mta_sts(observed[0].values or [], observed[1].values or [],
                             self.spec.domain, fetch, self.spec.mta_sts, observed[0].cname)

    def judge(self, check: str, answers: Mapping[Key, Observed], lookup: Lookup) -> Outcome:
        """The Outcome of ``check`` on one server, from its ``answers`` {(name, type): Observed}."""
        s = self.spec
        if check in ('dnssec', 'mta_sts'):  # judged by the engine (I/O), which replaces this
            return Outcome(SKIP, None, 'not judged')
        observed = [answers[q] for q in self.questions_of(check)]
        for obs in observed:
            if obs.error:
                return Outcome(SKIP if obs.unchecked else FAIL, None, obs.error, answered=False)
        # no error: each answer has its values, a list (empty for none)
        values = [obs.values or [] for obs in observed]
        if check == 'mx':
            return check_mx(values[0], s.mx_host, self.pattern, s.primary,
                            s.mx_preference)
        if check == 'autodiscover':
            return check_cname(s.autodiscover_name, values[0],
                               s.autodiscover_target)
        if check == 'spf':
            return check_spf(values[0], s.spf_include, lookup, s.domain)
        if check == 'dmarc':
            return check_dmarc(values[0], s.dmarc, s.dmarc_name, lookup)
        if check == 'tls_rpt':
            return check_tls_rpt(values[0], s.domain, s.tls_rpt)
        if check == 'dkim':
            found: Dict[str, Optional[str]] = {}
            for question, answer in zip(self.questions_of('dkim'), values):
                found[question[0]] = answer[0] if answer else None
            return check_dkim(found, s.dkim)
        return check_verification(values[0], s.verification_txt)


def summarise(outcomes: Mapping[str, Outcome]) -> str:
    """The status of one check over all servers: any fail fails it, then warn, then pass."""
    statuses = [o.status for o in outcomes.values()]
    for status in (FAIL, WARN, PASS):
        if status in statuses:
            return status
    return SKIP


def judge_all(expect: Expectation, observed: Mapping[str, Mapping[Key, Observed]],
              lookup: Lookup) -> Dict[str, Dict[str, Outcome]]:
    """{check: {server label: Outcome}} for every selected check on every server.

    ``observed``: {server label: {(name, type): Observed}} in the order to report the servers.
    """
    return dict((check, dict((label, expect.judge(check, answers, lookup))
                             for label, answers in observed.items()))
                for check in expect.checks)


def evaluate(expect: Expectation, observed: Mapping[str, Mapping[Key, Observed]],
             lookup: Lookup) -> List[Dict[str, Any]]:
    """Every selected check on every server (see :func:`judge_all`), as the list the module
    returns: [{name, status, message, expected, servers: {label: outcome dict}}]."""
    return report(expect, judge_all(expect, observed, lookup))


def report(expect: Expectation,
           judged: Mapping[str, Mapping[str, Outcome]]) -> List[Dict[str, Any]]:
    """The ``checks`` return value from :func:`judge_all`'s verdicts."""
    results = []
    for check in CHECKS:
        if check not in judged:
            continue
        outcomes = judged[check]
        status = summarise(outcomes)
        groups: List[Tuple[Tuple[str, str], List[str]]] = []
        for label, outcome in outcomes.items():
            for group in groups:
                if group[0] == (outcome.status, outcome.message):
                    group[1].append(label)
                    break
            else:
                groups.append(((outcome.status, outcome.message), [label]))
        if not outcomes:
            message = 'no server to ask'
        elif len(groups) == 1:
            message = groups[0][0][1]
        else:
            message = '; '.join('%s: %s' % (', '.join(labels), key[1]) for key, labels in groups)
        results.append({'name': check, 'status': status, 'message': message,
                        'expected': expect.expected(check),
                        'servers': dict((label, o.to_dict()) for label, o in outcomes.items())})
    return results


# -- what the servers that fail serve, in one line ---------------------------------------------
SHOWN_VALUE = 100  # characters of one served value in the one-line summary


def _short(value: Any) -> str:
    value = str(value)
    return value if len(value) <= SHOWN_VALUE else value[:SHOWN_VALUE - 3] + '...'


def served_text(check: str, outcome: Outcome) -> str:
    """What one server serves for ``check``, in a few words: ``MX 10 mail.contoso.com.``,
    ``no autodiscover CNAME``, ``SPF "v=spf1 ... -all"``; why it gave no answer, when so."""
    found = outcome.found
    if not outcome.answered:
        return _short(outcome.message)
    if check == 'mx':
        return 'MX %s' % ', '.join(found) if found else 'no MX'
    if check == 'autodiscover':
        return 'autodiscover CNAME %s' % _short(found) if found else 'no autodiscover CNAME'
    if check in ('spf', 'dmarc'):
        kind = check.upper()
        return '%s %s' % (kind, ' | '.join('"%s"' % _short(v) for v in found)) if found \
            else 'no %s record' % kind
    if check == 'dkim':
        return 'DKIM %s' % ', '.join('%s %s' % (selector, 'CNAME ' + target if target
                                                else 'missing')
                                     for selector, target in sorted(found.items()))
    if check == 'dnssec':
        return 'DNSSEC: %s' % _short(outcome.message)
    if check == 'mta_sts':
        records = found.get('records') if isinstance(found, dict) else None
        return 'MTA-STS %s' % ' | '.join('"%s"' % _short(v) for v in records) if records \
            else 'no MTA-STS record'
    if check == 'tls_rpt':
        return 'TLS-RPT %s' % ' | '.join('"%s"' % _short(v) for v in found) if found \
            else 'no TLS-RPT record'
    return 'TXT %s' % ', '.join(found) if found else 'no MS= TXT'


def behind(judged: Mapping[str, Mapping[str, Outcome]]) -> Dict[str, List[str]]:
    """{server label: [what it serves, per failing check]} for each server that fails a check,
    in the order of the servers; a server that gave one reason for all its failures (no
    answer) gets that reason once."""
    lagging: Dict[str, List[str]] = {}
    for check in CHECKS:
        for label, outcome in judged.get(check, {}).items():
            if outcome.status == FAIL:
                text = served_text(check, outcome)
                if text not in lagging.setdefault(label, []):
                    lagging[label].append(text)
    labels = list(next(iter(judged.values()), {}))
    return dict((label, lagging[label]) for label in labels if label in lagging)


def summary_line(judged: Mapping[str, Mapping[str, Outcome]]) -> str:
    """One line for a round of waiting: how many servers fail, and what each of them serves."""
    total = len(next(iter(judged.values()), {}))
    lagging = behind(judged)
    if not lagging:
        return '%d of %d server%s serve%s the expected records' % (
            total, total, '' if total == 1 else 's', 's' if total == 1 else '')
    return '%d of %d server%s behind: %s' % (
        len(lagging), total, '' if total == 1 else 's',
        '; '.join('%s serves %s' % (label, ', '.join(texts)) if _answered(judged, label)
                  else '%s: %s' % (label, ', '.join(texts))
                  for label, texts in lagging.items()))


def _answered(judged: Mapping[str, Mapping[str, Outcome]], label: str) -> bool:
    """False when the server gave no usable answer to any question of a failing check."""
    return any(outcomes[label].answered for outcomes in judged.values()
               if label in outcomes and outcomes[label].status == FAIL)


def failure_message(domain: str, checks: List[Dict[str, Any]], rounds: int, elapsed: float,
                    wait_timeout: Optional[float]) -> str:
    """The task's msg when a check failed: which checks on which servers, found vs expected,
    and what to do."""
    parts: List[str] = []
    for check in checks:
        if check['status'] != FAIL:
            continue
        bad = [(label, o) for label, o in check['servers'].items() if o['status'] == FAIL]
        groups: List[Tuple[str, List[str]]] = []
        for label, o in bad:
            for group in groups:
                if group[0] == o['message']:
                    group[1].append(label)
                    break
            else:
                groups.append((o['message'], [label]))
        parts.append('%s failed on %s' % (check['name'], '; '.join(
            '%s: %s' % (', '.join(labels), msg) for msg, labels in groups)))
    unreachable = any('no answer' in p or 'refused' in p or 'network' in p for p in parts)
    hints = []
    if unreachable:
        hints.append('check nameservers, port and firewalls for the servers that did not answer')
    if wait_timeout:
        hints.append('if the records were just changed, the secondaries may still be catching up '
                     '(NOTIFY/IXFR, SOA refresh): raise wait_timeout')
    else:
        hints.append('if the records were just changed, let the check wait for every server: '
                     'set wait_timeout, or repeat the task with until and retries')
    hints.append('publish missing or wrong records with exchangeonline.mail.mail_dns')
    waited = ' after %d round(s) in %.1f s' % (rounds, elapsed) if wait_timeout else ''
    return '%s: %d check(s) failed%s. %s Hint: %s.' % (
        domain, len(parts), waited, ' '.join(_sentence(p) for p in parts), '; '.join(hints))


def _sentence(text: str) -> str:
    return text if text.endswith('.') else text + '.'
