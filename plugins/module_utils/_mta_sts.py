# -*- coding: utf-8 -*-
# Copyright (c) exchangeonline.mail contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# Private to this collection: may change without notice.
"""MTA-STS (RFC 8461) and SMTP TLS reporting (RFC 8460): the policy, its records, and their
checks. No I/O (the policy is fetched by ``_https_policy``).

- :class:`MtaStsWanted`: the ``mta_sts`` option, normalised; :meth:`MtaStsWanted.policy_for`
  turns the MX hosts the zone has after a run into the policy text and its ``id``.
- :func:`parse_sts_record` / :func:`parse_policy`: what is served, with its problems.
- :func:`mx_matches`: RFC 8461 section 4.1 (a ``*.`` pattern matches exactly one label).
- :class:`TlsRptWanted`, :func:`parse_tlsrpt_record`: the ``_smtp._tls`` record.
"""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import hashlib
import re
from typing import Any, Dict, Iterable, List, Mapping, Optional, Sequence, Tuple

from ansible_collections.exchangeonline.mail.plugins.module_utils._records import (
    RecordError,
    name_text,
    validate_hostname,
)

MODES = ('enforce', 'testing', 'none')
DEFAULT_MODE = 'testing'
DEFAULT_MAX_AGE = 604800  # one week: RFC 8461 section 3.2 suggests weeks
MAX_MAX_AGE = 31557600  # RFC 8461 section 3.2
POLICY_PATH = '/.well-known/mta-sts.txt'
POLICY_MAX_BYTES = 65536  # RFC 8461 section 3.3: senders may stop at 64 KiB
STS_ID = re.compile(r'[A-Za-z0-9]{1,32}')
STS_LABEL = '_mta-sts'
TLSRPT_LABEL = '_smtp._tls'


def sts_name(domain: str) -> str:
    return '%s.%s' % (STS_LABEL, domain)


def tlsrpt_name(domain: str) -> str:
    return '%s.%s' % (TLSRPT_LABEL, domain)


def policy_host(domain: str) -> str:
    """``mta-sts.<domain>`` without the trailing dot: the host that serves the policy."""
    return 'mta-sts.' + domain.rstrip('.')


def policy_url(domain: str) -> str:
    return 'https://%s%s' % (policy_host(domain), POLICY_PATH)


# -- the policy -------------------------------------------------------------------------------
def _host(text: str) -> str:
    return text.strip().rstrip('.').lower()


def mx_matches(host: str, pattern: str) -> bool:
    """RFC 8461 section 4.1: ``pattern`` is a host name, or ``*.`` and a name, which matches
    exactly one more label (``*.mx.microsoft`` does not match ``a.b.mx.microsoft``)."""
    host, pattern = _host(host), _host(pattern)
    if pattern.startswith('*.'):
        head, rest = host.split('.', 1) if '.' in host else (host, '')
        return bool(head) and rest == pattern[2:]
    return host == pattern


def check_mx_pattern(pattern: Any, what: str) -> str:
    """A valid ``mx`` pattern in canonical form (lower case, no trailing dot)."""
    if not isinstance(pattern, str) or not pattern.strip():
        raise RecordError('%s must be a host name or *. and a host name, got %r' % (what, pattern))
    text = pattern.strip()
    body = text[2:] if text.startswith('*.') else text
    if '*' in body:
        raise RecordError('%s %r: a wildcard may only be the whole leftmost label (RFC 8461 '
                          'section 3.2), as in *.mail.protection.outlook.com' % (what, pattern))
    name = name_text(validate_hostname(body, what)).rstrip('.')
    if text.startswith('*.') and '.' not in name:
        raise RecordError('%s %r: a wildcard needs at least two labels after it' % (what, pattern))
    return ('*.' if text.startswith('*.') else '') + name


