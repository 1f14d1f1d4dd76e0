# -*- coding: utf-8 -*-
# Copyright (c) exchangeonline.mail contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# Private to this collection: may change without notice.
"""The pure planner: migration pattern + current rrsets -> the changes to make.

No I/O here. :func:`plan_changes` is what mail_dns runs before it sends anything, and again
after a concurrent change; the same plan drives check mode, diff, the return value and the
UPDATE message.
"""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import re

from ansible_collections.exchangeonline.mail.plugins.module_utils._records import (
    DNSSEC_TYPES,
    RRset,
    RecordError,
    check_txt_input,
    mx_value,
    name_text,
    parse_mx,
    rrset_from_values,
    to_name,
    validate_hostname,
)

# 'none': no migration change, only the records given (verification TXT, DKIM, DMARC).
PATTERNS = ('full', 'partial', 'legacy_forward', 'none')
DEFAULT_TTL = 3600
EXO_SPF_INCLUDE = 'spf.protection.outlook.com'
EXO_AUTODISCOVER = 'autodiscover.outlook.com.'
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
# Types at a name that a CNAME may not replace even with on_conflict=replace.
PROTECTED_TYPES = ('SOA', 'NS', 'DS')


def exo_mx_host(domain):
    """The classic EXO MX host of ``domain`` (a name text): dots to dashes.

    Graph's value is always preferred: domains added to a tenant after 1 July 2026 get
    ``*.mx.microsoft`` hosts (Message Center MC1048624), which cannot be computed.
    """
    return domain.rstrip('.').replace('.', '-') + '.mail.protection.outlook.com.'


def is_exo_mx(host):
    host = host.lower()
    if not host.endswith('.'):
        host += '.'
    return any(host.endswith(s) for s in EXO_MX_SUFFIXES)


def is_exo_dkim_target(target):
    target = target.lower()
    return '._domainkey.' in target and (
        target.endswith('.onmicrosoft.com.') or target.endswith('.dkim.mail.microsoft.'))


# -- SPF ------------------------------------------------------------------------------------------
def is_spf(value):
    v = value.strip().lower()
    return v == 'v=spf1' or v.startswith('v=spf1 ')


def _is_all(token):
    return token.lower().lstrip('+-~?') == 'all'


def _include_target(token, any_qualifier=False):
    """The domain of an ``include:`` term that passes (bare or ``+``); with ``any_qualifier``
    also of ``-include:``/``~include:``/``?include:`` (which make a match fail, not pass)."""
    t = token.lower()
    qualifier = ''
    if t[:1] in '+-~?':
        qualifier, t = t[0], t[1:]
    if t.startswith('include:') and (any_qualifier or qualifier in ('', '+')):
        return t[len('include:'):].rstrip('.')
    return None


def spf_has_include(value, include):
    """True when ``include`` is included as a pass, and no other term includes it otherwise."""
    include = include.lower().rstrip('.')
    terms = value.split()[1:]
    return any(_include_target(t) == include for t in terms) and not any(
        _include_target(t, True) == include and _include_target(t) is None for t in terms)


def spf_merge(value, include, spf_all=None):
    """``value`` with ``include:<include>`` added before ``all``/``redirect=``; every other
    mechanism and modifier stays where it was. ``spf_all`` replaces the ``all`` qualifier.
    An include of it with a failing qualifier (``-include:``) becomes a plain include."""
    tokens = value.split()
    head, terms = tokens[0], tokens[1:]
    changed = False
    target = include.lower().rstrip('.')
    for i, t in enumerate(terms):
        if _include_target(t, True) == target and _include_target(t) is None:
            terms[i] = 'include:%s' % include
            changed = True
    if not spf_has_include(' '.join([head] + terms), include):
        changed = True
        pos = len(terms)
        for i, t in enumerate(terms):
            if _is_all(t) or t.lower().startswith('redirect='):
                pos = i
                break
        terms.insert(pos, 'include:%s' % include)
    if spf_all:
        alls = [i for i, t in enumerate(terms) if _is_all(t)]
        if alls and terms[alls[0]].lower() != spf_all:
            terms[alls[0]] = spf_all
            changed = True
        elif not alls:
            terms.append(spf_all)
            changed = True
    # untouched records keep their exact spelling (spacing, case)
    return ' '.join([head] + terms) if changed else value


