# -*- coding: utf-8 -*-
# Copyright (c) exchangeonline.mail contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# Private to this collection: may change without notice.
"""The pure planner: migration pattern + current rrsets -> the changes to make.

No I/O here. :func:`plan_changes` is what mail_dns runs before it sends anything, and again
after a concurrent change; the same plan drives check mode, diff, the return value and the
UPDATE message. What the records are (SPF, DMARC, MX, DKIM, the Spec) is the policy of
``_mail_policy``, which mail_dns_check reads too; this module only decides the changes.
"""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

from typing import Any, Callable, Dict, Iterable, List, Optional, Tuple

from ansible_collections.exchangeonline.mail.plugins.module_utils._mail_policy import (
    DEFAULT_TTL,
    Spec,
    exo_in_order,
    is_exo_dkim_name,
    is_exo_dkim_target,
    new_spf,
    parse_dmarc,
    parse_spf,
    render_mx,
    spf_has_include,
    spf_merge,
    spf_remove_include,
    split_mx,
)
from ansible_collections.exchangeonline.mail.plugins.module_utils._mta_sts import (
    Policy,
    is_sts_record,
    is_tlsrpt_record,
    parse_sts_record,
    parse_tlsrpt_record,
    policy_url,
    same_rua,
    sts_name,
    tlsrpt_name,
)
from ansible_collections.exchangeonline.mail.plugins.module_utils._records import (
    DNSSEC_TYPES,
    RRset,
    RecordError,
    mx_value,
    parse_mx,
)

Key = Tuple[str, str]  # an rrset's (name, type)

# Types at a name that a CNAME may not replace even with on_conflict=replace.
PROTECTED_TYPES = ('SOA', 'NS', 'DS')


# -- the plan ---------------------------------------------------------------------------------
class Change:
    """One rrset change: ``before``/``after`` are RRsets or None."""

    __slots__ = ('before', 'after', 'reason')

    def __init__(self, before: Optional[RRset], after: Optional[RRset], reason: str = '') -> None:
        self.before = before
        self.after = after
        self.reason = reason

    @property
    def rrset(self) -> RRset:
        """``after``, or ``before`` for a delete."""
        rr = self.after or self.before
        if rr is None:
            raise ValueError('a change without before and after: %r' % (self.reason,))
        return rr

    @property
    def key(self) -> Key:
        return self.rrset.key

    @property
    def action(self) -> str:
        if self.before is None:
            return 'create'
        if self.after is None:
            return 'delete'
        return 'update'

    def to_dict(self) -> Dict[str, Any]:
        rr = self.rrset
        d: Dict[str, Any] = {'action': self.action, 'name': rr.name, 'type': rr.rdtype,
                             'ttl': rr.ttl, 'values': rr.sorted_values()}
        if self.before is not None and self.after is not None:  # an update
            d['ttl_before'] = self.before.ttl
            d['values_before'] = self.before.sorted_values()
        if self.reason:
            d['reason'] = self.reason
        return d


class Plan:
    def __init__(self, changes: Iterable[Change], warnings: List[str],
                 desired: Dict[Key, Optional[RRset]],
                 mta_sts: Optional[Policy] = None) -> None:
        self.changes = sorted(changes, key=lambda c: c.key)
        self.warnings = warnings
        # key -> RRset or None: what the touched rrsets should be after the run.
        self.desired = desired
        # the MTA-STS policy whose id the run publishes (mta_sts given), for the web server
        self.mta_sts = mta_sts

    def changes_at(self, name: str) -> bool:
        return any(c.key[0] == name for c in self.changes)

    @property
    def changed(self) -> bool:
        return bool(self.changes)

    def to_list(self) -> List[Dict[str, Any]]:
        return [c.to_dict() for c in self.changes]


def _at(current: Dict[Key, RRset], name: str) -> Dict[str, RRset]:
    return dict((k[1], v) for k, v in current.items() if k[0] == name)


