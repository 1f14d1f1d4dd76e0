# -*- coding: utf-8 -*-
# Copyright (c) exchangeonline.mail contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# Private to this collection: may change without notice.
"""The rrset model and value normalisation.

Every comparison in the collection goes through :func:`canonical_value`: names lower-case and
absolute, TXT values as the unquoted concatenation of their character-strings. Wire data of
values that are kept is never rebuilt, so a TXT record split at other boundaries survives a run
byte for byte.
"""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import traceback
from typing import Any, Dict, FrozenSet, Iterable, List, Mapping, Optional, Tuple, Union

from ansible_collections.exchangeonline.mail.plugins.module_utils._errors import InputError

DNSPYTHON_IMPORT_ERROR = None
try:
    import dns.exception
    import dns.name
    import dns.rdata
    import dns.rdataclass
    import dns.rdatatype
    import dns.rdtypes.ANY.TXT
except ImportError:
    DNSPYTHON_IMPORT_ERROR = traceback.format_exc()

# Types this collection writes; anything else is read and kept, never written.
MANAGED_TYPES = ('MX', 'TXT', 'CNAME')
TXT_CHUNK = 255
TXT_MAX = 2048  # octets of one TXT value the collection writes (RFC 7208 3.4: SPF under 512)
# Maintained by a zone's signer: never planned or compared. They may stand next to a CNAME
# (RFC 2181 10.1, RFC 4035 2.5).
DNSSEC_TYPES = ('RRSIG', 'NSEC', 'NSEC3', 'NSEC3PARAM', 'DNSKEY', 'CDS', 'CDNSKEY', 'TYPE65534')


class RecordError(InputError):
    """Bad DNS record input (phase ``input``) or data the collection refuses to touch (phase
    ``plan``); ``message`` is for the user, ``str()`` is ``"<phase>: <message>"``."""

    def __init__(self, message: str, phase: str = 'input',
                 fields: Optional[Mapping[str, Any]] = None) -> None:
        super(RecordError, self).__init__(message, phase, fields)


def to_name(text: Any, origin: Any = None, what: Optional[str] = None) -> Any:
    """A dns.name.Name (``origin`` one too) from user text: Unicode IDN accepted (IDNA 2008
    where available), absolute. ``text`` may be any value: what is not a string is refused, and
    ``what`` names the option in the message of that RecordError."""
    label = '%s ' % what if what else ''
    if not isinstance(text, str) or not text.strip():
        raise RecordError('%sa DNS name must be a non-empty string, got %r' % (
            '%s: ' % what if what else '', text))
    text = text.strip()
    if text == '@':
        if origin is None:
            raise RecordError("%s'@' needs a zone" % label)
        return origin
    if any(c.isspace() for c in text):
        raise RecordError('%s%r is not a valid DNS name: it contains white space'
                          % (label, _short(text)))
    if len(text) > 1024:  # no name of 255 octets is written that long, even escaped
        raise RecordError('%s%r is not a valid DNS name: longer than 255 octets'
                          % (label, _short(text)))
    try:
        if any(ord(c) > 127 for c in text):
            name = dns.name.from_unicode(text, origin)
        else:
            name = dns.name.from_text(text, origin)
    except dns.name.LabelTooLong:
        raise RecordError('%s%r is not a valid DNS name: a label is longer than 63 octets'
                          % (label, _short(text)))
    except dns.name.NameTooLong:
        raise RecordError('%s%r is not a valid DNS name: longer than 255 octets'
                          % (label, _short(text)))
    except dns.name.EmptyLabel:
        raise RecordError('%s%r is not a valid DNS name: it has an empty label (two dots in a '
                          'row)' % (label, _short(text)))
    except (dns.exception.DNSException, UnicodeError, ValueError) as e:
        raise RecordError('%s%r is not a valid DNS name: %s' % (label, _short(text), e))
    if not name.is_absolute():
        try:
            name = name.concatenate(dns.name.root)
        except dns.name.NameTooLong:
            raise RecordError('%s%r is not a valid DNS name: longer than 255 octets'
                              % (label, _short(text)))
    return name


def _short(text: str, limit: int = 80) -> str:
    """``text`` cut for a message: a 100 KB value must not become a 100 KB error."""
    return text if len(text) <= limit else text[:limit] + '...(%d characters)' % len(text)


def name_text(name: Any) -> str:
    """Canonical text of a name: lower-case, absolute, ASCII (punycode)."""
    return name.to_text().lower()


