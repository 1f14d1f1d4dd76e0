# -*- coding: utf-8 -*-
# Copyright (c) exchangeonline.mail contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# Private to this collection: may change without notice.
"""The mail DNS policy: what the records of a migration to Exchange Online are, in one place.

Parsing and rendering of SPF (RFC 7208), DMARC (RFC 7489), MX and DKIM selector CNAMEs, the
module input as one :class:`Spec` (explicit options merged with ``records``), and the expected
values of each pattern. The planner (``_patterns``) and the checker (``_checks``) both read the
policy from here, so mail_dns writes what mail_dns_check reads. No I/O.
"""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import re

from ansible_collections.exchangeonline.mail.plugins.module_utils._mta_sts import (
    MtaStsWanted,
    TlsRptWanted,
    sts_name,
    tlsrpt_name,
)
from ansible_collections.exchangeonline.mail.plugins.module_utils._records import (
    RecordError,
    check_txt_input,
    mx_value,
    name_text,
    parse_mx,
    rrset_from_values,
    to_name,
    validate_hostname,
)

try:
    from typing import Any, Dict, Iterable, List, Mapping, Optional, Set, Tuple, Union
except ImportError:  # pragma: no cover
    pass

# 'none': no migration change, only the records given (verification TXT, DKIM, DMARC).
PATTERNS = ('full', 'partial', 'legacy_forward', 'none')
DEFAULT_TTL = 3600
EXO_SPF_INCLUDE = 'spf.protection.outlook.com'
EXO_AUTODISCOVER = 'autodiscover.outlook.com.'
EXO_DKIM_SELECTORS = ('selector1', 'selector2')
SPF_ALL_CHOICES = ('-all', '~all', '?all')
# MX host suffixes Exchange Online hands out (worldwide, new format, GCC High/DoD, 21Vianet).
EXO_MX_SUFFIXES = (
    '.mail.protection.outlook.com.',
    '.mx.microsoft.',
    '.mail.protection.office365.us.',
    '.mail.protection.partner.outlook.cn.',
)
DKIM_SELECTOR = re.compile(r'[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?'
                           r'(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*')


# -- names ------------------------------------------------------------------------------------
def is_inside(name, apex):
    # type: (str, str) -> bool
    """True when ``name`` is ``apex`` or a name below it (both DNS name texts)."""
    return to_name(name).is_subdomain(to_name(apex))


def require_inside(domain, zone):
    # type: (str, str) -> None
    """RecordError unless ``domain`` is ``zone`` or below it: records written into another
    zone would never be served."""
    if not is_inside(domain, zone):
        raise RecordError('domain %s is not inside zone %s' % (domain, zone))


# -- MX ---------------------------------------------------------------------------------------
def exo_mx_host(domain):
    # type: (str) -> str
    """The classic EXO MX host of ``domain`` (a name text): dots to dashes.

    Graph's value is always preferred: domains added to a tenant after 1 July 2026 get
    ``*.mx.microsoft`` hosts (Message Center MC1048624), which cannot be computed.
    """
    return domain.rstrip('.').replace('.', '-') + '.mail.protection.outlook.com.'


def is_exo_mx(host):
    # type: (str) -> bool
    host = host.lower()
    if not host.endswith('.'):
        host += '.'
    return any(host.endswith(s) for s in EXO_MX_SUFFIXES)


def render_mx(record):
    # type: (Tuple[int, str]) -> str
    return '%d %s' % record


class MxSplit:
    """An MX rrset split for a tenant: ``ours`` (the tenant's ``mx_host``), ``other_exo`` (other
    Exchange Online hosts) and ``legacy`` (everything else); each a sorted list of
    (preference, host)."""

    __slots__ = ('ours', 'other_exo', 'legacy')

    def __init__(self, ours, other_exo, legacy):
        # type: (List[Tuple[int, str]], List[Tuple[int, str]], List[Tuple[int, str]]) -> None
        self.ours = ours
        self.other_exo = other_exo
        self.legacy = legacy

    @property
    def records(self):
        # type: () -> List[Tuple[int, str]]
        return sorted(self.ours + self.other_exo + self.legacy)


