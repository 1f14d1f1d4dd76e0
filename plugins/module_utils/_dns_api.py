# -*- coding: utf-8 -*-
# Copyright (c) exchangeonline.mail contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# Private to this collection: may change without notice.
"""The HTTP side of the hosted DNS providers that speak JSON over HTTPS (PowerDNS).

One request at a time through the collection's :class:`_identity.VerifyingSession`: only to the
configured API (same scheme, host and port), redirects never followed, the answer read up to
ANSWER_LIMIT bytes before a deadline of RETRY_FACTOR x ``timeout``. A request that reads is
retried on a network error and on 429/503 within that bound; a request that changes the zone is
sent once, and when it may have arrived but no answer says what became of it, that is
:class:`UpdateOutcomeUnknown` (the engine then reads the zone to learn it). An answer that is not
the documented JSON is an error that names the endpoint.
"""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import ipaddress
import json
import random
import time
from typing import Any, Dict, Sequence, Tuple
from urllib.parse import quote, urlsplit

from ansible_collections.exchangeonline.mail.plugins.module_utils._dns_transport import (
    DnsError,
    UpdateOutcomeUnknown,
)
from ansible_collections.exchangeonline.mail.plugins.module_utils._identity import (
    HAS_M365_LIBS,
    AnswerTooLarge,
    OffEndpoint,
    VerifyingSession,
    _cut,
    check_ca_path,
    excerpt,
    origin,
    url_problem,
)

if HAS_M365_LIBS:
    import requests

ANSWER_LIMIT = 64 * 1024 * 1024  # a zone of some 200,000 records as JSON
READ_RETRIES = 3
RETRY_PAUSE = 1.0   # seconds before the first retry of a read, doubled each time (plus jitter)


def api_base(value: Any, option: str, example: str) -> str:
    """``value`` as an http(s) URL without a trailing slash, or DnsError (phase input)."""
    text = value.strip() if isinstance(value, str) else ''
    problem = url_problem(text, ('http', 'https'), 'must be an http:// or https:// URL')
    if problem is None and origin(text) is None:
        problem = 'cannot be read the same way by every URL parser'
    if problem:
        raise DnsError('%s %s (got %r), for example %s' % (option, problem, _cut(value, 200),
                                                           example), 'input')
    return text.rstrip('/')


def plain_http_off_host(url: str) -> bool:
    """True for an http:// URL whose host is not a loopback address (the key travels in clear
    over a network)."""
    parts = urlsplit(url)
    if parts.scheme.lower() != 'http':
        return False
    host = (parts.hostname or '').strip('[]')
    if host == 'localhost':
        return False
    try:
        return not ipaddress.ip_address(host).is_loopback
    except ValueError:
        return True


def pause(tries: int) -> None:
    """The wait before retry number ``tries`` of a read: RETRY_PAUSE doubled each time, plus up
    to 25 % jitter."""
    time.sleep(RETRY_PAUSE * 2 ** (tries - 1) * random.uniform(1.0, 1.25))


def as_dict(value: Any) -> Dict[str, Any]:
    """``value`` when the JSON was an object, else {} (a field missing or of another type)."""
    return value if isinstance(value, dict) else {}


def segment(value: str) -> str:
    """A name as one URL path segment (every reserved character encoded)."""
    return quote(value, safe='')


class ApiClient:
    """JSON requests to one HTTP API; ``headers`` (the credentials) go with every request."""

    def __init__(self, base: str, headers: Dict[str, str], service: str, timeout: float,
                 verify: Any = True) -> None:
        self.base = base
        self.headers = headers
        self.service = service  # e.g. 'the PowerDNS API at http://...', for messages
        self.timeout = timeout
        self.session = VerifyingSession(verify=verify, timeout=timeout, origins=[origin(base)],
                                        limit=ANSWER_LIMIT)
        self.session.trust_env = False  # no REQUESTS_CA_BUNDLE over ca_path, no .netrc

    @classmethod
    def verify_of(cls, params: Dict[str, Any]) -> Any:
        if not params.get('validate_certs', True):
            return False
        if params.get('ca_path'):
            try:
                check_ca_path(params['ca_path'])
            except Exception as e:  # IdentityError: one wording of a bad ca_path
                raise DnsError(str(e), 'input')
            return params['ca_path']
        return True

    def request(self, method: str, path: str, body: Any = None, ok: Sequence[int] = (200,),
                phase: str = 'read', changes: bool = False,
                refusal: Any = None) -> Tuple[int, Any]:
        """(status, JSON body or None) for ``method`` on base + ``path``. ``changes``: the
        request changes the zone (sent once; a lost answer is UpdateOutcomeUnknown).
        ``refusal(status, body, text) -> DnsError``: the provider's wording of a refusal."""
        url = self.base + path
        data = json.dumps(body).encode('utf-8') if body is not None else None
        headers = dict(self.headers, Accept='application/json')
        if data is not None:
            headers['Content-Type'] = 'application/json'
        tries = 0
        while True:
            tries += 1
            try:
                r = self.session.request(method, url, data=data, headers=headers,
                                         timeout=self.timeout, json_object=False)
            except OffEndpoint as e:  # a bug: the base is the only origin
                raise DnsError('%s: %s' % (self.service, e), phase)
            except AnswerTooLarge as e:
                raise DnsError('%s: %s' % (self.service, e), phase)
            except requests.exceptions.SSLError as e:
                raise DnsError('%s: the TLS handshake failed (%s). Set ca_path to the CA that '
                               'signs its certificate.' % (self.service, _cut(str(e), 300)),
                               phase)
            except (requests.exceptions.ConnectionError, requests.exceptions.Timeout,
                    requests.exceptions.ChunkedEncodingError,
                    requests.exceptions.ContentDecodingError) as e:
                sent = not isinstance(e, requests.exceptions.ConnectTimeout) and not (
                    isinstance(e, requests.exceptions.ConnectionError)
                    and 'refused' in str(e).lower())
                if changes and sent:
                    raise UpdateOutcomeUnknown(
                        'the change was sent to %s, but no answer came (%s)'
                        % (self.service, _cut(str(e), 300)), 'apply')
                if not changes and tries <= READ_RETRIES:
                    pause(tries)
                    continue
                raise DnsError('no answer from %s (%s). Check api_url, the network path and '
                               'that the API is on, or raise timeout.%s'
                               % (self.service, _cut(str(e), 300),
                                  ' Nothing was changed.' if changes else ''), phase)
            text = r.content or b''
            parsed = None
            if changes and r.status_code >= 500:
                # a proxy's 502/504, or the server failing while it commits: not known
                raise UpdateOutcomeUnknown('the change was sent to %s, which answered HTTP %d: '
                                           '%s' % (self.service, r.status_code, excerpt(text)),
                                           'apply')
            if text.strip():
                try:
                    parsed = json.loads(text)
                except (ValueError, RecursionError):
                    parsed = None
                    if r.status_code in ok and not changes:  # a change's 2xx: it is in
                        raise DnsError('%s answered %s %s with %s, not the documented JSON: %s'
                                       % (self.service, method, path, r.headers.get(
                                           'Content-Type') or 'no Content-Type',
                                          excerpt(text)), phase)
            if r.status_code in ok:
                return r.status_code, parsed
            if r.status_code in (429, 503) and not changes and tries <= READ_RETRIES:
                pause(tries)
                continue
            if refusal is not None:
                raise refusal(r.status_code, parsed, excerpt(text))
            raise DnsError('%s answered %s %s with HTTP %d: %s'
                           % (self.service, method, path, r.status_code, excerpt(text)), phase)
