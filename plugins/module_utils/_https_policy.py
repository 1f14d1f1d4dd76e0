# -*- coding: utf-8 -*-
# Copyright (c) exchangeonline.mail contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# Private to this collection: may change without notice.
"""Fetch an MTA-STS policy the way a sending MTA does (RFC 8461 section 3.3).

``https://mta-sts.<domain>/.well-known/mta-sts.txt``: TLS with a certificate valid for that
name (the system's authorities, or ``ca_path``), HTTP 200, ``Content-Type: text/plain``, no
redirect followed, at most 64 KiB of policy (16 KiB of headers), a cut answer refused, one
timeout for the whole fetch (each read waits only for the time left). The standard library
only (``ssl``, ``socket``): ``address`` may send the connection elsewhere (a lab, a load
balancer's address) while the name checked in the certificate and sent as SNI and Host stays
``mta-sts.<domain>``. Returns a :class:`Fetched`, never raises for what the server does.
"""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import socket
import ssl
import time
from typing import Any, Dict, Optional, Tuple

from ansible_collections.exchangeonline.mail.plugins.module_utils._mta_sts import (
    POLICY_MAX_BYTES,
    POLICY_PATH,
    policy_host,
    policy_url,
)
from ansible_collections.exchangeonline.mail.plugins.module_utils._records import RecordError

USER_AGENT = 'exchangeonline.mail (MTA-STS policy check)'


class Fetched:
    """The outcome of one fetch: ``text`` (the policy) or ``error`` (why a sender gets none)."""

    __slots__ = ('url', 'text', 'error', 'status', 'content_type')

    def __init__(self, url: str, text: Optional[str] = None, error: Optional[str] = None,
                 status: Optional[int] = None, content_type: Optional[str] = None) -> None:
        self.url = url
        self.text = text
        self.error = error
        self.status = status
        self.content_type = content_type


def split_address(address: str, what: str = 'mta_sts.address') -> Tuple[str, int]:
    """host[:port] or [v6]:port -> (host, port), port 443 by default."""
    text = address.strip()
    host, port = text, '443'
    if text.startswith('['):
        host, sep, rest = text[1:].partition(']')
        if not sep or (rest and not rest.startswith(':')):
            raise RecordError('%s %r is not host[:port] or [address]:port' % (what, address))
        port = rest[1:] or '443'
    elif text.count(':') == 1:
        host, port = text.split(':')
    if not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise RecordError('%s %r is not host[:port] (port 1 to 65535)' % (what, address))
    return host, int(port)


HEADER_MAX_BYTES = 16384  # the status line and headers of a policy answer
CHUNK_OVERHEAD = 8192  # room for chunked framing around a body of POLICY_MAX_BYTES


class _Answer:
    """An HTTP/1.x answer read so far: status, headers, and the body framing they announce."""

    def __init__(self, head: bytes) -> None:
        lines = head.decode('iso-8859-1').split('\r\n')
        parts = lines[0].split(' ', 2)
        if len(parts) < 2 or not parts[0].startswith('HTTP/1.') or not parts[1].isdigit() or \
                len(parts[1]) != 3:
            raise ValueError('its answer does not start with an HTTP/1.x status line: %r'
                             % lines[0][:80])
        self.status = int(parts[1])
        self.reason = parts[2].strip() if len(parts) > 2 else ''
        self.headers: Dict[str, str] = {}
        for line in lines[1:]:
            name, sep, value = line.partition(':')
            if not sep or not name.strip() or name != name.strip():
                raise ValueError('its answer has a malformed header line: %r' % line[:80])
            key = name.lower()
            self.headers[key] = ('%s, %s' % (self.headers[key], value.strip())
                                 if key in self.headers else value.strip())
        self.chunked = 'chunked' in self.headers.get('transfer-encoding', '').lower()
        length = self.headers.get('content-length')
        if length is not None and not self.chunked and not length.isdigit():
            raise ValueError('its Content-Length is not a number: %r' % length[:40])
        self.length = int(length) if length is not None and not self.chunked else None

    def body(self, data: bytes) -> Tuple[bool, bytes]:
        """(complete, the body so far) of the bytes after the headers."""
        if self.chunked:
            return _dechunk(data)
        if self.length is not None:
            return len(data) >= self.length, data[:self.length]
        return False, data  # until the connection closes


def _dechunk(data: bytes) -> Tuple[bool, bytes]:
    """(complete, decoded so far) of a chunked body (RFC 9112 section 7.1); trailers ignored.
    ValueError on bad framing."""
    out = b''
    pos = 0
    while True:
        end = data.find(b'\r\n', pos)
        if end < 0:
            if len(data) - pos > 64:
                raise ValueError('its chunked body has a malformed chunk size')
            return False, out
        size_text = data[pos:end].split(b';')[0].strip()
        if not size_text or len(size_text) > 8 or \
                not all(c in b'0123456789abcdefABCDEF' for c in size_text):
            raise ValueError('its chunked body has a malformed chunk size')
        size = int(size_text, 16)
        if size == 0:
            return True, out
        if len(data) < end + 4 + size:
            return False, out + data[end + 2:end + 2 + size]
        if data[end + 2 + size:end + 4 + size] != b'\r\n':
            raise ValueError('its chunked body has a chunk without its CRLF')
        out += data[end + 2:end + 2 + size]
        pos = end + 4 + size
        if len(out) > POLICY_MAX_BYTES:
            return True, out


