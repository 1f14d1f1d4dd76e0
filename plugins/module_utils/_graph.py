# -*- coding: utf-8 -*-
# Copyright (c) exchangeonline.mail contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# Private to this collection: may change without notice.
"""Microsoft Graph client: bounded retries, one token refresh on 401, paging, $batch.

Throttling follows Microsoft's guidance: honour Retry-After on 429/503/504 (else exponential
back-off), within a bound: every delay at least DELAY_FLOOR seconds plus up to 25 % jitter, at
most MAX_RETRIES retries (the most the Microsoft Graph SDKs' retry handler allows), all within
RETRY_FACTOR x ``timeout``. Connection errors and read timeouts are retried within the same
bound. Subclasses name what else they retry (``retry_status``, ``retryable``), which 401 a token
refresh may cure (``token_refused``) and how long all pages of one collection may take
(``max_paging_time``). $batch carries at most 20 requests; items answered 429 inside a 200
batch are sent again.

Nothing the server says is taken on trust: an ``@odata.nextLink`` is followed only on the
configured endpoint (same scheme, host and port), never twice, for at most MAX_PAGES pages and
MAX_ITEMS objects; a success answer must be the documented JSON; every name put into a URL path
goes through :func:`path_segment`.
"""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import email.utils
import json
import re
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Callable, Dict, List, Mapping, Optional, Sequence, Set, Tuple, Union

from urllib.parse import quote, urljoin

from ansible_collections.exchangeonline.mail.plugins.module_utils._identity import (
    AnswerTooLarge,
    GRAPH,
    HAS_M365_LIBS,
    OffEndpoint,
    RETRY_FACTOR,
    _cut,
    excerpt,
    origin,
)
from ansible_collections.exchangeonline.mail.plugins.module_utils._errors import (
    InputError,
    TaskError,
)
from ansible_collections.exchangeonline.mail.plugins.module_utils._poll import Backoff

if HAS_M365_LIBS:
    import requests

JSON = Dict[str, Any]  # a JSON object as json.loads gives it
Check = Callable[[Any], Optional[str]]  # what is wrong with an answer (None: nothing)

RETRY_STATUS = (429, 503, 504)
BATCH_LIMIT = 20
DELAY_FLOOR = 1.0    # seconds: Retry-After 0, negative or unreadable waits this long at least
BACKOFF_CAP = 30.0   # seconds: exponential back-off (no Retry-After) grows up to this
JITTER = 0.25        # every delay is stretched by a random 0-25 %
MAX_RETRIES = 10
# A collection is read up to this many objects: Microsoft Entra's default quota is 300,000
# directory objects for a tenant with a verified domain (more on request).
MAX_ITEMS = 1000000
# ... in at most this many pages (MAX_ITEMS at Graph's default page size of 100).
MAX_PAGES = 10000
NAME_LIMIT = 1024    # characters of a name put into a URL path


class GraphError(TaskError):
    """A Graph (or Exchange Online) request failed; carries the service's status, code, message,
    request-id and date. The failed result holds ``status``, ``code`` and ``request_id``."""

    def __init__(self, phase: str, status: Union[int, str], code: str, message: str,
                 request_id: Optional[str] = None, date: Optional[str] = None,
                 method: Optional[str] = None, url: Optional[str] = None,
                 hint: Optional[str] = None, service: str = 'Graph') -> None:
        """``status``: the HTTP status, or what stood in for one (``'no answer'``, ``'TLS'``)."""
        text = '%s answered %s %s to %s %s: %s' % (service, status, code, method, url, message)
        if hint:
            text += ' -- ' + hint
        if request_id:
            text += ' (request-id %s, date %s)' % (request_id, date)
        super(GraphError, self).__init__(text, phase, {'status': status, 'code': code,
                                                       'request_id': request_id})
        self.status = status
        self.code = code
        self.graph_message = message
        self.request_id = request_id
        self.date = date


HINTS = {
    'Authorization_RequestDenied': 'the app lacks an application permission for this call; '
                                   'grant it (with admin consent) in the app registration',
    'MailboxNotEnabledForRESTAPI': 'the user has no Exchange Online mailbox',
    'Request_ResourceNotFound': 'no such object in the tenant',
    'InvalidAuthenticationToken': 'the token was rejected even after one refresh',
}