def validate_hostname(text: Any, what: str) -> Any:
    """A target host name (MX exchange, CNAME target) as a dns.name.Name: LDH labels only,
    absolute."""
    name = to_name(text, what=what)
    if name == dns.name.root:
        raise RecordError('%s must be a host name, not the root' % what)
    for label in name.labels[:-1]:
        try:
            label_s = label.decode('ascii')
        except UnicodeDecodeError:
            raise RecordError('%s %r is not a valid host name' % (what, text))
        if not label_s.replace('-', '').replace('_', '').isalnum() or label_s.startswith('-') \
                or label_s.endswith('-'):
            raise RecordError('%s %r is not a valid host name: label %r' % (what, text, label_s))
    return name


def txt_value(rdata: Any) -> str:
    """The value of a TXT rdata: its character-strings joined, as text."""
    return b''.join(rdata.strings).decode('utf-8', 'surrogateescape')


def canonical_value(rdtype: str, rdata: Any) -> str:
    """Comparable text of one rdata of ``rdtype`` (a type name)."""
    if rdtype == 'TXT':
        return txt_value(rdata)
    if rdtype == 'MX':
        return '%d %s' % (rdata.preference, name_text(rdata.exchange))
    if rdtype == 'CNAME':
        return name_text(rdata.target)
    return rdata.to_text(relativize=False).lower()


def check_txt_input(value: Any, what: str) -> str:
    """User-given TXT values are plain text: no zone-file quoting, no control characters."""
    if not isinstance(value, str):
        raise RecordError('%s must be a string, got %r' % (what, value))
    if '"' in value:
        raise RecordError(
            '%s %r contains a double quote. Give the value unquoted, exactly as it should be '
            'published (for example v=spf1 include:spf.protection.outlook.com -all); long values '
            'are split into 255-byte strings automatically.' % (what, _short(value)))
    if any(ord(c) < 32 or ord(c) == 127 for c in value):
        raise RecordError('%s %r contains a control character' % (what, _short(value)))
    if not value.strip():
        raise RecordError('%s must not be empty' % what)
    if len(value.encode('utf-8', 'surrogateescape')) > TXT_MAX:
        raise RecordError('%s is %d octets long; a record this collection writes is at most %d '
                          '(no SPF, DMARC or verification record is that long)'
                          % (what, len(value.encode('utf-8', 'surrogateescape')), TXT_MAX))
    return value


def make_rdata(rdtype: str, value: str) -> Any:
    """An rdata of ``rdtype`` for a canonical ``value``; TXT split into 255-byte strings."""
    rdclass = dns.rdataclass.IN
    if rdtype == 'TXT':
        raw = value.encode('utf-8', 'surrogateescape')
        chunks = [raw[i:i + TXT_CHUNK] for i in range(0, len(raw), TXT_CHUNK)] or [b'']
        return dns.rdtypes.ANY.TXT.TXT(rdclass, dns.rdatatype.TXT, chunks)
    return dns.rdata.from_text(rdclass, dns.rdatatype.from_text(rdtype), value)


def mx_value(host: Any, preference: Any, what: str = 'MX') -> str:
    """The canonical MX value; ``what`` names the option in messages."""
    if isinstance(preference, bool):
        preference = None
    try:
        preference = int(preference)
    except (TypeError, ValueError, OverflowError):
        raise RecordError('%s preference must be a number from 0 to 65535, got %r'
                          % (what, preference))
    if not 0 <= preference <= 65535:
        raise RecordError('%s preference must be from 0 to 65535, got %d' % (what, preference))
    return '%d %s' % (preference, name_text(validate_hostname(host, '%s host' % what)))


def parse_mx(value: str) -> Tuple[int, str]:
    pref, host = value.split(' ', 1)
    return int(pref), host