def split_mx(values, mx_host):
    # type: (Any, str) -> MxSplit
    """The one split of canonical MX values (``'<pref> <host>'``) into the tenant's, other
    Exchange Online and legacy MX."""
    records = sorted(parse_mx(v) for v in values)
    return MxSplit([r for r in records if r[1] == mx_host],
                   [r for r in records if r[1] != mx_host and is_exo_mx(r[1])],
                   [r for r in records if r[1] != mx_host and not is_exo_mx(r[1])])


def exo_in_order(primary, exo_preference, legacy_preferences):
    # type: (str, int, List[int]) -> bool
    """The partial pattern's order: with primary ``exo`` the Exchange Online MX has a lower
    preference number than every legacy MX; with ``legacy`` a higher one than the lowest."""
    if primary == 'exo':
        return exo_preference < min(legacy_preferences)
    return exo_preference > min(legacy_preferences)


def mx_expectation(mx_host, pattern=None, primary='legacy', preference=None):
    # type: (str, Optional[str], str, Optional[int]) -> str
    """The expected MX of ``pattern`` in words (None: the Exchange Online MX among them)."""
    host = mx_host if preference is None else '%d %s' % (preference, mx_host)
    if pattern == 'full':
        return 'only %s' % host
    if pattern == 'partial':
        return '%s and the legacy MX, %s preferred' % (
            host, 'Exchange Online' if primary == 'exo' else 'legacy')
    if pattern == 'legacy_forward':
        return 'the existing (legacy) MX, untouched'
    return '%s among the MX records' % host


# -- DKIM -------------------------------------------------------------------------------------
def dkim_name(selector, domain):
    # type: (str, str) -> str
    """The owner name of a DKIM selector (RFC 6376 3.6.2.1): ``<selector>._domainkey.<domain>``."""
    return '%s._domainkey.%s' % (selector, domain)


def dkim_selector(name):
    # type: (str) -> str
    """The selector of a ``<selector>._domainkey.<domain>`` owner name."""
    return name.split('._domainkey.')[0]


def is_exo_dkim_target(target):
    # type: (str) -> bool
    target = target.lower()
    return '._domainkey.' in target and (
        target.endswith('.onmicrosoft.com.') or target.endswith('.dkim.mail.microsoft.'))


def is_exo_dkim_name(name, domain):
    # type: (str, str) -> bool
    """True for Exchange Online's own selector names of ``domain`` (selector1, selector2...)."""
    return name.startswith('selector') and name.endswith('._domainkey.' + domain)


# -- SPF (RFC 7208) ---------------------------------------------------------------------------
_SPF_MODIFIER = re.compile(r'^([A-Za-z][A-Za-z0-9._-]*)=(.*)$')


class SpfTerm:
    """One term of an SPF record: ``text`` as written; ``kind`` ``mechanism`` or ``modifier``;
    ``qualifier`` (``''`` when none); ``name`` lower-case (CIDR length dropped); ``arg`` the
    domain-spec or value after ``:``/``=`` (None when there is none)."""

    __slots__ = ('text', 'kind', 'qualifier', 'name', 'arg')

    def __init__(self, text):
        # type: (str) -> None
        self.text = text
        m = _SPF_MODIFIER.match(text)
        if m:
            self.kind, self.qualifier = 'modifier', ''
            self.name = m.group(1).lower()  # type: str
            self.arg = m.group(2)  # type: Optional[str]
            return
        self.kind = 'mechanism'
        self.qualifier = text[0] if text[:1] in '+-~?' else ''
        name, sep, arg = text[len(self.qualifier):].partition(':')
        name = name.lower()
        if '/' in name:  # a/24, mx//64
            name = name.split('/', 1)[0]
        if sep and name in ('a', 'mx'):
            arg = arg.split('/', 1)[0]
        self.name, self.arg = name, arg if sep else None

    @property
    def passes(self):
        # type: () -> bool
        return self.qualifier in ('', '+')

    def include_target(self, any_qualifier=False):
        # type: (bool) -> Optional[str]
        """The domain of an ``include:`` that passes (bare or ``+``); with ``any_qualifier``
        also of ``-include:``/``~include:``/``?include:`` (which make a match fail)."""
        if self.kind == 'mechanism' and self.name == 'include' and self.arg is not None and \
                (any_qualifier or self.passes):
            return self.arg.lower().rstrip('.')
        return None

    @property
    def is_all(self):
        # type: () -> bool
        return self.kind == 'mechanism' and self.name == 'all' and self.arg is None


