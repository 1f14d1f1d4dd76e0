"""An SMTP server on 127.0.0.1 that turns hostile at one point of the session, for the bounds of
smtp_test (a reply that never ends, a line without end, a server trickling a byte a second).

    server = HostileSmtp(at='greeting', how='lines').start()
    ... smtp_test with host 127.0.0.1, port server.port, tls: none ...
    server.stop()

Until ``at`` it answers like a plain ESMTP server without TLS (EHLO offers AUTH PLAIN LOGIN
XOAUTH2 and 8BITMIME; AUTH, MAIL, RCPT, DATA and the message are accepted). ``at`` is
``'greeting'`` or a command verb (``EHLO``, ``AUTH``, ``MAIL``, ``RCPT``, ``DATA``, ``QUIT``;
``'.'`` for the end of the message; anything else: never), and ``how`` what it then does:

    'lines'    a multi-line reply that never ends: ``<code>-<filler>`` lines, as fast as the
               client reads (``line_size`` octets each, CRLF included)
    'line'     one reply line that never ends (no CRLF), as fast as the client reads
    'trickle'  a multi-line reply that never ends, one byte every ``interval`` seconds
    'silent'   nothing at all, the connection kept open
    any other  that reply (a str, e.g. '421 4.7.0 Try again later'), then the connection closed

``greeting`` replaces the greeting (for a server that names itself, e.g. as Exchange Online).
Every connection is bounded: it ends when the client goes away, after ``max_seconds``, or after
``max_bytes`` sent. ``server.connections`` counts connections, ``server.commands`` holds every
command line received (AUTH lines and the message included: the tests look for secrets there),
``server.sent`` the octets sent per connection and ``server.ended`` why each one ended.
"""

import socket
import socketserver
import threading
import time

CODES = {'greeting': 220, 'EHLO': 250, 'HELO': 250, 'AUTH': 235, 'MAIL': 250, 'RCPT': 250,
         'DATA': 354, '.': 250}


