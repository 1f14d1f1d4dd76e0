# -*- coding: utf-8 -*-
# Copyright (c) exchangeonline.mail contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# Private to this collection: may change without notice.
"""Microsoft Graph client: retries with Retry-After, one token refresh on 401, paging, $batch.

Throttling follows Microsoft's guidance: honour Retry-After on 429/503/504 (else exponential
back-off with jitter), within a total time bound; $batch carries at most 20 requests and items
answered 429 inside a 200 batch are sent again after their Retry-After.
"""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import random
import time
from concurrent.futures import ThreadPoolExecutor

from ansible_collections.exchangeonline.mail.plugins.module_utils._identity import (
    GRAPH,
    HAS_M365_LIBS,
)

if HAS_M365_LIBS:
    import requests

RETRY_STATUS = (429, 503, 504)
BATCH_LIMIT = 20


class GraphError(Exception):
    """A Graph request failed; carries Graph's code, message, request-id and date."""

    def __init__(self, phase, status, code, message, request_id=None, date=None, method=None,
                 url=None, hint=None, service='Graph'):
        text = '%s: %s answered %s %s to %s %s: %s' % (
            phase, service, status, code, method, url, message)
        if hint:
            text += ' -- ' + hint
        if request_id:
            text += ' (request-id %s, date %s)' % (request_id, date)
        super(GraphError, self).__init__(text)
        self.phase = phase
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


def _retry_after(headers, attempt):
    value = (headers or {}).get('Retry-After') or (headers or {}).get('retry-after')
    try:
        return max(0.0, float(value))
    except (TypeError, ValueError):
        # exponential back-off with full jitter, capped
        return random.uniform(0, min(30.0, 0.5 * (2 ** attempt)))


def _error_fields(body):
    err = (body or {}).get('error') if isinstance(body, dict) else None
    if not isinstance(err, dict):
        return 'UnknownError', str(body)[:300], None, None
    inner = err.get('innerError') or err.get('innererror') or {}
    return (err.get('code') or 'UnknownError', err.get('message') or '',
            inner.get('request-id'), inner.get('date'))


class GraphClient:
    """Graph v1.0 for one identity; thread-safe for the bounded concurrency it uses itself."""

    service = 'Graph'

    def __init__(self, identity, max_retry_time=120.0, concurrency=4, phase='graph',
                 resource=GRAPH, base=None):
        self.identity = identity
        self.resource = resource
        self.base = base or identity.endpoints[GRAPH] + '/v1.0'
        self.max_retry_time = max_retry_time
        self.concurrency = concurrency
        self.phase = phase
        self._token = None

    def _auth(self, refresh=False):
        if refresh or self._token is None:
            self._token = self.identity.token(self.resource, refresh=refresh)
        return {'Authorization': 'Bearer ' + self._token}

    def _url(self, path):
        return path if path.startswith('https://') or path.startswith('http://') \
            else self.base + path

    def request(self, method, path, params=None, json=None, headers=None, ok=(200, 201, 204),
                phase=None, permission=None):
        """(status, body) of one request; retries throttling, refreshes the token once on 401.
        Statuses outside ``ok`` raise GraphError; ``permission`` names the application
        permission the call needs, for the message of a 403."""
        phase = phase or self.phase
        url = self._url(path)
        deadline = time.monotonic() + self.max_retry_time
        attempt = 0
        refreshed = False
        while True:
            attempt += 1
            hdrs = dict(headers or {})
            hdrs.update(self._auth())
            try:
                r = self.identity.session.request(method, url, params=params, json=json,
                                                  headers=hdrs)
            except requests.exceptions.SSLError as e:
                raise GraphError(phase, 'TLS', 'CertificateError', str(e)[:300], method=method,
                                 url=url, hint='set ca_path to the CA that signs the endpoint',
                                 service=self.service)
            except (requests.exceptions.ConnectionError, requests.exceptions.Timeout) as e:
                wait = _retry_after(None, attempt)
                if time.monotonic() + wait > deadline:
                    raise GraphError(phase, 'no answer', 'NetworkError', str(e)[:300],
                                     method=method, url=url,
                                     hint='check the network path to %s' % self.base,
                                     service=self.service)
                time.sleep(wait)
                continue
            body = _json(r)
            if r.status_code in ok:
                return r.status_code, body
            if r.status_code == 401 and not refreshed:
                refreshed = True
                self._auth(refresh=True)
                continue
            if r.status_code in RETRY_STATUS:
                wait = _retry_after(r.headers, attempt)
                if time.monotonic() + wait <= deadline:
                    time.sleep(wait)
                    continue
            code, message, request_id, date = self.error_fields(body)
            hint = HINTS.get(code)
            if r.status_code == 403 and permission:
                hint = ('the app needs the application permission %s with admin consent; grant '
                        'it in the app registration\'s API permissions' % permission)
            raise GraphError(phase, r.status_code, code, message,
                             request_id or r.headers.get('request-id'),
                             date or r.headers.get('Date'), method, url, hint, self.service)

    @staticmethod
    def error_fields(body):
        """(code, message, request id, date) from an error body; subclasses read theirs."""
        return _error_fields(body)

    def get(self, path, params=None, **kwargs):
        return self.request('GET', path, params=params, **kwargs)[1]

    def get_all(self, path, params=None, phase=None, permission=None):
        """Every item of a collection, following @odata.nextLink."""
        items = []
        body = self.get(path, params=params, phase=phase, permission=permission)
        while True:
            items.extend(body.get('value') or [])
            link = body.get('@odata.nextLink')
            if not link:
                return items
            body = self.get(link, phase=phase, permission=permission)

    def batch(self, requests_, phase=None):
        """{id: (status, body)} for [{'id', 'method', 'url', 'body'?}], 20 per $batch, up to
        ``concurrency`` batches at once; items throttled inside a batch are retried."""
        chunks = [requests_[i:i + BATCH_LIMIT] for i in range(0, len(requests_), BATCH_LIMIT)]
        results = {}
        with ThreadPoolExecutor(max_workers=max(1, min(self.concurrency, len(chunks) or 1))) as pool:
            for part in pool.map(lambda c: self._batch_chunk(c, phase), chunks):
                results.update(part)
        return results

    def _batch_chunk(self, chunk, phase):
        pending = dict((str(r['id']), r) for r in chunk)
        done = {}
        deadline = time.monotonic() + self.max_retry_time
        attempt = 0
        while pending:
            attempt += 1
            body = self.request('POST', '/$batch', json={'requests': list(pending.values())},
                                phase=phase)[1]
            waits = []
            for item in body.get('responses') or []:
                rid = str(item.get('id'))
                status = int(item.get('status') or 0)
                if status in RETRY_STATUS and rid in pending:
                    waits.append(_retry_after(item.get('headers'), attempt))
                    continue
                done[rid] = (status, item.get('body'))
                pending.pop(rid, None)
            if pending:
                wait = max(waits) if waits else _retry_after(None, attempt)
                if time.monotonic() + wait > deadline:
                    for rid in pending:
                        done[rid] = (429, {'error': {'code': 'TooManyRequests', 'message':
                                                     'still throttled after %.0f s'
                                                     % self.max_retry_time}})
                    break
                time.sleep(wait)
        return done


def _json(response):
    if not response.content:
        return {}
    try:
        return response.json()
    except ValueError:
        return {'error': {'code': 'NonJsonResponse', 'message': response.text[:300]}}
