# Copyright (c) exchangeonline.mail contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The mail_dns engine against providers that are not atomic (RRSET_CAS, NONE): what the zone,
the backup and the task's result are after a concurrent change, a second one, and a failed undo.

RFC 2136 (ATOMIC) is covered against a real BIND in tests/integration/test_mail_dns.py; no
provider of the other guarantees exists yet, so :class:`MemoryZone` is one: a zone held in a
dict that keeps the promise of its guarantee exactly as the seam (_dns_provider) describes it.
"""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import json

import pytest

from ansible_collections.exchangeonline.mail.plugins.module_utils._dns_provider import (
    NONE,
    RRSET_CAS,
    ConcurrentChange,
    Snapshot,
    ZoneProvider,
)
from ansible_collections.exchangeonline.mail.plugins.module_utils._dns_transport import (
    DnsError,
    UpdateOutcomeUnknown,
)
from ansible_collections.exchangeonline.mail.plugins.module_utils._mail_dns import MailDnsEngine
from ansible_collections.exchangeonline.mail.plugins.module_utils._records import RRset

D = 'contoso.com.'
AUTODISCOVER = 'autodiscover.' + D
LEGACY_MX = '10 mail.contoso.com.'
EXO_MX = '0 contoso-com.mail.protection.outlook.com.'
SPF = 'v=spf1 ip4:192.0.2.0/24 ~all'
SPF_EXO = 'v=spf1 ip4:192.0.2.0/24 include:spf.protection.outlook.com ~all'
GOOGLE = 'google-site-verification=abc'
OTHER = 'other-team=keep-me'


def legacy_rrsets():
    return dict((r.key, r) for r in (
        RRset(D, 'SOA', 3600, ['ns1.contoso.com. hostmaster.contoso.com. 1 3600 600 86400 300']),
        RRset(D, 'NS', 3600, ['ns1.contoso.com.']),
        RRset(D, 'MX', 3600, [LEGACY_MX]),
        RRset(D, 'TXT', 3600, [SPF, GOOGLE]),
    ))


class MemoryZone(ZoneProvider):
    """One zone in a dict of rrsets ({(name, type): RRset}).

    ``apply_changes`` keeps the promise of ``guarantee``: RRSET_CAS applies the set change by
    change, each only while its rrset is still its ``before``, and raises ConcurrentChange with
    the changes applied so far at the first that is not; NONE applies every change blindly.
    ``another_writer(call, index, change)`` runs before each change is written (``call``: 1 for
    the first change set the engine applies): it may change the zone as someone else would, or
    raise what a server would answer."""

    where = 'the in-memory zone'

    def __init__(self, guarantee, rrsets, another_writer=None):
        self.guarantee = guarantee
        self.rrsets = dict(rrsets)
        self.another_writer = another_writer
        self.calls = []   # every change set apply_changes was given, as (name, type, action)
        self.number = 1   # the serial

    def find_zone(self, domain):
        return D

    def read_rrsets(self, zone, names):
        names = set(names)
        return Snapshot(zone, self.number,
                        dict((k, v) for k, v in self.rrsets.items() if k[0] in names), 'memory')

    def write(self, key, rrset):
        """What a writer (this provider or another) does: put ``rrset`` at ``key`` (None:
        delete it)."""
        if rrset is None:
            self.rrsets.pop(key, None)
        else:
            self.rrsets[key] = rrset
        self.number += 1

    def apply_changes(self, zone, changes):
        changes = list(changes)
        self.calls.append([c.key + (c.action,) for c in changes])
        applied = []
        for index, change in enumerate(changes):
            if self.another_writer:
                self.another_writer(len(self.calls), index, change)
            if self.guarantee == RRSET_CAS and not _same(self.rrsets.get(change.key),
                                                         change.before):
                raise ConcurrentChange('%s %s changed after it was read' % change.key, 'apply',
                                       applied=applied)
            self.write(change.key, change.after)
            applied.append(change)

    def served(self, keys):
        return dict((k, self.rrsets.get(k)) for k in keys)

    def serial(self, zone):
        return self.number

    def prove_write(self, zone):
        pass

    def values(self, name, rdtype):
        rr = self.rrsets.get((name, rdtype))
        return rr.sorted_values() if rr is not None else None


def _same(a, b):
    return a is None and b is None or a is not None and a.same_as(b)


def add_txt(zone, value):
    """Another admin adds a TXT value at the apex."""
    zone.write((D, 'TXT'), zone.rrsets[(D, 'TXT')].with_values(
        zone.rrsets[(D, 'TXT')].values | set([value])))


def params(backup_path, state='present'):
    return dict(domain=D, pattern='full', state=state, server='127.0.0.1', port=53, zone=None,
                force=False, backup_path=backup_path)


def run(zone, backup_path, on_planned=None, state='present'):
    return MailDnsEngine(params(backup_path, state), on_planned=on_planned,
                         provider=zone).result()


def backup_before(path):
    """{(name, type): sorted values or None} of the 'before' side of the backup file."""
    with open(path) as f:
        data = json.load(f)
    return dict(((e['name'], e['type']), sorted(e['before']['values']) if e['before'] else None)
                for e in data['entries'])


def mail_records(zone):
    return {'mx': zone.values(D, 'MX'), 'txt': zone.values(D, 'TXT'),
            'autodiscover': zone.values(AUTODISCOVER, 'CNAME')}


AS_IT_WAS = {'mx': [LEGACY_MX], 'txt': sorted([SPF, GOOGLE]), 'autodiscover': None}
# The plan's changes, in the order applied: autodiscover CNAME, apex MX, apex TXT.
TXT_INDEX = 2


def test_rrset_cas_concurrent_change_mid_set_undone_replanned(tmp_path):
    """The other admin's TXT value comes in between our MX and our TXT: the CNAME and MX that
    were in are undone (the zone is as it was, with their value, when the engine plans again),
    the new plan keeps their value, and the backup holds the zone as the applied plan read it."""
    backup = str(tmp_path / 'backup.json')

    def someone_else(call, index, change):
        if call == 1 and index == TXT_INDEX:
            add_txt(zone, OTHER)

    zone = MemoryZone(RRSET_CAS, legacy_rrsets(), someone_else)
    seen = {}

    def planned(attempt, plan):
        seen[attempt] = mail_records(zone)

    result = run(zone, backup, planned)
    assert result['changed'] is True and result['attempts'] == 2
    assert any('contoso.com. TXT changed after it was read; ' in w and 'had already written '
               'autodiscover.contoso.com. CNAME, contoso.com. MX; they were put back as they '
               'were, so the zone is as it was; re-read and re-planned' in w
               for w in result['warnings']), result['warnings']
    # Before the second plan is applied, the first plan's CNAME and MX are gone again.
    assert seen[2] == dict(AS_IT_WAS, txt=sorted([SPF, GOOGLE, OTHER]))
    assert zone.calls[1] == [(D, 'MX', 'update'), (AUTODISCOVER, 'CNAME', 'delete')]
    assert mail_records(zone) == {'mx': [EXO_MX], 'txt': sorted([SPF_EXO, GOOGLE, OTHER]),
                                  'autodiscover': ['autodiscover.outlook.com.']}
    assert backup_before(backup) == {(D, 'MX'): [LEGACY_MX],
                                     (D, 'TXT'): sorted([SPF, GOOGLE, OTHER]),
                                     (AUTODISCOVER, 'CNAME'): None}
    # And that backup puts back the zone as it was (with the other admin's value).
    zone.another_writer = None
    assert run(zone, backup, state='rollback')['changed'] is True
    assert mail_records(zone) == dict(AS_IT_WAS, txt=sorted([SPF, GOOGLE, OTHER]))


def test_rrset_cas_changed_twice_fails_with_zone_and_backup_as_they_were(tmp_path):
    """Someone else edits the zone during both attempts: the task fails saying so, nothing of
    ours stays in the zone, and the backup file is as it was before the run (here: a backup of an
    earlier run, byte for byte)."""
    backup = tmp_path / 'backup.json'
    earlier = MemoryZone(RRSET_CAS, legacy_rrsets())
    run(earlier, str(backup))  # an earlier run on another zone copy wrote this backup
    old_backup = backup.read_bytes()

    def busy(call, index, change):
        if index == TXT_INDEX:
            add_txt(zone, 'busy-%d' % call)

    zone = MemoryZone(RRSET_CAS, legacy_rrsets(), busy)
    with pytest.raises(DnsError) as err:
        run(zone, str(backup))
    assert err.value.phase == 'apply'
    assert 'someone else is editing the zone. Nothing was changed' in err.value.message
    assert err.value.result()['changed'] is False
    assert len(zone.calls) == 4  # apply, undo, apply again, undo
    assert mail_records(zone) == dict(AS_IT_WAS, txt=sorted([SPF, GOOGLE, 'busy-1', 'busy-3']))
    assert backup.read_bytes() == old_backup


def refuse(call, index, change):
    raise DnsError('the in-memory zone answered REFUSED', 'update', rcode='REFUSED')


def no_answer(call, index, change):
    raise UpdateOutcomeUnknown('no answer from the in-memory zone within 10.0 s', 'update')


@pytest.mark.parametrize('undo_fails, answer, state', [
    (refuse, 'the server answered: the in-memory zone answered REFUSED', 'is now partly changed'),
    (no_answer, 'the outcome of the undo is unknown (no answer from the in-memory zone within '
                '10.0 s)', 'may now be partly changed'),
    # The undo itself meets a concurrent change at its second rrset: the MX is undone, the
    # CNAME is someone else's now.
    ('cname', 'the server answered: autodiscover.contoso.com. CNAME changed after it was read',
     'is now partly changed (not undone: autodiscover.contoso.com. CNAME)'),
])
def test_rrset_cas_failed_undo_says_what_is_in_and_keeps_the_backup(tmp_path, undo_fails,
                                                                    answer, state):
    """The concurrent change mid-set, then the undo of the part applied fails: the task fails
    with the first refusal, what was applied, the undo's answer and the backup (kept, holding the
    records as they were: those of the changes applied); changed is true. The rollback the
    message advises then restores them and keeps the other admin's TXT value, or, where someone
    else changed a record since, refuses and names it."""
    backup = str(tmp_path / 'backup.json')

    def someone_else(call, index, change):
        if call == 1 and index == TXT_INDEX:
            add_txt(zone, OTHER)
        elif call == 2 and undo_fails == 'cname':
            if index == 1:
                zone.write((AUTODISCOVER, 'CNAME'),
                           RRset(AUTODISCOVER, 'CNAME', 300, ['elsewhere.example.']))
        elif call == 2:
            undo_fails(call, index, change)

    zone = MemoryZone(RRSET_CAS, legacy_rrsets(), someone_else)
    with pytest.raises(DnsError) as err:
        run(zone, backup)
    result = err.value.result()
    assert result['phase'] == 'apply' and result['changed'] is True
    assert result['backup_path'] == backup
    assert result['msg'] == (
        'apply: contoso.com. TXT changed after it was read. Before that, the in-memory zone '
        'applied autodiscover.contoso.com. CNAME, contoso.com. MX; undoing them failed: %s. '
        'Zone contoso.com. %s. The backup %s holds the records as they were and is kept: '
        'state: rollback with backup_path %s restores them, or fix them by hand.'
        % (answer, state, backup, backup))
    assert len(zone.calls) == 2  # no re-plan after that
    assert backup_before(backup) == {(D, 'MX'): [LEGACY_MX], (AUTODISCOVER, 'CNAME'): None}

    zone.another_writer = None
    if undo_fails == 'cname':
        with pytest.raises(DnsError) as err:
            run(zone, backup, state='rollback')
        assert 'autodiscover.contoso.com. CNAME is now TTL 300 elsewhere.example.' \
            in err.value.message
    else:
        assert run(zone, backup, state='rollback')['changed'] is True
        assert mail_records(zone) == dict(AS_IT_WAS, txt=sorted([SPF, GOOGLE, OTHER]))


def test_failed_undo_and_backup_not_narrowed_says_so(tmp_path):
    """When the backup cannot be narrowed to the changes applied (here its directory is gone and
    a file has its name), the message says so and why; the backup as written before the apply
    is what there is (moved with its directory)."""
    folder = tmp_path / 'backups'
    backup = str(folder / 'backup.json')

    def someone_else(call, index, change):
        if call == 1 and index == TXT_INDEX:
            add_txt(zone, OTHER)
        elif call == 2:
            folder.rename(tmp_path / 'moved')
            folder.write_text('not a directory')
            refuse(call, index, change)

    zone = MemoryZone(RRSET_CAS, legacy_rrsets(), someone_else)
    with pytest.raises(DnsError) as err:
        run(zone, backup)
    assert err.value.result()['changed'] is True
    assert err.value.message.endswith(
        'or fix them by hand. (Narrowing the backup to the changes applied failed: cannot write '
        'backup_path %s: [Errno 17] File exists: %r; a rollback may take the rrsets not applied '
        'for records changed since the run.)' % (backup, str(folder)))
    assert backup_before(str(tmp_path / 'moved' / 'backup.json')) == {
        (D, 'MX'): [LEGACY_MX], (D, 'TXT'): sorted([SPF, GOOGLE]), (AUTODISCOVER, 'CNAME'): None}


def test_failed_undo_without_backup_path_points_to_before(tmp_path):
    def someone_else(call, index, change):
        if call == 1 and index == TXT_INDEX:
            add_txt(zone, OTHER)
        elif call == 2:
            refuse(call, index, change)

    zone = MemoryZone(RRSET_CAS, legacy_rrsets(), someone_else)
    with pytest.raises(DnsError) as err:
        run(zone, None)
    result = err.value.result()
    assert result['changed'] is True and result['backup_path'] is None
    assert result['msg'].endswith('No backup_path was given: the records as they were are in '
                                  'the before return value; put them back by hand.')
    assert {'name': D, 'type': 'MX', 'ttl': 3600, 'values': [LEGACY_MX]} in result['before']
    assert mail_records(zone)['mx'] == [EXO_MX]  # what the message says is in, is in


def test_none_change_between_plan_and_reread_is_replanned(tmp_path):
    """Without preconditions the engine reads the names again just before writing: an edit
    made after the plan is found there, nothing is written for the stale plan, and the new plan
    keeps the other admin's value."""
    backup = str(tmp_path / 'backup.json')
    zone = MemoryZone(NONE, legacy_rrsets())

    def someone_else(attempt, plan):
        if attempt == 1:
            add_txt(zone, OTHER)

    result = run(zone, backup, someone_else)
    assert result['attempts'] == 2
    assert any('zone contoso.com. changed after it was read (contoso.com. TXT); re-read and '
               're-planned' in w for w in result['warnings'])
    assert len(zone.calls) == 1  # the stale plan was never written
    assert mail_records(zone) == {'mx': [EXO_MX], 'txt': sorted([SPF_EXO, GOOGLE, OTHER]),
                                  'autodiscover': ['autodiscover.outlook.com.']}
    assert backup_before(backup)[(D, 'TXT')] == sorted([SPF, GOOGLE, OTHER])