class SpfRecord:
    """An SPF record: the version term as written and its terms. Records compare equal when
    their terms do, case-insensitively (RFC 7208 4.6.1); ``render`` joins them by one space."""

    __slots__ = ('version', 'terms')

    def __init__(self, version, terms):
        # type: (str, Iterable[SpfTerm]) -> None
        self.version = version
        self.terms = list(terms)

    def render(self):
        # type: () -> str
        return ' '.join([self.version] + [t.text for t in self.terms])

    def _key(self):
        # type: () -> Tuple[str, ...]
        return tuple(t.text.lower() for t in self.terms)

    def __eq__(self, other):
        # type: (object) -> bool
        return isinstance(other, SpfRecord) and self._key() == other._key()

    def __ne__(self, other):
        # type: (object) -> bool
        return not self == other

    def __hash__(self):
        # type: () -> int
        return hash(self._key())

    def __repr__(self):
        # type: () -> str
        return 'SpfRecord(%r)' % self.render()


def parse_spf(value):
    # type: (str) -> Optional[SpfRecord]
    """The SPF record in a TXT value, or None when it is not one: RFC 7208 4.5 keeps only
    values that begin with the version ``v=spf1`` (any case) followed by a space or the end;
    terms are separated by spaces (section 12: ``1*SP``)."""
    if value[:6].lower() != 'v=spf1' or value[6:7] not in ('', ' '):
        return None
    return SpfRecord(value[:6], [SpfTerm(t) for t in value[6:].split(' ') if t])


def is_spf(value):
    # type: (str) -> bool
    return parse_spf(value) is not None


def _spf_record(value):
    # type: (str) -> SpfRecord
    """The SPF record of ``value``, which the caller knows to be one (ValueError if not)."""
    record = parse_spf(value)
    if record is None:
        raise ValueError('not a v=spf1 record: %r' % (value,))
    return record


def spf_terms(record):
    # type: (str) -> List[Tuple[str, str, Optional[str]]]
    """[(kind, name, argument or None)] of a v=spf1 record (see :class:`SpfTerm`)."""
    return [(t.kind, t.name, t.arg) for t in _spf_record(record).terms]


def spf_includes(value):
    # type: (str) -> List[str]
    """The domains a v=spf1 record includes as a pass, in order."""
    return [target for target in (t.include_target() for t in _spf_record(value).terms)
            if target]


def spf_has_include(value, include):
    # type: (str, str) -> bool
    """True when ``include`` is included as a pass, and no other term includes it otherwise."""
    include = include.lower().rstrip('.')
    terms = _spf_record(value).terms
    return any(t.include_target() == include for t in terms) and not any(
        t.include_target(True) == include and not t.passes for t in terms)