class Policy:
    """An MTA-STS policy: mode, max_age and mx patterns (version STSv1)."""

    __slots__ = ('mode', 'max_age', 'mx')

    def __init__(self, mode: str, max_age: int, mx: Iterable[str]) -> None:
        self.mode = mode
        self.max_age = max_age
        self.mx = tuple(sorted(set(_host(m) for m in mx)))

    def text(self) -> str:
        """The policy file: CRLF lines (RFC 8461 section 3.2 takes LF or CRLF)."""
        lines = ['version: STSv1', 'mode: %s' % self.mode]
        lines.extend('mx: %s' % m for m in self.mx)
        lines.append('max_age: %d' % self.max_age)
        return '\r\n'.join(lines) + '\r\n'

    def policy_id(self) -> str:
        """The ``id`` of the ``_mta-sts`` record: a digest of the policy, so a changed policy
        always gets a new id and the same policy the same one (the run is idempotent)."""
        return hashlib.sha256(self.text().encode('ascii')).hexdigest()[:20]

    def record(self) -> str:
        return 'v=STSv1; id=%s' % self.policy_id()

    def unmatched(self, hosts: Iterable[str]) -> List[str]:
        """The MX hosts no pattern of the policy matches: senders refuse them in enforce."""
        return sorted(set(_host(h) for h in hosts
                          if not any(mx_matches(h, p) for p in self.mx)))

    def __eq__(self, other: Any) -> bool:
        return isinstance(other, Policy) and (self.mode, self.max_age, self.mx) == \
            (other.mode, other.max_age, other.mx)

    def __ne__(self, other: Any) -> bool:
        return not self == other

    def __hash__(self) -> int:
        return hash((self.mode, self.max_age, self.mx))

    def to_dict(self) -> Dict[str, Any]:
        return {'mode': self.mode, 'max_age': self.max_age, 'mx': list(self.mx)}

    def describe(self) -> str:
        return 'mode %s, max_age %d, mx %s' % (self.mode, self.max_age, ', '.join(self.mx) or
                                               '(none)')


def parse_policy(text: str) -> Tuple[Optional[Policy], List[str]]:
    """(the Policy, problems) of a served policy file; the Policy is None when senders cannot
    use it (RFC 8461 section 3.2: unknown fields are ignored, version STSv1, mode and max_age
    required, mx required unless mode is none)."""
    fields: Dict[str, List[str]] = {}
    problems: List[str] = []
    for number, line in enumerate(re.split(r'\r?\n', text), 1):
        if not line.strip():
            continue
        key, sep, value = line.partition(':')
        if not sep or not key or key != key.strip():
            problems.append('line %d is not "key: value": %r' % (number, line[:80]))
            continue
        fields.setdefault(key.strip(), []).append(value.strip())
    for key in ('version', 'mode', 'max_age'):
        if len(fields.get(key, [])) > 1:
            problems.append('%s is given %d times' % (key, len(fields[key])))
    version = fields.get('version', [None])[0]
    if version != 'STSv1':
        problems.append('version must be STSv1, got %s' % (version or 'none'))
    mode = fields.get('mode', [None])[0]
    if mode not in MODES:
        problems.append('mode must be enforce, testing or none, got %s' % (mode or 'none'))
    max_age_text = fields.get('max_age', [''])[0]
    max_age = int(max_age_text) if re.fullmatch(r'[0-9]{1,10}', max_age_text) else None
    if max_age is None or max_age > MAX_MAX_AGE:
        problems.append('max_age must be a number from 0 to %d, got %s'
                        % (MAX_MAX_AGE, max_age_text or 'none'))
    mx = fields.get('mx', [])
    if not mx and mode != 'none':
        problems.append('the policy has no mx line')
    for pattern in mx:
        try:
            check_mx_pattern(pattern, 'mx')
        except RecordError as e:
            problems.append(e.message)
    if problems or mode is None or max_age is None:
        return None, problems
    return Policy(mode, max_age, mx), problems


def _fields(record: str) -> Tuple[List[Tuple[str, str]], List[str]]:
    """(the key=value fields, problems) of a record whose fields are separated by ``*WSP ";"
    *WSP`` (RFC 8461 section 3.1, RFC 8460 section 3); no white space around ``=``."""
    out = []
    problems = []
    for part in record.split(';'):
        field = part.strip(' \t')
        if not field:
            continue
        key, sep, value = field.partition('=')
        if not sep or not key:
            problems.append('%r is not key=value' % field[:40])
        elif key != key.rstrip(' \t') or value != value.lstrip(' \t'):
            problems.append('%r has white space around "=", which senders do not accept'
                            % field[:40])
        out.append((key.strip(), value.strip()))
    return out, problems


