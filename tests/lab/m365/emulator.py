"""A stateful Microsoft 365 emulator over HTTPS with its own CA, for tests and the demo.

One port serves identity (path-based like login.microsoftonline.com) and Graph v1.0 under
``/v1.0/``. Real msal and requests talk to it::

    with M365Emulator(dns_server=('127.0.0.1', bind.port)) as emu:
        app = emu.add_app(roles=('Domain.ReadWrite.All',))
        msal.ConfidentialClientApplication(app['client_id'], app['secret'],
                                           authority=emu.url + '/' + emu.tenant_id,
                                           instance_discovery=False, http_client=session)

See identity.py for the token audience rules, graph.py for the Graph endpoints, exo.py for the
Exchange Online admin endpoint (``/adminapi/beta/{tenant}/InvokeCommand``). Standalone:
``python -m tests.lab.m365.emulator --port 0 --state-dir DIR --dns-server 127.0.0.1:PORT``
writes DIR/emulator.json and serves until SIGTERM.
"""

import argparse
import base64
import datetime
import hashlib
import http.server
import json
import os
import re
import signal
import ssl
import tempfile
import threading
import time
import urllib.parse
import uuid

import dns.exception
import dns.message
import dns.query
import dns.rdatatype
import jwt
import trustme
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID

from . import azure_dns, identity
from .common import Response, aad_error, graph_error, new_id, stable_id
from .exo import (CONCURRENT_REQUESTS, EXCHANGE_ROLES, ODATA_ERROR, ExoApi, anchor_ok, error_body,
                  transport_defaults)
from .graph import GraphApi, GraphRequest, parse_json

TENANT_DOMAIN = 'contosolab.onmicrosoft.com'

# SKUs and some of their service plans, with the ids of Microsoft's "Product names and service
# plan identifiers for licensing" (https://learn.microsoft.com/entra/identity/users/licensing-
# service-plan-reference; its CSV as copied on 2026-06-24 in KelvinTegelaar/CIPP-API
# Config/ConversionTable.csv). Every Exchange plan of a SKU is listed; other plans only in part.
SKUS = {
    'EXCHANGESTANDARD': ('4b9405b0-7788-4568-add1-99614e613b69',
                         [('9aaf7827-d63c-4b61-89c3-182f06f82e5c', 'EXCHANGE_S_STANDARD'),
                          ('882e1d05-acd1-4ccb-8708-6ee03664b117', 'INTUNE_O365')]),
    'O365_BUSINESS_PREMIUM': ('f245ecc8-75af-4f8e-b61f-27d8114de5f3',
                              [('9aaf7827-d63c-4b61-89c3-182f06f82e5c', 'EXCHANGE_S_STANDARD'),
                               ('e95bec33-7c88-4a70-8e19-b10bd9d0c014', 'SHAREPOINTWAC'),
                               ('57ff2da0-773e-42df-b2af-ffb7a2317929', 'TEAMS1')]),
    'SPE_E3': ('05e9a617-0261-4cee-bb44-138d3ef5d965',
               [('efb87545-963c-4e0d-99df-69c6916d9eb0', 'EXCHANGE_S_ENTERPRISE'),
                ('5dbe027f-2339-4123-9542-606e4d348a72', 'SHAREPOINTENTERPRISE'),
                ('57ff2da0-773e-42df-b2af-ffb7a2317929', 'TEAMS1')]),
    # Kiosk, government and legacy plans that give a mailbox
    'EXCHANGEDESKLESS': ('80b2d799-d2ba-4d2a-8842-fb0d0f3a4b82',  # Exchange Online Kiosk
                         [('4a82b400-a79f-41a4-b4e2-e94f5787b113', 'EXCHANGE_S_DESKLESS')]),
    'M365_F1_GOV': ('2a914830-d700-444a-b73c-e3f31980d833',  # Microsoft 365 F3 GCC
                    [('88f4d7ef-a73b-4246-8047-516022144c9f', 'EXCHANGE_S_DESKLESS_GOV'),
                     ('b1aeb897-3a19-46e2-8c27-a609413cf193', 'SHAREPOINTDESKLESS_GOV'),
                     ('304767db-7d23-49e8-a945-4a7eb65f9f28', 'TEAMS_GOV')]),
    'EXCHANGESTANDARD_GOV': ('f37d5ebf-4bf1-4aa2-8fa3-50c51059e983',  # Exchange Online (Plan 1)
                             [('e9b4930a-925f-45e2-ac2a-3f7788ca6fdd',  # for GCC
                               'EXCHANGE_S_STANDARD_GOV'),
                              ('882e1d05-acd1-4ccb-8708-6ee03664b117', 'INTUNE_O365')]),
    'LITEPACK': ('bd09678e-b83c-4d3f-aaba-3dad4abd128b',  # Office 365 Small Business
                 [('d42bdbd6-c335-4231-ab3d-c8f348d5aff5', 'EXCHANGE_L_STANDARD'),
                  ('70710b6b-3ab4-4a38-9f6d-9f169461650a', 'MCOLITE'),
                  ('a1f3d0a8-84c0-4ae0-bae4-685917b8ab48', 'SHAREPOINTLITE')]),
    'EXCHANGETELCO': ('cb0a98a8-11bc-494c-83d9-c1b1ac65327e',  # Exchange Online POP
                      [('90927877-dcff-4af6-b346-2332c0b15bb7', 'EXCHANGE_B_STANDARD')]),
    # Exchange plans that give no mailbox
    'POWER_BI_STANDARD': ('a403ebcc-fae0-4ca2-8c8c-7a907fd6c235',  # Microsoft Fabric (Free)
                          [('2049e525-b859-401b-b2a0-e0a31c4b1fe4', 'BI_AZURE_P0'),
                           ('113feb6c-3fe4-4440-bddc-54d774bf0318', 'EXCHANGE_S_FOUNDATION')]),
    'M365_F1': ('44575883-256e-4a79-9da4-ebe9acabe2b2',  # Microsoft 365 F1 (not M365_F1_COMM)
                [('113feb6c-3fe4-4440-bddc-54d774bf0318', 'EXCHANGE_S_FOUNDATION'),
                 ('902b47e5-dcb2-4fdc-858b-c63a90a2bdb9', 'SHAREPOINTDESKLESS'),
                 ('57ff2da0-773e-42df-b2af-ffb7a2317929', 'TEAMS1')]),
    'EXCHANGEARCHIVE_ADDON': ('ee02fd1b-340e-4a4b-b355-4a514e4c8943',  # Exchange Online
                              [('176a09a6-7ec5-4039-ac02-b2791c6ba793',  # Archiving for EXO
                                'EXCHANGE_S_ARCHIVE_ADDON')]),
}
# MX hosts of new accepted domains (Message Center MC1048624 "DNS Provisioning Change", updated
# 2026-02-02): domains provisioned after 1 July 2026 get a host under mx.microsoft, switched over
# gradually "between early and late July 2026"; older domains keep
# <dashed>.mail.protection.outlook.com. Graph's serviceConfigurationRecords are "the only source
# of truth". The lab takes 2026-07-01 to 2026-08-01 as the switch-over, spread over the domains.
MX_MICROSOFT_FROM = datetime.datetime(2026, 7, 1, tzinfo=datetime.timezone.utc)
MX_MICROSOFT_ALL = datetime.datetime(2026, 8, 1, tzinfo=datetime.timezone.utc)
# The emulator's clock stands at LAB_NOW unless a test sets emu.clock: after the switch-over, so
# the domains tests add get the mx.microsoft host Microsoft gives new domains today; a test of
# the classic host adds its domain with an earlier date (add_domain(added=...)).
LAB_NOW = datetime.datetime(2026, 12, 1, 12, 0, tzinfo=datetime.timezone.utc)
GENERATED_SKUS = ('EXCHANGESTANDARD', 'O365_BUSINESS_PREMIUM', 'SPE_E3')
ASSIGNED_AT = '2026-01-05T09:00:00Z'  # assignedDateTime of every plan the lab assigns
# resources/assignedplan "service": the names Graph gives the lab's plans (by name prefix)
PLAN_SERVICES = (('EXCHANGE', 'exchange'), ('SHAREPOINT', 'SharePoint'),
                 ('TEAMS', 'TeamspaceAPI'), ('MCO', 'MicrosoftCommunicationsOnline'),
                 ('INTUNE', 'SCO'), ('BI_', 'PowerBI'))


