# -*- coding: utf-8 -*-
# Copyright (c) exchangeonline.mail contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# Private to this collection: may change without notice.
"""The mail_dns engine: read, plan, back up, apply, verify, re-plan once; and rollback.

It takes plain parameters and returns a result dict, so the module stays thin and tests can
drive it against a real server (``on_planned`` lets a test change the zone between read and
apply) or a provider of their own (``provider``). Zones are read and changed through a provider
(``_dns_provider``), whose declared guarantee decides what the engine adds: with ``ATOMIC``
(RFC 2136: one UPDATE per zone, the read rrsets as prerequisites) a refused precondition changed
nothing; with ``RRSET_CAS`` the part applied before it is undone (and when that undo fails, the
task fails saying what is still in, the backup kept); with ``NONE`` and ``TRANSACTION`` the names
are read again just before applying; with ``MANUAL`` nothing is applied and the plan is returned
as the records to enter.
"""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import datetime
import json
import os
import stat
import tempfile
from typing import Any, Callable, Dict, List, Literal, Optional, Tuple, overload

try:
    import dns.exception
    import dns.rdatatype
except ImportError:
    pass  # the module reports the missing dnspython before this is used

from ansible_collections.exchangeonline.mail.plugins.module_utils._dns_provider import (
    ATOMIC,
    MANUAL,
    ConcurrentChange,
    Snapshot,
    ZoneProvider,
    provider_from_params,
)
from ansible_collections.exchangeonline.mail.plugins.module_utils._dns_hosting import (
    hosting_of,
    provider_hint,
)
from ansible_collections.exchangeonline.mail.plugins.module_utils._dns_transport import (
    DnsError,
    UpdateOutcomeUnknown,
)
from ansible_collections.exchangeonline.mail.plugins.module_utils._https_policy import (
    fetch_policy,
)
from ansible_collections.exchangeonline.mail.plugins.module_utils._mail_policy import (
    Spec,
    require_inside,
)
from ansible_collections.exchangeonline.mail.plugins.module_utils._manual import instructions
from ansible_collections.exchangeonline.mail.plugins.module_utils._mta_sts import (
    parse_policy,
    policy_host,
    policy_url,
    sts_name,
    tlsrpt_name,
)
from ansible_collections.exchangeonline.mail.plugins.module_utils._patterns import (
    PROTECTED_TYPES,
    Change,
    Plan,
    plan_changes,
)
from ansible_collections.exchangeonline.mail.plugins.module_utils._poll import poll
from ansible_collections.exchangeonline.mail.plugins.module_utils._records import (
    DNSSEC_TYPES,
    MANAGED_TYPES,
    RRset,
    RecordError,
    name_text,
    to_name,
)

BACKUP_FORMAT = 1
# After a lost answer to an update: the reads of the zone that tell what became of it, for
# READ_AGAIN_SECONDS (at most three timeouts) but at least READ_AGAIN_ROUNDS reads, the first
# after 0.2 s, then after pauses of 1 and 2 s (_poll.poll).
READ_AGAIN_SECONDS = 3.2
READ_AGAIN_FIRST_PAUSE = 0.2
READ_AGAIN_ROUNDS = 3


def _now() -> str:
    return datetime.datetime.now(datetime.timezone.utc).replace(microsecond=0).isoformat()


def diff_of(plan: Plan, zone: str) -> dict:
    before, after = [], []
    for change in plan.changes:
        if change.before is not None:
            before.extend(change.before.zone_lines())
        if change.after is not None:
            after.extend(change.after.zone_lines())
    return {'before': '\n'.join(before) + ('\n' if before else ''),
            'after': '\n'.join(after) + ('\n' if after else ''),
            'before_header': '%s (before)' % zone, 'after_header': '%s (after)' % zone}


# -- backups ----------------------------------------------------------------------------------
BACKUP_MAX_BYTES = 16 * 1024 * 1024


@overload
def load_backup(path: Optional[str], must_exist: Literal[True] = True) -> dict:
    ...


@overload
def load_backup(path: Optional[str], must_exist: bool) -> Optional[dict]:
    ...


def load_backup(path: Optional[str], must_exist: bool = True) -> Optional[dict]:
    """The backup in ``path`` (checked entry by entry), or None when it does not exist and
    ``must_exist`` is false. Anything that is not a backup this module wrote is refused, so it
    is never overwritten either."""
    if not path or not os.path.lexists(path):
        if must_exist:
            raise DnsError('backup_path %s does not exist: there is nothing to roll '
                           'back to. Give the backup_path of the run to undo.' % path, 'rollback')
        return None
    try:
        data = json.loads(_read_regular(path).decode('utf-8'))
        _check_backup(data)
    except (IOError, OSError, ValueError, KeyError, TypeError, RecordError,
            dns.exception.DNSException) as e:
        raise DnsError('cannot read backup %s: %s. It is not a mail_dns backup (or '
                       'is damaged); give another backup_path. Nothing was changed.'
                       % (path, str(getattr(e, 'message', e))[:300]), 'backup')
    return data


