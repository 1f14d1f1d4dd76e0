"""A real BIND 9 on loopback for tests, benchmarks and the demo.

Each instance gets its own directory, a free port, a fresh TSIG key and clean copies of its zones;
it is stopped by PID. named logs updates and queries to ``named.log`` so tests can prove that no
UPDATE reached the server. What tests ask of it (query, rrset, axfr, update, ...) is
``LabDnsServer`` in tests/lab/dns_server.py, shared with Knot DNS (tests/lab/knot.py).
"""

import base64
import os
import re
import shutil
import socket
import subprocess
import tempfile

from tests.lab.dns_server import LabDnsServer

ZONES_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), 'zones')


def free_port():
    """A port that is free for both TCP and UDP on 127.0.0.1."""
    for dummy in range(50):
        tcp = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        tcp.bind(('127.0.0.1', 0))
        port = tcp.getsockname()[1]
        udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        try:
            udp.bind(('127.0.0.1', port))
        except OSError:
            continue
        finally:
            tcp.close()
            udp.close()
        return port
    raise RuntimeError('no free port found')


def zone_template(name):
    with open(os.path.join(ZONES_DIR, name), encoding='utf-8') as f:
        return f.read()


class BindServer(LabDnsServer):
    """named serving ``zones`` ({origin: zone file text}) on 127.0.0.1:port with TSIG updates."""

    def __init__(self, zones, workdir=None, key_name='exo-lab-key', algorithm='hmac-sha256',
                 lock_transfer=True, extra_options='', signed_zones=()):
        self.zones = dict(zones)
        # zones named signs itself (dnssec-policy default, keys in workdir/keys); see
        # wait_signed() for when the signatures are served
        self.signed_zones = [z.rstrip('.').lower() for z in signed_zones]
        self.workdir = workdir or tempfile.mkdtemp(prefix='exo-bind-')
        self.key_name = key_name
        self.algorithm = algorithm
        self.key_secret = base64.b64encode(os.urandom(32)).decode()
        self.lock_transfer = lock_transfer  # True: TSIG only, False: open, 'none': refused
        self.extra_options = extra_options
        self.port = None
        self.proc = None

    # -- life cycle -------------------------------------------------------------------------
    @property
    def key_file(self):
        return os.path.join(self.workdir, 'tsig.key')

    @property
    def log_file(self):
        return os.path.join(self.workdir, 'named.log')

    def _write_config(self):
        os.makedirs(self.workdir, exist_ok=True)
        for name in os.listdir(self.workdir):
            if name.endswith('.jnl') or name.endswith('.db'):
                os.unlink(os.path.join(self.workdir, name))
        with open(self.key_file, 'w', encoding='utf-8') as f:
            f.write('key "%s" {\n\talgorithm %s;\n\tsecret "%s";\n};\n'
                    % (self.key_name, self.algorithm, self.key_secret))
        zone_blocks = []
        transfer = {True: 'allow-transfer { key "%s"; };' % self.key_name, False: '',
                    'none': 'allow-transfer { none; };'}[self.lock_transfer]
        for origin, text in self.zones.items():
            fname = origin.rstrip('.') + '.db'
            with open(os.path.join(self.workdir, fname), 'w', encoding='utf-8') as f:
                f.write(text)
            signing = ''
            if origin.rstrip('.').lower() in self.signed_zones:
                keys = os.path.join(self.workdir, 'keys')
                os.makedirs(keys, exist_ok=True)
                signing = 'dnssec-policy default; key-directory "%s";' % keys
            zone_blocks.append(
                'zone "%s" { type primary; file "%s"; allow-update { key "%s"; }; %s %s };'
                % (origin.rstrip('.'), fname, self.key_name, transfer, signing))
        conf = """
options {
    directory "%(dir)s";
    pid-file "%(dir)s/named.pid";
    session-keyfile "%(dir)s/session.key";
    managed-keys-directory "%(dir)s";
    listen-on port %(port)d { 127.0.0.1; };
    listen-on-v6 { none; };
    recursion no;
    dnssec-validation no;
    notify no;
    querylog yes;
    %(extra)s
};
controls { };
include "%(key)s";
logging {
    channel lab_log {
        file "%(log)s";
        print-time yes;
        print-category yes;
        print-severity yes;
        severity info;
    };
    category default { lab_log; };
    category update { lab_log; };
    category update-security { lab_log; };
    category queries { lab_log; };
    category xfer-out { lab_log; };
    category security { lab_log; };
};
%(zones)s
""" % dict(dir=self.workdir, port=self.port, key=self.key_file, log=self.log_file,
           zones='\n'.join(zone_blocks), extra=self.extra_options)
        with open(os.path.join(self.workdir, 'named.conf'), 'w', encoding='utf-8') as f:
            f.write(conf)

    def start(self, port=None):
        named = shutil.which('named') or '/usr/sbin/named'
        self.port = port or free_port()
        self._write_config()
        cmd = [named, '-f', '-c', os.path.join(self.workdir, 'named.conf')]
        if os.geteuid() == 0:
            cmd += ['-u', 'root']
        self.proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL,
                                     stderr=open(os.path.join(self.workdir, 'named.stderr'), 'w'))
        return self._wait_serving(os.path.join(self.workdir, 'named.stderr'), 'named')

    def wait_signed(self, zone, timeout=20.0):
        """The DNSKEY rrset of ``zone`` once named serves it with its RRSIG and the SOA is
        signed (at most ``timeout`` seconds)."""
        import time
        import dns.message
        import dns.query
        import dns.rdatatype
        deadline = time.monotonic() + timeout
        while True:
            got = {}
            for rdtype in ('DNSKEY', 'SOA'):
                q = dns.message.make_query(zone, rdtype, want_dnssec=True)
                r = dns.query.tcp(q, '127.0.0.1', port=self.port, timeout=5)
                got[rdtype] = dict((rrset.covers if rrset.rdtype == dns.rdatatype.RRSIG
                                    else rrset.rdtype, rrset) for rrset in r.answer
                                   if rrset.rdtype == dns.rdatatype.RRSIG)
                got[rdtype + '_data'] = [rrset for rrset in r.answer
                                         if rrset.rdtype == dns.rdatatype.from_text(rdtype)]
            if got['DNSKEY'].get(dns.rdatatype.DNSKEY) and got['SOA'].get(dns.rdatatype.SOA) \
                    and got['DNSKEY_data']:
                return got['DNSKEY_data'][0]
            if time.monotonic() > deadline:
                raise RuntimeError('named did not sign %s within %.0f s' % (zone, timeout))
            time.sleep(0.2)

    # -- what named logged --------------------------------------------------------------------
    def update_messages(self, zone=None):
        """How many UPDATE messages for ``zone`` (or any zone) named logged as changing it or as
        failing a prerequisite. Prerequisite-only messages that succeed leave no such line.

        named logs one line per changed RR; lines of one message share the client's address and
        source port (one message per connection here), so distinct clients count messages.
        """
        pat = re.compile(r"client @\S+ (\S+?)(?:/key \S+)?: updating zone '([^/']+)/IN'")
        seen = set()
        for m in pat.finditer(self.log_text()):
            if zone is None or m.group(2).rstrip('.').lower() == zone.rstrip('.').lower():
                seen.add(m.group(1))
        return len(seen)

    def updates_seen(self):
        """Every log line that shows an UPDATE reaching named (any zone, any outcome)."""
        return [line for line in self.log_text().splitlines()
                if ' update-security: ' in line or ' update: ' in line]

    def reads_seen(self):
        """Every log line that shows a query or a zone transfer reaching named."""
        return [line for line in self.log_text().splitlines()
                if ' queries: ' in line or ' xfer-out: ' in line]
