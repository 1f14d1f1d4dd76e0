"""A real Knot DNS 3.2 on loopback for tests: another authoritative server than BIND.

Each instance gets its own directory, a free port, a fresh TSIG key and clean copies of its zones
(the journal and timer databases are deleted before every start, and ``zonefile-sync: -1`` keeps
knotd from rewriting the zone files); knotd runs in the foreground and is stopped by PID. It logs
at debug level to ``knot.log``: every ACL decision (so every UPDATE and every signed query that
reaches it) and every change of a zone.

Knot's ACLs are per action, and a rule without ``key:`` matches only unsigned requests. With the
default ``transfer='address'`` the key may update, while zone transfers are allowed to 127.0.0.1
without a key: a TSIG-signed AXFR then gets NOTAUTH with TSIG error BADKEY, as it would from a
Knot server set up that way in production.
"""

import base64
import os
import re
import shutil
import subprocess
import tempfile

from tests.lab.bind import free_port
from tests.lab.dns_server import LabDnsServer

TRANSFER_ACLS = ('address', 'key', 'none')


class KnotServer(LabDnsServer):
    """knotd serving ``zones`` ({origin: zone file text}) on 127.0.0.1:port; the TSIG key may
    update them. ``transfer``: 'address' (AXFR allowed to 127.0.0.1 without a key, the interop
    case), 'key' (AXFR only with the key) or 'none' (no transfers)."""

    def __init__(self, zones, workdir=None, key_name='exo-lab-key', algorithm='hmac-sha256',
                 transfer='address'):
        if transfer not in TRANSFER_ACLS:
            raise ValueError('transfer must be one of %s' % ', '.join(TRANSFER_ACLS))
        self.zones = dict(zones)
        self.workdir = workdir or tempfile.mkdtemp(prefix='exo-knot-')
        self.key_name = key_name
        self.algorithm = algorithm
        self.key_secret = base64.b64encode(os.urandom(32)).decode()
        self.transfer = transfer
        self.transfer_signed = transfer == 'key'
        self.port = None
        self.proc = None

    # -- life cycle -------------------------------------------------------------------------
    @property
    def key_file(self):
        """The key in BIND's format (what ``key_file`` of the collection reads)."""
        return os.path.join(self.workdir, 'tsig.key')

    @property
    def log_file(self):
        return os.path.join(self.workdir, 'knot.log')

    @property
    def config_file(self):
        return os.path.join(self.workdir, 'knot.conf')

    def _write_config(self):
        os.makedirs(self.workdir, exist_ok=True)
        for name in ('journal', 'timers', 'catalog', 'keys'):
            shutil.rmtree(os.path.join(self.workdir, name), ignore_errors=True)
        for name in os.listdir(self.workdir):
            if name.endswith('.zone') or name == 'knot.sock':
                os.unlink(os.path.join(self.workdir, name))
        with open(self.key_file, 'w', encoding='utf-8') as f:
            f.write('key "%s" {\n\talgorithm %s;\n\tsecret "%s";\n};\n'
                    % (self.key_name, self.algorithm, self.key_secret))
        zones = []
        for origin, text in self.zones.items():
            with open(os.path.join(self.workdir, origin.rstrip('.') + '.zone'), 'w',
                      encoding='utf-8') as f:
                f.write(text)
            zones.append('  - domain: %s\n' % origin.rstrip('.'))
        transfer_rule = {
            'address': '  - id: transfer\n    address: 127.0.0.1\n    action: transfer\n',
            'key': '  - id: transfer\n    key: %s\n    action: transfer\n' % self.key_name,
            'none': '',
        }[self.transfer]
        acls = '[update, transfer]' if transfer_rule else '[update]'
        conf = """server:
    rundir: "%(dir)s"
    listen: 127.0.0.1@%(port)d

control:
    listen: "%(dir)s/knot.sock"

log:
  - target: "%(log)s"
    any: debug

database:
    storage: "%(dir)s"

key:
  - id: %(key)s
    algorithm: %(algorithm)s
    secret: %(secret)s

acl:
  - id: update
    key: %(key)s
    action: update
%(transfer)s
template:
  - id: default
    storage: "%(dir)s"
    file: "%%s.zone"
    zonefile-sync: -1
    zonefile-load: whole
    journal-content: changes
    acl: %(acls)s

zone:
%(zones)s""" % dict(dir=self.workdir, port=self.port, log=self.log_file, key=self.key_name,
                    algorithm=self.algorithm, secret=self.key_secret, transfer=transfer_rule,
                    acls=acls, zones=''.join(zones))
        with open(self.config_file, 'w', encoding='utf-8') as f:
            f.write(conf)

    def start(self, port=None):
        knotd = shutil.which('knotd') or '/usr/sbin/knotd'
        self.port = port or free_port()
        self._write_config()
        stderr_file = os.path.join(self.workdir, 'knotd.stderr')
        with open(stderr_file, 'w') as stderr:
            self.proc = subprocess.Popen([knotd, '-c', self.config_file],
                                         stdout=subprocess.DEVNULL, stderr=stderr)
        return self._wait_serving(stderr_file, 'knotd')

    # -- what knotd logged ------------------------------------------------------------------
    def _zone_lines(self, zone, *markers):
        tag = '[%s.] ' % zone.rstrip('.').lower() if zone else '] '
        return [line for line in self.log_text().splitlines()
                if tag in line.lower() and any(m in line for m in markers)]

    def update_messages(self, zone=None):
        """How many UPDATE messages for ``zone`` (or any zone) knotd logged as changing it
        ("DDNS, finished, serial A -> B") or as failing a prerequisite. Prerequisite-only
        messages that succeed leave no such line. (knotd applies UPDATEs that arrive together
        as one batch with one such line; the tests send them one after the other.)"""
        return len(self._zone_lines(zone, 'DDNS, finished, serial ', 'prerequisites not met'))

    def updates_seen(self):
        """Every log line that shows an UPDATE reaching knotd (any zone, any outcome)."""
        return [line for line in self.log_text().splitlines()
                if 'action update' in line or '] DDNS, ' in line]

    def reads_seen(self):
        """Every log line that shows a signed query or a zone transfer reaching knotd (it logs
        no unsigned queries)."""
        return [line for line in self.log_text().splitlines()
                if re.search(r'action (query|transfer)|AXFR, outgoing', line)]