def _read_regular(path: str) -> bytes:
    """The bytes of the regular file ``path``, at most BACKUP_MAX_BYTES; ValueError for a
    directory, FIFO, device or anything larger (opened without blocking, checked on the open
    file, so a FIFO swapped in after a check cannot hang the run)."""
    fd = os.open(path, os.O_RDONLY | getattr(os, 'O_NONBLOCK', 0) | getattr(os, 'O_NOCTTY', 0))
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise ValueError('it is not a regular file')
        chunks: List[bytes] = []
        size = 0
        while True:
            chunk = os.read(fd, 1 << 20)
            if not chunk:
                return b''.join(chunks)
            size += len(chunk)
            if size > BACKUP_MAX_BYTES:
                raise ValueError('it is larger than %d MiB' % (BACKUP_MAX_BYTES // 1048576))
            chunks.append(chunk)
    finally:
        os.close(fd)


def _check_backup(data: Any) -> None:
    """ValueError unless ``data`` has the shape write_backup gives it: rrsets at the names
    mail_dns manages for its domain, inside its zone, each once: MX, TXT and CNAME at the domain;
    at autodiscover, _dmarc, _mta-sts, _smtp._tls and DKIM selectors also what a CNAME replaced
    (never SOA, NS, DS or DNSSEC data). A crafted file cannot make rollback touch the SOA, NS or
    any other record."""
    if not isinstance(data, dict):
        raise ValueError('not a JSON object')
    if data.get('format') != BACKUP_FORMAT or not isinstance(data.get('entries'), list) or \
            not isinstance(data.get('zone'), str) or not isinstance(data.get('domain'), str):
        raise ValueError('not a mail_dns backup (format %r)' % (data.get('format'),))
    zone = to_name(data['zone'], what='zone of the backup')
    domain = to_name(data['domain'], what='domain of the backup')
    if not domain.is_subdomain(zone):
        raise ValueError('its domain %s is not inside its zone %s' % (data['domain'], data['zone']))
    managed = set(name_text(n) for n in
                  (domain, to_name('autodiscover', domain), to_name('_dmarc', domain)))
    managed.update((sts_name(name_text(domain)), tlsrpt_name(name_text(domain))))
    seen = set()
    for index, entry in enumerate(data['entries']):
        if not isinstance(entry, dict) or not isinstance(entry.get('name'), str) or \
                not isinstance(entry.get('type'), str):
            raise ValueError('entry %d is not {name, type, before, after}' % index)
        key = (entry['name'], entry['type'])
        name = name_text(to_name(entry['name'], what='entry %d' % index))
        selector = name.endswith('._domainkey.' + name_text(domain)) and \
            name.count('.') == name_text(domain).count('.') + 2
        if dns.rdatatype.to_text(dns.rdatatype.from_text(entry['type'])) != entry['type']:
            raise ValueError('entry %d has the type %r' % (index, entry['type'][:20]))
        if name == name_text(domain):
            allowed = entry['type'] in MANAGED_TYPES
        else:   # a CNAME's name: replace may have moved any data from there into the backup
            allowed = entry['type'] not in PROTECTED_TYPES + DNSSEC_TYPES
        if not allowed or name != entry['name'] or \
                (name not in managed and not selector) or key in seen:
            raise ValueError('entry %d (%s %s) is not a record mail_dns manages for %s, or '
                             'comes twice' % (index, entry['name'], entry['type'],
                                              data['domain']))
        seen.add(key)
        for side in ('before', 'after'):
            rr = entry.get(side)
            if rr is None:
                continue
            if not isinstance(rr, dict) or not isinstance(rr.get('rdata'), list) or \
                    not all(isinstance(t, str) for t in rr['rdata']) or \
                    isinstance(rr.get('ttl'), bool) or not isinstance(rr.get('ttl'), int) or \
                    not 0 <= rr['ttl'] <= 2147483647 or \
                    rr.get('name') != entry['name'] or rr.get('type') != entry['type']:
                raise ValueError('entry %d (%s %s) has a malformed %s rrset'
                                 % (index, entry['name'], entry['type'], side))
            RRset.from_backup(rr)


class BackupNotWritten(DnsError):
    """The backup file could not be written (the message says why; what that means for the zone
    is for the caller to add)."""


def write_backup(path: str, data: dict) -> Callable[[], None]:
    """Write atomically with mode 0600 (the file names every record the run touched). Returns a
    function that puts back what the file held before (for an update the server refused)."""
    try:
        old = _read_regular(path)
    except (IOError, OSError, ValueError):
        old = None

    def undo() -> None:
        if old is None:
            os.unlink(path)
        else:
            _write_atomic(path, old)
    _write_atomic(path, (json.dumps(data, indent=2, sort_keys=True) + '\n').encode('utf-8'))
    return undo


def _write_atomic(path: str, content: bytes) -> None:
    directory = os.path.dirname(os.path.abspath(path))
    tmp = None
    try:
        if not os.path.isdir(directory):
            os.makedirs(directory, 0o700)
        fd, tmp = tempfile.mkstemp(prefix='.mail_dns-', dir=directory)
        with os.fdopen(fd, 'wb') as f:
            f.write(content)
            f.flush()
            os.fsync(f.fileno())  # a full disk shows here, not after the rename
        os.chmod(tmp, 0o600)
        os.rename(tmp, path)
        tmp = None
    except (IOError, OSError) as e:
        raise BackupNotWritten('cannot write backup_path %s: %s' % (path, e), 'backup')
    finally:
        if tmp is not None:  # never leave a half-written temporary file behind
            try:
                os.unlink(tmp)
            except OSError:
                pass


def merged_backup(previous: Optional[dict], plan: Plan, zone: str, server: Optional[str],
                  domain: Optional[str], provider: str = 'rfc2136') -> dict:
    """The backup after this run: the earliest 'before' of each rrset, the latest 'after'."""
    data = previous or {'format': BACKUP_FORMAT, 'zone': zone, 'server': server,
                        'provider': provider, 'domain': domain, 'created': _now(),
                        'entries': []}
    if data.get('zone') != zone:
        raise DnsError('backup_path holds a backup of zone %s, not %s; use another '
                       'backup_path per zone. Nothing was changed.' % (data.get('zone'), zone),
                       'backup')
    check_backup_provider(data, provider, 'backup_path', 'backup')
    entries = dict(((e['name'], e['type']), e) for e in data['entries'])
    for change in plan.changes:
        after = change.after.to_backup() if change.after is not None else None
        if change.key in entries:
            entries[change.key]['after'] = after
        else:
            entries[change.key] = {
                'name': change.key[0], 'type': change.key[1],
                'before': change.before.to_backup() if change.before is not None else None,
                'after': after}
    data['entries'] = [entries[k] for k in sorted(entries)]
    data['updated'] = _now()
    data.pop('rolled_back', None)
    return data


# -- the run ----------------------------------------------------------------------------------
class MailDnsEngine:
    """The mail_dns task: ``result()`` is its result dict; expected failures raise TaskError
    subclasses (DnsError, RecordError), which ``_run`` turns into the failed result."""

    def __init__(self, params: dict, check_mode: bool = False, diff_mode: bool = False,
                 on_planned: Optional[Callable[[int, Plan], None]] = None,
                 provider: Optional[ZoneProvider] = None) -> None:
        self.params = params
        self.check_mode = check_mode
        self.diff_mode = diff_mode
        self.on_planned = on_planned
        self.provider = provider  # None: the one the options name (provider_from_params)
        self.warnings: List[str] = []

    def zone_provider(self) -> ZoneProvider:
        return self.provider or provider_from_params(self.params)

    def provider_and_zone(self, domain: str) -> Tuple[ZoneProvider, str]:
        provider = self.zone_provider()
        if self.params.get('zone'):
            zone = name_text(to_name(self.params['zone'], what='zone'))
        else:
            zone = provider.find_zone(domain)
        require_inside(domain, zone)
        return provider, zone

    def plan_and_apply(self, provider: ZoneProvider, zone: str,
                       make_plan: Callable[[], Tuple[Snapshot, Plan]],
                       backup: Optional[Callable[[Plan], Callable[[], None]]] = None) -> dict:
        """Read, plan, (back up,) apply; one re-read and re-plan when the zone changed."""
        attempts = 0
        first_snapshot = None
        while True:
            attempts += 1
            snapshot, plan = make_plan()
            first_snapshot = first_snapshot or snapshot
            result = {'changed': plan.changed, 'zone': zone, 'plan': plan.to_list(),
                      'before': [c.before.to_dict() for c in plan.changes if c.before],
                      'after': [c.after.to_dict() for c in plan.changes if c.after],
                      'serial_before': first_snapshot.serial, 'serial_after': snapshot.serial,
                      'read_method': snapshot.method, 'provider': provider.name,
                      'guarantee': provider.guarantee}
            self.warnings.extend(w for w in snapshot.warnings + plan.warnings
                                 if w not in self.warnings)
            if self.diff_mode and plan.changed:
                result['diff'] = diff_of(plan, zone)
            provider.check_plan(plan.changes)
            if provider.guarantee == MANUAL:
                return self.by_hand(plan, zone, result, backup)
            if not plan.changed or self.check_mode:
                return result
            if self.on_planned:
                self.on_planned(attempts, plan)
            try:
                undo = backup(plan) if backup else None
            except BackupNotWritten as e:  # before the apply: nothing was changed
                raise DnsError('%s. Nothing was changed.' % e.message, e.phase)
            try:
                if provider.rereads_before_apply():
                    reread_before_apply(provider, zone, plan)
                provider.apply_changes(zone, plan.changes)
            except UpdateOutcomeUnknown as e:
                # The backup stays whatever happened: the server may have applied the update.
                return self.settle_lost_reply(provider, zone, plan, result, e, attempts)
            except DnsError as e:
                applied = getattr(e, 'applied', [])
                restored = ''
                if applied and provider.guarantee != ATOMIC:
                    # Part of the set is in: undo it while the backup still holds it. When the
                    # undo fails too, the task fails saying what stayed in; the backup is kept.
                    self.undo_applied(provider, zone, applied, e, result, backup)
                    restored = ('%s had already written %s; %s put back as %s, so the zone is '
                                'as it was' % (provider.where or 'the provider',
                                               ', '.join('%s %s' % c.key for c in applied),
                                               'they were' if len(applied) > 1 else 'it was',
                                               'they were' if len(applied) > 1 else 'it was'))
                if undo:  # nothing of it stayed applied: the zone did not change, nor the backup
                    try:
                        undo()
                    except BackupNotWritten as written:
                        raise DnsError('%s. Nothing was changed.' % written.message, 'backup')
                if not isinstance(e, ConcurrentChange):
                    if restored:
                        raise DnsError('%s. Before that, %s. Nothing of this run was changed.'
                                       % (e.message, restored), e.phase, rcode=e.rcode,
                                       fields=dict(result, changed=False, restored=[
                                           '%s %s' % c.key for c in applied]))
                    raise
                if attempts >= 2:
                    raise DnsError('%s. It was re-read and re-planned once and changed '
                                   'again: someone else is editing the zone. Nothing was '
                                   'changed; run again when it is quiet.' % e.message,
                                   'apply')
                self.warnings.append('%s; %sre-read and re-planned'
                                     % (e, restored + '; ' if restored else ''))
                continue
            return self.verify_applied(provider, zone, plan, result, attempts)

    def by_hand(self, plan: Plan, zone: str, result: dict,
                backup: Optional[Callable[[Plan], Callable[[], None]]]) -> dict:
        """provider manual: the plan as the records to enter; the task changes nothing (outside
        check mode the backup is written, so that rollback can list what to enter to undo it)."""
        result['changed'] = False
        result['pending'] = plan.changed
        if not plan.changed:
            return result
        result['manual'] = instructions(plan, zone)
        if backup is not None and not self.check_mode:
            try:
                backup(plan)
            except BackupNotWritten as e:
                raise DnsError('%s. Nothing was changed.' % e.message, e.phase)
        self.warnings.append(
            'provider manual: nothing was changed. At the DNS host of %s, %s; the manual return '
            'value has them as a table and as zone-file lines. Then '
            'exchangeonline.mail.mail_dns_check waits until every authoritative server serves '
            'them.' % (zone, '; '.join(
                part for part in (
                    'delete %s' % ', '.join('%s %s %s' % (r['host'], r['type'], r['value'])
                                            for r in result['manual']['delete'])
                    if result['manual']['delete'] else '',
                    'add %s' % ', '.join('%s %s %d %s' % (r['host'], r['type'], r['ttl'],
                                                          r['value'])
                                         for r in result['manual']['add'])
                    if result['manual']['add'] else '') if part)))
        return result

    def undo_applied(self, provider: ZoneProvider, zone: str, applied: list, refused: DnsError,
                     result: dict,
                     backup: Optional[Callable[[Plan], Callable[[], None]]] = None) -> None:
        """Undo the ``applied`` part of a change set the provider refused halfway (``refused``;
        RRSET_CAS). When the undo fails as well (refused, a concurrent change, or no answer), the
        zone is left partly changed and the task fails with both answers and what was applied.
        The backup of this run is kept (the caller's undo of it is never reached), narrowed to
        the changes that were applied, so that state: rollback restores those and does not take
        the rrsets this run never changed (one of them changed by someone else) for drift."""
        try:
            provider.apply_changes(zone, [Change(c.after, c.before, 'undone')
                                          for c in reversed(applied)])
            return
        except DnsError as e:
            failed = e
        undone = set(c.key for c in getattr(failed, 'applied', []))
        if isinstance(failed, UpdateOutcomeUnknown):
            answer = 'the outcome of the undo is unknown (%s)' % failed.message
            state = 'may now be partly changed'
        else:
            answer = 'the server answered: %s' % failed.message
            state = 'is now partly changed'
        if undone:  # the undo itself went in halfway
            state += ' (not undone: %s)' % (', '.join('%s %s' % c.key for c in applied
                                                      if c.key not in undone) or 'none')
        where = self.params.get('backup_path')
        if self.params.get('state') == 'rollback':
            fix = ('The backup %s is kept: run state: rollback with it again to finish restoring '
                   'the records, or fix them by hand.' % where)
        elif where:
            fix = ('The backup %s holds the records as they were and is kept: state: rollback '
                   'with backup_path %s restores them, or fix them by hand.' % (where, where))
            try:
                if backup:
                    backup(Plan(applied, [], {}))
            except DnsError as e:  # the backup written before the apply stays as it was
                fix += (' (Narrowing the backup to the changes applied failed: %s; a rollback '
                        'may take the rrsets not applied for records changed since the run.)'
                        % e.message)
        else:
            fix = ('No backup_path was given: the records as they were are in the before return '
                   'value; put them back by hand.')
        raise DnsError('%s. Before that, %s applied %s; undoing %s failed: %s. Zone %s %s. %s'
                       % (refused.message, provider.where or 'the provider',
                          ', '.join('%s %s' % c.key for c in applied),
                          'them' if len(applied) > 1 else 'it', answer, zone, state, fix),
                       'apply', fields=dict(result, changed=True, backup_path=where))

    def verify_applied(self, provider: ZoneProvider, zone: str, plan: Plan, result: dict,
                       attempts: int) -> dict:
        """The result of an applied update, once the server serves what was planned.

        A server may answer NOERROR and still leave a record out (RFC 2136 3.4.2.2 lets it
        ignore a CNAME added next to other data), so every touched rrset is asked for again."""
        result['attempts'] = attempts
        try:
            served = provider.served(c.key for c in plan.changes)
        except DnsError as e:  # the update is in; only the proof is missing
            served = None
            self.warnings.append('the update was applied, but asking the server for the new '
                                 'records failed: %s' % e)
        wrong: List[Tuple[Change, Optional[RRset]]] = []  # (change, what the server serves)
        if served is not None:
            wrong = [(c, served.get(c.key)) for c in plan.changes
                     if not _same(served.get(c.key), c.after)
                     and not _synthesised(provider, zone, c, served.get(c.key))]
        if wrong:
            where = self.params.get('backup_path')
            raise DnsError('%s accepted the update of zone %s, but does not serve what '
                           'it was asked to: %s. It may have ignored a record it does not allow '
                           'next to other data (a CNAME next to another type, RFC 2136 3.4.2.2) '
                           'or its update policy dropped it; its log says which. %s'
                           % (provider.where, zone, '; '.join(
                               '%s %s is %s, planned %s' % (c.key[0], c.key[1], _show(found),
                                                            _show(c.after)) for c, found in wrong),
                              ('The backup %s is kept: state: rollback restores the records as '
                               'they were.' % where) if where else
                              'The records as they were are in the before return value.'), 'verify',
                           fields=dict(result, changed=True, backup_path=where))
        self.warnings.extend(w for w in provider.warnings if w not in self.warnings)
        try:
            result['serial_after'] = provider.serial(zone)
        except DnsError as e:  # the update is in: a failed read of the serial changes nothing
            result['serial_after'] = None
            self.warnings.append('the update was applied, but reading the new serial failed: %s'
                                 % e)
        return result

    def settle_lost_reply(self, provider: ZoneProvider, zone: str, plan: Plan, result: dict,
                          lost: UpdateOutcomeUnknown, attempts: int) -> dict:
        """Learn from the zone itself what became of an update whose answer was lost.

        Applied: the run succeeded (with a warning). The zone as it was: not applied, and the
        task fails. Anything else, or no read possible: the outcome stays unknown, and the task
        fails saying so. The backup is kept in every case, so state: rollback stays possible."""
        names = sorted(set(c.key[0] for c in plan.changes))
        where = self.params.get('backup_path')
        keep = ('the backup %s is kept, so state: rollback can restore the records as they '
                'were' % where) if where else ('no backup_path was given: the records as they '
                                               'were are in the before return value')
        seen: Dict[str, Optional[str]] = {'state': 'unknown', 'reread': None}

        def read_again() -> Tuple[bool, Optional[str]]:
            """(done, state): applied and "someone else changed it" are final; "not applied"
            is read again until the time is up (the server may be slow)."""
            try:
                current = provider.read_rrsets(zone, names).at(names)
            except DnsError as e:
                seen['reread'] = str(e)
                return False, seen['state']
            if all(_same(current.get(c.key), c.after) for c in plan.changes):
                return True, 'applied'
            if all(_same(current.get(c.key), c.before) for c in plan.changes):
                seen['state'] = 'not applied'
                return False, 'not applied'
            seen['reread'] = 'the zone now holds neither the records before nor those ' \
                             'planned (someone else changed it)'
            return True, 'unknown'

        limit = min(READ_AGAIN_SECONDS, 3 * provider.timeout)
        # At least READ_AGAIN_ROUNDS reads after pauses of 0.2, 1 and 2 s, however long each
        # read takes: a server that applies the update late must get its chance to show it.
        state, _rounds, waited = poll(read_again, limit, 1.0, 2.0, first=READ_AGAIN_FIRST_PAUSE,
                                      min_rounds=READ_AGAIN_ROUNDS)
        reread = seen['reread']
        result['update_reply'] = 'lost'
        result['outcome'] = state
        if state == 'applied':
            self.warnings.append('%s; a read of the zone shows the update applied' % lost)
            return self.verify_applied(provider, zone, plan, result, attempts)
        if where:
            result['backup_path'] = where
        if state == 'not applied':
            raise DnsError('%s; reads of the zone %.0f s later still show it as it was, '
                           'so it was not applied. Nothing was changed; %s in case the server '
                           'still applies it. Run again.' % (lost.message, waited, keep),
                           'apply',
                           fields=dict(result, changed=False))
        raise DnsError('%s, and the outcome is unknown: %s. Check the zone; %s.'
                       % (lost.message, reread or 'a read of the zone failed', keep), 'apply',
                       fields=dict(result, changed=True))

    def spec_for(self, state: str) -> Spec:
        """The planner's input from the options (and the records given in ``records``)."""
        return Spec.from_params(self.params, state)

    def apply_pattern(self) -> dict:
        """state: present or absent."""
        p = self.params
        spec = self.spec_for(p['state'])
        provider, zone = self.provider_and_zone(spec.domain)
        names = spec.names()

        served: Dict[str, Any] = {}

        def make_plan() -> Tuple[Snapshot, Plan]:
            snapshot = provider.read_rrsets(zone, names)
            check_delegation(snapshot, spec.domain, zone, 'plan')
            plan = plan_changes(spec, snapshot.at(names))
            served.clear()
            served.update(self.mta_sts_served(spec, plan))
            return snapshot, plan

        backup_path = p.get('backup_path')
        previous = load_backup(backup_path, must_exist=False) if backup_path else None
        if previous is not None:
            merged_backup(previous, Plan([], [], {}), zone, None, None,  # zone check, early
                          provider.name)

        backup: Optional[Callable[[Plan], Callable[[], None]]] = None
        if backup_path:
            def backup_of(plan: Plan) -> Callable[[], None]:
                return write_backup(backup_path, merged_backup(
                    json.loads(json.dumps(previous)) if previous else None, plan, zone,
                    provider.label, spec.domain, provider.name))
            backup = backup_of

        result = self.plan_and_apply(provider, zone, make_plan, backup)
        if result['changed'] and not backup_path and not self.check_mode:
            # not in check mode: a plan writes nothing, and its apply may well give a backup_path
            self.warnings.append('no backup_path was given, so state: rollback cannot undo this '
                                 'change; the prior records are in the before return value')
        result['domain'] = spec.domain
        result['mx_host'] = spec.mx_host
        if served:
            result['mta_sts'] = served
        if spec.tls_rpt is not None:
            result['tls_rpt'] = spec.tls_rpt.record()
        if spec.mx_host_computed and spec.pattern != 'legacy_forward':
            result['mx_host_computed'] = True
        if backup_path:
            result['backup_path'] = backup_path
        return result

    def mta_sts_served(self, spec: Spec, plan: Plan) -> Dict[str, Any]:
        """The ``mta_sts`` return value: the policy whose id the plan publishes and whether
        the policy host serves it. A new id is published only once the host serves the policy
        (``policy_check``): a sender that fetched another policy under it keeps that one for
        max_age (RFC 8461 section 3.3). Raises RecordError (nothing changed) when it is not."""
        policy = plan.mta_sts
        wanted = spec.mta_sts
        if policy is None or wanted is None:
            return {}
        info: Dict[str, Any] = dict(policy.to_dict(), policy=policy.text(), id=policy.policy_id(),
                                    record=policy.record(), url=policy_url(spec.domain),
                                    served=None)
        if not wanted.policy_check or not plan.changes_at(sts_name(spec.domain)):
            return info
        fetched = fetch_policy(spec.domain, wanted.address, wanted.ca_path, wanted.timeout)
        problem = fetched.error
        if fetched.text is not None:
            found, problems = parse_policy(fetched.text)
            if found is None:
                problem = '%s serves a policy senders cannot use: %s' % (
                    fetched.url, '; '.join(problems))
            elif found != policy:
                problem = '%s serves another policy (%s), not this one (%s)' % (
                    fetched.url, found.describe(), policy.describe())
        info['served'] = problem is None
        if not problem:
            return info
        serve = ('Serve this at %s (HTTP 200, Content-Type text/plain, a certificate for %s): %s'
                 % (info['url'], policy_host(spec.domain),
                    ' | '.join(policy.text().split('\r\n')[:-1])))
        if self.check_mode:  # predicted: the run would stop here
            self.warnings.append('%s, so a run outside check mode stops before its UPDATE. %s.'
                                 % (problem, serve))
            return info
        raise RecordError(
            '%s. Nothing was changed: the new id %s is published only once that policy is '
            'served, since a sender that fetches another one under it keeps it for max_age. '
            '%s; then run again (mta_sts.policy_check: false publishes the id without looking).'
            % (problem, policy.policy_id(), serve), phase='mta_sts', fields={'mta_sts': info})

    def roll_back(self) -> dict:
        """state: rollback: put back the records a backup holds as they were before."""
        p = self.params
        data = load_backup(p.get('backup_path'))
        zone = data['zone']
        if p.get('zone') and name_text(to_name(p['zone'], what='zone')) != zone:
            raise DnsError('backup %s is of zone %s, not %s'
                           % (p['backup_path'], zone, p['zone']), 'rollback')
        provider = self.zone_provider()
        check_backup_provider(data, provider.name, p['backup_path'], 'rollback')
        entries = [(e, RRset.from_backup(e['before']) if e['before'] else None,
                    RRset.from_backup(e['after']) if e['after'] else None)
                   for e in data['entries']]
        names = sorted(set(entry[0]['name'] for entry in entries))
        force = p.get('force')

        def make_plan() -> Tuple[Snapshot, Plan]:
            snapshot = provider.read_rrsets(zone, names)
            current = snapshot.at(names)
            changes: List[Change] = []
            drift: List[str] = []
            for e, before, after in entries:
                key = (e['name'], e['type'])
                cur = current.get(key)
                if _same(cur, before):
                    continue
                if not _same(cur, after):
                    drift.append('%s %s is now %s, the run left %s' % (
                        key[0], key[1], _show(cur), _show(after)))
                    if not force:
                        continue
                changes.append(Change(cur, before, 'restored from backup'))
            if drift and not force:
                raise DnsError('records changed since the run that wrote %s, so a '
                               'rollback would lose those changes: %s. Nothing was changed. '
                               'Check them, then set force: true to restore the backup anyway.'
                               % (p['backup_path'], '; '.join(drift)), 'rollback')
            if drift:
                self.warnings.append('force: overwriting changes made since the backup: '
                                     + '; '.join(drift))
            return snapshot, Plan(changes, [], {})

        result = self.plan_and_apply(provider, zone, make_plan)
        if result['changed'] and not self.check_mode:
            data['rolled_back'] = _now()
            try:
                write_backup(p['backup_path'], data)
            except DnsError as e:  # the zone is restored; only the note of it is missing
                self.warnings.append('the rollback was applied, but marking the backup as '
                                     'rolled back failed: %s' % e)
        result['backup_path'] = p['backup_path']
        return result

    def preflight(self) -> dict:
        """state: preflight. Prove what a run needs and change nothing: the zone found and read
        with the key (the names that state present reads), no delegation on the way to the
        domain, and, outside check mode, an UPDATE that carries only a prerequisite (the zone's
        SOA exists): the server takes updates of the zone from the key."""
        spec = self.spec_for('present')
        provider, zone = self.provider_and_zone(spec.domain)
        snapshot = provider.read_rrsets(zone, spec.names())
        check_delegation(snapshot, spec.domain, zone, 'read')
        self.warnings.extend(snapshot.warnings)
        result: Dict[str, Any] = {
            'changed': False, 'zone': zone, 'domain': spec.domain, 'mx_host': spec.mx_host,
            'plan': [], 'before': [], 'after': [], 'serial_before': snapshot.serial,
            'serial_after': snapshot.serial, 'read_method': snapshot.method,
            'provider': provider.name, 'guarantee': provider.guarantee, 'update_proven': False}
        apex_ns = snapshot.rrsets.get((zone, 'NS'))
        if apex_ns is not None:
            hosting = hosting_of(v.rstrip('.') for v in apex_ns.values)
            result['hosting'] = hosting
            hint = provider_hint(hosting, provider.name, zone)
            if hint:
                self.warnings.append(hint)
        if self.check_mode:
            self.warnings.append('check mode sends no UPDATE, so the right of %s to update %s '
                                 'is not proven (the zone was read with it)'
                                 % (provider.writer, zone))
        else:
            provider.prove_write(zone)
            result['update_proven'] = True
        return result

    def result(self) -> dict:
        if self.params['state'] == 'rollback':
            result = self.roll_back()
        elif self.params['state'] == 'preflight':
            result = self.preflight()
        else:
            result = self.apply_pattern()
        if self.warnings:
            result['warnings'] = self.warnings
        return result


def _synthesised(provider: ZoneProvider, zone: str, change: Change,
                 found: Optional[RRset]) -> bool:
    """True when an rrset that should be gone is only what a wildcard answers for the name
    (RFC 4592: a name that does not exist gets the wildcard's data)."""
    if change.after is not None or found is None:
        return False
    try:
        wildcard = provider.wildcard_rrsets(change.key[0], zone, 'verify').get(change.key[1])
    except DnsError:
        return False
    return wildcard is not None and wildcard.values == found.values


def reread_before_apply(provider: ZoneProvider, zone: str, plan: Plan) -> None:
    """For a provider without preconditions (NONE, TRANSACTION): ConcurrentChange when the
    touched rrsets are no longer as the plan read them. It narrows the window between read
    and write; it cannot close it."""
    names = sorted(set(c.key[0] for c in plan.changes))
    now = provider.read_rrsets(zone, names).at(names)
    moved = [c.key for c in plan.changes if not _same(now.get(c.key), c.before)]
    if moved:
        raise ConcurrentChange('zone %s changed after it was read (%s)' % (zone, ', '.join(
            '%s %s' % key for key in moved)), 'apply')


def check_delegation(snapshot: Snapshot, domain: str, zone: str, phase: str) -> None:
    """RecordError when ``domain`` is delegated away from ``zone`` (see delegation_between)."""
    cut = delegation_between(snapshot, domain, zone)
    if cut:
        raise RecordError('%s is delegated to another zone (NS records at %s in %s): records '
                          'written here would never be served. Point server at the primary of '
                          '%s.' % (domain, cut, zone, cut), phase=phase)


def delegation_between(snapshot: Snapshot, domain: str, zone: str) -> Optional[str]:
    """The first name from ``domain`` up to (not including) the apex that holds NS records."""
    name, apex = to_name(domain), to_name(zone)
    while name != apex and name.is_subdomain(apex):
        if (name_text(name), 'NS') in snapshot.rrsets:
            return name_text(name)
        name = name.parent()
    return None


def check_backup_provider(data: dict, provider: str, where: str, phase: str) -> None:
    """DnsError when the backup ``data`` was written through another provider (a backup
    without the field is from RFC 2136, the only provider before there were others)."""
    wrote = data.get('provider') or 'rfc2136'
    if wrote != (provider or 'rfc2136'):
        raise DnsError('%s holds a backup written with provider %s (at %s), not %s: give the '
                       'provider and its options that changed the zone. Nothing was changed.'
                       % (where, wrote, data.get('server') or 'an unrecorded place', provider),
                       phase)


def _same(a: Optional[RRset], b: Optional[RRset]) -> bool:
    if a is None or b is None:
        return a is None and b is None
    return a.same_as(b)


def _show(rr: Optional[RRset]) -> str:
    if rr is None:
        return 'absent'
    return 'TTL %d %s' % (rr.ttl, ' | '.join(rr.sorted_values()))