def spf_merge(value, include, spf_all=None):
    # type: (str, str, Optional[str]) -> str
    """``value`` with ``include:<include>`` added before ``all``/``redirect=``; every other
    mechanism and modifier stays where it was. ``spf_all`` replaces the ``all`` qualifier.
    An include of it with a failing qualifier (``-include:``) becomes a plain include."""
    record = _spf_record(value)
    terms = record.terms
    changed = False
    target = include.lower().rstrip('.')
    for i, t in enumerate(terms):
        if t.include_target(True) == target and not t.passes:
            terms[i] = SpfTerm('include:%s' % include)
            changed = True
    if not spf_has_include(record.render(), include):
        changed = True
        pos = len(terms)
        for i, t in enumerate(terms):
            if t.is_all or (t.kind == 'modifier' and t.name == 'redirect'):
                pos = i
                break
        terms.insert(pos, SpfTerm('include:%s' % include))
    if spf_all:
        alls = [i for i, t in enumerate(terms) if t.is_all]
        if alls and terms[alls[0]].text.lower() != spf_all:
            terms[alls[0]] = SpfTerm(spf_all)
            changed = True
        elif not alls:
            terms.append(SpfTerm(spf_all))
            changed = True
    # untouched records keep their exact spelling (spacing, case)
    return record.render() if changed else value


def spf_remove_include(value, include):
    # type: (str, str) -> Optional[str]
    """``value`` without the include; None when only ``all`` (or nothing) would remain."""
    include = include.lower().rstrip('.')
    record = _spf_record(value)
    record.terms = [t for t in record.terms if t.include_target(True) != include]
    if all(t.is_all for t in record.terms):
        return None
    return record.render()


def new_spf(include, spf_all):
    # type: (str, str) -> str
    return 'v=spf1 include:%s %s' % (include, spf_all)


# -- DMARC (RFC 7489) -------------------------------------------------------------------------
_WSP = ' \t'
DMARC_POLICIES = ('none', 'quarantine', 'reject')
_MAILTO = re.compile(r'^mailto:[^@\s,;!]+@[^@\s,;!]+\.[^@\s,;!]+(![0-9]+[kmgt]?)?$', re.I)


def dmarc_tags(record):
    # type: (str) -> List[Tuple[str, Optional[str]]]
    """[(tag, value or None)] of a tag-value list (RFC 7489 6.3/6.4, RFC 6376 3.2): parts
    between ``;``, white space around tags, ``=`` and values removed, empty parts skipped."""
    tags = []  # type: List[Tuple[str, Optional[str]]]
    for part in record.split(';'):
        part = part.strip(_WSP)
        if not part:
            continue
        key, sep, value = part.partition('=')
        tags.append((key.strip(_WSP), value.strip(_WSP) if sep else None))
    return tags


class DmarcRecord:
    """A DMARC record as its tags in order. Two records are the same policy when their tags
    are: tag names compare case-insensitively (the ABNF of RFC 7489 6.4 writes them as quoted
    strings), values exactly, so white space around ``=`` and ``;`` and a final ``;`` do not
    matter. ``render`` gives the canonical spelling ``v=DMARC1; p=reject``."""

    __slots__ = ('tags',)

    def __init__(self, tags):
        # type: (Iterable[Tuple[str, Optional[str]]]) -> None
        self.tags = tuple(tags)

    @property
    def version(self):
        # type: () -> Optional[str]
        return self.tags[0][1]

    def render(self):
        # type: () -> str
        return '; '.join(k if v is None else '%s=%s' % (k, v) for k, v in self.tags)

    def _key(self):
        # type: () -> Tuple[Tuple[str, Optional[str]], ...]
        return tuple((k.lower(), v) for k, v in self.tags)

    def __eq__(self, other):
        # type: (object) -> bool
        return isinstance(other, DmarcRecord) and self._key() == other._key()

    def __ne__(self, other):
        # type: (object) -> bool
        return not self == other

    def __hash__(self):
        # type: () -> int
        return hash(self._key())

    def __repr__(self):
        # type: () -> str
        return 'DmarcRecord(%r)' % self.render()

    def problems(self):
        # type: () -> Tuple[List[str], List[str]]
        """(problems, notes) against RFC 7489 section 6.3/6.4."""
        problems, notes = [], []  # type: List[str], List[str]
        if self.version != 'DMARC1':
            problems.append('it must start with v=DMARC1 (exactly so)')
        rest = self.tags[1:]
        if not any(tag[0].lower() == 'p' for tag in rest):
            problems.append('the p= tag (none, quarantine or reject) is missing')
        elif rest[0][0].lower() != 'p':
            problems.append('p= must come right after v=DMARC1')
        seen = set()  # type: Set[str]
        for key, value in rest:
            k = key.lower()
            if value is None:
                problems.append('%r is not a tag=value pair' % key)
                continue
            if k in seen:
                problems.append('%s= appears more than once' % key)
                continue
            seen.add(k)
            bad = _dmarc_tag_problem(k, value)
            if bad is False:
                notes.append('unknown tag %s= (receivers ignore it; a typo?)' % key)
            elif bad:
                problems.append('%s=%s: %s' % (key, value, bad))
        return problems, notes


