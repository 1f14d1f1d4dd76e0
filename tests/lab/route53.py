"""Amazon Route 53 for tests: moto in server mode behind a strict front on loopback.

moto 5 serves the Route 53 REST API, but where it is lenient the real service is not, and the
front makes up for it (sources in tests/lab/README.md, "Route 53"):

* **Credentials**: moto takes any. Its IAM mode cannot serve Route 53 (signed GETs with a query
  fail SignatureDoesNotMatch, and its errors lack the ErrorResponse shape botocore reads), so
  the front checks the AWS Signature Version 4 of every request itself, against the lab's one
  access key: another key gets 403 ``InvalidClientTokenId``, a wrong secret 403
  ``SignatureDoesNotMatch``, with the messages AWS sends.
* **ChangeResourceRecordSets**: moto deletes an rrset whose TTL or values differ from the
  DELETE (moto pull request 7153 relaxed it) and lets a CNAME sit at the apex or next to other
  data. The front checks each batch against the zone first, change by change on a working copy:
  a DELETE must match the rrset exactly ("... but it was not found" / "... but the values
  provided do not match the current values"), a CREATE must find none ("... but it already
  exists"), and CNAME rules hold. Any failure refuses the whole batch with 400
  ``InvalidChangeBatch``, as Route 53 does; only a valid batch reaches moto.

The front counts requests by operation (``calls``), keeps the batches that went through
(``batches``) and can lose the answer to the next change (``lose_next_change``): moto applies
it, the connection is closed without an answer. ``dns_port`` answers DNS for the zones as moto
holds them (tests/lab/api_dns.py), as Route 53's name servers would.
"""

import collections
import datetime
import http.client
import http.server
import re
import subprocess
import sys
import threading
import time
import uuid
import xml.etree.ElementTree as ET

import botocore.auth
import botocore.awsrequest
import botocore.credentials
import botocore.session
import dns.rdatatype
import dns.zone

from tests.lab.api_dns import ApiDnsServer, ZoneViews
from tests.lab.bind import free_port

ACCESS_KEY = 'AKIAEXOLAB000000DNS1'
SECRET_KEY = 'exolab/route53/secret/key/for/tests/only0'
NS = '{https://route53.amazonaws.com/doc/2013-04-01/}'
OPERATIONS = [
    ('GET', re.compile(r'^/2013-04-01/hostedzonesbyname'), 'ListHostedZonesByName'),
    ('GET', re.compile(r'^/2013-04-01/hostedzone/[^/]+/rrset'), 'ListResourceRecordSets'),
    ('POST', re.compile(r'^/2013-04-01/hostedzone/[^/]+/rrset'), 'ChangeResourceRecordSets'),
    ('GET', re.compile(r'^/2013-04-01/hostedzone/[^/?]+$'), 'GetHostedZone'),
    ('GET', re.compile(r'^/2013-04-01/change/'), 'GetChange'),
    ('POST', re.compile(r'^/2013-04-01/hostedzone$'), 'CreateHostedZone'),
    ('GET', re.compile(r'^/2013-04-01/hostedzone$'), 'ListHostedZones'),
]


def operation_of(method, path):
    for m, pattern, name in OPERATIONS:
        if m == method and pattern.match(path.split('?', 1)[0]):
            return name
    return '%s %s' % (method, path.split('?', 1)[0])


def error_xml(code, message):
    return ('<?xml version="1.0"?>\n<ErrorResponse xmlns="https://route53.amazonaws.com/doc/'
            '2013-04-01/"><Error><Type>Sender</Type><Code>%s</Code><Message>%s</Message></Error>'
            '<RequestId>%s</RequestId></ErrorResponse>'
            % (code, message.replace('&', '&amp;').replace('<', '&lt;'), uuid.uuid4())).encode()