def _plan_service(plan_name):
    return next((service for prefix, service in PLAN_SERVICES if plan_name.startswith(prefix)),
                'Unknown')


def make_client_certificate(common_name='exo-lab-app', days=365):
    """A self-signed RSA 2048 certificate for an app registration:
    (cert_pem, key_pem, SHA-1 thumbprint as upper-case hex, the form msal's 'thumbprint' takes)."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(days=days))
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .sign(key, hashes.SHA256()))
    cert_pem = cert.public_bytes(serialization.Encoding.PEM).decode('ascii')
    key_pem = key.private_bytes(serialization.Encoding.PEM,
                                serialization.PrivateFormat.TraditionalOpenSSL,
                                serialization.NoEncryption()).decode('ascii')
    thumb = hashlib.sha1(cert.public_bytes(serialization.Encoding.DER)).hexdigest().upper()
    return cert_pem, key_pem, thumb


def _fraction(*parts):
    """A deterministic number in [0, 1) from the parts."""
    digest = hashlib.sha256(':'.join(str(p) for p in parts).encode()).digest()
    return int.from_bytes(digest[:4], 'big') / 2 ** 32


def _smtp_keys(proxy_addresses):
    """The lower-case addresses of smtp:/SMTP: proxy addresses."""
    return [p.partition(':')[2].lower() for p in proxy_addresses
            if p.partition(':')[0].lower() == 'smtp']


def _mailbox_settings(upn):
    """The mailboxSettings body of user-get-mailboxsettings.md's example (fields in order)."""
    return {
        'archiveFolder': 'AQMkAGI2TAAA' + base64.urlsafe_b64encode(
            hashlib.sha1(upn.encode()).digest()).decode().rstrip('='),
        'timeZone': 'UTC',
        'automaticRepliesSetting': {
            'status': 'disabled', 'externalAudience': 'all',
            'scheduledStartDateTime': {'dateTime': '2026-01-01T00:00:00.0000000',
                                       'timeZone': 'UTC'},
            'scheduledEndDateTime': {'dateTime': '2026-01-02T00:00:00.0000000',
                                     'timeZone': 'UTC'},
            'internalReplyMessage': '', 'externalReplyMessage': ''},
        'language': {'locale': 'en-US', 'displayName': 'English (United States)'},
        'workingHours': {
            'daysOfWeek': ['monday', 'tuesday', 'wednesday', 'thursday', 'friday'],
            'startTime': '08:00:00.0000000', 'endTime': '17:00:00.0000000',
            'timeZone': {'name': 'UTC'}},
        'userPurpose': 'user',
        'dateFormat': 'M/d/yyyy',
        'timeFormat': 'h:mm tt',
        'delegateMeetingMessageDeliveryOptions': 'sendToDelegateOnly',
    }


class Hung(Exception):
    """Raised by M365Emulator.hang_on: the request gets no answer."""


class _Server(http.server.ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, address, handler, emu, context):
        self.emu = emu
        super().__init__(address, handler)
        self.socket = context.wrap_socket(self.socket, server_side=True,
                                          do_handshake_on_connect=False)

    def handle_error(self, request, client_address):
        pass  # TLS handshakes refused by clients and dropped connections: not our business


class _Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = 'HTTP/1.1'
    disable_nagle_algorithm = True  # headers and body leave at once: no 40 ms delayed-ACK stall
    wbufsize = -1

    def version_string(self):
        return 'Microsoft-IIS/10.0'

    def log_message(self, format, *args):  # pylint: disable=redefined-builtin
        pass

    def _serve(self):
        self.server.emu.handle(self)

    do_GET = do_POST = do_PATCH = do_DELETE = do_PUT = _serve