def dmarc_report_domains(record, domain):
    # type: (DmarcRecord, str) -> List[str]
    """The domains of the record's rua=/ruf= mailto: destinations that are not ``domain`` or
    below it, nor a parent of it (a simple stand-in for RFC 7489 section 7.1's organizational
    domain), in order, each once: their owners must authorize the reports."""
    own = domain.rstrip('.').lower()
    out = []  # type: List[str]
    for key, value in record.tags[1:]:
        if key.lower() not in ('rua', 'ruf') or not value:
            continue
        for uri in value.split(','):
            uri = uri.strip()
            if not uri.lower().startswith('mailto:') or '@' not in uri:
                continue
            # mailto:addr@dest.example!10m: the size limit after "!" is not part of the address
            dest = uri.rsplit('@', 1)[1].split('!', 1)[0].strip().rstrip('.').lower()
            if not dest or dest in out:
                continue
            related = dest == own or dest.endswith('.' + own) or own.endswith('.' + dest)
            if not related:
                out.append(dest)
    return out


def parse_dmarc(value):
    # type: (str) -> Optional[DmarcRecord]
    """The DMARC record in a TXT value, or None when it is not one.

    The one recogniser: a tag-value list whose first tag is ``v`` with the value ``DMARC1``
    (RFC 7489 6.6.3: other records are discarded). ``DMARC1`` is recognised in any case,
    as receivers such as OpenDMARC do, so ``v=dmarc1`` is a DMARC record with a problem (6.4
    spells it by its octets), never a second record next to one."""
    tags = dmarc_tags(value)
    if tags and tags[0][0].lower() == 'v' and (tags[0][1] or '').lower() == 'dmarc1':
        return DmarcRecord(tags)
    return None


def dmarc_problems(record):
    # type: (str) -> Tuple[List[str], List[str]]
    """(problems, notes) of a TXT value meant as a DMARC record."""
    parsed = parse_dmarc(record)
    if parsed is None:
        tags = dmarc_tags(record)
        if tags and tags[0][0].lower() == 'v':
            tags = tags[1:]
        # the rest judged as if v=DMARC1 came first, so every problem is named at once
        problems, notes = DmarcRecord([('v', 'DMARC1')] + tags).problems()
        return ['it must start with v=DMARC1 (exactly so)'] + problems, notes
    return parsed.problems()


def _dmarc_tag_problem(k, value):
    # type: (str, str) -> Union[None, str, bool]
    """None when fine, a message when bad, False for an unknown tag."""
    v = value.lower()
    if k in ('p', 'sp', 'np'):
        return None if v in DMARC_POLICIES else 'must be none, quarantine or reject'
    if k == 'pct':
        return None if v.isdigit() and 0 <= int(v) <= 100 else 'must be a number from 0 to 100'
    if k in ('adkim', 'aspf'):
        return None if v in ('r', 's') else 'must be r (relaxed) or s (strict)'
    if k in ('rua', 'ruf'):
        bad = [u.strip() for u in value.split(',') if not _MAILTO.match(u.strip())]
        return 'not a mailto: address: %s' % ', '.join(bad) if bad else None
    if k == 'fo':
        bad = [o for o in v.split(':') if o.strip() not in ('0', '1', 'd', 's')]
        return 'options are 0, 1, d and s separated by colons' if bad else None
    if k == 'rf':
        return None if all(f.strip() == 'afrf' for f in v.split(':')) else 'must be afrf'
    if k == 'ri':
        return None if v.isdigit() and int(v) < 2 ** 32 else 'must be a number of seconds'
    if k == 'v':
        return 'v= must be the first tag only'
    return False


