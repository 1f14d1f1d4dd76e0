"""An authoritative DNS server on loopback for the lab's API emulators (Azure DNS, Cloudflare).

A hosted provider's API and its name servers are one service: what the API holds is what the name
servers answer. ``ApiDnsServer(zones)`` answers UDP and TCP queries on 127.0.0.1:``port`` from a
callable ``zones() -> {origin: {(name, type): (ttl, [presentation texts])}}`` (absolute lower-case
names), read at every query, so that ``mail_dns_check`` can wait on the emulator as on a real
provider. The answers follow RFC 1034 section 4.3.2: AA set, a CNAME at the name for another
type, NODATA and NXDOMAIN with the zone's SOA in the authority section, REFUSED for a name of no
zone. The SOA comes from the zone's own data when it has one, else is made up with ``serial()``.

The provider's name server host names (the apex NS of the zones, such as ada.ns.cloudflare.com)
are answered too, A 127.0.0.1 and no AAAA: the lab stands for those servers, so that
``mail_dns_check`` (which asks the configured server for its name servers' addresses) reaches
this one.
"""

import socketserver
import struct
import threading

import dns.flags
import dns.message
import dns.name
import dns.rcode
import dns.rdataclass
import dns.rdatatype
import dns.rrset


def _rrset(name, rdtype, ttl, texts):
    return dns.rrset.from_text_list(dns.name.from_text(name), ttl, dns.rdataclass.IN,
                                    dns.rdatatype.from_text(rdtype), list(texts))


class ApiDnsServer:
    def __init__(self, zones, serial=lambda origin: 1):
        self.zones = zones
        self.serial = serial
        self.port = None
        self._udp = None
        self._tcp = None

    def answer(self, wire):
        query = dns.message.from_wire(wire)
        response = dns.message.make_response(query)
        response.flags |= dns.flags.AA
        question = query.question[0]
        qname = question.name.to_text().lower()
        qtype = dns.rdatatype.to_text(question.rdtype)
        zones = self.zones()
        origin = max((z for z in zones if qname == z or qname.endswith('.' + z)), key=len,
                     default=None)
        own = set(v.lower() for z, data in zones.items() for v in data.get((z, 'NS'), (0, []))[1])
        if origin is None and qname in own:
            if qtype == 'A':
                response.answer.append(_rrset(qname, 'A', 300, ['127.0.0.1']))
            return response.to_wire()
        if origin is None:
            response.flags &= ~dns.flags.AA
            response.set_rcode(dns.rcode.REFUSED)
            return response.to_wire()
        data = zones[origin]
        soa = data.get((origin, 'SOA'))
        soa_rrset = _rrset(origin, 'SOA', soa[0], soa[1]) if soa else _rrset(
            origin, 'SOA', 300, ['ns1.%s hostmaster.%s %d 3600 600 604800 300'
                                 % (origin, origin, self.serial(origin))])
        if qtype == 'SOA' and qname == origin:
            response.answer.append(soa_rrset)
            return response.to_wire()
        found = data.get((qname, qtype))
        cname = data.get((qname, 'CNAME'))
        if found:
            response.answer.append(_rrset(qname, qtype, found[0], found[1]))
        elif cname and qtype != 'CNAME':
            response.answer.append(_rrset(qname, 'CNAME', cname[0], cname[1]))
        else:
            exists = any(n == qname or n.endswith('.' + qname) for n, _t in data)
            if not exists:
                response.set_rcode(dns.rcode.NXDOMAIN)
            response.authority.append(soa_rrset)
        return response.to_wire()

    def start(self):
        server = self

        class Udp(socketserver.BaseRequestHandler):
            def handle(self):
                data, sock = self.request
                try:
                    sock.sendto(server.answer(data), self.client_address)
                except Exception:  # a malformed query: no answer, as a server may do
                    pass

        class Tcp(socketserver.BaseRequestHandler):
            def handle(self):
                try:
                    while True:
                        head = self.request.recv(2)
                        if len(head) < 2:
                            return
                        (length,) = struct.unpack('!H', head)
                        wire = b''
                        while len(wire) < length:
                            chunk = self.request.recv(length - len(wire))
                            if not chunk:
                                return
                            wire += chunk
                        out = server.answer(wire)
                        self.request.sendall(struct.pack('!H', len(out)) + out)
                except (OSError, Exception):
                    return

        for _attempt in range(20):  # the same free port for UDP and TCP
            udp = socketserver.ThreadingUDPServer(('127.0.0.1', 0), Udp)
            port = udp.server_address[1]
            try:
                socketserver.ThreadingTCPServer.allow_reuse_address = True
                tcp = socketserver.ThreadingTCPServer(('127.0.0.1', port), Tcp)
            except OSError:
                udp.server_close()
                continue
            self._udp, self._tcp, self.port = udp, tcp, port
            break
        else:
            raise RuntimeError('no free port for UDP and TCP')
        for s in (self._udp, self._tcp):
            s.daemon_threads = True
            threading.Thread(target=s.serve_forever, kwargs={'poll_interval': 0.1},
                             daemon=True).start()
        return self

    def stop(self):
        for s in (self._udp, self._tcp):
            if s is not None:
                s.shutdown()
                s.server_close()
        self._udp = self._tcp = None


class ZoneViews:
    """What tests look at, for a lab provider with ``rrsets(zone)`` ({(name, type): (ttl,
    sorted values)}) and ``zone_names()`` (absolute origins)."""

    def rrset(self, name, rdtype):
        name = name.rstrip('.').lower() + '.'
        for zone in sorted(self.zone_names(), key=len, reverse=True):
            if name.endswith(zone):
                return self.rrsets(zone).get((name, rdtype))
        return None

    def axfr(self, zone, with_soa=False):
        rows = []
        for (name, rdtype), (ttl, values) in self.rrsets(zone).items():
            if rdtype == 'SOA' and not with_soa:
                continue
            rows.extend((name, ttl, rdtype, v) for v in values)
        return sorted(rows)

    def soa_serial(self, zone):
        return None  # the API shows no serial that follows changes