def spf_remove_include(value, include):
    """``value`` without the include; None when only ``all`` (or nothing) would remain."""
    include = include.lower().rstrip('.')
    tokens = value.split()
    terms = [t for t in tokens[1:] if _include_target(t, True) != include]
    if all(_is_all(t) for t in terms):
        return None
    return ' '.join([tokens[0]] + terms)


def new_spf(include, spf_all):
    return 'v=spf1 include:%s %s' % (include, spf_all)


# -- the plan ---------------------------------------------------------------------------------
class Change:
    """One rrset change: ``before``/``after`` are RRsets or None."""

    __slots__ = ('before', 'after', 'reason')

    def __init__(self, before, after, reason=''):
        self.before = before
        self.after = after
        self.reason = reason

    @property
    def key(self):
        return (self.after or self.before).key

    @property
    def action(self):
        if self.before is None:
            return 'create'
        if self.after is None:
            return 'delete'
        return 'update'

    def to_dict(self):
        rr = self.after or self.before
        d = {'action': self.action, 'name': rr.name, 'type': rr.rdtype, 'ttl': rr.ttl,
             'values': rr.sorted_values()}
        if self.action == 'update':
            d['ttl_before'] = self.before.ttl
            d['values_before'] = self.before.sorted_values()
        if self.reason:
            d['reason'] = self.reason
        return d


class Plan:
    def __init__(self, changes, warnings, desired):
        self.changes = sorted(changes, key=lambda c: c.key)
        self.warnings = warnings
        # key -> RRset or None: what the touched rrsets should be after the run.
        self.desired = desired

    @property
    def changed(self):
        return bool(self.changes)

    def to_list(self):
        return [c.to_dict() for c in self.changes]


class Spec:
    """Normalised module input for the planner. Raises RecordError on bad input."""

    def __init__(self, domain, pattern='full', state='present', mx_host=None, mx_preference=None,
                 legacy_mx=None, primary='legacy', spf='merge', spf_include=EXO_SPF_INCLUDE,
                 spf_all=None, autodiscover_target=EXO_AUTODISCOVER, dkim=None,
                 verification_txt=None, dmarc=None, ttl=None, on_conflict='fail'):
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
        self.legacy_mx = None
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
        self.dkim = {}
        for selector, target in sorted((dkim or {}).items(), key=lambda kv: str(kv[0])):
            if not isinstance(selector, str) or not isinstance(target, str):
                raise RecordError('dkim maps selector names to CNAME targets (strings), got '
                                  '%r: %r' % (selector, target))
            if not DKIM_SELECTOR.fullmatch(selector):
                raise RecordError('dkim selector %r is not a selector (RFC 6376 3.1: letters, '
                                  'digits and hyphens in dot-separated labels, such as '
                                  'selector1)' % selector[:80])
            # validates the selector
            label = to_name(selector + '._domainkey.' + self.domain, what='dkim selector')
            self.dkim[name_text(label)] = name_text(validate_hostname(target, 'dkim target'))
        self.verification_txt = None
        if verification_txt:
            self.verification_txt = check_txt_input(verification_txt, 'verification_txt').strip()
        self.dmarc = None
        if dmarc:
            self.dmarc = check_txt_input(dmarc, 'dmarc').strip()
            if not self.dmarc.startswith('v=DMARC1'):
                raise RecordError('dmarc must start with v=DMARC1, got %r' % dmarc)
        if ttl is not None and not 0 <= int(ttl) <= 2147483647:
            raise RecordError('ttl must be from 0 to 2147483647, got %r' % (ttl,))
        self.ttl = None if ttl is None else int(ttl)
        if on_conflict not in ('fail', 'replace'):
            raise RecordError("on_conflict must be 'fail' or 'replace', got %r" % (on_conflict,))
        self.on_conflict = on_conflict

    @property
    def autodiscover_name(self):
        return 'autodiscover.' + self.domain

    @property
    def dmarc_name(self):
        return '_dmarc.' + self.domain

    def names(self):
        """Every owner name the plan may touch; the engine reads all rrsets at these names."""
        dkim = set(self.dkim)
        if self.state == 'absent':  # Exchange Online's own selectors, given or not
            dkim.update('%s._domainkey.%s' % (s, self.domain) for s in ('selector1', 'selector2'))
        return [self.domain, self.autodiscover_name, self.dmarc_name] + sorted(dkim)


