"""A real PowerDNS Authoritative Server 4.7 on loopback, with its HTTP API and the SQLite backend.

Each instance gets its own directory, a fresh SQLite database made from the schema the Debian
package ships, a random API key, and free ports for DNS and the API. Zones are loaded from zone
file text through the API itself (``POST /zones``), so the server holds them as any PowerDNS
whose zones were made that way; it serves them on its DNS port (unsigned AXFR from loopback, as
PowerDNS allows by default), so tests see what a resolver would. The webserver logs every
request line (``webserver-loglevel=normal``): ``api_requests('PATCH')`` counts the writes.
"""

import json
import os
import secrets
import shutil
import sqlite3
import subprocess
import tempfile
import time
import urllib.error
import urllib.request

import dns.rdatatype
import dns.zone

from tests.lab.bind import free_port
from tests.lab.dns_server import LabDnsServer

SCHEMA = '/usr/share/doc/pdns-backend-sqlite3/schema.sqlite3.sql'


class PowerDnsServer(LabDnsServer):
    """pdns_server serving ``zones`` ({origin: zone file text}) on 127.0.0.1:port, its API on
    127.0.0.1:api_port."""

    transfer_signed = False

    def __init__(self, zones, workdir=None):
        self.zones = dict(zones)
        self.workdir = workdir or tempfile.mkdtemp(prefix='exo-pdns-')
        self.api_key = secrets.token_hex(16)
        self.port = None
        self.api_port = None
        self.proc = None
        self.own_patches = 0  # the PATCH requests of patch(), an administrator's

    @property
    def log_file(self):
        return os.path.join(self.workdir, 'pdns.log')

    @property
    def api_url(self):
        return 'http://127.0.0.1:%d' % self.api_port

    def module_args(self):
        """The provider options of mail_dns for this server."""
        return dict(provider='powerdns', api_url=self.api_url, api_key=self.api_key)

    def start(self, port=None):
        os.makedirs(self.workdir, exist_ok=True)
        database = os.path.join(self.workdir, 'pdns.sqlite3')
        if os.path.exists(database):
            os.unlink(database)
        with open(SCHEMA, encoding='utf-8') as f, sqlite3.connect(database) as db:
            db.executescript(f.read())
        self.port = port or free_port()
        self.api_port = free_port()
        with open(os.path.join(self.workdir, 'pdns.conf'), 'w', encoding='utf-8') as f:
            f.write('\n'.join([
                'launch=gsqlite3', 'gsqlite3-database=%s' % database,
                'local-address=127.0.0.1', 'local-port=%d' % self.port,
                'api=yes', 'api-key=%s' % self.api_key, 'webserver=yes',
                'webserver-address=127.0.0.1', 'webserver-port=%d' % self.api_port,
                'webserver-allow-from=127.0.0.1', 'webserver-loglevel=normal',
                'socket-dir=%s' % self.workdir, 'guardian=no', 'daemon=no',
                'disable-syslog=yes', 'loglevel=6', 'allow-axfr-ips=127.0.0.1',
                'disable-axfr=no', '']))
        pdns = shutil.which('pdns_server') or '/usr/sbin/pdns_server'
        log = open(self.log_file, 'w')  # pylint: disable=consider-using-with
        try:
            self.proc = subprocess.Popen([pdns, '--config-dir=%s' % self.workdir],
                                         stdout=log, stderr=subprocess.STDOUT)
        finally:
            log.close()
        deadline = time.monotonic() + 15
        while True:
            if self.proc.poll() is not None:
                raise RuntimeError('pdns_server exited: %s' % self.log_text()[-3000:])
            try:
                self.api('GET', '/api/v1/servers/localhost')
                break
            except (OSError, urllib.error.URLError):
                if time.monotonic() > deadline:
                    self.stop()
                    raise RuntimeError('the PowerDNS API did not answer within 15 s')
                time.sleep(0.05)
        for origin, text in self.zones.items():
            self.load_zone(origin, text)
        return self._wait_serving(self.log_file, 'pdns_server')

    # -- the API, as an administrator uses it ---------------------------------------------------
    def api(self, method, path, body=None):
        """(status, JSON or None) of one API request with the key."""
        data = json.dumps(body).encode() if body is not None else None
        req = urllib.request.Request(self.api_url + path, data=data, method=method,
                                     headers={'X-API-Key': self.api_key,
                                              'Content-Type': 'application/json'})
        try:
            with urllib.request.urlopen(req, timeout=10) as r:
                raw = r.read()
                return r.status, json.loads(raw) if raw.strip() else None
        except urllib.error.HTTPError as e:
            raw = e.read()
            try:
                return e.code, json.loads(raw)
            except ValueError:
                return e.code, raw.decode('utf-8', 'replace')

    def load_zone(self, origin, text):
        origin = origin.rstrip('.') + '.'
        z = dns.zone.from_text(text, origin=origin, relativize=False)
        rrsets = []
        for name, node in z.nodes.items():
            for rds in node.rdatasets:
                rrsets.append({'name': name.to_text().lower(),
                               'type': dns.rdatatype.to_text(rds.rdtype), 'ttl': rds.ttl,
                               'records': [{'content': rd.to_text(), 'disabled': False}
                                           for rd in rds]})
        status, body = self.api('POST', '/api/v1/servers/localhost/zones',
                                {'name': origin, 'kind': 'Native', 'nameservers': [],
                                 'rrsets': rrsets})
        if status != 201:
            raise RuntimeError('PowerDNS refused zone %s: %s %s' % (origin, status, body))

    def patch(self, zone, rrsets):
        """An administrator's own change of the zone (one PATCH); returns the status."""
        self.own_patches += 1
        return self.api('PATCH', '/api/v1/servers/localhost/zones/%s' % (zone.rstrip('.') + '.'),
                        {'rrsets': rrsets})[0]

    def api_requests(self, method):
        """How many API requests with ``method`` the webserver logged (every one, any path)."""
        return sum(1 for line in self.log_text().splitlines()
                   if '"%s /api/v1/' % method in line)

    def update_messages(self, zone=None):
        """The writes of the zone by others than patch(): PATCH requests (PowerDNS takes no
        RFC 2136 update here)."""
        return self.api_requests('PATCH') - self.own_patches
