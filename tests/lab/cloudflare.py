"""Cloudflare DNS for tests: the API v4 zone and DNS record endpoints, and the zone's name servers.

Served on 127.0.0.1 (plain HTTP; the base URL is ``url`` + ``/client/v4``), in the documented
shapes (sources in tests/lab/README.md, "Cloudflare"):

* the envelope ``{success, errors: [{code, message}], messages, result, result_info}`` and paging
  by ``page``/``per_page`` with ``result_info.total_pages``;
* ``GET /zones?name=`` (``per_page`` from 5 to 50, as documented; the lab refuses others),
  ``GET /zones/<id>``, ``GET /zones/<id>/dns_records`` (records with ``id``,
  ``name`` without the final dot, ``type``, ``content``, ``ttl`` (1 = automatic), ``priority``
  for MX, ``proxied``);
* ``POST /zones/<id>/dns_records/batch`` with ``deletes`` (by id) and ``posts``: run in that
  order on a copy of the zone and kept only when every operation passed, as Cloudflare documents
  ("a single database transaction"); at most 200 records per batch (Free plan). A deleted id that
  is not there is 404 code 81044 "Record does not exist."; a record next to a CNAME (or a CNAME
  next to anything) 400 code 81053/81054; an identical record 400 code 81058; a TTL other than 1
  or 60 to 86400 400 code 9021;
* tokens: an Authorization header that is not ``Bearer <token>`` is 400 code 6003 "Invalid
  request headers" (error_chain 6111 "Invalid format for Authorization header"); an unknown
  token, or a read-only token that writes, is 403 code 10000 "Authentication error".

``ApiDnsServer`` answers DNS for the zones on ``dns_port``; a proxied record is answered as
Cloudflare's address (104.16.0.1), as the real name servers do. ``calls`` counts requests by
operation, ``batches`` keeps the batches applied, ``lose_next_change`` applies the next batch and
closes the connection without an answer.
"""

import collections
import copy
import http.server
import json
import re
import threading
import urllib.parse
import uuid

import dns.rdatatype
import dns.zone

from tests.lab.api_dns import ApiDnsServer, ZoneViews

TOKEN = 'exolabCloudflareToken0123456789abcdefGHI'   # 40 characters, like Cloudflare's
READ_TOKEN = 'exolabCloudflareReadOnly0123456789abcdEF'
NAME_SERVERS = ['ada.ns.cloudflare.com', 'bob.ns.cloudflare.com']
PROXY_ADDRESS = '104.16.0.1'


def envelope(result=None, errors=(), info=None):
    body = {'success': not errors, 'errors': list(errors), 'messages': [], 'result': result}
    if info is not None:
        body['result_info'] = info
    return body


class BatchError(Exception):
    def __init__(self, status, code, message):
        super().__init__(message)
        self.status, self.code, self.message = status, code, message