class RRset:
    """One rrset: absolute lower-case ``name``, type name, ``ttl`` and a set of canonical values.

    ``rdatas`` maps canonical values to the rdata read from the server, so values that are kept
    go back on the wire exactly as they were.
    """

    __slots__ = ('name', 'rdtype', 'ttl', 'rdatas')

    def __init__(self, name: str, rdtype: str, ttl: Union[int, str], values: Iterable[str] = (),
                 rdatas: Optional[Dict[str, Any]] = None) -> None:
        self.name = name
        self.rdtype = rdtype
        self.ttl = int(ttl)
        # value -> the rdata read, or None for a value written from its text
        self.rdatas: Dict[str, Any] = dict(rdatas or {})
        for value in values:
            self.rdatas.setdefault(value, None)

    @classmethod
    def from_rdataset(cls, name: str, rdataset: Any) -> 'RRset':
        rdtype = dns.rdatatype.to_text(rdataset.rdtype)
        rdatas: Dict[str, Any] = {}
        for rd in rdataset:
            value = canonical_value(rdtype, rd)
            if value in rdatas:
                raise RecordError(
                    '%s has two %s records that read the same once compared as text: %s and %s. '
                    'Receivers see both (for SPF that is a permanent error); remove one.'
                    % (name, rdtype, rdatas[value].to_text(), rd.to_text()), phase='plan')
            rdatas[value] = rd
        return cls(name, rdtype, rdataset.ttl, rdatas=rdatas)

    @property
    def key(self) -> Tuple[str, str]:
        return (self.name, self.rdtype)

    @property
    def values(self) -> FrozenSet[str]:
        return frozenset(self.rdatas)

    def sorted_values(self) -> List[str]:
        if self.rdtype == 'MX':
            return sorted(self.rdatas, key=lambda v: (parse_mx(v)[0], v))
        return sorted(self.rdatas)

    def rdata_list(self) -> List[Any]:
        return [rd if rd is not None else make_rdata(self.rdtype, value)
                for value, rd in sorted(self.rdatas.items(), key=lambda kv: kv[0])]

    def with_values(self, values: Iterable[str], ttl: Optional[int] = None) -> 'RRset':
        """A new rrset with ``values``; rdata of values already here is kept."""
        return RRset(self.name, self.rdtype, self.ttl if ttl is None else ttl,
                     rdatas=dict((v, self.rdatas.get(v)) for v in values))

    def same_as(self, other: Optional['RRset']) -> bool:
        return other is not None and self.key == other.key and self.ttl == other.ttl \
            and self.values == other.values

    def zone_lines(self) -> List[str]:
        lines = []
        for rd in self.rdata_list():
            lines.append('%s %d IN %s %s'
                         % (self.name, self.ttl, self.rdtype, rd.to_text(relativize=False)))
        return lines

    def to_dict(self) -> Dict[str, Any]:
        return {'name': self.name, 'type': self.rdtype, 'ttl': self.ttl,
                'values': self.sorted_values()}

    def to_backup(self) -> Dict[str, Any]:
        """Exact form for backups: presentation text of each rdata as it was on the wire."""
        d = self.to_dict()
        d['rdata'] = sorted(rd.to_text(relativize=False) for rd in self.rdata_list())
        return d

    @classmethod
    def from_backup(cls, d: Dict[str, Any]) -> 'RRset':
        return cls.from_texts(d['name'], d['type'], d['ttl'], d['rdata'])

    @classmethod
    def from_texts(cls, name: str, rdtype: str, ttl: Union[int, str],
                   texts: Iterable[str]) -> 'RRset':
        """An rrset from the presentation text of each record (absolute names), as a backup or
        a provider's API holds it; RecordError for a type or text dnspython cannot read."""
        rdatas: Dict[str, Any] = {}
        for text in texts:
            try:
                rd = dns.rdata.from_text(dns.rdataclass.IN, dns.rdatatype.from_text(rdtype),
                                         text, origin=dns.name.root, relativize=False)
            except (dns.exception.DNSException, ValueError) as e:
                raise RecordError('%s %s record %r cannot be read: %s' % (name, rdtype, text, e))
            rdatas[canonical_value(rdtype, rd)] = rd
        return cls(name, rdtype, ttl, rdatas=rdatas)

    def __repr__(self) -> str:
        return 'RRset(%r, %r, %d, %r)' % (self.name, self.rdtype, self.ttl, self.sorted_values())


def rrset_from_values(name: str, rdtype: Any, ttl: Union[int, str], values: Iterable[Any],
                      what: str = 'record') -> RRset:
    """An rrset from user-facing values (e.g. domain_info output); values are normalised.
    ``what`` names the input in messages."""
    rdtype = str(rdtype).upper()
    if rdtype not in MANAGED_TYPES:
        raise RecordError('%s: record type %s is not one this collection manages (%s)'
                          % (what, rdtype, ', '.join(MANAGED_TYPES)))
    out = []
    for value in values:
        if rdtype == 'TXT':
            out.append(check_txt_input(value, '%s TXT value' % what))
        elif rdtype == 'MX':
            parts = str(value).split()
            if len(parts) != 2:
                raise RecordError('%s: MX value %r must be "<preference> <host>"'
                                  % (what, _short(str(value))))
            out.append(mx_value(parts[1], parts[0], '%s MX' % what))
        else:
            out.append(name_text(validate_hostname(str(value), '%s %s target' % (what, rdtype))))
    return RRset(name, rdtype, ttl, values=out)
