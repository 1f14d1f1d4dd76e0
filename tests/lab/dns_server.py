"""What tests ask of a lab authoritative DNS server, whichever software it is.

``BindServer`` (tests/lab/bind.py) and ``KnotServer`` (tests/lab/knot.py) write their own
configuration, start their process in the foreground and read their own log; querying,
transferring and updating the zones is the same for both and lives here.
"""

import signal
import subprocess
import time

import dns.message
import dns.name
import dns.query
import dns.rcode
import dns.rdatatype
import dns.tsigkeyring
import dns.update
import dns.zone


class LabDnsServer:
    """A server on 127.0.0.1:``port`` serving ``zones`` with one TSIG key (``key_name``,
    ``algorithm``, ``key_secret``) that may update them.

    A subclass starts ``proc`` and then calls ``_wait_serving``; ``transfer_signed`` says whether
    its transfer ACL wants the key (a signed AXFR) or only the address (an unsigned one)."""

    transfer_signed = True

    def _wait_serving(self, stderr_file, name, seconds=15):
        """Return once every zone answers its SOA; fail with the server's stderr if it exits."""
        deadline = time.monotonic() + seconds
        pending = list(self.zones)
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                with open(stderr_file, encoding='utf-8', errors='replace') as f:
                    raise RuntimeError('%s exited: %s' % (name, f.read()[-3000:]))
            try:
                while pending and self.soa_serial(pending[0]) is not None:
                    pending.pop(0)
                if not pending:
                    return self
            except Exception:  # not listening yet
                pass
            time.sleep(0.05)
        self.stop()
        raise RuntimeError('%s did not serve %s within %d s' % (name, ', '.join(pending), seconds))

    def stop(self):
        if self.proc is None:
            return
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()

    # -- what tests look at -------------------------------------------------------------------
    @property
    def keyring(self):
        return dns.tsigkeyring.from_text({self.key_name: (self.algorithm, self.key_secret)})

    def module_args(self):
        """The DNS connection options of the collection's modules for this server."""
        return dict(server='127.0.0.1', port=self.port, key_name=self.key_name,
                    key_secret=self.key_secret, key_algorithm=self.algorithm)

    def query(self, name, rdtype):
        q = dns.message.make_query(name, rdtype)
        return dns.query.tcp(q, '127.0.0.1', port=self.port, timeout=5)

    def soa_serial(self, zone):
        r = self.query(zone, 'SOA')
        for rrset in r.answer:
            if rrset.rdtype == dns.rdatatype.SOA:
                return rrset[0].serial
        return None

    def axfr(self, zone, with_soa=False):
        """The zone as sorted (name, ttl, type, rdata) tuples from an AXFR, TSIG-signed when
        ``transfer_signed``."""
        signed = dict(keyring=self.keyring, keyname=self.key_name) if self.transfer_signed else {}
        z = dns.zone.from_xfr(dns.query.xfr('127.0.0.1', zone, port=self.port, timeout=10,
                                            **signed))
        out = []
        for name, node in z.nodes.items():
            for rds in node.rdatasets:
                if rds.rdtype == dns.rdatatype.SOA and not with_soa:
                    continue
                for rd in rds:
                    out.append((name.derelativize(z.origin).to_text().lower(), rds.ttl,
                                dns.rdatatype.to_text(rds.rdtype), rd.to_text(origin=z.origin, relativize=False)))
        return sorted(out)

    def rrset(self, name, rdtype):
        """(ttl, sorted rdata texts) of one rrset, or None."""
        r = self.query(name, rdtype)
        for rrset in r.answer:
            if rrset.rdtype == dns.rdatatype.from_text(rdtype):
                return rrset.ttl, sorted(rd.to_text() for rd in rrset)
        return None

    def update(self, zone, build):
        """Send one signed UPDATE built by ``build(update_message)``; returns the rcode text."""
        u = dns.update.UpdateMessage(zone, keyring=self.keyring, keyname=self.key_name)
        build(u)
        r = dns.query.tcp(u, '127.0.0.1', port=self.port, timeout=5)
        return dns.rcode.to_text(r.rcode())

    def log_text(self):
        with open(self.log_file, encoding='utf-8', errors='replace') as f:
            return f.read()
