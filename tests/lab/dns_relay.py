"""A DNS relay on loopback that stands in for a broken network between a client and a server.

It forwards DNS over TCP and UDP to an upstream server (the lab BIND) and misbehaves on
request:

* ``update_reply='drop'``: an UPDATE is forwarded and applied upstream, but the client's
  connection is closed without the answer; ``'delay'``: the answer comes ``delay`` seconds late
  (after the client's timeout); ``'swallow'``: the UPDATE is lost on the way (never forwarded)
  and the connection closed; ``'pass'``: forwarded as it is.
* ``udp='truncate'``: every UDP question is answered with an empty reply with the TC flag set
  (signed with ``keyring`` when the question was);
  ``udp='pass'`` forwards; ``udp=None`` opens no UDP socket.
* ``tcp=False``: no TCP listener at all (the port refuses connections).

``log`` lists what passed: ('tcp'|'udp', opcode text, 'forwarded'|'dropped'|'delayed'|
'truncated'). Threads stop on ``stop()``; every wait in them is bounded.
"""

import socket
import struct
import threading

import dns.flags
import dns.message
import dns.opcode

from tests.lab.bind import free_port


def _read_exact(sock, size):
    data = b''
    while len(data) < size:
        chunk = sock.recv(size - len(data))
        if not chunk:
            raise EOFError
        data += chunk
    return data


def read_frame(sock):
    (size,) = struct.unpack('!H', _read_exact(sock, 2))
    return _read_exact(sock, size)


def _opcode(wire):
    return dns.opcode.to_text((struct.unpack('!H', wire[2:4])[0] >> 11) & 0xF)


class DnsRelay:
    def __init__(self, upstream_port, update_reply='pass', delay=0.0, udp='pass', tcp=True,
                 keyring=None):
        self.upstream = ('127.0.0.1', upstream_port)
        self.keyring = keyring  # signs the relay's own (truncated) answers to signed questions
        self.update_reply = update_reply
        self.delay = delay
        self.udp_mode = udp
        self.tcp_enabled = tcp
        self.port = None
        self.log = []
        self._stop = threading.Event()
        self._threads = []
        self._sockets = []

    # -- life cycle ---------------------------------------------------------------------------
    def start(self):
        self.port = free_port()
        if self.tcp_enabled:
            tcp = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            tcp.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            tcp.bind(('127.0.0.1', self.port))
            tcp.listen(16)
            tcp.settimeout(0.2)
            self._sockets.append(tcp)
            self._spawn(self._accept_loop, tcp)
        if self.udp_mode is not None:
            udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            udp.bind(('127.0.0.1', self.port))
            udp.settimeout(0.2)
            self._sockets.append(udp)
            self._spawn(self._udp_loop, udp)
        return self

    def stop(self):
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=self.delay + 5)
        for sock in self._sockets:
            sock.close()

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()

    def _spawn(self, target, *args):
        thread = threading.Thread(target=target, args=args, daemon=True)
        thread.start()
        self._threads.append(thread)

    # -- TCP ----------------------------------------------------------------------------------
    def _accept_loop(self, listener):
        while not self._stop.is_set():
            try:
                client, dummy = listener.accept()
            except socket.timeout:
                continue
            except OSError:
                return
            self._spawn(self._serve_tcp, client)

    def _serve_tcp(self, client):
        client.settimeout(10)
        try:
            upstream = socket.create_connection(self.upstream, timeout=10)
        except OSError:
            client.close()  # as a server that is gone: the connection ends at once
            return
        try:
            while not self._stop.is_set():
                try:
                    query = read_frame(client)
                except (EOFError, OSError):
                    return
                opcode = _opcode(query)
                if opcode == 'UPDATE' and self.update_reply == 'swallow':
                    self.log.append(('tcp', opcode, 'swallowed'))
                    return
                upstream.sendall(struct.pack('!H', len(query)) + query)
                if opcode == 'QUERY' and self._is_transfer(query):
                    self._relay_transfer(upstream, client)
                    self.log.append(('tcp', 'AXFR', 'forwarded'))
                    continue
                answer = read_frame(upstream)
                if opcode == 'UPDATE' and self.update_reply == 'drop':
                    self.log.append(('tcp', opcode, 'dropped'))
                    return  # applied upstream; the client hears nothing
                if opcode == 'UPDATE' and self.update_reply == 'delay':
                    self.log.append(('tcp', opcode, 'delayed'))
                    self._stop.wait(self.delay)
                else:
                    self.log.append(('tcp', opcode, 'forwarded'))
                try:
                    client.sendall(struct.pack('!H', len(answer)) + answer)
                except OSError:
                    return
        finally:
            upstream.close()
            client.close()

    @staticmethod
    def _is_transfer(wire):
        try:
            q = dns.message.from_wire(wire, keyring=False)
        except Exception:  # pylint: disable=broad-except
            return False
        return bool(q.question) and q.question[0].rdtype in (251, 252)  # IXFR, AXFR

    @staticmethod
    def _relay_transfer(upstream, client):
        """Copy the transfer's messages until the closing SOA (or a quiet second)."""
        upstream.settimeout(1)
        soa_seen = 0
        try:
            while soa_seen < 2:
                frame = read_frame(upstream)
                client.sendall(struct.pack('!H', len(frame)) + frame)
                msg = dns.message.from_wire(frame, keyring=False, one_rr_per_rrset=True)
                soa_seen += sum(1 for rr in msg.answer if rr.rdtype == 6)
                if msg.rcode() != 0:
                    return
        except (EOFError, OSError, socket.timeout):
            return
        finally:
            upstream.settimeout(10)

    # -- UDP ----------------------------------------------------------------------------------
    def _udp_loop(self, sock):
        upstream = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        upstream.settimeout(5)
        try:
            while not self._stop.is_set():
                try:
                    data, client = sock.recvfrom(65535)
                except socket.timeout:
                    continue
                except OSError:
                    return
                opcode = _opcode(data)
                if opcode == 'UPDATE' and self.update_reply == 'swallow':
                    self.log.append(('udp', opcode, 'swallowed'))
                    continue
                if self.udp_mode == 'truncate':
                    q = dns.message.from_wire(data, keyring=self.keyring or False)
                    r = dns.message.make_response(q)  # signed like the question, if it was
                    r.flags |= dns.flags.TC
                    sock.sendto(r.to_wire(), client)
                    self.log.append(('udp', opcode, 'truncated'))
                    continue
                upstream.sendto(data, self.upstream)
                try:
                    answer = upstream.recvfrom(65535)[0]
                except socket.timeout:
                    continue
                if opcode == 'UPDATE' and self.update_reply == 'drop':
                    self.log.append(('udp', opcode, 'dropped'))
                    continue
                if opcode == 'UPDATE' and self.update_reply == 'delay':
                    self.log.append(('udp', opcode, 'delayed'))
                    self._stop.wait(self.delay)
                else:
                    self.log.append(('udp', opcode, 'forwarded'))
                sock.sendto(answer, client)
        finally:
            upstream.close()

    def passed(self, opcode, what):
        return [entry for entry in self.log if entry[1] == opcode and entry[2] == what]