# -- names into URLs --------------------------------------------------------------------------
def path_segment(value: Any, option: str) -> str:
    """``value`` percent-encoded as exactly one URL path segment (RFC 3986 section 3.3: every
    character but the unreserved ones and '@'), or InputError naming ``option``. A name can
    then never become path, query or fragment: ``a?$expand=x#`` and ``../../domains/x`` reach
    the server as one segment."""
    if not isinstance(value, str) or not value.strip():
        raise InputError('%s: a name must be a non-empty string, not %r' % (option, value))
    if len(value) > NAME_LIMIT:
        raise InputError('%s: %r... is longer than %d characters'
                         % (option, value[:40], NAME_LIMIT))
    if any(ord(c) < 32 or 127 <= ord(c) < 160 for c in value):
        raise InputError('%s: %r holds a control character' % (option, value))
    if value in ('.', '..'):
        raise InputError('%s: %r is not a name' % (option, value))
    return quote(value, safe='@')


# -- the shape of answers ---------------------------------------------------------------------
NULL = type(None)
STR_LIST = 'list of strings'
_JSON_TYPES = ((bool, 'boolean'), (int, 'number'), (float, 'number'), (str, 'string'),
               (list, 'array'), (dict, 'object'), (NULL, 'null'))


def json_type(value: Any) -> str:
    return next((name for kind, name in _JSON_TYPES if isinstance(value, kind)), 'value')


def _has_type(value: Any, kind: Any) -> bool:
    if kind == STR_LIST:
        return isinstance(value, list) and all(isinstance(v, str) for v in value)
    if kind is int:
        return isinstance(value, int) and not isinstance(value, bool)
    return isinstance(value, kind)


def shape_problem(obj: Any, fields: Mapping[str, Any]) -> Optional[str]:
    """None when ``obj`` is a JSON object whose ``fields`` ({name: type or tuple of types; str,
    int, bool, list, dict, STR_LIST, NULL}) have those types, else what is wrong. A field is
    required unless NULL is among its types."""
    if not isinstance(obj, dict):
        return 'a JSON %s where an object belongs' % json_type(obj)
    for name, kinds in fields.items():
        kinds = kinds if isinstance(kinds, tuple) else (kinds,)
        value = obj.get(name)
        if value is None and NULL in kinds:
            continue
        if value is None:
            return 'the object has no %s' % name
        if not any(_has_type(value, k) for k in kinds if k is not NULL):
            return '%s is a JSON %s (%s)' % (name, json_type(value), _cut(json.dumps(value), 60))
    return None


def _json(content: Union[bytes, str]) -> Any:
    """Parsed JSON of an answer body, or ValueError."""
    try:
        return json.loads(content)
    except RecursionError:
        raise ValueError('nested too deeply')


# -- retries ----------------------------------------------------------------------------------
def retry_after(headers: Any) -> Optional[float]:
    """Seconds a Retry-After header asks for (delta-seconds or an HTTP-date, RFC 9110 section
    10.2.3), or None when there is none or it is not valid (for example negative)."""
    if not isinstance(headers, dict) and not hasattr(headers, 'items'):
        return None
    value = next((v for k, v in headers.items() if str(k).lower() == 'retry-after'), None)
    if isinstance(value, int) and not isinstance(value, bool):
        value = str(value)
    if not isinstance(value, str):
        return None
    value = value.strip()
    if re.fullmatch(r'[0-9]+', value):
        return float(value) if len(value) <= 15 else float('inf')
    try:
        when = email.utils.parsedate_to_datetime(value)
        return max(0.0, when.timestamp() - time.time())
    except (TypeError, ValueError, IndexError, OverflowError):
        return None


class Retry(Backoff):
    """The retry bound of one request: a :class:`Backoff` of at most MAX_RETRIES retries, each
    pause at least DELAY_FLOOR (also the room left for the attempt after it), back-off up to
    BACKOFF_CAP, stretched by up to JITTER, all within ``seconds`` (RETRY_FACTOR x timeout)."""

    def __init__(self, seconds: float, **clock: Callable[..., Any]) -> None:
        super(Retry, self).__init__(seconds, floor=DELAY_FLOOR, cap=BACKOFF_CAP, jitter=JITTER,
                                    max_retries=MAX_RETRIES, **clock)

    def summary(self) -> str:
        return super(Retry, self).summary() + ' (%d x timeout)' % RETRY_FACTOR


