# -*- coding: utf-8 -*-
# Copyright (c) exchangeonline.mail contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# Private to this collection: may change without notice.
"""The Exchange Online admin REST endpoint (``/adminapi/beta/{tenant}/InvokeCommand``).

Graph has no protocol switches (POP, IMAP, SMTP AUTH), so these cmdlets go through the endpoint
the ExchangeOnlineManagement module uses. It is undocumented: everything that knows its shape
lives in this file, so it can be swapped for another transport.

What the public clients of the endpoint do and this client does too (CIPP-API New-ExoRequest,
GreyCorbel ExoHelper, CISA ScubaGear): the URL and the ``X-AnchorMailbox`` carry the tenant GUID
(tenant_id when it is one, else the token's ``tid`` claim), on the first request and
on every follow-up page (with a domain, follow-up pages fail "Expired or Invalid pagination
request", Microsoft Q&A 1023619); 408, 429, 500, 503, 504 and any answer saying "maximum number
of concurrent requests per tenant" are retried within the Graph client's bound; all pages of one
cmdlet are read within PAGING_TIME (the paging cursor lives 30 minutes, "Default Expiry time is
00:30:00"). A 401 "User is not allowed to call <cmdlet>" is Exchange's RBAC refusal
(MicrosoftDocs/office-docs-powershell#7970), not a token problem: no token refresh for it.
"""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import json
import re
import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Callable, Dict, Iterable, Iterator, List, Mapping, Optional, Tuple

from ansible_collections.exchangeonline.mail.plugins.module_utils._errors import TaskError
from ansible_collections.exchangeonline.mail.plugins.module_utils._graph import (
    Check,
    GraphClient,
    GraphError,
    JSON,
    _error_fields,
)
from ansible_collections.exchangeonline.mail.plugins.module_utils._identity import (
    EXCHANGE,
    GUID,
    Identity,
    IdentityError,
    token_tenant,
)
from ansible_collections.exchangeonline.mail.plugins.module_utils._poll import Backoff

ANCHOR = 'APP:SystemMailbox{bb558c35-97f1-4cb9-8ff7-d53741dc928c}@%s'
PERMISSION = 'Exchange.ManageAsApp (plus an Exchange administrator role for the app)'
PAGE_SIZE = 1000
RETRY_STATUS = (408, 429, 500, 503, 504)
CONCURRENT_WORDS = 'you have reached the maximum number of concurrent requests per tenant'
PAGING_TIME = 1800.0  # seconds for all pages of one cmdlet: the paging cursor's 30 minutes
ROLES_DOC = 'https://learn.microsoft.com/powershell/exchange/app-only-auth-powershell-v2'
NOT_ALLOWED = re.compile(r'User is not allowed to call ([A-Za-z]+-[A-Za-z]+)', re.IGNORECASE)


# Requests in flight to one tenant's Exchange Online at most (the option's default): no number is
# documented for the REST cmdlets; remote PowerShell allowed 9 per tenant
# (PowerShellMaxTenantConcurrency), and other clients share the tenant, so the default stays
# below it. A "maximum number of concurrent requests" answer lowers it by one for the run.
CONCURRENCY = 8
# Name prefixes of the partitions of a whole-tenant read: Get-CASMailbox can filter Name with a
# trailing wildcard (filter-properties.md); a mailbox's Name is its alias, or for mailboxes made
# since 2023 its ExternalDirectoryObjectId (MC365786), so digits and letters cover nearly all of
# them; a last partition per level takes every other Name (-not of the others), so the
# partitions never miss or double a mailbox.
NAME_ALPHABET = '0123456789abcdefghijklmnopqrstuvwxyz'
SPLIT_DEPTH = 4       # a partition is split at most this deep (then its pages are followed)
# partitions of one read at most: each split one adds 37, so this holds a 20-million-mailbox
# tenant split evenly; a server whose every first page is full cannot keep the read going
MAX_PARTITIONS = 20000
ADDRESS_CHUNK = 20    # addresses per "EmailAddresses -eq ... -or ..." filter