def _receive(tls: Any, deadline: float) -> Tuple[_Answer, bytes, bool]:
    """(the answer, its body, complete) read from ``tls`` before ``deadline``: every recv waits
    at most for the time left, and the whole answer is capped, so a server that trickles bytes
    or never stops cannot hold the fetch past its timeout. Raises socket.timeout, ValueError."""
    data = b''
    answer: Optional[_Answer] = None
    head_end = -1
    cap = HEADER_MAX_BYTES + POLICY_MAX_BYTES + CHUNK_OVERHEAD
    while True:
        if answer is None:
            head_end = data.find(b'\r\n\r\n')
            if head_end >= 0:
                answer = _Answer(data[:head_end])
                if 100 <= answer.status < 200:  # an interim answer (103 Early Hints): skip it
                    data, answer = data[head_end + 4:], None
                    continue
                if answer.status != 200:
                    return answer, b'', True
            elif len(data) > HEADER_MAX_BYTES:
                raise ValueError('its status line and headers are larger than %d bytes'
                                 % HEADER_MAX_BYTES)
        if answer is not None:
            complete, body = answer.body(data[head_end + 4:])
            if complete or len(body) > POLICY_MAX_BYTES or \
                    (answer.length is not None and answer.length > POLICY_MAX_BYTES):
                return answer, body, True
        left = deadline - time.monotonic()
        if left <= 0:
            raise socket.timeout('timed out')
        tls.settimeout(left)
        try:
            chunk = tls.recv(min(16384, cap + 1 - len(data)))
        except ssl.SSLEOFError:  # closed without close_notify: judged by the framing below
            chunk = b''
        if not chunk:
            if answer is None:
                raise ValueError('it closed the connection before the end of its headers')
            return answer, answer.body(data[head_end + 4:])[1], answer.length is None and \
                not answer.chunked
        data += chunk
        if len(data) > cap:
            raise ValueError('its answer is larger than %d bytes' % cap)


def fetch_policy(domain: str, address: Optional[str] = None, ca_path: Optional[str] = None,
                 timeout: float = 10.0) -> Fetched:
    """The policy of ``domain`` as a sender would fetch it (see the module docstring)."""
    host = policy_host(domain)
    url = policy_url(domain)
    connect = split_address(address) if address else (host, 443)
    deadline = time.monotonic() + timeout
    try:
        context = ssl.create_default_context(cafile=ca_path)
    except (OSError, ssl.SSLError) as e:
        raise RecordError('mta_sts.ca_path %s cannot be read as PEM certificates: %s'
                          % (ca_path, e))
    sock = None
    try:
        sock = socket.create_connection(connect, timeout=timeout)
        sock.settimeout(max(0.001, deadline - time.monotonic()))
        tls = context.wrap_socket(sock, server_hostname=host)
        sock = tls
        tls.settimeout(max(0.001, deadline - time.monotonic()))
        tls.sendall(('GET %s HTTP/1.1\r\nHost: %s\r\nUser-Agent: %s\r\nAccept: text/plain\r\n'
                     'Connection: close\r\n\r\n' % (POLICY_PATH, host, USER_AGENT)).encode('ascii'))
        answer, body, complete = _receive(tls, deadline)
        status = answer.status
        ctype = answer.headers.get('content-type', '')
        if 300 <= status < 400:
            return Fetched(url, error='%s answers HTTP %d, a redirect to %s; senders do not follow '
                           'redirects (RFC 8461 section 3.3): serve the policy at this URL'
                           % (url, status, answer.headers.get('location') or '(no Location)'),
                           status=status, content_type=ctype)
        if status != 200:
            return Fetched(url, error='%s answers HTTP %d %s, not 200 with the policy'
                           % (url, status, answer.reason), status=status, content_type=ctype)
        if ctype.split(';')[0].strip().lower() != 'text/plain':
            return Fetched(url, error='%s is served as %s; RFC 8461 section 3.3 requires '
                           'Content-Type text/plain' % (url, ctype or 'no Content-Type'),
                           status=status, content_type=ctype)
        if len(body) > POLICY_MAX_BYTES or (answer.length or 0) > POLICY_MAX_BYTES:
            return Fetched(url, error='%s is larger than %d bytes, where senders may stop reading'
                           % (url, POLICY_MAX_BYTES), status=status, content_type=ctype)
        if not complete:
            return Fetched(url, error='%s closed the connection after %d byte(s) of the policy%s; '
                           'senders discard a cut answer' % (
                               url, len(body), ' of %d' % answer.length
                               if answer.length is not None else ''),
                           status=status, content_type=ctype)
        try:
            text = body.decode('utf-8')
        except UnicodeDecodeError:
            return Fetched(url, error='%s is not UTF-8 text' % url, status=status,
                           content_type=ctype)
        return Fetched(url, text=text, status=status, content_type=ctype)
    except ssl.SSLCertVerificationError as e:
        return Fetched(url, error='the certificate of %s does not verify for %s: %s; senders '
                       'then use no policy (RFC 8461 section 3.3)'
                       % (url, host, e.verify_message or e.reason))
    except ssl.SSLError as e:
        return Fetched(url, error='TLS with %s failed: %s' % (_where(host, connect), e))
    except socket.timeout:
        return Fetched(url, error='%s did not answer, or did not finish its answer, within %g s'
                       % (_where(host, connect), timeout))
    except socket.gaierror as e:
        return Fetched(url, error='%s cannot be resolved (%s): publish its A/AAAA record, or '
                       'give mta_sts.address' % (connect[0], e.strerror or e))
    except ValueError as e:
        return Fetched(url, error='%s is not a usable HTTP answer: %s' % (url, e))
    except OSError as e:
        return Fetched(url, error='%s: %s' % (_where(host, connect), e))
    finally:
        if sock is not None:
            try:
                sock.close()
            except OSError:
                pass


def _where(host: str, connect: Tuple[str, int]) -> str:
    if connect == (host, 443):
        return host
    return '%s (at %s port %d)' % (host, connect[0], connect[1])