def test_none_happy_path(tmp_path):
    backup = str(tmp_path / 'backup.json')
    zone = MemoryZone(NONE, legacy_rrsets())
    result = run(zone, backup)
    assert result['changed'] is True and result['attempts'] == 1
    assert result['serial_before'] == 1 and result['serial_after'] == 4
    assert not any('re-planned' in w for w in result.get('warnings', []))
    assert zone.calls == [[(AUTODISCOVER, 'CNAME', 'create'), (D, 'MX', 'update'),
                           (D, 'TXT', 'update')]]
    assert mail_records(zone) == {'mx': [EXO_MX], 'txt': sorted([SPF_EXO, GOOGLE]),
                                  'autodiscover': ['autodiscover.outlook.com.']}
    assert backup_before(backup) == {(D, 'MX'): [LEGACY_MX], (D, 'TXT'): sorted([SPF, GOOGLE]),
                                     (AUTODISCOVER, 'CNAME'): None}
    assert run(zone, backup)['changed'] is False  # applied means: a second run plans nothing


def test_failed_undo_of_a_rollback_says_run_it_again(tmp_path):
    """A rollback is a change set like any other: when it is refused halfway and its undo is
    refused too, the backup it restores from stays, and the message says to run it again."""
    backup = str(tmp_path / 'backup.json')
    zone = MemoryZone(RRSET_CAS, legacy_rrsets())
    run(zone, backup)
    before = backup_before(backup)

    def someone_else(call, index, change):
        if call == 1 and index == TXT_INDEX:
            add_txt(zone, OTHER)
        elif call == 2:
            refuse(call, index, change)

    zone.another_writer = someone_else
    zone.calls = []
    with pytest.raises(DnsError) as err:
        run(zone, backup, state='rollback')
    result = err.value.result()
    assert result['changed'] is True and result['backup_path'] == backup
    assert result['msg'].endswith(
        'undoing them failed: the server answered: the in-memory zone answered REFUSED. Zone '
        'contoso.com. is now partly changed. The backup %s is kept: run state: rollback with it '
        'again to finish restoring the records, or fix them by hand.' % backup)
    assert backup_before(backup) == before


def test_backup_not_written_changes_nothing(tmp_path):
    (tmp_path / 'file').write_text('')
    backup = str(tmp_path / 'file' / 'backup.json')
    zone = MemoryZone(RRSET_CAS, legacy_rrsets())
    with pytest.raises(DnsError) as err:
        run(zone, backup)
    assert str(err.value).startswith('backup: cannot write backup_path %s: ' % backup)
    assert str(err.value).endswith('. Nothing was changed.')
    assert zone.calls == [] and mail_records(zone) == AS_IT_WAS