class CloudflareLab(ZoneViews):
    def __init__(self, zones, workdir=None):
        self.zone_texts = dict(zones)
        self.zones = {}     # zone id -> {'id', 'name', 'status', 'name_servers'}
        self.records = {}   # zone id -> {record id: record}
        self.serials = {}
        self.calls = collections.Counter()
        self.batches = []
        self.lose_next_change = False
        self.lock = threading.Lock()
        self.http = None
        self.dns = None
        self.port = None

    # -- life cycle -----------------------------------------------------------------------------
    def start(self):
        for origin, text in self.zone_texts.items():
            self.load_zone(origin, text)
        lab = self

        class Handler(FrontHandler):
            pass
        Handler.lab = lab
        self.http = http.server.ThreadingHTTPServer(('127.0.0.1', 0), Handler)
        self.http.daemon_threads = True
        self.port = self.http.server_address[1]
        threading.Thread(target=self.http.serve_forever, kwargs={'poll_interval': 0.1},
                         daemon=True).start()
        self.dns = ApiDnsServer(self.served_zones, lambda origin: self.serials[origin]).start()
        return self

    def stop(self):
        if self.http is not None:
            self.http.shutdown()
            self.http.server_close()
            self.http = None
        if self.dns is not None:
            self.dns.stop()
            self.dns = None

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()

    @property
    def url(self):
        return 'http://127.0.0.1:%d/client/v4' % self.port

    @property
    def dns_port(self):
        return self.dns.port

    def module_args(self):
        return dict(provider='cloudflare', api_url=self.url, api_token=TOKEN)

    def load_zone(self, origin, text):
        origin = origin.rstrip('.') + '.'
        z = dns.zone.from_text(text, origin=origin, relativize=False)
        zone_id = uuid.uuid4().hex
        self.zones[zone_id] = {'id': zone_id, 'name': origin.rstrip('.'), 'status': 'active',
                               'name_servers': list(NAME_SERVERS)}
        self.records[zone_id] = {}
        self.serials[origin] = 2026120101
        for name, node in z.nodes.items():
            for rds in node.rdatasets:
                rdtype = dns.rdatatype.to_text(rds.rdtype)
                if rdtype == 'SOA' or (rdtype == 'NS' and name.to_text() == origin):
                    continue  # Cloudflare's own, not records of the zone
                for rd in rds:
                    record = self.record_from_rdata(name.to_text(), rdtype, rds.ttl, rd)
                    self.records[zone_id][record['id']] = record

    @staticmethod
    def record_from_rdata(name, rdtype, ttl, rd):
        record = {'id': uuid.uuid4().hex, 'name': name.rstrip('.').lower(), 'type': rdtype,
                  'ttl': ttl, 'proxied': False, 'proxiable': rdtype in ('A', 'AAAA', 'CNAME')}
        if rdtype == 'MX':
            record.update(priority=rd.preference,
                          content=rd.exchange.to_text(omit_final_dot=True))
        elif rdtype in ('CNAME', 'NS', 'PTR'):
            record['content'] = rd.target.to_text(omit_final_dot=True)
        else:
            record['content'] = rd.to_text()
        return record

    def zone_id(self, zone):
        name = zone.rstrip('.').lower()
        return next(i for i, z in self.zones.items() if z['name'] == name)

    # -- what tests look at ---------------------------------------------------------------------
    def rrsets(self, zone):
        """{(name, type): (ttl, sorted presentation values)}, as dig would show them."""
        out = {}
        origin = zone.rstrip('.') + '.'
        with self.lock:
            records = list(self.records[self.zone_id(zone)].values())
        grouped = collections.defaultdict(list)
        ttls = {}
        for r in records:
            key = (r['name'] + '.', r['type'])
            grouped[key].append(self.presentation(r))
            ttls[key] = 300 if r['ttl'] == 1 else r['ttl']
        for key, values in grouped.items():
            out[key] = (ttls[key], sorted(values))
        out.setdefault((origin, 'NS'), (86400, sorted(n + '.' for n in NAME_SERVERS)))
        return out

    @staticmethod
    def presentation(record):
        content = record.get('content', '')
        if record['type'] == 'MX':
            return '%d %s.' % (record['priority'], content.rstrip('.'))
        if record['type'] in ('CNAME', 'NS', 'PTR'):
            return content.rstrip('.') + '.'
        if record['type'] == 'TXT' and not content.startswith('"'):
            return '"%s"' % content.replace('"', '\\"')
        return content

    def zone_names(self):
        return [z['name'] + '.' for z in self.zones.values()]

    def served_zones(self):
        zones = {}
        for zone_id, zone in list(self.zones.items()):
            origin = zone['name'] + '.'
            data = {}
            for (name, rdtype), (ttl, values) in self.rrsets(origin).items():
                data[(name, rdtype)] = (ttl, values)
            with self.lock:
                proxied = [r for r in self.records[zone_id].values() if r.get('proxied')]
            for r in proxied:  # answered as Cloudflare's own address
                data.pop((r['name'] + '.', r['type']), None)
                data[(r['name'] + '.', 'A')] = (300, [PROXY_ADDRESS])
            zones[origin] = data
        return zones

    def soa_serial(self, zone):
        return self.serials[zone.rstrip('.') + '.']

    def update_messages(self, zone=None):
        return len(self.batches)

    def change(self, zone, deletes=(), posts=()):
        """An administrator's own batch (as the dashboard sends it); posts as API records."""
        zone_id = self.zone_id(zone)
        with self.lock:
            self.apply_batch(zone_id, {'deletes': [{'id': i} for i in deletes],
                                       'posts': list(posts)}, own=True)

    def ids(self, name, rdtype):
        name = name.rstrip('.').lower()
        with self.lock:
            return [i for z in self.records.values() for i, r in z.items()
                    if r['name'] == name and r['type'] == rdtype]

    # -- the batch ------------------------------------------------------------------------------
    def apply_batch(self, zone_id, body, own=False):
        """Deletes then posts on a copy; the zone takes the copy only when all passed."""
        deletes = body.get('deletes') or []
        posts = body.get('posts') or []
        if body.get('patches') or body.get('puts'):
            raise BatchError(400, 1004, 'patches and puts are not served by the lab')
        if len(deletes) + len(posts) > 200:
            raise BatchError(400, 81061, 'The batch exceeds the 200 records of this plan.')
        work = copy.deepcopy(self.records[zone_id])
        zone_name = self.zones[zone_id]['name']
        deleted, posted = [], []
        for item in deletes:
            record = work.pop(str(item.get('id')), None)
            if record is None:
                raise BatchError(404, 81044, 'Record does not exist.')
            deleted.append(record)
        for item in posts:
            record = self.check_post(work, zone_name, item)
            work[record['id']] = record
            posted.append(record)
        self.records[zone_id] = work
        origin = zone_name + '.'
        self.serials[origin] += 1
        if not own:
            self.batches.append((zone_id, body))
        return {'deletes': deleted, 'patches': [], 'puts': [], 'posts': posted}

    def check_post(self, work, zone_name, item):
        name = str(item.get('name') or '').rstrip('.').lower()
        rdtype = str(item.get('type') or '').upper()
        if not (name == zone_name or name.endswith('.' + zone_name)):
            raise BatchError(400, 1004, 'DNS Validation Error: %s is not in zone %s'
                             % (name, zone_name))
        ttl = item.get('ttl', 1)
        if not isinstance(ttl, int) or not (ttl == 1 or 60 <= ttl <= 86400):
            raise BatchError(400, 9021, 'Invalid TTL. Must be between 60 and 86400 seconds, or '
                             '1 for Automatic.')
        if rdtype == 'MX' and not isinstance(item.get('priority'), int):
            raise BatchError(400, 9101, 'priority is required for MX records.')
        if not isinstance(item.get('content'), str) and rdtype not in ('SRV', 'CAA'):
            raise BatchError(400, 9005, 'Content for %s record is invalid.' % rdtype)
        if item.get('proxied') and rdtype not in ('A', 'AAAA', 'CNAME'):
            raise BatchError(400, 9004, 'This record type cannot be proxied.')
        same_name = [r for r in work.values() if r['name'] == name]
        if rdtype == 'CNAME' and same_name:
            raise BatchError(400, 81053, 'An A, AAAA, or CNAME record with that host already '
                             'exists.')
        if rdtype != 'CNAME' and any(r['type'] == 'CNAME' for r in same_name):
            raise BatchError(400, 81054, 'A CNAME record with that host already exists.')
        record = dict(item, id=uuid.uuid4().hex, name=name, type=rdtype, ttl=ttl,
                      proxied=bool(item.get('proxied')),
                      proxiable=rdtype in ('A', 'AAAA', 'CNAME'))
        if any(r['type'] == rdtype and self.presentation(r) == self.presentation(record)
               for r in same_name):
            raise BatchError(400, 81058, 'An identical record already exists.')
        return record