def _at(current, name):
    return dict((k[1], v) for k, v in current.items() if k[0] == name)


class _Planner:
    def __init__(self, spec, current):
        self.spec = spec
        self.current = current
        self.changes = {}
        self.warnings = []
        self.conflicts = []

    def ttl_for(self, key):
        if self.spec.ttl is not None:
            return self.spec.ttl
        existing = self.current.get(key)
        return existing.ttl if existing is not None else DEFAULT_TTL

    def put(self, name, rdtype, values, reason, keep_ttl=False):
        """Make the rrset (name, rdtype) hold ``values`` (empty: delete it)."""
        key = (name, rdtype)
        before = self.current.get(key)
        if not values:
            if before is not None:
                self.changes[key] = Change(before, None, reason)
            return
        ttl = before.ttl if (keep_ttl and before is not None) else self.ttl_for(key)
        if before is None:
            after = RRset(name, rdtype, ttl, values=values)
        else:
            after = before.with_values(values, ttl)
        if not after.same_as(before):
            self.changes[key] = Change(before, after, reason)

    def conflict(self, name, rdtype, what):
        self.conflicts.append('%s: %s' % (name, what))
        if self.spec.on_conflict == 'replace':
            before = self.current.get((name, rdtype))
            self.changes[(name, rdtype)] = Change(before, None, 'conflict replaced: ' + what)

    def need_cname(self, name, target, reason):
        here = _at(self.current, name)
        for rdtype, rr in sorted(here.items()):
            if rdtype == 'CNAME' or rdtype in DNSSEC_TYPES:
                continue
            if rdtype in PROTECTED_TYPES:
                raise RecordError('%s has %s records (a zone cut or delegation); a CNAME cannot '
                                  'go there. Change it in the zone that owns that name.'
                                  % (name, rdtype), phase='plan')
            self.conflict(name, rdtype, 'has %s %s; a CNAME cannot share a name with other data'
                          % (rdtype, ', '.join(rr.sorted_values())))
        existing = here.get('CNAME')
        if existing is not None and existing.values != frozenset([target]):
            self.conflict(name, 'CNAME', 'is a CNAME to %s, not %s'
                          % (', '.join(existing.sorted_values()), target))
            if self.spec.on_conflict == 'replace':
                self.changes.pop((name, 'CNAME'), None)
        self.put(name, 'CNAME', [target], reason)

    def need_no_cname(self, name, rdtype):
        existing = self.current.get((name, 'CNAME'))
        if existing is not None:
            self.conflict(name, 'CNAME', 'is a CNAME to %s; %s records cannot go next to it'
                          % (', '.join(existing.sorted_values()), rdtype))

    def remove_cname_if(self, name, predicate, reason):
        existing = self.current.get((name, 'CNAME'))
        if existing is not None and all(predicate(v) for v in existing.values):
            self.put(name, 'CNAME', [], reason)

    # -- present ------------------------------------------------------------------------------
    def mx_present(self):
        s = self.spec
        name = s.domain
        self.need_no_cname(name, 'MX')
        current = self.current.get((name, 'MX'))
        current_values = current.values if current is not None else frozenset()
        if s.pattern == 'full':
            pref = 0 if s.mx_preference is None else s.mx_preference
            self.put(name, 'MX', [mx_value(s.mx_host, pref)], 'full: Exchange Online MX only')
            return
        if s.legacy_mx is not None:
            legacy = list(s.legacy_mx)
        else:
            legacy = sorted(v for v in current_values if not is_exo_mx(parse_mx(v)[1])
                            and parse_mx(v)[1] != s.mx_host)
        if not legacy:
            raise RecordError('the partial pattern keeps the existing MX as fallback, but %s has '
                              'no MX other than Exchange Online. Give legacy_mx or use '
                              'pattern: full.' % name, phase='plan')
        legacy_prefs = [parse_mx(v)[0] for v in legacy]
        if s.primary == 'legacy':
            pref = s.mx_preference if s.mx_preference is not None \
                else min(max(legacy_prefs) + 10, 65535)
            if pref <= min(legacy_prefs):
                raise RecordError('with primary: legacy the Exchange Online MX must have a higher '
                                  'preference number than the legacy MX (lowest %d), got %d; '
                                  'use primary: exo to put Exchange Online in front'
                                  % (min(legacy_prefs), pref), phase='plan')
        else:
            pref = 0 if s.mx_preference is None else s.mx_preference
            if pref >= min(legacy_prefs):
                raise RecordError('with primary: exo the Exchange Online MX must have a lower '
                                  'preference number than every legacy MX (lowest %d), got %d'
                                  % (min(legacy_prefs), pref), phase='plan')
        self.put(name, 'MX', legacy + [mx_value(s.mx_host, pref)],
                 'partial: Exchange Online MX added, legacy MX kept')

    def apex_txt_present(self):
        s = self.spec
        name = s.domain
        current = self.current.get((name, 'TXT'))
        values = list(current.values) if current is not None else []
        reasons = []
        if s.spf != 'keep':
            spfs = [v for v in values if is_spf(v)]
            default_all = s.spf_all or ('-all' if s.pattern == 'full' else '~all')
            if s.spf == 'replace' or not spfs:
                if not spfs and s.pattern != 'full':
                    self.warnings.append(
                        '%s had no SPF record; the new one lists only Exchange Online, so add the '
                        'legacy server (ip4:/a:/include:) to it if it still sends mail' % name)
                for v in spfs:
                    values.remove(v)
                values.append(new_spf(s.spf_include, default_all))
                reasons.append('SPF set' if spfs else 'SPF created')
            elif len(spfs) > 1:
                raise RecordError(
                    '%s has %d v=spf1 records; RFC 7208 makes that a permanent error for every '
                    'receiver. Merge them into one first, or set spf: replace. Found: %s'
                    % (name, len(spfs), ' | '.join(sorted(spfs))), phase='plan')
            else:
                merged = spf_merge(spfs[0], s.spf_include, s.spf_all)
                if merged != spfs[0]:
                    if 'redirect=' in merged.lower() and s.spf_all:
                        self.warnings.append('the SPF record has a redirect= modifier; an all '
                                             'mechanism makes receivers ignore it')
                    values[values.index(spfs[0])] = merged
                    reasons.append('SPF gains include:%s' % s.spf_include)
        if s.verification_txt and s.verification_txt not in values:
            values.append(s.verification_txt)
            reasons.append('verification TXT added')
        if s.spf != 'keep' or s.verification_txt:
            self.put(name, 'TXT', values, '; '.join(reasons))

    def dmarc_present(self):
        s = self.spec
        if not s.dmarc:
            return
        name = s.dmarc_name
        self.need_no_cname(name, 'TXT')
        current = self.current.get((name, 'TXT'))
        values = list(current.values) if current is not None else []
        others = [v for v in values if v.lower().startswith('v=dmarc1')]
        if others and others != [s.dmarc]:
            if s.on_conflict == 'fail':
                self.conflicts.append('%s: has the DMARC record %s, not %s'
                                      % (name, ' | '.join(others), s.dmarc))
            values = [v for v in values if v not in others]
        if s.dmarc not in values:
            values.append(s.dmarc)
        self.put(name, 'TXT', values, 'DMARC record')

    def plan_present(self):
        s = self.spec
        if s.pattern in ('full', 'partial'):
            self.mx_present()
        elif s.legacy_mx is not None or s.mx_preference is not None:
            self.warnings.append('%s leaves MX untouched: legacy_mx and mx_preference are ignored'
                                 % s.pattern)
        self.apex_txt_present()
        if s.pattern != 'none':
            self.need_cname(s.autodiscover_name, s.autodiscover_target,
                            'autodiscover points to Exchange Online')
        for name, target in sorted(s.dkim.items()):
            self.need_cname(name, target, 'DKIM selector CNAME')
        self.dmarc_present()

    # -- absent -------------------------------------------------------------------------------
    def plan_absent(self):
        s = self.spec
        mx = self.current.get((s.domain, 'MX'))
        if mx is not None:
            keep = [v for v in mx.values
                    if not (parse_mx(v)[1] == s.mx_host or is_exo_mx(parse_mx(v)[1]))]
            if not keep and mx.values:
                self.warnings.append('%s has no MX left after removing Exchange Online; mail to it '
                                     'falls back to its A/AAAA record or bounces' % s.domain)
            self.put(s.domain, 'MX', keep, 'Exchange Online MX removed', keep_ttl=True)
        txt = self.current.get((s.domain, 'TXT'))
        if txt is not None:
            values = []
            for v in txt.values:
                if is_spf(v) and spf_has_include(v, s.spf_include) and s.spf != 'keep':
                    v = spf_remove_include(v, s.spf_include)
                if v is not None and v != s.verification_txt:
                    values.append(v)
            self.put(s.domain, 'TXT', values, 'Exchange Online SPF include/verification removed',
                     keep_ttl=True)
        target = s.autodiscover_target
        self.remove_cname_if(s.autodiscover_name, lambda v: v == target,
                             'autodiscover CNAME removed')
        for name in sorted(set(s.dkim) | set(
                n for (n, t) in self.current if t == 'CNAME' and n.startswith('selector')
                and n.endswith('._domainkey.' + s.domain))):
            wanted = s.dkim.get(name)
            self.remove_cname_if(name, lambda v, w=wanted: v == w if w else is_exo_dkim_target(v),
                                 'DKIM selector CNAME removed')
        if s.dmarc:
            cur = self.current.get((s.dmarc_name, 'TXT'))
            if cur is not None:
                self.put(s.dmarc_name, 'TXT', [v for v in cur.values if v != s.dmarc],
                         'DMARC record removed', keep_ttl=True)