def _error_fields(body: Any) -> Tuple[str, str, Optional[str], Optional[str]]:
    err = body.get('error') if isinstance(body, dict) else None
    if not isinstance(err, dict):
        return 'UnknownError', excerpt(body), None, None
    inner = err.get('innerError') or err.get('innererror')
    inner = inner if isinstance(inner, dict) else {}
    return (str(err.get('code') or 'UnknownError')[:100], _cut(str(err.get('message') or ''), 600),
            inner.get('request-id'), inner.get('date'))


class GraphClient:
    """Graph v1.0 for one identity; thread-safe for the bounded concurrency it uses itself."""

    service = 'Graph'
    option = 'graph_endpoint'
    max_pages = MAX_PAGES
    max_items = MAX_ITEMS
    retry_status: Tuple[int, ...] = RETRY_STATUS
    # seconds all pages of one collection may take (None: no bound)
    max_paging_time: Optional[float] = None

    def __init__(self, identity: Any, max_retry_time: Optional[float] = None,
                 concurrency: int = 4, phase: str = 'graph', resource: str = GRAPH,
                 base: Optional[str] = None) -> None:
        self.identity = identity
        self.resource = resource
        self.endpoint = identity.endpoints[resource]  # the origin every link must be on
        self.base = base or self.endpoint + '/v1.0'
        self.max_retry_time = max_retry_time or identity.retry_time
        self.concurrency = concurrency
        self.phase = phase
        self._token: Optional[str] = None
        self._token_lock = threading.Lock()  # the first requests in flight share one token

    def _auth(self, refresh: bool = False, refused: Optional[str] = None) -> Dict[str, str]:
        """The Authorization header; ``refresh``: a new token, unless another request has
        already replaced ``refused`` (the token that got the 401) by one."""
        token = self._token
        if refresh or token is None:
            with self._token_lock:
                token = self._token
                if token is None or (refresh and (refused is None or token == refused)):
                    token = self._token = self.identity.token(self.resource, refresh=refresh)
        return {'Authorization': 'Bearer ' + token}

    def _url(self, path: str, phase: str) -> str:
        if origin(path) is None:
            return self.base + path
        return self.follow(path, self.base, phase, 'GET')

    def follow(self, link: Any, page_url: str, phase: str, method: str) -> str:
        """The absolute URL of a link from an answer (``@odata.nextLink``), resolved against
        the page it came with; GraphError unless it is on this endpoint."""
        if not isinstance(link, str) or not link or len(link) > 8192:
            raise self.invalid(phase, 200, method, page_url,
                               '@odata.nextLink is not a URL', link)
        url = urljoin(page_url, link)
        if origin(url) != origin(self.base):
            raise GraphError(phase, 200, 'UntrustedLink',
                             'the answer links to %s, which is not on %s %s; not followed, so '
                             'the token went nowhere else' % (_cut(link, 300), self.option,
                                                              self.endpoint),
                             method=method, url=page_url, service=self.service,
                             hint='the collection follows links only on the configured endpoint '
                                  '(same scheme, host and port); check %s' % self.option)
        return url

    def invalid(self, phase: str, status: Any, method: str, url: str, problem: str,
                content: Any, content_type: Optional[str] = None) -> GraphError:
        """The GraphError of a success answer that is not the documented JSON."""
        return GraphError(phase, status, 'InvalidResponse',
                          'the answer is not the documented JSON: %s; it was%s: %s'
                          % (problem, ' (Content-Type %s)' % _cut(content_type, 80)
                             if content_type else '', excerpt(content)),
                          method=method, url=url, service=self.service,
                          hint='check %s: it must be the %s root, not a proxy or a login page'
                               % (self.option, self.service))

    def _answer(self, r: Any, method: str, url: str, phase: str) -> JSON:
        """The JSON object of a success answer (204: {}), else GraphError."""
        if r.status_code == 204:
            return {}
        problem = None
        try:
            body = _json(r.content)
        except ValueError:
            problem = 'no body' if not r.content.strip() else 'not JSON'
        else:
            if not isinstance(body, dict):
                problem = 'a JSON %s, not an object' % json_type(body)
            elif 'value' in body and not isinstance(body['value'], list):
                problem = 'value is a JSON %s, not an array' % json_type(body['value'])
        if problem:
            raise self.invalid(phase, r.status_code, method, url, problem, r.content,
                               r.headers.get('Content-Type'))
        return body

    def request(self, method: str, path: str, params: Optional[Mapping[str, str]] = None,
                json: Any = None, headers: Optional[Mapping[str, str]] = None,
                ok: Sequence[int] = (200, 201, 204), phase: Optional[str] = None,
                permission: Optional[str] = None, check: Optional[Check] = None,
                idempotent: bool = True, retry: Optional[Backoff] = None) -> Tuple[int, JSON]:
        """(status, body) of one request; retries throttling and network errors within the
        bound, refreshes the token once on 401. Statuses outside ``ok`` raise GraphError;
        ``permission`` names the application permission the call needs, for the message of a
        403; ``check(body)`` says what is wrong with a success body (None: nothing).

        A request that is not ``idempotent`` (it creates something) is sent again only when it
        cannot have arrived (no connection was made); once it may have arrived, a lost answer
        is GraphError code ``OutcomeUnknown``, for the caller to settle by reading. ``retry``:
        the bound to share with the caller's own retries (a new one by default)."""
        phase = phase or self.phase
        url = self._url(path, phase)
        retry = retry or Retry(self.max_retry_time)
        refreshed = False
        while True:
            hdrs = dict(headers or {})
            hdrs.update(self._auth())
            try:
                r = self.identity.session.request(method, url, params=params, json=json,
                                                  headers=hdrs, deadline=retry.deadline,
                                                  timeout=retry.timeout(self.identity.timeout),
                                                  json_object=False)
            except OffEndpoint as e:
                raise GraphError(phase, 'not sent', 'UntrustedLink', str(e), method=method,
                                 url=url, service=self.service)
            except AnswerTooLarge as e:
                raise GraphError(phase, 'too large', 'AnswerTooLarge', str(e), method=method,
                                 url=url, service=self.service,
                                 hint='check %s' % self.option)
            except requests.exceptions.SSLError as e:
                raise GraphError(phase, 'TLS', 'CertificateError', _cut(str(e), 300),
                                 method=method, url=url, service=self.service,
                                 hint='set ca_path to the CA that signs the endpoint')
            except requests.exceptions.ContentDecodingError as e:
                raise self.invalid(phase, 'broken', method, url, 'the answer cannot be decoded '
                                   '(%s)' % _cut(str(e), 200), b'')
            except (requests.exceptions.ConnectionError, requests.exceptions.Timeout,
                    requests.exceptions.ChunkedEncodingError) as e:
                # ChunkedEncodingError: the answer broke off (IncompleteRead), as a network error
                if not idempotent and not _not_sent(e):
                    raise GraphError(phase, 'no answer', 'OutcomeUnknown',
                                     'the request was sent, but no answer came (%s); it may '
                                     'have been carried out' % _cut(str(e), 300),
                                     method=method, url=url, service=self.service)
                if retry.pause():
                    continue
                raise GraphError(phase, 'no answer', 'NetworkError',
                                 '%s; %s' % (_cut(str(e), 300), retry.summary()),
                                 method=method, url=url, service=self.service,
                                 hint='check the network path to %s, or raise timeout'
                                      % self.base)
            if r.status_code in ok:
                body = self._answer(r, method, url, phase)
                problem = check(body) if check else None
                if problem:
                    raise self.invalid(phase, r.status_code, method, url, problem, body)
                return r.status_code, body
            if r.status_code == 401 and not refreshed and self.token_refused(r):
                refreshed = True
                self._auth(refresh=True, refused=hdrs['Authorization'][len('Bearer '):])
                continue
            if self.retryable(r):
                self.throttled(r)
                if retry.pause(retry_after(r.headers)):
                    continue
            raise self.failure(r, method, url, phase, permission, retry)

    def failure(self, r: Any, method: str, url: str, phase: str, permission: Optional[str],
                retry: Backoff) -> GraphError:
        """The GraphError of an answer outside the accepted statuses."""
        try:
            body = _json(r.content) if r.content else {}
        except ValueError:
            body = {'error': {'code': 'NonJsonResponse', 'message': excerpt(r.content)}}
        code, message, request_id, date = self.error_fields(body)
        hint = HINTS.get(code)
        if r.status_code == 403 and permission:
            hint = ('the app needs the application permission %s with admin consent; grant '
                    'it in the app registration\'s API permissions' % permission)
        elif 300 <= r.status_code < 400:
            hint = ('a redirect (to %s) is never followed: the token goes only to %s; check it'
                    % (_cut(r.headers.get('Location') or 'nowhere', 300), self.option))
        elif self.retryable(r):
            hint = self.retry_hint(r, retry)
        hint = self.service_hint(r.status_code, code, message) or hint
        return GraphError(phase, r.status_code, code, message,
                          request_id or r.headers.get('request-id'),
                          date or r.headers.get('Date'), method, url, hint, self.service)

    def retryable(self, r: Any) -> bool:
        """True when an answer outside the accepted statuses is worth sending again."""
        return r.status_code in self.retry_status

    def throttled(self, r: Any) -> None:
        """Called once for each retryable answer, before the pause (subclasses slow down)."""

    @staticmethod
    def retry_hint(r: Any, retry: Backoff) -> str:
        """The hint of a retryable answer that lasted beyond the retry bound."""
        return retry.summary() + '; run again later'

    @staticmethod
    def token_refused(r: Any) -> bool:
        """True when a 401 refuses the token (so one refresh may help)."""
        return True

    @staticmethod
    def error_fields(body: Any) -> Tuple[str, str, Optional[str], Optional[str]]:
        """(code, message, request id, date) from an error body; subclasses read theirs."""
        return _error_fields(body)

    def service_hint(self, status: Any, code: str, message: str) -> Optional[str]:
        """What to do about a refusal that only this service words so (None: the general
        hint)."""
        return None

    def get(self, path: str, params: Optional[Mapping[str, str]] = None,
            **kwargs: Any) -> JSON:
        return self.request('GET', path, params=params, **kwargs)[1]

    def get_all(self, path: str, params: Optional[Mapping[str, str]] = None,
                phase: Optional[str] = None, permission: Optional[str] = None,
                check: Optional[Check] = None) -> List[Any]:
        """Every item of a collection, following @odata.nextLink; ``check(item)`` says what is
        wrong with one item (None: nothing)."""
        phase = phase or self.phase

        def fetch(url: str, first: bool) -> JSON:
            return self.get(path if first else url, params=params if first else None,
                            phase=phase, permission=permission)
        return self.collect(fetch, self.base + path, phase, 'GET', check)

    def collect(self, fetch: Callable[[str, bool], JSON], url: str, phase: str, method: str,
                check: Optional[Check] = None) -> List[Any]:
        """The items of every page: ``fetch(url, first)`` is one page's body. A nextLink is
        followed on this endpoint only, never twice, for at most max_pages pages and
        max_items items."""
        items: List[Any] = []
        seen: Set[str] = set([url])
        first = True
        bound = None if self.max_paging_time is None else Backoff(self.max_paging_time)
        while True:
            body = fetch(url, first)
            value = body.get('value')
            if not isinstance(value, list):
                raise self.invalid(phase, 200, method, url, 'a collection answer without '
                                   '"value": [...]', body)
            for item in value:
                problem = check(item) if check else None
                if problem:
                    raise self.invalid(phase, 200, method, url, problem, item)
            items.extend(value)
            if len(items) > self.max_items:
                raise GraphError(phase, 200, 'TooManyItems', 'more than %d objects in %d pages; '
                                 'stopped' % (self.max_items, len(seen)), method=method,
                                 url=url, service=self.service)
            link = body.get('@odata.nextLink')
            if link is None:
                return items
            url, first = self.follow(link, url, phase, method), False
            if url in seen:
                raise GraphError(phase, 200, 'RepeatedLink', 'the same @odata.nextLink came '
                                 'twice: %s; stopped instead of looping' % _cut(link, 300),
                                 method=method, url=url, service=self.service)
            if len(seen) >= self.max_pages:
                raise GraphError(phase, 200, 'TooManyPages', 'more than %d pages; stopped'
                                 % self.max_pages, method=method, url=url,
                                 service=self.service)
            if bound is not None and bound.left() < 0:
                raise GraphError(phase, 200, 'PagingTimeout', '%d pages (%d objects) took %.0f '
                                 's, more than the paging bound of %.0f s; stopped'
                                 % (len(seen), len(items), bound.elapsed(), bound.seconds),
                                 method=method, url=url, service=self.service,
                                 hint='the %s paging cursor expires; run again when the service '
                                      'answers faster, or ask for fewer objects'
                                 % self.service)
            seen.add(url)

    def batch(self, requests_: Sequence[JSON],
              phase: Optional[str] = None) -> Dict[str, Tuple[int, Any]]:
        """{id: (status, body)} for [{'id', 'method', 'url', 'body'?}], 20 per $batch, up to
        ``concurrency`` batches at once; items throttled inside a batch are retried."""
        chunks = [requests_[i:i + BATCH_LIMIT] for i in range(0, len(requests_), BATCH_LIMIT)]
        results: Dict[str, Tuple[int, Any]] = {}
        with ThreadPoolExecutor(max_workers=max(1, min(self.concurrency, len(chunks) or 1))) as pool:
            for part in pool.map(lambda c: self._batch_chunk(c, phase), chunks):
                results.update(part)
        return results

    def _batch_chunk(self, chunk: Sequence[JSON],
                     phase: Optional[str]) -> Dict[str, Tuple[int, Any]]:
        pending = dict((str(r['id']), r) for r in chunk)
        done: Dict[str, Tuple[int, Any]] = {}
        retry = Retry(self.max_retry_time)
        while pending:
            asked = list(pending)
            body = self.request('POST', '/$batch', json={'requests': list(pending.values())},
                                phase=phase, check=lambda b: batch_problem(b, asked),
                                retry=retry)[1]  # one bound for the batch and its items
            waits: List[Optional[float]] = []
            for item in body['responses']:
                rid = str(item['id'])
                if item['status'] in RETRY_STATUS:
                    waits.append(retry_after(item.get('headers')))
                    continue
                done[rid] = (item['status'], item.get('body'))
                pending.pop(rid)
            if pending and not retry.pause(max([w for w in waits if w is not None],
                                               default=None)):
                for rid in pending:
                    done[rid] = (429, {'error': {'code': 'TooManyRequests',
                                                 'message': 'still throttled: ' +
                                                            retry.summary()}})
                break
        return done