# -- the module input -------------------------------------------------------------------------
class Spec:
    """The policy of one domain from the module input, normalised; used as it is by the planner
    and the checker. Raises RecordError on bad input."""

    def __init__(self,
                 domain,  # type: str
                 pattern='full',  # type: str
                 state='present',  # type: str
                 mx_host=None,  # type: Optional[str]
                 mx_preference=None,  # type: Optional[int]
                 legacy_mx=None,  # type: Optional[List[Any]]
                 primary='legacy',  # type: str
                 spf='merge',  # type: str
                 spf_include=EXO_SPF_INCLUDE,  # type: str
                 spf_all=None,  # type: Optional[str]
                 autodiscover_target=EXO_AUTODISCOVER,  # type: str
                 dkim=None,  # type: Optional[Mapping[Any, Any]]
                 verification_txt=None,  # type: Optional[str]
                 dmarc=None,  # type: Optional[str]
                 mta_sts=None,  # type: Optional[Mapping[str, Any]]
                 tls_rpt=None,  # type: Optional[List[str]]
                 ttl=None,  # type: Union[None, int, str]
                 on_conflict='fail',  # type: str
                 ):
        # type: (...) -> None
        # legacy_mx and dkim are the module input as given: their items are checked here
        self.domain = name_text(validate_hostname(domain, 'domain'))
        if pattern not in PATTERNS:
            raise RecordError('unknown pattern %r: choose one of %s' % (pattern, ', '.join(PATTERNS)))
        self.pattern = pattern
        self.state = state
        self.mx_host = name_text(validate_hostname(mx_host, 'mx_host')) if mx_host \
            else exo_mx_host(self.domain)
        self.mx_host_computed = not mx_host
        self.mx_preference = mx_preference
        if mx_preference is not None:
            mx_value(self.mx_host, mx_preference, 'mx')  # range check
        self.legacy_mx = None  # type: Optional[List[str]]
        if legacy_mx is not None:
            self.legacy_mx = []
            for index, item in enumerate(legacy_mx):
                if not isinstance(item, dict) or 'host' not in item:
                    raise RecordError('legacy_mx entries need host and preference, got %r' % (item,))
                self.legacy_mx.append(mx_value(item['host'], item.get('preference', 10),
                                               'legacy_mx[%d]' % index))
            if pattern == 'partial' and not self.legacy_mx:
                raise RecordError('legacy_mx is empty: the partial pattern keeps at least one '
                                  'legacy MX')
        if primary not in ('legacy', 'exo'):
            raise RecordError("primary must be 'legacy' or 'exo', got %r" % (primary,))
        self.primary = primary
        if spf not in ('merge', 'replace', 'keep'):
            raise RecordError("spf must be merge, replace or keep, got %r" % (spf,))
        self.spf = 'keep' if pattern == 'none' else spf
        check_txt_input(spf_include, 'spf_include')
        if ' ' in spf_include.strip() or ':' in spf_include:
            raise RecordError('spf_include is a domain name such as spf.protection.outlook.com, '
                              'got %r' % spf_include)
        self.spf_include = name_text(to_name(spf_include, what='spf_include')).rstrip('.')
        if spf_all is not None and spf_all not in SPF_ALL_CHOICES:
            raise RecordError('spf_all must be one of %s, got %r'
                              % (', '.join(SPF_ALL_CHOICES), spf_all))
        self.spf_all = spf_all
        self.autodiscover_target = name_text(validate_hostname(autodiscover_target,
                                                               'autodiscover_target'))
        self.dkim = {}  # type: Dict[str, str]
        for selector, target in sorted((dkim or {}).items(), key=lambda kv: str(kv[0])):
            if not isinstance(selector, str) or not isinstance(target, str):
                raise RecordError('dkim maps selector names to CNAME targets (strings), got '
                                  '%r: %r' % (selector, target))
            if not DKIM_SELECTOR.fullmatch(selector):
                raise RecordError('dkim selector %r is not a selector (RFC 6376 3.1: letters, '
                                  'digits and hyphens in dot-separated labels, such as '
                                  'selector1)' % selector[:80])
            # validates the selector
            label = to_name(dkim_name(selector, self.domain), what='dkim selector')
            self.dkim[name_text(label)] = name_text(validate_hostname(target, 'dkim target'))
        self.verification_txt = None  # type: Optional[str]
        if verification_txt:
            self.verification_txt = check_txt_input(verification_txt, 'verification_txt').strip()
        self.dmarc = None  # type: Optional[str]
        self.dmarc_record = None  # type: Optional[DmarcRecord]
        if dmarc:
            self.dmarc = check_txt_input(dmarc, 'dmarc').strip()
            self.dmarc_record = parse_dmarc(self.dmarc)
            if self.dmarc_record is None or self.dmarc_record.version != 'DMARC1':
                raise RecordError('dmarc must start with v=DMARC1, got %r' % dmarc)
            problems = self.dmarc_record.problems()[0]
            if problems:
                raise RecordError('dmarc %r is not a valid DMARC record: %s'
                                  % (self.dmarc, '; '.join(problems)))
        self.mta_sts = None if mta_sts is None else MtaStsWanted(mta_sts)
        self.tls_rpt = None if tls_rpt is None else TlsRptWanted(tls_rpt)
        if ttl is not None and not 0 <= int(ttl) <= 2147483647:
            raise RecordError('ttl must be from 0 to 2147483647, got %r' % (ttl,))
        self.ttl = None if ttl is None else int(ttl)
        if on_conflict not in ('fail', 'replace'):
            raise RecordError("on_conflict must be 'fail' or 'replace', got %r" % (on_conflict,))
        self.on_conflict = on_conflict

    @classmethod
    def from_params(cls, params, state='present'):
        # type: (Mapping[str, Any], str) -> Spec
        """The Spec of module parameters, explicit options merged with ``records`` (see
        :func:`with_records`); options a module does not have take their defaults."""
        p = with_records(params)
        return cls(
            p['domain'], pattern=p.get('pattern') or 'full', state=state, mx_host=p.get('mx_host'),
            mx_preference=p.get('mx_preference'), legacy_mx=p.get('legacy_mx'),
            primary=p.get('primary') or 'legacy', spf=p.get('spf') or 'merge',
            spf_include=p.get('spf_include') or EXO_SPF_INCLUDE, spf_all=p.get('spf_all'),
            autodiscover_target=p.get('autodiscover_target') or EXO_AUTODISCOVER,
            dkim=p.get('dkim'), verification_txt=p.get('verification_txt'), dmarc=p.get('dmarc'),
            mta_sts=p.get('mta_sts'), tls_rpt=p.get('tls_rpt'), ttl=p.get('ttl'),
            on_conflict=p.get('on_conflict') or 'fail')

    @property
    def autodiscover_name(self):
        # type: () -> str
        return 'autodiscover.' + self.domain

    @property
    def dmarc_name(self):
        # type: () -> str
        return '_dmarc.' + self.domain

    def is_our_dmarc(self, value):
        # type: (str) -> bool
        """True when the TXT value is the DMARC record asked for, however it is spelled."""
        return self.dmarc_record is not None and parse_dmarc(value) == self.dmarc_record

    def names(self):
        # type: () -> List[str]
        """Every owner name the plan may touch; the engine reads all rrsets at these names."""
        dkim = set(self.dkim)
        if self.state == 'absent':  # Exchange Online's own selectors, given or not
            dkim.update(dkim_name(s, self.domain) for s in EXO_DKIM_SELECTORS)
        names = [self.domain, self.autodiscover_name, self.dmarc_name] + sorted(dkim)
        # _mta-sts is read whenever the MX may change: its policy must follow the MX
        if self.mta_sts is not None or self.pattern in ('full', 'partial') or \
                self.state == 'absent':
            names.append(sts_name(self.domain))
        if self.tls_rpt is not None:
            names.append(tlsrpt_name(self.domain))
        return names