class FrontHandler(http.server.BaseHTTPRequestHandler):
    lab = None
    protocol_version = 'HTTP/1.1'

    def log_message(self, *args):
        pass

    def _reply(self, status, body):
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header('Content-Type', 'application/json')
        self.send_header('Content-Length', str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self):
        self._handle()

    def do_POST(self):
        self._handle()

    def _handle(self):
        lab = self.lab
        length = int(self.headers.get('Content-Length') or 0)
        raw = self.rfile.read(length) if length else b''
        split = urllib.parse.urlsplit(self.path)
        query = dict(urllib.parse.parse_qsl(split.query))
        path = split.path
        if not path.startswith('/client/v4/'):
            return self._reply(404, envelope(errors=[{'code': 7003, 'message':
                                                      'No route for the URI'}]))
        path = path[len('/client/v4'):]
        auth = self.headers.get('Authorization') or ''
        m = re.fullmatch(r'Bearer ([A-Za-z0-9_-]{40})', auth)
        if not m:
            return self._reply(400, envelope(errors=[{
                'code': 6003, 'message': 'Invalid request headers', 'error_chain': [
                    {'code': 6111, 'message': 'Invalid format for Authorization header'}]}]))
        token = m.group(1)
        if token not in (TOKEN, READ_TOKEN):
            return self._reply(403, envelope(errors=[{'code': 10000,
                                                      'message': 'Authentication error'}]))
        if path == '/zones' and self.command == 'GET':
            lab.calls['zones'] += 1
            name = query.get('name')
            zones = [z for z in lab.zones.values() if name is None or z['name'] == name]
            if not 5 <= int(query.get('per_page') or 20) <= 50:
                return self._reply(400, envelope(errors=[{'code': 1004, 'message':
                                                          'per_page must be from 5 to 50'}]))
            return self._reply(200, self._page(zones, query))
        m = re.fullmatch(r'/zones/([0-9a-f]{32})(/dns_records(/batch)?)?', path)
        if not m or m.group(1) not in lab.zones:
            return self._reply(404, envelope(errors=[{'code': 7003, 'message': 'Could not route '
                                                      'to %s, perhaps your object identifier is '
                                                      'invalid?' % path}]))
        zone_id = m.group(1)
        if m.group(3):
            if self.command != 'POST':
                return self._reply(405, envelope(errors=[{'code': 10405,
                                                          'message': 'Method not allowed'}]))
            lab.calls['batch'] += 1
            if token != TOKEN:
                return self._reply(403, envelope(errors=[{'code': 10000,
                                                          'message': 'Authentication error'}]))
            try:
                body = json.loads(raw or b'{}')
            except ValueError:
                return self._reply(400, envelope(errors=[{'code': 9207, 'message':
                                                          'Request body is invalid.'}]))
            with lab.lock:
                try:
                    result = lab.apply_batch(zone_id, body)
                except BatchError as e:
                    return self._reply(e.status, envelope(errors=[{'code': e.code,
                                                                   'message': e.message}]))
                if lab.lose_next_change:
                    lab.lose_next_change = False
                    self.close_connection = True
                    return None
            return self._reply(200, envelope(result))
        if m.group(2):
            lab.calls['dns_records'] += 1
            with lab.lock:
                records = sorted(lab.records[zone_id].values(),
                                 key=lambda r: (r['name'], r['type'], r['id']))
                records = [dict(r, zone_id=zone_id, zone_name=lab.zones[zone_id]['name'])
                           for r in records]
            return self._reply(200, self._page(records, query))
        lab.calls['zone'] += 1
        return self._reply(200, envelope(lab.zones[zone_id]))

    @staticmethod
    def _page(items, query):
        page = max(1, int(query.get('page') or 1))
        per_page = max(5, min(5000000, int(query.get('per_page') or 100)))
        chunk = items[(page - 1) * per_page:page * per_page]
        total_pages = max(1, -(-len(items) // per_page))
        return envelope(chunk, info={'page': page, 'per_page': per_page, 'count': len(chunk),
                                     'total_count': len(items), 'total_pages': total_pages})