class _ListenerHandler(http.server.BaseHTTPRequestHandler):
    protocol_version = 'HTTP/1.1'

    def log_message(self, format, *args):  # pylint: disable=redefined-builtin
        pass

    def _serve(self):
        length = int(self.headers.get('Content-Length') or 0)
        if length:
            self.rfile.read(length)
        listener = self.server.emu  # the Listener
        with listener.lock:
            listener.requests.append({'time': time.time(), 'method': self.command,
                                      'path': self.path,
                                      'authorization': self.headers.get('Authorization')})
        payload = json.dumps({'value': []}).encode()  # an empty last page: taken, if followed
        self.send_response(200)
        self.send_header('Content-Type', 'application/json')
        self.send_header('Content-Length', str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    do_GET = do_POST = do_PATCH = do_DELETE = do_PUT = _serve


class Listener:
    """Another HTTP(S) server on 127.0.0.1 that logs every request (see M365Emulator.listener):
    ``url``, ``requests`` ([{time, method, path, authorization}])."""

    def __init__(self, emu, tls, host):
        self.emu = emu
        self.tls = tls
        self.host = host
        self.lock = threading.Lock()
        self.requests = []
        self._server = None
        self.url = None

    def start(self):
        if self.tls:
            context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            self.emu.server_cert.configure_cert(context)
            self._server = _Server(('127.0.0.1', 0), _ListenerHandler, self, context)
        else:
            self._server = http.server.ThreadingHTTPServer(('127.0.0.1', 0), _ListenerHandler)
            self._server.daemon_threads = True
            self._server.emu = self
        self.url = '%s://%s:%d' % ('https' if self.tls else 'http', self.host,
                                   self._server.server_address[1])
        threading.Thread(target=self._server.serve_forever, kwargs={'poll_interval': 0.1},
                         daemon=True, name='m365-listener').start()
        return self

    def stop(self):
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None


class M365Emulator:
    """See the module docstring; the public surface is the contract in tests/lab/m365."""

    def __init__(self, workdir=None, dns_server=None, tenant_id=None,
                 tenant_domain=TENANT_DOMAIN, port=0):
        self.workdir = workdir or tempfile.mkdtemp(prefix='exo-m365-')
        os.makedirs(self.workdir, exist_ok=True)
        self.dns_server = dns_server
        self.tenant_id = tenant_id or str(uuid.uuid4())
        self.tenant_domain = tenant_domain
        self.port = port
        self.lock = threading.RLock()
        self.latency = 0.0
        self.clock_offset = 0.0  # seconds now() runs ahead of the wall clock (cursor expiry)
        self.token_lifetime = 3600
        # Claims every access token issued from now on carries instead of its own (None: the
        # claim is left out): a token no Entra tenant issues for this tenant, e.g. another
        # tenant's tid, none, or one that is no GUID. check_token still judges it as Exchange
        # and Graph would (a tid other than this tenant's is "Invalid issuer").
        self.token_claims = {}
        self.requests = []
        self.apps = {}
        self.domains = {}
        # "now" for the dates the tenant keeps (the domains' added dates): LAB_NOW, or a test's
        # callable returning an aware datetime (common.utcnow for the real time)
        self.clock = lambda: LAB_NOW
        # users by id, in the order added, and their lookup keys (add_user keeps them): Graph's
        # by id and UPN, Exchange's by every key -Identity takes, and every SMTP address in use
        self._users = {}
        self._by_upn = {}
        self._exo_keys = {}
        self._addresses = {}
        self.skus = SKUS  # the tenant's subscriptions (GET /subscribedSkus)
        self.users_version = 0  # counts add_user calls: caches of user lists are keyed on it
        self._faults = []
        self._listeners = []
        self._stopping = threading.Event()
        self._tokens = {}  # jti -> exp (expire_tokens lowers it)
        self._server = None
        self._thread = None
        self.url = None
        self.smtp = None  # start_smtp(): the submission server of smtp.py
        self.graph = GraphApi(self)
        self.exo = ExoApi(self)
        self.azure_dns = azure_dns.AzureDnsApi(self)  # Azure Resource Manager's DNS zones
        # Get-TransportConfig of the tenant (exo.transport_defaults: SMTP AUTH off org-wide,
        # as for tenants created after January 2020).
        self.transport_config = transport_defaults()
        # Token signing key with a self-signed certificate for the JWKS x5c.
        self.signing_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, 'accounts.exo-lab.test')])
        now = datetime.datetime.now(datetime.timezone.utc)
        cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
                .public_key(self.signing_key.public_key())
                .serial_number(x509.random_serial_number())
                .not_valid_before(now - datetime.timedelta(days=1))
                .not_valid_after(now + datetime.timedelta(days=365))
                .sign(self.signing_key, hashes.SHA256()))
        self.signing_cert_der = cert.public_bytes(serialization.Encoding.DER)
        self.signing_kid = identity.b64url(hashlib.sha1(self.signing_cert_der).digest())
        # The lab CA and the server certificate.
        self.ca = trustme.CA(key_type=trustme.KeyType.RSA)
        self.server_cert = self.ca.issue_cert('127.0.0.1', '::1', 'localhost',
                                              key_type=trustme.KeyType.RSA)
        self.ca_path = os.path.join(self.workdir, 'm365-ca.pem')
        self.ca.cert_pem.write_to_path(self.ca_path)
        self.add_domain(tenant_domain, verified=True,
                        services=('Email', 'OfficeCommunicationsOnline'),
                        is_default=True, _initial=True)

    # -- life cycle ----------------------------------------------------------------------------
    def start(self):
        self._stopping.clear()
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.minimum_version = ssl.TLSVersion.TLSv1_2
        self.server_cert.configure_cert(context)
        self._server = _Server(('127.0.0.1', self.port), _Handler, self, context)
        self.port = self._server.server_address[1]
        self.url = 'https://127.0.0.1:%d' % self.port
        self._thread = threading.Thread(target=self._server.serve_forever,
                                        kwargs={'poll_interval': 0.1}, daemon=True,
                                        name='m365-emulator')
        self._thread.start()
        return self

    def start_smtp(self):
        """Start the SMTP submission listeners (smtp.py); stopped with the emulator."""
        from .smtp import SmtpServer
        self.smtp = SmtpServer(self).start()
        return self.smtp

    def stop(self):
        self._stopping.set()  # hanging answers end
        for other in self._listeners:
            other.stop()
        self._listeners = []
        if self.smtp is not None:
            self.smtp.stop()
            self.smtp = None
        if self._server is None:
            return
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(5)
        self._server = None

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()

    # -- apps and tokens -----------------------------------------------------------------------
    def add_app(self, client_id=None, secret=None, certificate_pem=None,
                roles=('Domain.ReadWrite.All',), display_name='exo-lab-app',
                secret_expired=False, exchange_cmdlets=None,
                exchange_role='Exchange Administrator'):
        """Register an app (service principal, admin-consented ``roles``). ``certificate_pem``:
        one PEM or a list of PEMs registered as its key credentials. ``exchange_role``: the
        Microsoft Entra role of its service principal, a key of exo.EXCHANGE_ROLES ('none': no
        Exchange role); ``exchange_cmdlets``, when given, are the cmdlets its Exchange roles
        hold instead (RBAC; () : none). A cmdlet the app may not call answers 401 "User is not
        allowed to call ..."."""
        if exchange_cmdlets is None:
            exchange_cmdlets = EXCHANGE_ROLES[exchange_role or 'none']
        client_id = client_id or str(uuid.uuid4())
        secret = secret or base64.urlsafe_b64encode(os.urandom(30)).decode()
        pems = certificate_pem or []
        if isinstance(pems, (str, bytes)):
            pems = [pems]
        certs = []
        for pem in pems:
            x5t, x5t256, cert = identity.cert_thumbprints(pem)
            certs.append({'x5t': x5t, 'x5t#S256': x5t256, 'cert': cert})
        app = {'client_id': client_id, 'secret': secret, 'certificates': certs,
               'roles': list(roles or ()), 'display_name': display_name,
               'object_id': stable_id('sp', client_id), 'secret_expired': secret_expired,
               'exchange_cmdlets': None if exchange_cmdlets is None
               else set(c.lower() for c in exchange_cmdlets)}
        with self.lock:
            self.apps[client_id.lower()] = app
        return {'client_id': client_id, 'secret': secret, 'roles': list(app['roles'])}

    def app(self, client_id):
        with self.lock:
            return self.apps.get((client_id or '').lower())

    def set_exchange_role(self, client_id, role):
        """Give an app's service principal another Exchange role (exo.EXCHANGE_ROLES)."""
        cmdlets = EXCHANGE_ROLES[role or 'none']
        with self.lock:
            self.apps[client_id.lower()]['exchange_cmdlets'] = None if cmdlets is None \
                else set(cmdlets)

    def now(self):
        """The emulator's clock: the wall clock plus ``clock_offset``."""
        return time.time() + self.clock_offset

    def issue_token(self, app, audience, acr):
        lifetime = int(self.token_lifetime)
        claims = identity.access_token_claims(self, app, audience, acr, lifetime)
        for name, value in self.token_claims.items():
            if value is None:
                claims.pop(name, None)
            else:
                claims[name] = value
        token = jwt.encode(claims, self.signing_key, algorithm='RS256',
                           headers={'kid': self.signing_kid, 'x5t': self.signing_kid,
                                    'typ': 'JWT'})
        with self.lock:
            self._tokens[claims['jti']] = claims['exp']
        return token, lifetime

    def expire_tokens(self):
        """Every token issued so far is expired from now on."""
        now = time.time() - 1
        with self.lock:
            for jti in self._tokens:
                self._tokens[jti] = min(self._tokens[jti], now)

    def check_token(self, auth_header, audiences):
        """(claims, None) for a valid bearer token for one of ``audiences``, else
        (unverified claims or {}, (message)) for the 401."""
        if not auth_header or not auth_header.lower().startswith('bearer '):
            return {}, 'Access token is empty.'
        token = auth_header[7:].strip()
        try:
            unverified = jwt.decode(token, options={'verify_signature': False})
        except jwt.PyJWTError:
            return {}, 'IDX14100: JWT is not well formed, there are no dots (.).'
        try:
            claims = jwt.decode(token, self.signing_key.public_key(), algorithms=['RS256'],
                                options={'verify_aud': False, 'verify_exp': False})
        except jwt.PyJWTError:
            return unverified, 'Access token validation failure.'
        if claims.get('aud') not in audiences:
            return claims, 'Access token validation failure. Invalid audience.'
        if claims.get('tid') != self.tenant_id:
            return claims, 'Access token validation failure. Invalid issuer.'
        with self.lock:
            exp = self._tokens.get(claims.get('jti'), claims.get('exp', 0))
        if exp <= time.time():
            return claims, 'Lifetime validation failed, the token is expired.'
        return claims, None

    # -- directory state -----------------------------------------------------------------------
    def parent_domain(self, name):
        """The verified domain of this tenant that ``name`` is a subdomain of, if any."""
        labels = name.split('.')
        for i in range(1, len(labels) - 1):
            parent = self.domains.get('.'.join(labels[i:]))
            if parent is not None and parent['isVerified']:
                return parent
        return None

    def add_domain(self, name, verified=False, services=(), mx_format=None,
                   is_default=False, added=None, _initial=False):
        """``added``: when the tenant got the domain (a datetime or an ISO date; default
        ``emu.clock()``), which decides its MX host (mx_host); ``mx_format`` ``'classic'`` or
        ``'mx_microsoft'`` sets the form whatever the date."""
        name = name.strip().rstrip('.').lower()
        if name.endswith('.onmicrosoft.com') and not _initial:
            verified = True
        if added is None:
            added = self.clock()
        elif isinstance(added, str):
            added = datetime.datetime.fromisoformat(added)
        if added.tzinfo is None:
            added = added.replace(tzinfo=datetime.timezone.utc)
        with self.lock:
            if self.parent_domain(name) is not None:
                verified = True  # subdomains of a verified root are verified with it
            code = 'ms%08d' % int(_fraction(self.tenant_id, name, 'code') * 10 ** 8)
            dom = {'id': name, 'isVerified': bool(verified), 'isInitial': _initial,
                   'isDefault': False, 'supportedServices': list(services),
                   'verificationCode': code, 'added': added,
                   'mx_format': mx_format or self.mx_format_on(name, added),
                   'availabilityStatus': None, 'passwordValidityPeriodInDays': None,
                   'passwordNotificationWindowInDays': None}
            self.domains[name] = dom
            if is_default:
                for other in self.domains.values():
                    other['isDefault'] = False
                dom['isDefault'] = True
            return dom

    def mx_format_on(self, name, added):
        """The MX form Exchange gives a domain added at ``added`` (MX_MICROSOFT_FROM): classic
        before July 2026, mx_microsoft from August, in July for a growing share of domains."""
        if added < MX_MICROSOFT_FROM:
            return 'classic'
        if added >= MX_MICROSOFT_ALL:
            return 'mx_microsoft'
        share = (added - MX_MICROSOFT_FROM) / (MX_MICROSOFT_ALL - MX_MICROSOFT_FROM)
        return 'mx_microsoft' if _fraction(self.tenant_id, name, 'mx') < share else 'classic'

    def mx_host(self, dom):
        """The EXO MX host Graph hands out for the domain (a dict of emu.domains or its name):
        dots to dashes plus mail.protection.outlook.com, or the newer
        <dashed>.<x>-v1.mx.microsoft form (mx_format_on)."""
        if isinstance(dom, str):
            dom = self.domains[dom.strip().rstrip('.').lower()]
        dashed = dom['id'].replace('.', '-')
        if dom['mx_format'] == 'mx_microsoft':
            letter = 'abcdefghijklmnopqrstuvwxyz'[int(_fraction(self.tenant_id, dom['id']) * 26)]
            return '%s.%s-v1.mx.microsoft' % (dashed, letter)
        return dashed + '.mail.protection.outlook.com'

    def service_records(self, dom):
        """serviceConfigurationRecords of the domain's supportedServices (Email,
        OfficeCommunicationsOnline, Intune), shapes from resources/domaindns*record.md."""
        name = dom['id']
        services = dom['supportedServices']
        out = []

        def rec(kind, supported, label, **fields):
            base = {'@odata.type': '#microsoft.graph.domainDns%sRecord' % kind.capitalize(),
                    'id': stable_id(name, supported, kind, label, *sorted(fields.items())),
                    'isOptional': False, 'label': label, 'recordType': kind,
                    'supportedService': supported, 'ttl': 3600}
            base.update(fields)
            out.append(base)
        if 'Email' in services:
            rec('Mx', 'Email', name, mailExchange=self.mx_host(dom), preference=0)
            rec('Txt', 'Email', name, text='v=spf1 include:spf.protection.outlook.com -all')
            rec('CName', 'Email', 'autodiscover.' + name, canonicalName='autodiscover.outlook.com')
        if 'OfficeCommunicationsOnline' in services:
            rec('Srv', 'OfficeCommunicationsOnline', name,
                nameTarget='sipdir.online.lync.com', port=443, priority=100, protocol='_tls',
                service='_sip', weight=1)
            rec('Srv', 'OfficeCommunicationsOnline', name,
                nameTarget='sipfed.online.lync.com', port=5061, priority=100, protocol='_tcp',
                service='_sipfederationtls', weight=1)
            rec('CName', 'OfficeCommunicationsOnline', 'sip.' + name,
                canonicalName='sipdir.online.lync.com')
            rec('CName', 'OfficeCommunicationsOnline', 'lyncdiscover.' + name,
                canonicalName='webdir.online.lync.com')
        if 'Intune' in services:
            rec('CName', 'Intune', 'enterpriseregistration.' + name,
                canonicalName='enterpriseregistration.windows.net')
            rec('CName', 'Intune', 'enterpriseenrollment.' + name,
                canonicalName='enterpriseenrollment.manage.microsoft.com')
        return out

    def dns_has_verification(self, name, code):
        """Ask the lab DNS server (real DNS, dnspython) for the verification TXT or MX."""
        if not self.dns_server:
            return False
        address, port = self.dns_server
        for rdtype, want in (('TXT', 'MS=' + code), ('MX', code + '.msv1.invalid.')):
            query = dns.message.make_query(name, rdtype)
            try:
                answer, dummy = dns.query.udp_with_fallback(query, address, port=int(port),
                                                            timeout=3)
            except (dns.exception.DNSException, OSError):
                return False
            for rrset in answer.answer:
                if rrset.rdtype != dns.rdatatype.from_text(rdtype):
                    continue
                for rd in rrset:
                    if rdtype == 'TXT':
                        text = b''.join(rd.strings).decode('utf-8', 'replace')
                        if text == want:
                            return True
                    elif rd.exchange.to_text().lower() == want.lower():
                        return True
        return False

    def add_user(self, upn, display_name=None, mail=None, licensed=True, mailbox=True,
                 proxy_addresses=None, disabled_plans=(), named_by_id=False):
        """``licensed``: True (EXCHANGESTANDARD), False, or a SKU part number from SKUS;
        ``disabled_plans``: service plan names of it that the licence turns off (its
        disabledPlans; licenseDetails says "Disabled", assignedPlans "Deleted");
        ``named_by_id``: the mailbox's Name is its id, not its alias (exo.name_of).
        ``mailbox`` False: no Exchange Online mailbox (mailboxSettings answers 404)."""
        upn = upn.strip()
        local, dummy, domain = upn.partition('@')
        uid = stable_id(self.tenant_id, 'user', upn.lower())
        sku = 'EXCHANGESTANDARD' if licensed is True else (licensed or None)
        if sku and sku not in SKUS:
            raise ValueError('unknown SKU %r (known: %s)' % (sku, ', '.join(SKUS)))
        if mail is None and mailbox:  # mail: the primary address (first.last@contoso.com, say)
            mail = upn
        routing_domain = self.tenant_domain.replace('.onmicrosoft.com', '.mail.onmicrosoft.com')
        # Exchange keeps aliases (and so routing addresses) unique in the tenant: a second
        # "alice" becomes alice2 (guessed numbering; Exchange appends a number).
        with self.lock:
            old = self._users.get(uid)
            mine = set(_smtp_keys(old['proxyAddresses'])) if old else set()
            routing, n = '%s@%s' % (local, routing_domain), 1
            while routing.lower() in self._addresses and routing.lower() not in mine:
                n += 1
                routing = '%s%d@%s' % (local, n, routing_domain)
        if proxy_addresses is None:
            proxy_addresses = []
            if mail:
                proxy_addresses.append('SMTP:' + mail)
            if mailbox:
                proxy_addresses.append('smtp:' + routing)
        name = display_name or local.replace('.', ' ').title()
        first, dummy, last = name.partition(' ')
        disabled = set(p.upper() for p in disabled_plans)
        licenses, assigned_plans = [], []
        if sku:
            sku_id, plans = SKUS[sku]
            licenses.append({
                'id': base64.urlsafe_b64encode(uuid.UUID(uid).bytes + uuid.UUID(sku_id).bytes)
                .decode().rstrip('='),
                'skuId': sku_id, 'skuPartNumber': sku,
                'servicePlans': [{'servicePlanId': pid, 'servicePlanName': pname,
                                  'provisioningStatus': 'Disabled' if pname in disabled
                                  else 'Success', 'appliesTo': 'User'}
                                 for pid, pname in plans]})
            # resources/assignedplan: a plan a licence's disabledPlans turns off is "Deleted"
            assigned_plans = [{'assignedDateTime': ASSIGNED_AT, 'capabilityStatus': 'Deleted'
                               if pname in disabled else 'Enabled',
                               'service': _plan_service(pname), 'servicePlanId': pid}
                              for pid, pname in plans]
        user = {
            'businessPhones': [], 'displayName': name, 'givenName': first or None,
            'jobTitle': None, 'mail': mail, 'mobilePhone': None, 'officeLocation': None,
            'preferredLanguage': 'en-US', 'surname': last or None, 'userPrincipalName': upn,
            'id': uid, 'accountEnabled': True, 'proxyAddresses': list(proxy_addresses),
            'assignedLicenses': [{'disabledPlans': [pid for pid, pname in SKUS[lic['skuPartNumber']][1]
                                                    if pname in disabled],
                                  'skuId': lic['skuId']} for lic in licenses],
            'assignedPlans': assigned_plans,
            'usageLocation': 'US' if licenses else None,
            'mailNickname': local,
            'otherMails': [],
            '_mailbox': bool(mailbox),
            '_name_is_id': bool(named_by_id),
            '_mailboxSettings': _mailbox_settings(upn),
            '_licenseDetails': licenses,
            '_routing': routing,
        }
        with self.lock:
            if old is not None:
                self._unindex(old)
            self._users[uid] = user
            self._index(user)
            self.users_version += 1
        return {k: v for k, v in user.items() if not k.startswith('_')}

    @property
    def users(self):
        """Every user, in the order added (a new list: change users through add_user)."""
        with self.lock:
            return list(self._users.values())

    def _user_keys(self, user):
        """The keys Exchange's -Identity finds a mailbox by: UPN, alias, mail, id, Guid and
        every proxy address (lower case)."""
        keys = [user['userPrincipalName'].lower(), (user['mailNickname'] or '').lower(),
                (user['mail'] or '').lower(), user['id'], self.exo.guid(user)]
        keys.extend(p.lower().partition(':')[2] for p in user['proxyAddresses'])
        return [k for k in keys if k]

    def _index(self, user):
        self._by_upn.setdefault(user['userPrincipalName'].lower(), user['id'])
        for key in self._user_keys(user):
            self._exo_keys.setdefault(key, []).append(user['id'])
        for address in _smtp_keys(user['proxyAddresses']):
            self._addresses[address] = self._addresses.get(address, 0) + 1

    def _unindex(self, user):
        if self._by_upn.get(user['userPrincipalName'].lower()) == user['id']:
            del self._by_upn[user['userPrincipalName'].lower()]
        for key in self._user_keys(user):
            ids = self._exo_keys.get(key, [])
            if user['id'] in ids:
                ids.remove(user['id'])
            if not ids:
                self._exo_keys.pop(key, None)
        for address in _smtp_keys(user['proxyAddresses']):
            self._addresses[address] -= 1
            if not self._addresses[address]:
                del self._addresses[address]

    def users_by_key(self, key):
        """The users (in the order added) that -Identity ``key`` (lower case) names."""
        with self.lock:
            return [self._users[i] for i in self._exo_keys.get(key, ())]

    def generate_users(self, count, domain=None, licensed_ratio=0.9, mailbox_ratio=0.95,
                       mail_domain=None, named_by_id=True):
        """``count`` users user00001@domain...; the same inputs always give the same users.
        A user is licensed with probability licensed_ratio (cycling the Exchange SKUs) and, if
        licensed, has a mailbox with probability mailbox_ratio (the rest are still
        provisioning: licensed, no mailbox yet). ``mail_domain``: every mailbox's primary
        address is first.last00001@mail_domain instead of the UPN (as when the UPN stays
        alias@tenant.onmicrosoft.com). ``named_by_id``: the mailboxes' Name is their
        ExternalDirectoryObjectId, as Exchange names mailboxes made since 2023 (exo.name_of);
        False: their alias, as older ones."""
        domain = domain or self.tenant_domain
        made = []
        for i in range(1, count + 1):
            licensed = _fraction(domain, i, 'license') < licensed_ratio
            mailbox = licensed and _fraction(domain, i, 'mailbox') < mailbox_ratio
            sku = GENERATED_SKUS[i % len(GENERATED_SKUS)] if licensed else False
            mail = 'first.last%05d@%s' % (i, mail_domain) if mail_domain and mailbox else None
            made.append(self.add_user('user%05d@%s' % (i, domain), licensed=sku,
                                      mailbox=mailbox, mail=mail, named_by_id=named_by_id))
        return made

    def cas_mailbox(self, upn):
        """The stored Get-CASMailbox switches of a mailbox (the live dict; None when the user
        has no EXO mailbox): PopEnabled, ImapEnabled, SmtpClientAuthenticationDisabled, ..."""
        with self.lock:
            user = self.find_user(upn)
            if user is None or not user['_mailbox']:
                return None
            return self.exo.cas(user)

    def find_user(self, key):
        """A user by id or UPN (any case), or None."""
        key = key.lower()
        with self.lock:
            user = self._users.get(key)
            if user is None and key in self._by_upn:
                user = self._users[self._by_upn[key]]
            return user

    # -- log, faults, latency ------------------------------------------------------------------
    def clear_log(self):
        with self.lock:
            self.requests = []

    def inject(self, method, path_regex, status=None, count=1, retry_after=None, body=None,
               content_type=None, headers=None, hang=None, next_link=None, lose_answer=False,
               cmdlet=None):
        """The next ``count`` requests with ``method`` (None or '*': any) whose path (no query)
        matches ``path_regex`` (re.search) get a fault; inside $batch the inner request's path
        (/v1.0/...) is matched and only that item fails; ``cmdlet``: only InvokeCommand calls
        of that cmdlet (any case). Faults:

        - ``status`` (with ``retry_after``: the Retry-After header as given, e.g. 0 or -5): the
          answer has this status and Graph's (or EXO's, AAD's) error body, or ``body`` (bytes
          as they are, anything else as JSON) with ``content_type`` and ``headers`` (e.g. a
          Location); status 200 with a body that is not the documented JSON is a broken or
          hostile server.
        - ``hang`` (seconds): the request is read and logged (status ``'hung'``), nothing is
          answered for that long (or until ``stop()``), then the connection is closed.
        - ``next_link``: the request is answered as usual and a JSON answer gets this
          ``@odata.nextLink`` (``'repeat'``: the URL of the request itself).
        - ``lose_answer``: the request is carried out, then the connection is closed without
          the answer (logged with status ``'lost'``): an answer lost on the way back.
        """
        if status is None and hang is None and next_link is None and not lose_answer:
            raise ValueError('give status, hang, next_link or lose_answer')
        with self.lock:
            self._faults.append({'method': (method or '*').upper(),
                                 'regex': re.compile(path_regex),
                                 'status': None if status is None else int(status),
                                 'count': int(count), 'retry_after': retry_after, 'body': body,
                                 'content_type': content_type, 'headers': dict(headers or {}),
                                 'hang': hang, 'lose_answer': bool(lose_answer),
                                 'next_link': next_link,
                                 'cmdlet': cmdlet.lower() if cmdlet else None})

    def take_fault(self, method, path, cmdlet=None):
        with self.lock:
            for fault in self._faults:
                if fault['count'] > 0 and fault['method'] in ('*', method) \
                        and fault['regex'].search(path) and fault['cmdlet'] in (
                            None, str(cmdlet or '').lower()):
                    fault['count'] -= 1
                    if fault['count'] <= 0:
                        self._faults.remove(fault)
                    return fault
        return None

    def hang_on(self, fault, entry):
        """For a ``hang`` fault: log the request, wait, then raise Hung (no answer)."""
        if fault is None or fault['hang'] is None:
            return
        if entry is not None:  # None inside $batch: the whole batch hangs
            entry['status'] = 'hung'
            with self.lock:
                self.requests.append(entry)
        self._stopping.wait(fault['hang'])
        raise Hung()

    def answer_fault(self, fault, entry, answer, fault_response, url):
        """The answer under ``fault`` (None: ``answer()``): hang, a rewritten nextLink
        (``answer()`` with @odata.nextLink set), or ``fault_response(fault)``."""
        if fault is None:
            return answer()
        if fault.get('lose_answer'):
            answer()  # carried out; the answer never leaves
            if entry is not None:
                entry['status'] = 'lost'
                with self.lock:
                    self.requests.append(entry)
            raise Hung()
        self.hang_on(fault, entry)
        if fault['next_link'] is None:
            return fault_response(fault)
        resp = answer()
        if resp.status < 300 and isinstance(resp.body, dict):
            resp.body['@odata.nextLink'] = url if fault['next_link'] == 'repeat' \
                else fault['next_link']
        return resp

    def listener(self, tls=True, host='localhost'):
        """Start another HTTP(S) listener on 127.0.0.1 (stopped with the emulator): the place
        an injected ``next_link`` can point to. ``host`` is the name in its ``url``
        (``localhost`` is another host than the emulator's 127.0.0.1); with ``tls`` it has
        the emulator's certificate (127.0.0.1, ::1, localhost), so a client that trusts the
        lab CA would talk to it. Every request is logged in ``.requests`` with its
        Authorization header."""
        other = Listener(self, tls, host).start()
        self._listeners.append(other)
        return other

    # -- HTTP ----------------------------------------------------------------------------------
    def handle(self, handler):
        started = time.time()
        split = urllib.parse.urlsplit(handler.path)
        path = split.path
        query = dict(urllib.parse.parse_qsl(split.query, keep_blank_values=True))
        length = int(handler.headers.get('Content-Length') or 0)
        raw = handler.rfile.read(length) if length else b''
        entry = {'time': started, 'method': handler.command, 'path': path, 'query': split.query,
                 'status': None, 'client_id': None, 'resource': None, 'batch_items': None}
        if self.latency:
            time.sleep(self.latency)
        request_id = new_id()
        client_request_id = handler.headers.get('client-request-id') or request_id
        try:
            resp = self._route(handler, path, query, raw, entry, request_id, client_request_id)
        except Hung:
            handler.close_connection = True  # logged by hang_on; never answered
            return
        except Exception as e:  # a bug here must still answer, in Graph's shape
            resp = graph_error(500, 'UnknownError', 'Emulator error: %r' % e, request_id,
                               client_request_id)
        if entry['resource'] == 'graph':
            resp.headers.setdefault('request-id', request_id)
            resp.headers.setdefault('client-request-id', client_request_id)
            resp.headers.setdefault('x-ms-ags-diagnostic', json.dumps(
                {'ServerInfo': {'DataCenter': 'Lab', 'Slice': 'E', 'Ring': '5',
                                'ScaleUnit': '000', 'RoleInstance': 'LAB0000000000',
                                'ADSiteName': 'LAB'}}))
            resp.headers.setdefault('Strict-Transport-Security', 'max-age=31536000')
            resp.headers.setdefault('Cache-Control', 'no-cache')
            if resp.body is not None:
                resp.headers.setdefault('Content-Type', 'application/json;odata.metadata='
                                        'minimal;odata.streaming=true;IEEE754Compatible=false;'
                                        'charset=utf-8')
        elif entry['resource'] == 'exo':
            # Headers of the captured InvokeCommand answer (see exo.py).
            resp.headers.setdefault('request-id', request_id)
            resp.headers.setdefault('Cache-Control', 'no-cache')
            resp.headers.setdefault('OData-Version', '4.0')
            resp.headers.setdefault('X-ExchangeVersion', 'Version 15.20 (Build 8000.0)')
            resp.headers.setdefault('Strict-Transport-Security',
                                    'max-age=31536000; includeSubDomains')
            if resp.body is not None:
                resp.headers.setdefault('Content-Type', 'application/json;odata.metadata='
                                        'minimal;odata.streaming=true;IEEE754Compatible=false;'
                                        'charset=utf-8')
        elif resp.body is not None:
            resp.headers.setdefault('Content-Type', 'application/json; charset=utf-8')
        entry['status'] = resp.status
        entry['batch_items'] = getattr(resp, 'batch_items', None)
        with self.lock:
            self.requests.append(entry)
        payload = resp.payload()
        handler.send_response(resp.status)
        for key, value in resp.headers.items():
            handler.send_header(key, value)
        handler.send_header('Content-Length', str(len(payload)))
        handler.end_headers()
        if handler.command != 'HEAD':
            handler.wfile.write(payload)

    def tenant_of(self, segment):
        """This tenant's id when ``segment`` is its id or one of its verified domains."""
        return self._tenant(segment)

    def _tenant(self, segment):
        seg = segment.lower()
        with self.lock:
            if seg == self.tenant_id.lower() or (seg in self.domains
                                                 and self.domains[seg]['isVerified']):
                return self.tenant_id
        return None

    def _route(self, handler, path, query, raw, entry, request_id, client_request_id):
        m = re.fullmatch(r'/([^/]+)/(v2\.0/\.well-known/openid-configuration|'
                         r'discovery/v2\.0/keys|oauth2/v2\.0/token)', path)
        if m:
            entry['resource'] = 'token' if m.group(2).endswith('token') else 'openid'
            form = dict(urllib.parse.parse_qsl(raw.decode('utf-8', 'replace')))
            if entry['resource'] == 'token':
                entry['client_id'] = form.get('client_id')
                entry['scope'] = form.get('scope')
            return self.answer_fault(self.take_fault(handler.command, path), entry,
                                     lambda: self._identity(handler, m, form, entry),
                                     self._identity_fault, self.url + handler.path)
        if path.startswith('/v1.0/') or path == '/v1.0':
            entry['resource'] = 'graph'
            claims, problem = self.check_token(handler.headers.get('Authorization'),
                                               (self.url,) + identity.GRAPH_RESOURCES)
            entry['client_id'] = claims.get('appid')
            req = GraphRequest(handler.command, path[5:], query, None, handler.headers,
                               claims, request_id, client_request_id)

            def answer():
                if problem is not None:
                    return req.error(401, 'InvalidAuthenticationToken', problem, {
                        'WWW-Authenticate': 'Bearer realm="", authorization_uri="%s/common/'
                                            'oauth2/authorize", client_id="00000003-0000-0000-'
                                            'c000-000000000000"' % self.url})
                try:
                    req.body = parse_json(raw)
                except ValueError:
                    return req.error(400, 'BadRequest', 'Unable to read JSON request payload.')
                return self.graph.dispatch(req)
            return self.answer_fault(self.take_fault(handler.command, path), entry, answer,
                                     lambda fault: self.graph.fault_response(req, fault),
                                     self.url + handler.path)
        m = re.fullmatch(r'/adminapi/beta/([^/]+)/InvokeCommand', path, flags=re.IGNORECASE)
        if m:
            entry['resource'] = 'exo'
            return self._invoke_command(handler, m.group(1), query, raw, entry)
        if path.lower().startswith('/subscriptions/'):
            entry['resource'] = 'arm'
            claims, problem = self.check_token(handler.headers.get('Authorization'),
                                               azure_dns.ARM_RESOURCES)
            entry['client_id'] = claims.get('appid')
            try:
                body = parse_json(raw)
            except ValueError:
                return azure_dns.arm_error(400, 'InvalidRequestContent',
                                           'The request content was invalid and could not be '
                                           'deserialized.')
            try:
                return self.azure_dns.dispatch(handler.command, path, query, body,
                                               handler.headers, claims, problem)
            except azure_dns.Lost:
                handler.close_connection = True
                raise Hung()
        entry['resource'] = 'other'
        return graph_error(404, 'NotFound', 'No such endpoint on the lab emulator: %s' % path,
                           request_id, client_request_id)

    def _identity_fault(self, fault):
        headers = dict(fault['headers'])
        if fault['retry_after'] is not None:
            headers['Retry-After'] = str(fault['retry_after'])
        if fault['content_type']:
            headers['Content-Type'] = fault['content_type']
        if fault['body'] is not None:
            return Response(fault['status'], fault['body'], headers)
        return aad_error(fault['status'], 'temporarily_unavailable', 50196,
                         'The server is temporarily unavailable (injected fault).',
                         headers=headers)

    def _identity(self, handler, m, form, entry):
        """The OpenID configuration, the keys or the token endpoint (identity.py)."""
        tenant = self._tenant(m.group(1))
        if tenant is None:
            return aad_error(400, 'invalid_tenant' if entry['resource'] == 'openid'
                             else 'invalid_request', 90002,
                             "Tenant '%s' not found. Check to make sure you have the correct "
                             "tenant ID and are signing into the correct cloud. Check with "
                             "your subscription administrator, this may happen if there are "
                             "no active subscriptions for the tenant." % m.group(1))
        if entry['resource'] == 'openid':
            if m.group(2).startswith('discovery'):
                return Response(200, identity.jwks(self))
            return Response(200, identity.openid_configuration(self, tenant))
        if handler.command != 'POST':
            return aad_error(405, 'invalid_request', 900561,
                             'The endpoint only accepts POST requests.')
        return identity.token_request(self, tenant, form, handler.headers, entry)

    def _invoke_command(self, handler, tenant_segment, query, raw, entry):
        """POST /adminapi/beta/{tenant}/InvokeCommand (exo.py has the shapes and sources).
        Order: body read for the log, injected fault, token (401), role (403), tenant,
        anchor (400), then the cmdlet. Log entries of this endpoint also carry ``cmdlet`` and
        ``identity``."""
        entry['cmdlet'] = entry['identity'] = None
        body = None
        try:
            body = json.loads(raw.decode('utf-8')) if raw else None
        except ValueError:
            body = ValueError
        if isinstance(body, dict) and isinstance(body.get('CmdletInput'), dict):
            cmd = body['CmdletInput']
            known = self.exo.cmdlets.get(str(cmd.get('CmdletName') or '').strip().lower())
            entry['cmdlet'] = known[0] if known else cmd.get('CmdletName')
            params = cmd.get('Parameters')
            if isinstance(params, dict):
                entry['identity'] = next((v for k, v in params.items()
                                          if str(k).lower() == 'identity'), None)
        claims, problem = self.check_token(handler.headers.get('Authorization'),
                                           (self.url,) + identity.EXO_RESOURCES)
        entry['client_id'] = claims.get('appid')
        fault = self.take_fault(handler.command, urllib.parse.urlsplit(handler.path).path,
                                entry['cmdlet'])
        exo = self.exo
        with self.lock:
            exo.peak_attempted = max(exo.peak_attempted, exo.in_flight + 1)
            if exo.max_concurrent is not None and exo.in_flight >= exo.max_concurrent:
                entry['concurrency_refused'] = True
                return error_body(429, 'TooManyRequests', CONCURRENT_REQUESTS)
            exo.in_flight += 1
            exo.peak_in_flight = max(exo.peak_in_flight, exo.in_flight)
        try:
            return self.answer_fault(fault, entry, lambda: self._invoke_answer(
                handler, tenant_segment, query, body, entry, claims, problem),
                self.exo.fault_response, self.url + handler.path)
        finally:
            with self.lock:
                exo.in_flight -= 1

    def _invoke_answer(self, handler, tenant_segment, query, body, entry, claims, problem):
        if problem is not None:
            # EXO's 401: WWW-Authenticate naming Exchange Online's app id; body in the Outlook
            # REST shape (InvalidAudienceForResource for a token of another resource).
            challenge = {'WWW-Authenticate': 'Bearer client_id="00000002-0000-0ff1-ce00-'
                                             '000000000000", trusted_issuers="00000001-0000-0000-'
                                             'c000-000000000000@*", token_types="app_asserted_'
                                             'user_v1 service_asserted_app_v1", authorization_uri='
                                             '"%s/common/oauth2/authorize", error="invalid_token"'
                                             % self.url}
            if problem.endswith('Invalid audience.'):
                return Response(401, {'error': {
                    'code': 'InvalidAudienceForResource',
                    'message': "The audience claim value is invalid for current resource. "
                               "Audience claim is '%s', request url is '%s%s' and resource "
                               "type is 'Exchange'." % (claims.get('aud'), self.url,
                                                        handler.path)}}, challenge)
            return Response(401, {'error': {'code': 'InvalidAuthenticationToken',
                                            'message': problem}}, challenge)
        if handler.command != 'POST':
            return error_body(405, 'MethodNotAllowed',
                              "The HTTP method '%s' is not allowed for InvokeCommand."
                              % handler.command)
        roles = set(claims.get('roles') or ())
        if not roles & {'Exchange.ManageAsApp', 'Exchange.ManageAsAppV2'}:
            # Our wording; live 403s seen for a missing app role carry no JSON at all.
            return error_body(403, 'Forbidden',
                              "The app '%s' has no Exchange.ManageAsApp application permission "
                              "(with admin consent) for Office 365 Exchange Online."
                              % claims.get('appid'))
        tenant = self.tenant_of(tenant_segment)
        if tenant is None or tenant != claims.get('tid'):
            return error_body(404, 'NotFound', "The organization '%s' was not found."
                              % tenant_segment)
        anchor = handler.headers.get('X-AnchorMailbox')
        if not anchor:
            return Response(400, {'error': {
                'code': 'ErrorIncorrectRoutingHint',
                'message': 'The X-AnchorMailbox header is missing. Send X-AnchorMailbox: '
                           'APP:%s@%s.' % ('SystemMailbox{bb558c35-97f1-4cb9-8ff7-'
                                           'd53741dc928c}', tenant)}})
        if not anchor_ok(self, anchor, tenant):
            return Response(400, {'error': {
                'code': 'ErrorIncorrectRoutingHint',
                'message': "The x-anchor mailbox '%s' does not match the target of the "
                           "request." % anchor}})
        if body is ValueError:
            return error_body(400, 'BadRequest', 'Invalid JSON in the request body.')
        app = self.app(claims.get('appid')) or {}
        cmdlet = entry.get('cmdlet')
        if app.get('exchange_cmdlets') is not None and isinstance(cmdlet, str) \
                and cmdlet.lower() not in app['exchange_cmdlets']:
            # RBAC: Exchange.ManageAsApp, but no Exchange role that holds the cmdlet (the body of
            # MicrosoftDocs/office-docs-powershell#7970 and #8058).
            message = 'User is not allowed to call %s' % cmdlet
            return Response(401, {'error': {'code': 'Unauthorized', 'message': message,
                                            'innererror': {'message': message,
                                                           'type': ODATA_ERROR}}})
        return self.exo.invoke(tenant_segment, body, handler.headers, query, entry)