class Route53Lab(ZoneViews):
    """moto on one port, the strict front on another; ``zones``: {origin: zone file text}, each
    made a public hosted zone (its SOA and apex NS are Route 53's own)."""

    def __init__(self, zones, workdir=None):
        self.zones = dict(zones)
        self.workdir = workdir
        self.proc = None
        self.front = None
        self.moto_port = None
        self.port = None
        self.calls = collections.Counter()
        self.batches = []            # the change batches moto applied, as (zone id, changes)
        self.lose_next_change = False
        self.lock = threading.Lock()  # one change batch at a time through the check and moto
        self.zone_ids = {}
        self.dns = None

    # -- life cycle -----------------------------------------------------------------------------
    def start(self):
        self.moto_port = free_port()
        self.proc = subprocess.Popen([sys.executable, '-m', 'moto.server', '-H', '127.0.0.1',
                                      '-p', str(self.moto_port)],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 30
        while True:
            try:
                self.client().list_hosted_zones()
                break
            except Exception:  # not listening yet
                if self.proc.poll() is not None or time.monotonic() > deadline:
                    self.stop()
                    raise RuntimeError('moto_server did not start')
                time.sleep(0.1)
        lab = self

        class Handler(FrontHandler):
            pass
        Handler.lab = lab
        self.front = http.server.ThreadingHTTPServer(('127.0.0.1', 0), Handler)
        self.port = self.front.server_address[1]
        threading.Thread(target=self.front.serve_forever, daemon=True).start()
        for origin, text in self.zones.items():
            self.load_zone(origin, text)
        self.calls.clear()
        # Route 53's name servers: the zones as moto holds them (tests/lab/api_dns.py)
        self.dns = ApiDnsServer(self.served_zones).start()
        return self

    @property
    def dns_port(self):
        return self.dns.port

    def stop(self):
        if self.dns is not None:
            self.dns.stop()
            self.dns = None
        if self.front is not None:
            self.front.shutdown()
            self.front.server_close()
            self.front = None
        if self.proc is not None:
            self.proc.terminate()
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

    @property
    def url(self):
        return 'http://127.0.0.1:%d' % self.port

    def module_args(self):
        return dict(provider='route53', aws_endpoint_url=self.url, aws_access_key_id=ACCESS_KEY,
                    aws_secret_access_key=SECRET_KEY)

    def client(self):
        """A Route 53 client straight to moto (the administrator's, not the front's)."""
        session = botocore.session.Session()
        session.set_credentials(ACCESS_KEY, SECRET_KEY)
        return session.create_client('route53', region_name='us-east-1',
                                     endpoint_url='http://127.0.0.1:%d' % self.moto_port)

    def load_zone(self, origin, text):
        origin = origin.rstrip('.') + '.'
        z = dns.zone.from_text(text, origin=origin, relativize=False)
        c = self.client()
        zone_id = c.create_hosted_zone(Name=origin, CallerReference=str(uuid.uuid4()))[
            'HostedZone']['Id'].rsplit('/', 1)[-1]
        self.zone_ids[origin] = zone_id
        changes = []
        for name, node in z.nodes.items():
            for rds in node.rdatasets:
                rdtype = dns.rdatatype.to_text(rds.rdtype)
                if rdtype == 'SOA' or (rdtype == 'NS' and name.to_text() == origin):
                    continue
                changes.append({'Action': 'CREATE', 'ResourceRecordSet': {
                    'Name': name.to_text().lower(), 'Type': rdtype, 'TTL': rds.ttl,
                    'ResourceRecords': [{'Value': rd.to_text()} for rd in rds]}})
        c.change_resource_record_sets(HostedZoneId=zone_id, ChangeBatch={'Changes': changes})

    # -- what tests look at ---------------------------------------------------------------------
    def rrsets(self, zone):
        """{(name, type): (ttl, sorted values)} of every simple rrset of the zone."""
        zone = zone.rstrip('.') + '.'
        out = {}
        kwargs = {'HostedZoneId': self.zone_ids[zone]}
        while True:
            page = self.client().list_resource_record_sets(**kwargs)
            for item in page['ResourceRecordSets']:
                if 'ResourceRecords' in item:
                    out[(item['Name'].lower(), item['Type'])] = (
                        item['TTL'], sorted(r['Value'] for r in item['ResourceRecords']))
            if not page.get('IsTruncated'):
                return out
            kwargs['StartRecordName'] = page['NextRecordName']
            kwargs['StartRecordType'] = page['NextRecordType']

    def zone_names(self):
        return list(self.zone_ids)

    def served_zones(self):
        """The zones for the name servers: moto's SOA value is no SOA (see README), so the
        server makes one up."""
        return dict((z, dict((k, v) for k, v in self.rrsets(z).items() if k[1] != 'SOA'))
                    for z in self.zone_ids)

    def update_messages(self, zone=None):
        """The change batches that went through to moto (each one write)."""
        return len(self.batches)

    def change(self, zone, changes):
        """An administrator's own change batch, straight to moto."""
        zone = zone.rstrip('.') + '.'
        self.client().change_resource_record_sets(HostedZoneId=self.zone_ids[zone],
                                                  ChangeBatch={'Changes': changes})

    # -- the front's checks -------------------------------------------------------------------
    def check_batch(self, zone_id, body):
        """(Route 53's message or None, the batch for moto). A valid batch goes to moto as
        the net change it makes (UPSERT and DELETE per rrset): moto checks each change against
        the zone as it was before the batch, so it refuses the DELETE and CREATE of one rrset
        that Route 53 documents as the way to change it."""
        zone = [z for z, i in self.zone_ids.items() if i == zone_id]
        if not zone:
            return None, body  # moto answers NoSuchHostedZone
        zone = zone[0]
        original = dict(self.rrsets(zone))
        working = dict(original)
        root = ET.fromstring(body)
        errors = []
        for change in root.iter(NS + 'Change'):
            action = change.findtext(NS + 'Action')
            rr = change.find(NS + 'ResourceRecordSet')
            name = (rr.findtext(NS + 'Name') or '').lower().rstrip('.') + '.'
            rdtype = rr.findtext(NS + 'Type')
            ttl = rr.findtext(NS + 'TTL')
            values = sorted(v.text for v in rr.iter(NS + 'Value'))
            key = (name, rdtype)
            where = "[name='%s', type='%s']" % (name, rdtype)
            if action == 'DELETE':
                if key not in working:
                    errors.append('Tried to delete resource record set %s but it was not found'
                                  % where)
                elif working[key] != (int(ttl or -1), values):
                    errors.append('Tried to delete resource record set %s but the values '
                                  'provided do not match the current values' % where)
                else:
                    del working[key]
                continue
            if action == 'CREATE' and key in working:
                errors.append('Tried to create resource record set %s but it already exists'
                              % where)
                continue
            others = [k for k in working if k[0] == name and k != key]
            if rdtype == 'CNAME' and name == zone:
                errors.append('RRSet of type CNAME with DNS name %s is not permitted at apex in '
                              'zone %s' % (name, zone))
                continue
            if (rdtype == 'CNAME' and others) or any(k[1] == 'CNAME' for k in others):
                errors.append('RRSet of type %s with DNS name %s is not permitted as it '
                              'conflicts with other records with the same DNS name in zone %s'
                              % (rdtype, name, zone))
                continue
            working[key] = (int(ttl or 0), values)
        if errors:
            return '[%s]' % ', '.join(errors), None
        net = []
        for key in sorted(set(original) | set(working)):
            if key in working and working[key] == original.get(key):
                continue
            action, (ttl, values) = ('UPSERT', working[key]) if key in working else \
                ('DELETE', original[key])
            net.append('<Change><Action>%s</Action><ResourceRecordSet><Name>%s</Name><Type>%s'
                       '</Type><TTL>%d</TTL><ResourceRecords>%s</ResourceRecords>'
                       '</ResourceRecordSet></Change>' % (
                           action, key[0], key[1], ttl, ''.join(
                               '<ResourceRecord><Value>%s</Value></ResourceRecord>'
                               % v.replace('&', '&amp;').replace('<', '&lt;') for v in values)))
        return None, ('<?xml version="1.0" encoding="UTF-8"?><ChangeResourceRecordSetsRequest '
                      'xmlns="https://route53.amazonaws.com/doc/2013-04-01/"><ChangeBatch>'
                      '<Changes>%s</Changes></ChangeBatch></ChangeResourceRecordSetsRequest>'
                      % ''.join(net)).encode()


class FrontHandler(http.server.BaseHTTPRequestHandler):
    """The strict front: checks the signature (and the batch), then forwards to moto."""

    lab = None
    protocol_version = 'HTTP/1.1'

    def log_message(self, *args):
        pass

    def _reply(self, status, body, headers=()):
        self.send_response(status)
        self.send_header('Content-Type', 'text/xml')
        self.send_header('Content-Length', str(len(body)))
        for k, v in headers:
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(body)

    def _signature_problem(self, body):
        auth = self.headers.get('Authorization', '')
        m = re.match(r'AWS4-HMAC-SHA256 Credential=([^/]+)/(\d{8})/([^/]+)/([^/]+)/aws4_request,'
                     r'\s*SignedHeaders=([^,]+),\s*Signature=([0-9a-f]+)$', auth)
        if not m:
            return 'MissingAuthenticationToken', 'Missing Authentication Token'
        key, _day, region, service, signed, signature = m.groups()
        if key != ACCESS_KEY:
            return 'InvalidClientTokenId', 'The security token included in the request is invalid.'
        request = botocore.awsrequest.AWSRequest(
            method=self.command, url='http://%s%s' % (self.headers['Host'], self.path),
            data=body, headers=dict((h, self.headers[h]) for h in signed.split(';')
                                    if self.headers.get(h) is not None))
        request.context['timestamp'] = self.headers.get('X-Amz-Date', '')
        signer = botocore.auth.SigV4Auth(botocore.credentials.Credentials(ACCESS_KEY, SECRET_KEY),
                                         service, region)
        canonical = signer.canonical_request(request)
        expected = signer.signature(signer.string_to_sign(request, canonical), request)
        if expected != signature:
            return ('SignatureDoesNotMatch', 'The request signature we calculated does not match '
                    'the signature you provided. Check your AWS Secret Access Key and signing '
                    'method. Consult the service documentation for details.')
        stamp = self.headers.get('X-Amz-Date', '')
        try:
            when = datetime.datetime.strptime(stamp, '%Y%m%dT%H%M%SZ').replace(
                tzinfo=datetime.timezone.utc)
        except ValueError:
            return 'IncompleteSignature', 'X-Amz-Date is missing or malformed'
        if abs((datetime.datetime.now(datetime.timezone.utc) - when).total_seconds()) > 300:
            return 'SignatureDoesNotMatch', 'Signature expired'
        return None

    def _handle(self):
        lab = self.lab
        length = int(self.headers.get('Content-Length') or 0)
        body = self.rfile.read(length) if length else b''
        operation = operation_of(self.command, self.path)
        lab.calls[operation] += 1
        problem = self._signature_problem(body)
        if problem:
            return self._reply(403, error_xml(*problem))
        if operation != 'ChangeResourceRecordSets':
            return self._forward(body)
        zone_id = self.path.split('/')[3]
        with lab.lock:
            message, net = lab.check_batch(zone_id, body)
            if message:
                return self._reply(400, error_xml('InvalidChangeBatch', message))
            status = self._forward(net, lose=lab.lose_next_change)
            if status == 200:
                lab.batches.append((zone_id, body))
            lab.lose_next_change = False
        return None

    def _forward(self, body, lose=False):
        conn = http.client.HTTPConnection('127.0.0.1', self.lab.moto_port, timeout=30)
        headers = dict((k, v) for k, v in self.headers.items()
                       if k.lower() not in ('host', 'connection', 'content-length'))
        conn.request(self.command, self.path, body=body or None, headers=headers)
        r = conn.getresponse()
        data = r.read()
        conn.close()
        if lose:  # applied by moto; the answer never reaches the client
            self.close_connection = True
            self.connection.close()
            return r.status
        self._reply(r.status, data, [(k, v) for k, v in r.getheaders()
                                     if k.lower() not in ('content-length', 'content-type',
                                                          'connection', 'transfer-encoding',
                                                          'server', 'date')])
        return r.status

    do_GET = do_POST = do_DELETE = _handle