def parse_sts_record(value: str) -> Tuple[Optional[str], List[str]]:
    """(the id, problems) of a ``v=STSv1`` TXT value (RFC 8461 section 3.1)."""
    fields, problems = _fields(value)
    if not fields or fields[0] != ('v', 'STSv1'):
        problems.append('the record must start with v=STSv1')
    ids = [v for k, v in fields if k == 'id']
    if len(ids) != 1 or not STS_ID.fullmatch(ids[0]):
        problems.append('id must be 1 to 32 letters and digits, given once (got %s)'
                        % (', '.join(ids) or 'none'))
        return None, problems
    return ids[0], problems


def is_sts_record(value: str) -> bool:
    """A TXT value senders take as an MTA-STS record (RFC 8461 section 3.1: it begins with
    ``v=STSv1;``); a bare ``v=STSv1`` counts too, to be reported as broken, not
    ``v=STSv10``."""
    return re.match(r'v=STSv1[ \t]*(;|$)', value) is not None


class MtaStsWanted:
    """The ``mta_sts`` option: what policy to publish (``mode`` None: none asked, only what is
    served is judged), which MX patterns (None: the zone's own MX hosts), and where to fetch it
    from (``address`` host[:port] instead of ``mta-sts.<domain>``, ``ca_path``)."""

    def __init__(self, option: Mapping[str, Any]) -> None:
        if not isinstance(option, Mapping):
            raise RecordError('mta_sts must be a dict (mode, max_age, mx), got %r' % (option,))
        known = ('mode', 'max_age', 'mx', 'address', 'ca_path', 'policy_check', 'timeout')
        unknown = sorted(set(option) - set(known))
        if unknown:
            raise RecordError('mta_sts has unknown keys: %s' % ', '.join(map(str, unknown)))
        self.mode: Optional[str] = option.get('mode')
        if self.mode is not None and self.mode not in MODES:
            raise RecordError('mta_sts.mode must be enforce, testing or none, got %r'
                              % (self.mode,))
        max_age = option.get('max_age')
        if max_age is None:
            max_age = DEFAULT_MAX_AGE
        if isinstance(max_age, bool) or not isinstance(max_age, int) or \
                not 0 <= max_age <= MAX_MAX_AGE:
            raise RecordError('mta_sts.max_age must be seconds from 0 to %d (RFC 8461 section '
                              '3.2), got %r' % (MAX_MAX_AGE, max_age))
        self.max_age: int = max_age
        mx = option.get('mx')
        if mx is not None and (isinstance(mx, (str, bytes)) or not isinstance(mx, Sequence)):
            raise RecordError('mta_sts.mx must be a list of patterns, got %r' % (mx,))
        self.mx: Optional[List[str]] = None if mx is None else [
            check_mx_pattern(m, 'mta_sts.mx[%d]' % i) for i, m in enumerate(mx)]
        if self.mx is not None and not self.mx and self.mode != 'none':
            raise RecordError('mta_sts.mx is empty: a policy in mode %s needs an mx line'
                              % (self.mode or DEFAULT_MODE))
        self.address: Optional[str] = option.get('address')
        self.ca_path: Optional[str] = option.get('ca_path')
        check = option.get('policy_check')
        self.policy_check: bool = True if check is None else bool(check)
        self.timeout: float = float(option.get('timeout') or 10.0)

    def policy_for(self, mx_hosts: Sequence[str], domain: str,
                   leaving: Sequence[str] = ()) -> Tuple[Policy, List[str]]:
        """(the policy for a zone whose MX hosts are ``mx_hosts`` after the run, warnings).
        ``leaving``: the MX hosts the run removes; a policy in mode enforce without ``mx``
        names them too, since resolvers hand them out until their TTL has passed and senders
        that fetched the new policy would refuse them (RFC 8461 section 8.1: old policies must
        keep working). RecordError when a policy in mode enforce would make senders refuse
        one of the hosts."""
        hosts = sorted(set(_host(h) for h in mx_hosts if _host(h)))
        mode = self.mode or DEFAULT_MODE
        warnings = []
        patterns = self.mx
        if patterns is None:
            old = sorted(set(_host(h) for h in leaving if _host(h)) - set(hosts))
            patterns = hosts + old if mode == 'enforce' else hosts
            if mode == 'enforce' and old:
                warnings.append(
                    'the MTA-STS policy of %s names the MX host(s) this run removes (%s) too, '
                    'since resolvers hand them out until their TTL has passed; once it has, run '
                    'again to publish the policy without them' % (domain, ', '.join(old)))
        policy = Policy(mode, self.max_age, patterns)
        if not policy.mx and mode != 'none':
            raise RecordError('%s has no MX host for the MTA-STS policy to name: publish the MX '
                              'first, or give mta_sts.mx' % domain, phase='plan')
        unmatched = policy.unmatched(hosts)
        if unmatched:
            text = ('the MTA-STS policy (mx %s) has no pattern that matches the MX host(s) %s, '
                    'so senders that enforce it refuse to deliver there (RFC 8461 section 4.1: '
                    '*. matches exactly one label)'
                    % (', '.join(policy.mx), ', '.join(unmatched)))
            if mode == 'enforce':
                raise RecordError(text + '. Nothing was changed: add them to mta_sts.mx, or '
                                  'leave mta_sts.mx out to list the zone\'s MX hosts.',
                                  phase='plan')
            if mode == 'testing':
                warnings.append(text + ' once the policy is in mode enforce')
        return policy, warnings