def main(argv=None):
    parser = argparse.ArgumentParser(description='Microsoft 365 lab emulator (HTTPS, own CA).')
    parser.add_argument('--port', type=int, default=0)
    parser.add_argument('--state-dir', required=True)
    parser.add_argument('--dns-server', help='ADDRESS:PORT of the lab DNS server')
    parser.add_argument('--users', type=int, default=10,
                        help='generated users on the tenant domain')
    parser.add_argument('--domain', action='append', default=[],
                        help='add this domain, unverified (repeatable)')
    parser.add_argument('--smtp', action='store_true',
                        help='also start the SMTP listeners (submission with STARTTLS, implicit '
                             'TLS, a wrong-name certificate); their ports go into emulator.json')
    args = parser.parse_args(argv)
    dns_server = None
    if args.dns_server:
        host, dummy, port = args.dns_server.rpartition(':')
        dns_server = (host.strip('[]'), int(port))
    emu = M365Emulator(workdir=args.state_dir, dns_server=dns_server, port=args.port)
    for name in args.domain:
        emu.add_domain(name)
    emu.generate_users(args.users)
    # Users as many tenants have them: the UPN stays alias@<tenant>.onmicrosoft.com, the primary
    # address is first.last@<custom domain> (Get-CASMailbox then matches by neither UPN).
    emu.add_domain('fabrikamlab.test', verified=True, services=('Email',))
    for alias, name in (('adelev', 'Adele Vance'), ('alexw', 'Alex Wilber')):
        emu.add_user('%s@%s' % (alias, emu.tenant_domain), display_name=name,
                     mail='%s@fabrikamlab.test' % name.lower().replace(' ', '.'))
    cert_pem, key_pem, thumb = make_client_certificate()
    app = emu.add_app(certificate_pem=cert_pem, roles=(
        'Domain.ReadWrite.All', 'User.Read.All', 'MailboxSettings.Read', 'Mail.Send',
        'Exchange.ManageAsApp', 'SMTP.SendAsApp', 'Mail.ReadBasic.All'))
    cert_path = os.path.join(args.state_dir, 'app-cert.pem')
    with os.fdopen(os.open(cert_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600), 'w') as f:
        f.write(key_pem + cert_pem)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *a: stop.set())
    signal.signal(signal.SIGINT, lambda *a: stop.set())
    emu.start()
    if args.smtp:
        emu.start_smtp()
    state = {'url': emu.url, 'ca_path': emu.ca_path, 'tenant_id': emu.tenant_id,
             'tenant_domain': emu.tenant_domain, 'pid': os.getpid(),
             'app': {'client_id': app['client_id'], 'secret': app['secret'],
                     'roles': app['roles'], 'certificate_path': cert_path,
                     'thumbprint': thumb}}
    if args.smtp:
        state['smtp'] = {name: getattr(emu.smtp, name) for name in dir(emu.smtp)
                         if name.endswith('port') and isinstance(getattr(emu.smtp, name), int)}
    path = os.path.join(args.state_dir, 'emulator.json')
    with os.fdopen(os.open(path + '.tmp', os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600),
                   'w') as f:
        json.dump(state, f, indent=2)
    os.replace(path + '.tmp', path)
    try:
        while not stop.wait(0.5):
            pass
    finally:
        emu.stop()
    return 0


if __name__ == '__main__':
    raise SystemExit(main())
