# -*- coding: utf-8 -*-
# Copyright (c) exchangeonline.mail contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# Private to this collection: may change without notice.
"""The manual provider: DNS at a registrar or host without an API.

It reads the zone like RFC 2136 does, from ``server`` (one of the zone's authoritative servers,
usually unsigned: a transfer refused falls back to queries), and writes nothing: the plan is
returned as the exact records to enter (``manual``: a table and zone-file lines, what to delete
and what to add), and the backup holds the records as they were, so that ``state: rollback``
lists what to enter to undo it. mail_dns_check then waits until every authoritative server
serves the records. Its guarantee is ``MANUAL``: nothing is applied by the task.
"""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

from typing import Any, Dict, List, Tuple

from ansible_collections.exchangeonline.mail.plugins.module_utils._dns_provider import MANUAL
from ansible_collections.exchangeonline.mail.plugins.module_utils._dns_transport import DnsError
from ansible_collections.exchangeonline.mail.plugins.module_utils._patterns import Change, Plan
from ansible_collections.exchangeonline.mail.plugins.module_utils._records import make_rdata
from ansible_collections.exchangeonline.mail.plugins.module_utils._rfc2136 import (
    Rfc2136Provider,
)


class ManualProvider(Rfc2136Provider):
    """Reads through ``server``; the changes are for a person to make."""

    guarantee = MANUAL
    name = 'manual'

    @property
    def writer(self) -> str:
        return 'the person who enters the records'

    def apply_changes(self, zone: str, changes: List[Change]) -> None:
        raise DnsError('provider manual writes nothing (a bug: the engine asked it to)', 'apply')

    def prove_write(self, zone: str) -> None:
        return None  # the person entering the records is the writer: nothing to prove


def instructions(plan: Plan, zone: str) -> Dict[str, Any]:
    """The ``manual`` return value: the records to delete and to add, per rrset, as a table
    (name relative to the zone, type, TTL, value) and as zone-file lines."""
    remove: List[Dict[str, Any]] = []
    add: List[Dict[str, Any]] = []
    lines: List[str] = []
    for c in plan.changes:
        before = c.before.values if c.before is not None else frozenset()
        after = c.after.values if c.after is not None else frozenset()
        ttl_changed = c.before is not None and c.after is not None and c.before.ttl != c.after.ttl
        if c.before is not None:
            for value, text in _records(c.before):
                if ttl_changed or value not in after:
                    remove.append(_row(c.before.name, c.key[1], c.before.ttl, text, zone))
                    lines.append('; delete: %s %d IN %s %s'
                                 % (c.before.name, c.before.ttl, c.key[1], text))
        if c.after is not None:
            for value, text in _records(c.after):
                if ttl_changed or value not in before:
                    add.append(_row(c.after.name, c.key[1], c.after.ttl, text, zone))
                    lines.append('%s %d IN %s %s' % (c.after.name, c.after.ttl, c.key[1], text))
    return {'delete': remove, 'add': add, 'zone_lines': lines,
            'table': _table(remove, add)}


def _records(rrset: Any) -> List[Tuple[str, str]]:
    """(canonical value, presentation text) of each record, in the order of rdata_list."""
    return [(value, (rd if rd is not None else make_rdata(rrset.rdtype, value))
             .to_text(relativize=False)) for value, rd in sorted(rrset.rdatas.items())]


def _row(name: str, rdtype: str, ttl: int, value: str, zone: str) -> Dict[str, Any]:
    host = '@' if name == zone else name[:-len(zone) - 1] if name.endswith('.' + zone) else name
    return {'name': name, 'host': host, 'type': rdtype, 'ttl': ttl, 'value': value}


def _table(remove: List[Dict[str, Any]], add: List[Dict[str, Any]]) -> List[str]:
    rows = [('action', 'host', 'type', 'TTL', 'value')]
    rows += [('delete', r['host'], r['type'], str(r['ttl']), r['value']) for r in remove]
    rows += [('add', r['host'], r['type'], str(r['ttl']), r['value']) for r in add]
    widths = [max(len(row[i]) for row in rows) for i in range(4)]
    return ['  '.join(cell.ljust(widths[i]) if i < 4 else cell for i, cell in enumerate(row))
            .rstrip() for row in rows]