def plan_changes(spec, current):
    """The changes that bring ``current`` ({(name, type): RRset} holding at least every rrset at
    ``spec.names()``) to the pattern. Raises RecordError for conflicts under on_conflict=fail."""
    planner = _Planner(spec, current)
    if spec.state == 'absent':
        planner.plan_absent()
    else:
        planner.plan_present()
    if planner.conflicts and spec.on_conflict == 'fail':
        raise RecordError(
            'existing records conflict with the %s pattern, nothing was changed: %s. Remove or '
            'change them, or set on_conflict: replace (the replaced records go into the backup).'
            % (spec.pattern, '; '.join(planner.conflicts)), phase='plan')
    changes = list(planner.changes.values())
    desired = dict((c.key, c.after) for c in changes)
    return Plan(changes, planner.warnings, desired)


def apply_plan(current, plan):
    """``current`` with ``plan`` applied (what the server should hold afterwards)."""
    out = dict(current)
    for change in plan.changes:
        if change.after is None:
            out.pop(change.key, None)
        else:
            out[change.key] = change.after
    return out


def options_from_records(records, domain=None):
    """mail_dns options from expected rrsets ({name, type, ttl, values}, as domain_info returns):
    MX host, SPF include, autodiscover target, DKIM targets and verification TXT. Every entry is
    checked as an rrset first, so a malformed one is named, not half used; with ``domain``,
    every name must be the domain or below it. Two entries that give one option two values
    are refused: which one is meant cannot be guessed."""
    out, given = {}, {}
    if records is not None and not isinstance(records, list):
        raise RecordError('records must be a list of {name, type, ttl, values}, got %r'
                          % (records,))
    apex = to_name(domain, what='domain') if domain else None
    for index, rr in enumerate(records or []):
        what = 'records[%d]' % index
        if not isinstance(rr, dict) or not isinstance(rr.get('type'), str) or \
                not isinstance(rr.get('name'), str):
            raise RecordError('%s needs name and type (strings) and values, got %r' % (what, rr))
        rdtype = rr['type'].upper()
        owner = to_name(rr['name'], what='%s.name' % what)
        if apex is not None and not owner.is_subdomain(apex):
            raise RecordError('%s.name %s is not %s or a name below it: these are records of '
                              'another domain' % (what, name_text(owner), name_text(apex)))
        name = name_text(owner)
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
                incs = [_include_target(t) for t in value.split()[1:] if _include_target(t)]
                if incs:
                    option, value = 'spf_include', incs[0]
            elif rdtype == 'TXT' and value.startswith('MS='):
                option = 'verification_txt'
            elif rdtype == 'CNAME' and name.startswith('autodiscover.'):
                option = 'autodiscover_target'
            elif rdtype == 'CNAME' and '._domainkey.' in name:
                option = 'dkim ' + name.split('._domainkey.')[0]
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