class Window:
    """At most ``size`` requests in flight; ``shrink(seen)`` lowers it by one (not below 1)
    when Exchange says the tenant has too many concurrent requests, once for each size: the
    refusals of requests that entered at the same size count once."""

    def __init__(self, size: int) -> None:
        self.size = self.first = max(1, int(size))
        self.busy = 0
        self.refusals = 0
        self._cond = threading.Condition()
        self._entered = threading.local()

    def __enter__(self) -> 'Window':
        with self._cond:
            while self.busy >= self.size:
                self._cond.wait()
            self.busy += 1
            self._entered.size = self.size
        return self

    def __exit__(self, *exc: Any) -> None:
        with self._cond:
            self.busy -= 1
            self._cond.notify_all()

    def shrink(self) -> None:
        """One concurrency refusal of a request of this thread, inside the window."""
        with self._cond:
            self.refusals += 1
            seen = getattr(self._entered, 'size', self.size)
            if self.size > 1 and self.size == seen:
                self.size -= 1
                self._entered.size = self.size

    def summary(self) -> Optional[str]:
        """What the refusals did (None: there were none)."""
        if not self.refusals:
            return None
        return ('Exchange Online refused %d request%s as over the tenant\'s concurrent requests '
                '(other clients of the tenant count too); each was sent again after a pause, '
                'and the run went on with %d request%s in flight instead of %d (concurrency)'
                % (self.refusals, '' if self.refusals == 1 else 's', self.size,
                   '' if self.size == 1 else 's', self.first))


class _More(Exception):
    """The first page of a partition has more pages behind it."""


def quoted(value: str) -> str:
    """An OPATH string literal (a quote doubled, recipient-filters.md)."""
    return "'%s'" % value.replace("'", "''")


def name_filter(prefix: str, rest: bool = False) -> str:
    """The -Filter of the partition of Names starting ``prefix`` (``rest``: starting ``prefix``
    but with no NAME_ALPHABET character after it)."""
    if not rest:
        return 'Name -like %s' % quoted(prefix + '*')
    others = '(%s)' % ' -or '.join('Name -like %s' % quoted(prefix + c + '*')
                                   for c in NAME_ALPHABET)
    return ('Name -like %s -and -not %s' % (quoted(prefix + '*'), others)) if prefix \
        else '-not ' + others


def role_for(cmdlet: Optional[str]) -> str:
    """The Microsoft Entra roles that let an app call ``cmdlet`` (app-only-auth-powershell-v2,
    step 5: Global Reader reads; Exchange Recipient Administrator manages recipients; Exchange
    Administrator does every task)."""
    name = (cmdlet or '').lower()
    if name.startswith('get-'):
        return 'Global Reader (enough for Get-* cmdlets) or Exchange Administrator'
    if name in ('set-casmailbox', 'set-mailbox'):
        return 'Exchange Recipient Administrator or Exchange Administrator'
    return 'Exchange Administrator'