def _not_sent(exc: BaseException) -> bool:
    """True when a requests exception says no connection was made, so nothing was sent."""
    if isinstance(exc, requests.exceptions.ConnectTimeout):
        return True
    reason = getattr(exc.args[0], 'reason', None) if exc.args else None
    return type(reason).__name__ in ('NewConnectionError', 'ConnectTimeoutError') or \
        isinstance(reason, ConnectionRefusedError)


def batch_problem(body: JSON, ids: Sequence[str]) -> Optional[str]:
    """What is wrong with a $batch answer to the requests ``ids``, or None
    (https://learn.microsoft.com/graph/json-batching: one response per request, any order)."""
    responses = body.get('responses')
    if not isinstance(responses, list):
        return 'no "responses": [...]'
    answered = []
    for item in responses:
        problem = shape_problem(item, {'id': (str, int), 'status': int})
        if problem:
            return 'a response item: ' + problem
        if str(item['id']) not in ids or str(item['id']) in answered:
            return 'a response for the id %s, which was not asked or came twice' % item['id']
        if not 100 <= item['status'] <= 599:
            return 'the status %s of id %s is not an HTTP status' % (item['status'], item['id'])
        answered.append(str(item['id']))
    missing = [i for i in ids if i not in answered]
    if missing:
        return 'no response for the id%s %s' % ('' if len(missing) == 1 else 's',
                                                ', '.join(missing[:20]))
    return None