def with_records(params):
    # type: (Mapping[str, Any]) -> Dict[str, Any]
    """``params`` with the options found in ``records`` filled in where the option itself is
    not given: an explicit option always wins."""
    p = dict(params)
    for option, value in options_from_records(p.get('records'), p.get('domain')).items():
        if p.get(option) is None:
            p[option] = value
    return p


def options_from_records(records, domain=None):
    # type: (Any, Optional[str]) -> Dict[str, Any]
    """mail_dns options from expected rrsets ({name, type, ttl, values}, as domain_info returns):
    MX host, SPF include, autodiscover target, DKIM targets and verification TXT. Every entry is
    checked as an rrset first, so a malformed one is named, not half used; with ``domain``,
    every name must be the domain or below it. Two entries that give one option two values
    are refused: which one is meant cannot be guessed."""
    out = {}  # type: Dict[str, Any]
    given = {}  # type: Dict[str, Tuple[str, str]]
    if records is not None and not isinstance(records, list):
        raise RecordError('records must be a list of {name, type, ttl, values}, got %r'
                          % (records,))
    apex = name_text(to_name(domain, what='domain')) if domain else None
    for index, rr in enumerate(records or []):
        what = 'records[%d]' % index
        if not isinstance(rr, dict) or not isinstance(rr.get('type'), str) or \
                not isinstance(rr.get('name'), str):
            raise RecordError('%s needs name and type (strings) and values, got %r' % (what, rr))
        rdtype = rr['type'].upper()
        name = name_text(to_name(rr['name'], what='%s.name' % what))
        if apex is not None and not is_inside(name, apex):
            raise RecordError('%s.name %s is not %s or a name below it: these are records of '
                              'another domain' % (what, name, apex))
        values = rr.get('values')
        if isinstance(values, str):
            values = [values]
        if not isinstance(values, list) or not values or \
                not all(isinstance(v, str) for v in values):
            raise RecordError('%s.values must be a non-empty list of strings, got %r'
                              % (what, values))
        ttl = rr.get('ttl', DEFAULT_TTL)
        if isinstance(ttl, bool) or not isinstance(ttl, int) and not (
                isinstance(ttl, str) and ttl.strip().isdigit()):
            raise RecordError('%s.ttl must be a whole number of seconds, got %r' % (what, ttl))
        if not 0 <= int(ttl) <= 2147483647:
            raise RecordError('%s.ttl must be from 0 to 2147483647, got %s' % (what, ttl))
        if rdtype not in ('MX', 'TXT', 'CNAME'):
            continue  # SRV and others: not part of a mail migration
        for value in rrset_from_values(name, rdtype, int(ttl), values, what).sorted_values():
            option = None
            if rdtype == 'MX':
                option, value = 'mx_host', parse_mx(value)[1]
            elif rdtype == 'TXT' and is_spf(value):
                incs = spf_includes(value)
                if incs:
                    option, value = 'spf_include', incs[0]
            elif rdtype == 'TXT' and value.startswith('MS='):
                option = 'verification_txt'
            elif rdtype == 'CNAME' and name.startswith('autodiscover.'):
                option = 'autodiscover_target'
            elif rdtype == 'CNAME' and '._domainkey.' in name:
                option = 'dkim ' + dkim_selector(name)
            if option is None:
                continue
            if option in given and given[option][1] != value:
                raise RecordError('%s and %s give %s two values (%s, %s): keep one, or give the '
                                  'option itself' % (given[option][0], what, option,
                                                     given[option][1], value))
            given[option] = (what, value)
            if option.startswith('dkim '):
                out.setdefault('dkim', {})[option[5:]] = value
            else:
                out[option] = value
    return out