class _Planner:
    def __init__(self, spec: Spec, current: Dict[Key, RRset]) -> None:
        self.spec = spec
        self.current = current
        self.changes: Dict[Key, Change] = {}
        self.warnings: List[str] = []
        self.conflicts: List[str] = []
        self.mta_sts: Optional[Policy] = None

    def ttl_for(self, key: Key) -> int:
        if self.spec.ttl is not None:
            return self.spec.ttl
        existing = self.current.get(key)
        return existing.ttl if existing is not None else DEFAULT_TTL

    def put(self, name: str, rdtype: str, values: List[str], reason: str,
            keep_ttl: bool = False) -> None:
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

    def conflict(self, name: str, rdtype: str, what: str) -> None:
        self.conflicts.append('%s: %s' % (name, what))
        if self.spec.on_conflict == 'replace':
            before = self.current.get((name, rdtype))
            self.changes[(name, rdtype)] = Change(before, None, 'conflict replaced: ' + what)

    def need_cname(self, name: str, target: str, reason: str) -> None:
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

    def need_no_cname(self, name: str, rdtype: str) -> None:
        existing = self.current.get((name, 'CNAME'))
        if existing is not None:
            self.conflict(name, 'CNAME', 'is a CNAME to %s; %s records cannot go next to it'
                          % (', '.join(existing.sorted_values()), rdtype))

    def remove_cname_if(self, name: str, predicate: Callable[[str], bool], reason: str) -> None:
        existing = self.current.get((name, 'CNAME'))
        if existing is not None and all(predicate(v) for v in existing.values):
            self.put(name, 'CNAME', [], reason)

    # -- present ------------------------------------------------------------------------------
    def mx_present(self) -> None:
        s = self.spec
        name = s.domain
        self.need_no_cname(name, 'MX')
        current = self.current.get((name, 'MX'))
        if s.pattern == 'full':
            pref = 0 if s.mx_preference is None else s.mx_preference
            self.put(name, 'MX', [mx_value(s.mx_host, pref)], 'full: Exchange Online MX only')
            return
        if s.legacy_mx is not None:
            legacy = list(s.legacy_mx)
        else:
            legacy = [render_mx(r) for r in split_mx(
                current.values if current is not None else (), s.mx_host).legacy]
        if not legacy:
            raise RecordError('the partial pattern keeps the existing MX as fallback, but %s has '
                              'no MX other than Exchange Online. Give legacy_mx or use '
                              'pattern: full.' % name, phase='plan')
        legacy_prefs = [parse_mx(v)[0] for v in legacy]
        if s.primary == 'legacy':
            pref = s.mx_preference if s.mx_preference is not None \
                else min(max(legacy_prefs) + 10, 65535)
            if not exo_in_order(s.primary, pref, legacy_prefs):
                raise RecordError('with primary: legacy the Exchange Online MX must have a higher '
                                  'preference number than the legacy MX (lowest %d), got %d; '
                                  'use primary: exo to put Exchange Online in front'
                                  % (min(legacy_prefs), pref), phase='plan')
        else:
            pref = 0 if s.mx_preference is None else s.mx_preference
            if not exo_in_order(s.primary, pref, legacy_prefs):
                raise RecordError('with primary: exo the Exchange Online MX must have a lower '
                                  'preference number than every legacy MX (lowest %d), got %d'
                                  % (min(legacy_prefs), pref), phase='plan')
        self.put(name, 'MX', legacy + [mx_value(s.mx_host, pref)],
                 'partial: Exchange Online MX added, legacy MX kept')

    def apex_txt_present(self) -> None:
        s = self.spec
        name = s.domain
        current = self.current.get((name, 'TXT'))
        values = list(current.values) if current is not None else []
        reasons: List[str] = []
        if s.spf != 'keep':
            spfs = [v for v in values if parse_spf(v)]
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

    def dmarc_present(self) -> None:
        s = self.spec
        if not s.dmarc:
            return
        name = s.dmarc_name
        self.need_no_cname(name, 'TXT')
        current = self.current.get((name, 'TXT'))
        values = list(current.values) if current is not None else []
        others = [v for v in values if parse_dmarc(v)]
        # One record of the same policy, however it is spelled (RFC 7489 6.4 white space), is
        # kept as it is; any other DMARC record, or several, conflict.
        if not (len(others) == 1 and s.is_our_dmarc(others[0])):
            if others and s.on_conflict == 'fail':
                self.conflicts.append('%s: has the DMARC record %s, not %s'
                                      % (name, ' | '.join(sorted(others)), s.dmarc))
            values = [v for v in values if v not in others] + [s.dmarc]
        self.put(name, 'TXT', values, 'DMARC record')

    def mx_hosts_after(self) -> List[str]:
        """The MX hosts of the domain once the plan is applied."""
        key = (self.spec.domain, 'MX')
        change = self.changes.get(key)
        rr = change.after if change is not None else self.current.get(key)
        return sorted(parse_mx(v)[1] for v in rr.values) if rr is not None else []

    def mx_hosts_before(self) -> List[str]:
        rr = self.current.get((self.spec.domain, 'MX'))
        return sorted(parse_mx(v)[1] for v in rr.values) if rr is not None else []

    def mta_sts_present(self) -> None:
        """The _mta-sts TXT with the id of the policy for the MX after the run (mta_sts
        given); without mta_sts, a warning when the MX changes under a published policy."""
        s = self.spec
        name = sts_name(s.domain)
        current = self.current.get((name, 'TXT'))
        values = list(current.values) if current is not None else []
        existing = [v for v in values if is_sts_record(v)]
        if s.mta_sts is None:
            if existing and (s.domain, 'MX') in self.changes:
                self.warnings.append(
                    '%s publishes MTA-STS (%s) and this run changes its MX to %s: the policy at '
                    '%s must name them, with a new id, or senders that enforce it refuse the new '
                    'MX. Give mta_sts to publish the id of a policy that matches, and serve that '
                    'policy.' % (s.domain, ' | '.join(sorted(existing)),
                                 ', '.join(self.mx_hosts_after()) or 'none', policy_url(s.domain)))
            return
        policy, warnings = s.mta_sts.policy_for(self.mx_hosts_after(), s.domain,
                                                self.mx_hosts_before())
        self.warnings.extend(warnings)
        self.mta_sts = policy
        self.need_no_cname(name, 'TXT')
        if not (len(existing) == 1 and parse_sts_record(existing[0])[0] == policy.policy_id()):
            values = [v for v in values if not is_sts_record(v)] + [policy.record()]
        self.put(name, 'TXT', values, 'MTA-STS policy id')

    def tls_rpt_present(self) -> None:
        s = self.spec
        if s.tls_rpt is None:
            return
        name = tlsrpt_name(s.domain)
        self.need_no_cname(name, 'TXT')
        current = self.current.get((name, 'TXT'))
        values = list(current.values) if current is not None else []
        existing = [v for v in values if is_tlsrpt_record(v)]
        if not (len(existing) == 1 and not parse_tlsrpt_record(existing[0])[1] and
                same_rua(parse_tlsrpt_record(existing[0])[0], s.tls_rpt.rua)):
            values = [v for v in values if not is_tlsrpt_record(v)] + [s.tls_rpt.record()]
        self.put(name, 'TXT', values, 'TLS-RPT record')

    def plan_present(self) -> None:
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
        self.mta_sts_present()
        self.tls_rpt_present()

    # -- absent -------------------------------------------------------------------------------
    def plan_absent(self) -> None:
        s = self.spec
        mx = self.current.get((s.domain, 'MX'))
        if mx is not None:
            keep = [render_mx(r) for r in split_mx(mx.values, s.mx_host).legacy]
            if not keep and mx.values:
                self.warnings.append('%s has no MX left after removing Exchange Online; mail to it '
                                     'falls back to its A/AAAA record or bounces' % s.domain)
            self.put(s.domain, 'MX', keep, 'Exchange Online MX removed', keep_ttl=True)
        txt = self.current.get((s.domain, 'TXT'))
        if txt is not None:
            values: List[str] = []
            for v in txt.values:
                kept: Optional[str] = v
                if parse_spf(v) and spf_has_include(v, s.spf_include) and s.spf != 'keep':
                    kept = spf_remove_include(v, s.spf_include)
                if kept is not None and kept != s.verification_txt:
                    values.append(kept)
            self.put(s.domain, 'TXT', values, 'Exchange Online SPF include/verification removed',
                     keep_ttl=True)
        target = s.autodiscover_target
        self.remove_cname_if(s.autodiscover_name, lambda v: v == target,
                             'autodiscover CNAME removed')
        for name in sorted(set(s.dkim) | set(
                n for (n, t) in self.current if t == 'CNAME' and is_exo_dkim_name(n, s.domain))):
            wanted = s.dkim.get(name)

            def ours(v: str, w: Optional[str] = wanted) -> bool:
                return v == w if w else is_exo_dkim_target(v)
            self.remove_cname_if(name, ours, 'DKIM selector CNAME removed')
        if s.dmarc:
            cur = self.current.get((s.dmarc_name, 'TXT'))
            if cur is not None:
                self.put(s.dmarc_name, 'TXT', [v for v in cur.values if not s.is_our_dmarc(v)],
                         'DMARC record removed', keep_ttl=True)
        sts = self.current.get((sts_name(s.domain), 'TXT'))
        if sts is not None and any(is_sts_record(v) for v in sts.values) and \
                (s.domain, 'MX') in self.changes:
            # Removing the record would not remove the policy senders have cached for max_age.
            self.warnings.append(
                '%s publishes MTA-STS (%s), left as it is: if the policy at %s names Exchange '
                'Online, serve one without it (or mode: none) and publish its new id with '
                'mta_sts, or senders that enforce it refuse the remaining MX (RFC 8461 section '
                '8.3)' % (s.domain, ' | '.join(sorted(v for v in sts.values if is_sts_record(v))),
                          policy_url(s.domain)))


def plan_changes(spec: Spec, current: Dict[Key, RRset]) -> Plan:
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
    return Plan(changes, planner.warnings, desired, planner.mta_sts)


def apply_plan(current: Dict[Key, RRset], plan: Plan) -> Dict[Key, RRset]:
    """``current`` with ``plan`` applied (what the server should hold afterwards)."""
    out = dict(current)
    for change in plan.changes:
        if change.after is None:
            out.pop(change.key, None)
        else:
            out[change.key] = change.after
    return out