class ExoAdminClient(GraphClient):
    """InvokeCommand with the Graph client's retries, token refresh and error handling."""

    service = 'Exchange Online'
    option = 'exo_endpoint'
    retry_status = RETRY_STATUS
    max_paging_time = PAGING_TIME

    def __init__(self, identity: Identity, **kwargs: Any) -> None:
        kwargs.setdefault('phase', 'exchange')
        kwargs.setdefault('concurrency', CONCURRENCY)
        base = '%s/adminapi/beta/%s' % (identity.endpoints[EXCHANGE], identity.tenant_id)
        super(ExoAdminClient, self).__init__(identity, resource=EXCHANGE, base=base, **kwargs)
        self.window = Window(self.concurrency)
        # set when another part of the task failed: requests not yet sent are not sent
        self.stopping = threading.Event()

    def request(self, *args: Any, **kwargs: Any) -> Tuple[int, JSON]:
        """GraphClient.request within the window of requests in flight."""
        with self.window:
            if self.stopping.is_set():
                raise GraphError(kwargs.get('phase') or self.phase, 'not sent', 'Stopped',
                                 'another part of the task failed first', service=self.service)
            return super(ExoAdminClient, self).request(*args, **kwargs)

    @staticmethod
    def error_fields(body: Any) -> Tuple[str, str, Optional[str], Optional[str]]:
        """Cmdlet errors carry a generic error.message ("Error executing cmdlet"); the text is in
        details[0].message or innererror.internalexception.message, after the last '|'
        ("Ex6F9304|Microsoft.Exchange...ManagementObjectNotFoundException|The operation...")."""
        code, message, request_id, date = _error_fields(body)
        err = body.get('error') if isinstance(body, dict) else None
        if isinstance(err, dict):
            details = err.get('details')
            details = details if isinstance(details, list) else []
            inner = err.get('innererror') or err.get('innerError')
            internal = inner.get('internalexception') if isinstance(inner, dict) else None
            texts = [d.get('message') for d in details if isinstance(d, dict)]
            texts.append(internal.get('message') if isinstance(internal, dict) else None)
            for text in texts:
                if text and isinstance(text, str):
                    message = '%s: %s' % (message, text.rsplit('|', 1)[-1].strip()[:600])
                    break
        return code, message, request_id, date

    def service_hint(self, status: Any, code: str, message: str) -> Optional[str]:
        """Exchange Online answers 401 "User is not allowed to call <cmdlet>" to an app that has
        Exchange.ManageAsApp but no Exchange role that holds the cmdlet (RBAC), and 401
        InvalidAudienceForResource to a token asked for another resource."""
        if status == 401 and code == 'InvalidAudienceForResource':
            return ('the token is for %s, which this Exchange Online endpoint does not take: set '
                    'exo_token_resource to the resource of exo_endpoint (for the clouds of the '
                    'README\'s table, its root), or leave both to cloud'
                    % self.identity.resources[EXCHANGE])
        found = NOT_ALLOWED.match(message or '') if status == 401 else None
        if found:
            cmdlet = found.group(1)
            return ('the app\'s service principal has no Exchange Online role that holds this '
                    'cmdlet (%s): assign the app the Microsoft Entra role %s, or add its '
                    'service principal to an Exchange role group that holds the cmdlet (%s, '
                    'step 5); a new token is of no use here'
                    % (cmdlet, role_for(cmdlet), ROLES_DOC))
        return None

    @staticmethod
    def token_refused(r: Any) -> bool:
        """A 401 whose error.message is "User is not allowed to call <cmdlet>" and that does not
        challenge the token (WWW-Authenticate error="invalid_token") is the RBAC refusal: no
        refresh for it. The words elsewhere (a cmdlet error quoting a name) do not count."""
        if 'invalid_token' in (r.headers.get('WWW-Authenticate') or ''):
            return True
        try:
            err = json.loads(r.content).get('error')
        except (ValueError, AttributeError, RecursionError):
            return True
        message = err.get('message') if isinstance(err, dict) else None
        return not (isinstance(message, str) and NOT_ALLOWED.match(message))

    def retryable(self, r: Any) -> bool:
        """ExoHelper also retries Exchange's "You have reached the maximum number of concurrent
        requests per tenant" whatever its status."""
        return r.status_code in self.retry_status or concurrency_refusal(r)

    def throttled(self, r: Any) -> None:
        """A concurrency refusal lowers the window of requests in flight."""
        window = getattr(self, 'window', None)
        if window is not None and concurrency_refusal(r):
            window.shrink()

    @staticmethod
    def retry_hint(r: Any, retry: Backoff) -> str:
        if concurrency_refusal(r):
            return (retry.summary() + '; other clients of this tenant hold Exchange Online\'s '
                    'concurrent requests: run again later, or fewer runs against the tenant '
                    'at once')
        return retry.summary() + '; Exchange Online did not recover: run again later'

    def tenant(self) -> str:
        """The tenant GUID for the URL and anchor: tenant_id when it is a GUID (IdentityError
        when the token's ``tid`` names another tenant: a token must not move the requests to
        another tenant), else the token's ``tid``, else tenant_id as given."""
        self._auth()
        given, tid = self.identity.tenant_id, token_tenant(self._token)
        if not GUID.fullmatch(given):
            return tid or given
        if tid and tid != given.lower():
            raise IdentityError('the Exchange Online token is for the tenant %s (its tid claim), '
                                'not for tenant_id %s; nothing was sent to Exchange Online. '
                                'Check authority_host: tokens must come from the identity '
                                'platform of the tenant_id tenant.' % (tid, given.lower()))
        return given.lower()

    def invoke(self, cmdlet: str, parameters: Optional[Mapping[str, Any]] = None,
               phase: Optional[str] = None, page_size: int = PAGE_SIZE,
               check: Optional[Check] = None,
               split: Optional[Callable[[], bool]] = None) -> List[Any]:
        """Every object the cmdlet returns, following @odata.nextLink (the same POST again, on
        this endpoint only, within the paging bounds); ``check(object)`` says what is wrong with
        one object (None: nothing). ``split``: asked when the first page is not the last; True
        stops with _More (the caller reads the objects otherwise)."""
        tenant = self.tenant()
        headers = {'X-AnchorMailbox': ANCHOR % tenant,
                   'Prefer': 'odata.maxpagesize=%d' % page_size}
        body = {'CmdletInput': {'CmdletName': cmdlet, 'Parameters': parameters or {}}}
        phase = phase or cmdlet

        def fetch(url: str, first: bool) -> JSON:
            answer = self.request('POST', url, json=body, headers=headers, phase=phase,
                                  permission=PERMISSION)[1]
            if 'value' not in answer and not cmdlet.lower().startswith('get-'):
                # a cmdlet that returns nothing: how the endpoint says so is not documented
                # (the lab answers "value": []), so an object without "value" is taken as none
                answer = dict(answer, value=[])
            link = answer.get('@odata.nextLink')
            if split is not None and first and link is not None and split():
                self.follow(link, url, phase, 'POST')  # a link elsewhere fails, split or not
                raise _More()
            return answer
        url = '%s/adminapi/beta/%s/InvokeCommand' % (self.endpoint, tenant)
        return self.collect(fetch, url, phase, 'POST', check)

    def read_all(self, cmdlet: str, check: Optional[Check] = None) -> List[Any]:
        """Every object of a Get-* cmdlet of the whole tenant: one page when the tenant has no
        more; else in partitions by Name (name_filter), up to ``concurrency`` at once. A
        partition whose first page is not its last is split by the next character while fewer
        than 2 x concurrency partitions wait (and SPLIT_DEPTH allows), else its pages are
        followed. An object two partitions return (none should) is kept once."""
        unlimited = {'ResultSize': 'Unlimited'}
        try:
            return self.invoke(cmdlet, unlimited, check=check, split=lambda: True)
        except _More:
            pass
        lock = threading.Lock()
        found: List[Any] = []
        pending = [0]
        pool = ThreadPoolExecutor(max_workers=self.concurrency)
        futures: List[Any] = []

        def submit(prefix: str, rest: bool) -> None:
            with lock:
                if len(futures) >= MAX_PARTITIONS:
                    raise GraphError(cmdlet, 200, 'TooManyPartitions', 'more than %d partitions '
                                     'of %s, each with a full first page; stopped'
                                     % (MAX_PARTITIONS, cmdlet), service=self.service)
                pending[0] += 1
                futures.append(pool.submit(part, prefix, rest))

        def part(prefix: str, rest: bool) -> None:
            params = dict(unlimited, Filter=name_filter(prefix, rest))

            def split() -> bool:  # when the first page came: would the pool go idle?
                with lock:
                    return pending[0] < 2 * self.concurrency
            try:
                try:
                    objects = self.invoke(cmdlet, params, check=check, split=None if rest or len(
                        prefix) >= SPLIT_DEPTH else split)
                except _More:
                    for c in NAME_ALPHABET:
                        submit(prefix + c, False)
                    submit(prefix, True)
                    return
                with lock:
                    found.extend(objects)
            finally:
                with lock:
                    pending[0] -= 1
        try:
            for c in NAME_ALPHABET:
                submit(c, False)
            submit('', True)
            done = 0
            while True:  # the list grows while partitions split; each future ends by itself
                with lock:
                    if done == len(futures):
                        break
                    future = futures[done]
                future.result()
                done += 1
        finally:
            pool.shutdown(wait=True, cancel_futures=True)
        return unique(found)

    def read_by_addresses(self, cmdlet: str, addresses: Iterable[str],
                          check: Optional[Check] = None) -> Iterator[List[Any]]:
        """The objects of ``cmdlet`` that hold the SMTP ``addresses`` (EmailAddresses -eq, in
        chunks of ADDRESS_CHUNK, up to ``concurrency`` chunks at once), chunk by chunk as the
        answers arrive."""
        todo = sorted(set(a for a in addresses if a))
        chunks = [todo[i:i + ADDRESS_CHUNK] for i in range(0, len(todo), ADDRESS_CHUNK)]

        def one(chunk: List[str]) -> List[Any]:
            text = ' -or '.join('EmailAddresses -eq %s' % quoted(a) for a in chunk)
            return self.invoke(cmdlet, {'Filter': text, 'ResultSize': 'Unlimited'}, check=check)
        with ThreadPoolExecutor(max_workers=max(1, min(self.concurrency, len(chunks)))) as pool:
            futures = [pool.submit(one, c) for c in chunks]
            try:
                for future in futures:
                    yield future.result()
            finally:
                for future in futures:
                    future.cancel()