# -- TLS reporting ----------------------------------------------------------------------------
def _rua_uri(text: Any, what: str) -> str:
    if not isinstance(text, str) or not text.strip():
        raise RecordError('%s must be a mailto: or https: URI, got %r' % (what, text))
    uri = text.strip()
    if '@' in uri and ':' not in uri:
        uri = 'mailto:' + uri
    scheme = uri.split(':', 1)[0].lower()
    if scheme not in ('mailto', 'https') or re.search(r'[\s,;!]', uri) or \
            (scheme == 'mailto' and not re.fullmatch(r'mailto:[^@]+@[^@]+\.[^@]+', uri,
                                                     flags=re.I)) or \
            (scheme == 'https' and not re.fullmatch(r'https://[^/]+\.[^/]+(/.*)?', uri,
                                                    flags=re.I)):
        raise RecordError('%s %r is not a TLS-RPT destination (RFC 8460 section 3: a mailto: '
                          'address or an https: URL, without commas or semicolons)'
                          % (what, text))
    return uri


class TlsRptWanted:
    """The ``tls_rpt`` option: the report destinations (addresses become mailto: URIs)."""

    def __init__(self, option: Any) -> None:
        if isinstance(option, str):
            option = [option]
        if not isinstance(option, Sequence) or not option:
            raise RecordError('tls_rpt must be a list of report destinations (mailto: or '
                              'https:), got %r' % (option,))
        self.rua = [_rua_uri(u, 'tls_rpt[%d]' % i) for i, u in enumerate(option)]

    def record(self) -> str:
        return 'v=TLSRPTv1; rua=%s' % ','.join(self.rua)


def is_tlsrpt_record(value: str) -> bool:
    """As :func:`is_sts_record`, for ``v=TLSRPTv1;`` (RFC 8460 section 3)."""
    return re.match(r'v=TLSRPTv1[ \t]*(;|$)', value) is not None


def parse_tlsrpt_record(value: str) -> Tuple[List[str], List[str]]:
    """(the rua URIs, problems) of a ``v=TLSRPTv1`` TXT value (RFC 8460 section 3)."""
    fields, problems = _fields(value)
    if not fields or fields[0] != ('v', 'TLSRPTv1'):
        problems.append('the record must start with v=TLSRPTv1')
    ruas = [v for k, v in fields if k == 'rua']
    if len(ruas) != 1:
        problems.append('rua must be given once (got %d)' % len(ruas))
        return [], problems
    uris = [u.strip() for u in ruas[0].split(',') if u.strip()]
    for uri in uris:
        try:
            _rua_uri(uri, 'rua')
            if ':' not in uri:
                raise RecordError('rua %r has no scheme (mailto: or https:)' % uri)
        except RecordError as e:
            problems.append(e.message)
    if not uris:
        problems.append('rua names no destination')
    return uris, problems


def _rua_key(uri: str) -> str:
    """A report URI with the parts that have no case (scheme, mail domain, web host) folded."""
    scheme, _sep, rest = uri.partition(':')
    if scheme.lower() == 'mailto':
        local, at, domain = rest.rpartition('@')
        return 'mailto:%s%s%s' % (local, at, domain.lower())
    host, slash, path = rest[2:].partition('/') if rest.startswith('//') else (rest, '', '')
    return '%s://%s%s%s' % (scheme.lower(), host.lower(), slash, path)


def same_rua(a: Iterable[str], b: Iterable[str]) -> bool:
    return sorted(_rua_key(u) for u in a) == sorted(_rua_key(u) for u in b)
