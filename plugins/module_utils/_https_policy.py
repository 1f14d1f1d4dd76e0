# -*- coding: utf-8 -*-
# Copyright (c) exchangeonline.mail contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# Private to this collection: may change without notice.
"""Fetch an MTA-STS policy the way a sending MTA does (RFC 8461 section 3.3).

``https://mta-sts.<domain>/.well-known/mta-sts.txt``: TLS with a certificate valid for that
name (the system's authorities, or ``ca_path``), HTTP 200, ``Content-Type: text/plain``, no
redirect followed, at most 64 KiB read, one timeout for the whole fetch. The standard library
only (``ssl``, ``http.client``): ``address`` may send the connection elsewhere (a lab, a load
balancer's address) while the name checked in the certificate and sent as SNI and Host stays
``mta-sts.<domain>``. Returns a :class:`Fetched`, never raises for what the server does.
"""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import http.client
import socket
import ssl
import time
from typing import Optional, Tuple

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
        tls = context.wrap_socket(sock, server_hostname=host)
        sock = tls
        tls.settimeout(max(0.1, deadline - time.monotonic()))
        tls.sendall(('GET %s HTTP/1.1\r\nHost: %s\r\nUser-Agent: %s\r\nAccept: text/plain\r\n'
                     'Connection: close\r\n\r\n' % (POLICY_PATH, host, USER_AGENT)).encode('ascii'))
        response = http.client.HTTPResponse(tls, method='GET')
        response.begin()
        status = response.status
        ctype = response.getheader('Content-Type') or ''
        if 300 <= status < 400:
            return Fetched(url, error='%s answers HTTP %d, a redirect to %s; senders do not follow '
                           'redirects (RFC 8461 section 3.3): serve the policy at this URL'
                           % (url, status, response.getheader('Location') or '(no Location)'),
                           status=status, content_type=ctype)
        if status != 200:
            return Fetched(url, error='%s answers HTTP %d %s, not 200 with the policy'
                           % (url, status, response.reason), status=status, content_type=ctype)
        if ctype.split(';')[0].strip().lower() != 'text/plain':
            return Fetched(url, error='%s is served as %s; RFC 8461 section 3.3 requires '
                           'Content-Type text/plain' % (url, ctype or 'no Content-Type'),
                           status=status, content_type=ctype)
        body = b''
        while len(body) <= POLICY_MAX_BYTES:
            tls.settimeout(max(0.1, deadline - time.monotonic()))
            if time.monotonic() > deadline:
                raise socket.timeout('timed out')
            chunk = response.read(min(8192, POLICY_MAX_BYTES + 1 - len(body)))
            if not chunk:
                break
            body += chunk
        if len(body) > POLICY_MAX_BYTES:
            return Fetched(url, error='%s is larger than %d bytes, where senders may stop reading'
                           % (url, POLICY_MAX_BYTES), status=status, content_type=ctype)
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
        return Fetched(url, error='%s did not answer within %.0f s'
                       % (_where(host, connect), timeout))
    except socket.gaierror as e:
        return Fetched(url, error='%s cannot be resolved (%s): publish its A/AAAA record, or '
                       'give mta_sts.address' % (connect[0], e.strerror or e))
    except (OSError, http.client.HTTPException) as e:
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