def unique(objects: Iterable[Any]) -> List[Any]:
    """``objects`` without repeats of one object (by Guid, else ExternalDirectoryObjectId, else
    DistinguishedName, else Identity; an object with none of them is kept)."""
    seen = set()
    out = []
    for obj in objects:
        key = next((str(obj.get(k)).lower() for k in ('Guid', 'ExternalDirectoryObjectId',
                                                      'DistinguishedName', 'Identity')
                    if isinstance(obj, dict) and obj.get(k)), None)
        if key is not None:
            if key in seen:
                continue
            seen.add(key)
        out.append(obj)
    return out


class NotCarriedOut(Exception):
    """A changing cmdlet failed and the read back does not show its change: ``error`` (the
    GraphError), ``now`` (what was read back, None when nothing), ``reachable`` (False: the read
    back failed too, so whether the cmdlet was carried out is not known)."""

    def __init__(self, error: Any, now: Any, reachable: bool) -> None:
        super(NotCarriedOut, self).__init__(str(error))
        self.error = error
        self.now = now
        self.reachable = reachable

    def result_fields(self) -> Dict[str, Any]:
        """The answer's status, code and request id; ``changed: unknown`` when unreachable."""
        fields: Dict[str, Any] = {'status': self.error.status, 'code': self.error.code,
                                  'request_id': self.error.request_id}
        if not self.reachable:
            fields['changed'] = 'unknown'
        return fields

    def task_error(self, cmdlet: str, what: str, fields: Mapping[str, Any]) -> TaskError:
        """The task's failure in phase ``cmdlet``: Exchange's answer, and when the read back
        failed too, that the outcome is not known."""
        text = str(self.error)
        if not self.reachable:
            text += ('; reading %s back failed too, so whether %s was carried out is not known: '
                     'run the task again (it reads first)' % (what, cmdlet))
        return TaskError(text, phase=cmdlet, fields=dict(fields, **self.result_fields()))


