"""The lab's MTA-STS policy host: HTTPS on 127.0.0.1 that answers GET /.well-known/mta-sts.txt
for each ``mta-sts.<domain>`` (by the Host header) with what a test set, under a certificate for
those names from a CA of its own (``ca_path``, to give the modules as mta_sts.ca_path).

RFC 8461 section 3.3 is what the modules are held to: a redirect, another status, another
Content-Type, an oversized body or a certificate for another name must each leave the sender
without a policy. ``serve``/``redirect``/``respond`` set the answer per domain; an unknown host
gets 404, as a web server without the file does. ``requests`` records (host, path) of each
request.
"""

import http.server
import os
import ssl
import threading

import trustme

POLICY_PATH = '/.well-known/mta-sts.txt'


class _Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = 'HTTP/1.1'

    def log_message(self, *args):
        pass

    def do_GET(self):
        web = self.server.web
        host = (self.headers.get('Host') or '').split(':')[0].lower()
        web.requests.append((host, self.path))
        answer = web.answers.get(host) if self.path == POLICY_PATH else None
        status, headers, body = answer or (404, {'Content-Type': 'text/plain'}, b'not found\n')
        self.send_response(status)
        for key, value in headers.items():
            self.send_header(key, value)
        self.send_header('Content-Length', str(len(body)))
        self.send_header('Connection', 'close')
        self.end_headers()
        self.wfile.write(body)


class _Server(http.server.ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, web, context):
        self.web = web
        super().__init__(('127.0.0.1', 0), _Handler)
        self.socket = context.wrap_socket(self.socket, server_side=True)


class PolicyWeb:
    """HTTPS policy host for ``domains`` (certificate for mta-sts.<domain> of each; with
    ``wrong_name`` for another name only)."""

    def __init__(self, workdir, domains, wrong_name=False):
        os.makedirs(workdir, exist_ok=True)
        self.ca = trustme.CA()
        self.ca_path = os.path.join(workdir, 'policy-ca.pem')
        self.ca.cert_pem.write_to_path(self.ca_path)
        names = ['www.wrong-name.test'] if wrong_name else \
            ['mta-sts.' + d.rstrip('.') for d in domains]
        self.cert = self.ca.issue_cert(*names)
        self.answers = {}
        self.requests = []
        self._server = None
        self.port = None

    @property
    def address(self):
        """host:port for mta_sts.address."""
        return '127.0.0.1:%d' % self.port

    def start(self):
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        self.cert.configure_cert(context)
        self._server = _Server(self, context)
        self.port = self._server.server_address[1]
        threading.Thread(target=self._server.serve_forever, kwargs={'poll_interval': 0.1},
                         daemon=True, name='mta-sts-web').start()
        return self

    def stop(self):
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def respond(self, domain, status, headers, body):
        self.answers['mta-sts.' + domain.rstrip('.').lower()] = (
            status, headers, body.encode() if isinstance(body, str) else body)

    def serve(self, domain, policy, content_type='text/plain; charset=utf-8'):
        """Serve ``policy`` (text, or a dict: mode, mx list, max_age) for ``domain``."""
        if isinstance(policy, dict):
            policy = 'version: STSv1\r\nmode: %s\r\n%smax_age: %d\r\n' % (
                policy['mode'], ''.join('mx: %s\r\n' % m for m in policy['mx']),
                policy.get('max_age', 604800))
        self.respond(domain, 200, {'Content-Type': content_type}, policy)

    def redirect(self, domain, location):
        self.respond(domain, 301, {'Location': location, 'Content-Type': 'text/html'}, b'moved')

    def forget(self, domain):
        self.answers.pop('mta-sts.' + domain.rstrip('.').lower(), None)