class _Handler(socketserver.BaseRequestHandler):

    def handle(self):
        lab = self.server.lab
        with lab.lock:
            lab.connections += 1
            index = len(lab.sent)
            lab.sent.append(0)
        self.index = index
        self.started = time.monotonic()
        self.request.settimeout(0.5)
        self.buffer = b''
        why = 'done'
        try:
            why = self.session(lab) or 'done'
        except (BrokenPipeError, ConnectionResetError, ConnectionAbortedError):
            why = 'client went away'
        except _Bound as e:
            why = str(e)
        with lab.lock:
            lab.ended.append(why)

    # -- the session ---------------------------------------------------------------------------
    def session(self, lab):
        if lab.at == 'greeting':
            return self.misbehave(lab, 'greeting')
        self.write((lab.greeting or '220 hostile.exo-lab.test ESMTP') + '\r\n')
        in_data = False
        while True:
            line = self.readline()
            if line is None:
                return 'client closed'
            with lab.lock:
                lab.commands.append(line)
            if in_data:
                if line != '.':
                    continue
                in_data = False
                verb = '.'
            else:
                verb = line.split(' ', 1)[0].upper()
            if verb == lab.at:
                return self.misbehave(lab, verb)
            if verb in ('EHLO', 'HELO'):
                self.write('250-hostile.exo-lab.test\r\n250-AUTH PLAIN LOGIN XOAUTH2\r\n'
                           '250 8BITMIME\r\n')
            elif verb == 'AUTH' and line.upper() == 'AUTH LOGIN':
                self.write('334 VXNlcm5hbWU6\r\n')
                user = self.readline()
                self.write('334 UGFzc3dvcmQ6\r\n')
                password = self.readline()
                with lab.lock:
                    lab.commands.extend(x for x in (user, password) if x is not None)
                self.write('235 2.7.0 Authentication successful\r\n')
            elif verb == 'AUTH':
                self.write('235 2.7.0 Authentication successful\r\n')
            elif verb == 'DATA':
                in_data = True
                self.write('354 End data with <CR><LF>.<CR><LF>\r\n')
            elif verb == '.':
                self.write('250 2.0.0 Ok: queued as HOSTILE1\r\n')
            elif verb == 'QUIT':
                self.write('221 2.0.0 Bye\r\n')
                return 'quit'
            else:
                self.write('250 2.0.0 Ok\r\n')

    def misbehave(self, lab, verb):
        code = CODES.get(verb, 250)
        filler = b'x' * max(lab.line_size - 6, 1)
        if lab.how == 'lines':
            line = b'%d-%s\r\n' % (code, filler)
            while True:
                self.write(line)
        if lab.how == 'line':
            self.write(b'%d ' % code)
            while True:
                self.write(filler)
        if lab.how == 'trickle':
            line = b'%d-%s\r\n' % (code, filler)
            while True:
                for i in range(len(line)):
                    self.write(line[i:i + 1])
                    self.pause(lab.interval)
        if lab.how == 'silent':
            while True:
                self.pause(0.5)
        self.write(lab.how + '\r\n')
        return 'replied %s' % lab.how.split(' ', 1)[0]

    # -- bounded I/O ---------------------------------------------------------------------------
    def check(self):
        lab = self.server.lab
        if lab.stopping.is_set():
            raise _Bound('server stopped')
        if time.monotonic() - self.started > lab.max_seconds:
            raise _Bound('after %s s' % lab.max_seconds)
        if lab.sent[self.index] > lab.max_bytes:
            raise _Bound('after %d bytes' % lab.max_bytes)

    def write(self, data):
        if isinstance(data, str):
            data = data.encode()
        view = memoryview(data)
        while view:
            self.check()
            try:
                n = self.request.send(view)
            except socket.timeout:
                continue  # the client does not read: wait, within the bounds
            view = view[n:]
            with self.server.lab.lock:
                self.server.lab.sent[self.index] += n

    def pause(self, seconds):
        end = time.monotonic() + seconds
        while True:
            self.check()
            left = end - time.monotonic()
            if left <= 0:
                return
            time.sleep(min(left, 0.1))

    def readline(self):
        """One line without its CRLF, or None when the client closed; at most 64 KiB."""
        while b'\n' not in self.buffer:
            self.check()
            if len(self.buffer) > 65536:
                raise _Bound('client line too long')
            try:
                data = self.request.recv(4096)
            except socket.timeout:
                continue
            if not data:
                return None
            self.buffer += data
        line, dummy, self.buffer = self.buffer.partition(b'\n')
        return line.rstrip(b'\r').decode('utf-8', 'replace')


class _Bound(Exception):
    pass


class _Server(socketserver.ThreadingTCPServer):
    daemon_threads = True
    allow_reuse_address = True


class HostileSmtp:
    """See the module docstring."""

    def __init__(self, at='greeting', how='lines', greeting=None, line_size=512, interval=1.0,
                 max_seconds=60.0, max_bytes=1 << 30):
        self.at, self.how, self.greeting = at, how, greeting
        self.line_size, self.interval = line_size, interval
        self.max_seconds, self.max_bytes = max_seconds, max_bytes
        self.lock = threading.Lock()
        self.stopping = threading.Event()
        self.connections = 0
        self.commands = []
        self.sent = []
        self.ended = []
        self.server = None
        self.thread = None
        self.port = None

    def start(self):
        self.server = _Server(('127.0.0.1', 0), _Handler)
        self.server.lab = self
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever,
                                       kwargs={'poll_interval': 0.1}, daemon=True)
        self.thread.start()
        return self

    def wait_ended(self, count=1, seconds=10.0):
        """Wait (bounded) until ``count`` connections have ended; True when they have."""
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            with self.lock:
                if len(self.ended) >= count:
                    return True
            time.sleep(0.05)
        return False

    def stop(self):
        self.stopping.set()
        if self.server is not None:
            self.server.shutdown()
            self.server.server_close()
            self.thread.join(5)
            self.server = None

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()