def change_and_read_back(exo: 'ExoAdminClient', cmdlet: str, parameters: Mapping[str, Any],
                         read: Callable[[str], Any], done: Callable[[Any], bool],
                         warnings: List[str], what: str = 'the object') -> Any:
    """Send a changing cmdlet, then ``read(phase)`` the object back. When the cmdlet fails, the
    object is read back too, since an answer lost after the write leaves it changed: when
    ``done(now)``, that is a warning and ``now`` is returned; else NotCarriedOut. Never assumes
    either outcome."""
    try:
        exo.invoke(cmdlet, dict(parameters), phase=cmdlet)
    except GraphError as e:
        reachable = True
        try:
            now = read('read back after ' + cmdlet)
        except GraphError:
            now, reachable = None, False
        if now is not None and done(now):
            warnings.append('%s failed (%s), but read back afterwards %s is as asked'
                            % (cmdlet, e.graph_message, what))
            return now
        raise NotCarriedOut(e, now, reachable)
    return read('read back after ' + cmdlet)


def concurrency_refusal(r: Any) -> bool:
    """Whether an answer is Exchange's "You have reached the maximum number of concurrent
    requests per tenant": its error message (or a detail's, or a plain-text body) starts with
    those words. Text that only holds them, such as a not-found error quoting a name, does not
    count."""
    texts = [_text(r.content).strip()]
    try:
        err = json.loads(r.content).get('error')
    except (ValueError, AttributeError, RecursionError, TypeError):
        err = None
    if isinstance(err, dict):
        details = err.get('details')
        found = [err.get('message')] + [d.get('message') for d in (
            details if isinstance(details, list) else []) if isinstance(d, dict)]
        # a detail is "<prefix>|<exception type>|<text>": the text after the second '|' (a
        # name quoted in the text may hold '|' of its own)
        texts = [(t.split('|', 2)[2] if t.count('|') >= 2 else t).strip().lower()
                 for t in found if isinstance(t, str)]
    return any(t.startswith(CONCURRENT_WORDS) for t in texts)


def _text(content: Optional[bytes]) -> str:
    """An answer body as lower-case text, for looking for Exchange's wording in it."""
    return (content or b'')[:65536].decode('utf-8', 'replace').lower()
