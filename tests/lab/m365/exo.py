"""The Exchange Online admin REST half: ``POST /adminapi/beta/{tenant}/InvokeCommand``.

The endpoint the ExchangeOnlineManagement module (v3) drives; Microsoft documents the newer
"Exchange Online Admin API" built on it
(https://learn.microsoft.com/exchange/reference/admin-api-get-started) but not InvokeCommand
itself. Shapes below come from public captures of the real endpoint, cited where used:

- success body, headers, GenericHashTable context, ``@odata.type`` annotations on collections
  and GUIDs: a Burp capture of ``get-mailbox`` in a public script
  (``{"@odata.context": ".../adminapi/beta/<tenant>/$metadata#Collection(Exchange.
  GenericHashTable)", "adminapi.warnings@odata.type": "#Collection(String)",
  "@adminapi.warnings": [], "value": [...]}``); the same wrapper in
  claudineyqr/ExchangeOnlineAdminRestApi (RecipientPermissionResponse).
- request: KelvinTegelaar/CIPP-API Modules/CIPPCore/Public/GraphHelper/New-ExoRequest.ps1
  (body ``{"CmdletInput": {"CmdletName", "Parameters"}}``, ``Prefer: odata.maxpagesize=1000``,
  ``X-AnchorMailbox: APP:SystemMailbox{bb558c35-97f1-4cb9-8ff7-d53741dc928c}@<tenant id>``,
  paging by POSTing the same body to ``@odata.nextLink``); michev.info "All you need to know
  about Exchange Online Admin API" parts 1 and 2.
- cmdlet errors: a ManagementObjectNotFoundException relayed by the module ("NotFound: Error
  executing cmdlet" with ``details[0].message`` ``Ex6F9304|Microsoft.Exchange.Configuration.
  Tasks.ManagementObjectNotFoundException|The operation couldn't be performed because object
  'x' couldn't be found on '<DC>'.`` and ``innererror.internalexception``), and two live 400
  bodies pinned in a public Go client test (``{"error": {"code": "BadRequest", "message":
  "Invalid Operation", "details": [...], "innererror": {...}}}``). error.message is the generic
  text; the useful text is in details[0].message / innererror.internalexception.message.
- RBAC refusal: MicrosoftDocs/office-docs-powershell#7970 (``{"error": {"code":
  "Unauthorized", "message": "User is not allowed to call Get-Mailbox", "innererror": ...}}``),
  a 401 without a WWW-Authenticate challenge; the roles an app can hold: the app-only
  authentication page, step 5 (EXCHANGE_ROLES).
- paging: a follow-up page asked with the tenant's domain instead of its GUID, or after the
  cursor's 30 minutes, answers 400 "Expired or Invalid pagination request. Default Expiry time is
  00:30:00" (Microsoft Q&A 1023619, envelope in ``pagination_expired``).
- throttling: "You have reached the maximum number of concurrent requests per tenant. Please wait
  and try again." is the text GreyCorbel ExoHelper retries whatever the status
  (CONCURRENT_REQUESTS; its status is recorded nowhere: inject it with any).
- wrong audience: the Outlook REST ``InvalidAudienceForResource`` text
  (microsoftgraph/microsoft-graph-docs-contrib#266, microsoft/MHA#142).
- routing hint: "Error improvement for invalid X-AnchorMailbox in REST API calls" (Exchange dev
  blog, 2018): 400 ``ErrorIncorrectRoutingHint``.
- defaults: new EXO mailboxes have POP and IMAP on and SmtpClientAuthenticationDisabled $null
  (Set-CASMailbox / "Enable or disable SMTP AUTH in Exchange Online",
  https://learn.microsoft.com/exchange/clients-and-mobile-in-exchange-online/
  authenticated-client-smtp-submission); tenants created after January 2020 have
  Get-TransportConfig SmtpClientAuthenticationDisabled $true (same page).

State: the mailboxes are the emulator's users with ``_mailbox`` true (shared with Graph); the
per-mailbox protocol switches live in ``user['_cas']``, the tenant's in ``emu.transport_config``.
"""

import base64
import datetime
import functools
import hashlib
import ipaddress
import json
import re
import time

import dns.exception
import dns.message
import dns.query
import dns.rdatatype

from . import opath
from .common import GRAPH_FAULTS, Response, stable_id

ROLES = ('Exchange.ManageAsApp', 'Exchange.ManageAsAppV2')
# Custom domains added since May 2025 get the <prefix>.<char>-v1.dkim.mail.microsoft DKIM
# CNAME targets (email-authentication-dkim-configure, "Syntax for DKIM CNAME records").
DKIM_V1_SINCE = datetime.datetime(2025, 5, 1, tzinfo=datetime.timezone.utc)
CURSOR_LIFETIME = 1800  # seconds: "Default Expiry time is 00:30:00"
CONCURRENT_REQUESTS = ('You have reached the maximum number of concurrent requests per tenant. '
                       'Please wait and try again.')
READS = ('get-casmailbox', 'get-mailbox', 'get-transportconfig', 'get-dkimsigningconfig',
         'get-accepteddomain', 'get-inboundconnector', 'get-outboundconnector')
# The Microsoft Entra roles of an app's service principal (app-only-auth-powershell-v2, step 5)
# and the emulated cmdlets each lets it call (None: every cmdlet). Global Reader reads; the
# Exchange Recipient Administrator manages recipients (Set-CASMailbox), not the organization's
# transport settings; Get-TransportConfig for it is our guess (no source lists it).
EXCHANGE_ROLES = {
    'Exchange Administrator': None,
    'Global Administrator': None,
    'Exchange Recipient Administrator': READS + ('set-casmailbox',),
    'Global Reader': READS,
    'none': (),
}
SYSTEM_MAILBOX = 'SystemMailbox{bb558c35-97f1-4cb9-8ff7-d53741dc928c}'
PAGE_DEFAULT = 1000
PAGE_MAX = 1000
RESULT_SIZE_DEFAULT = 1000  # Get-Mailbox/Get-CASMailbox without -ResultSize
DC = 'LABPR01A001DC001.LABPR01A001.PROD.OUTLOOK.COM'
ODATA_ERROR = 'Microsoft.Exchange.Admin.OData.Core.ODataServiceException'
CAS_SWITCHES = ('PopEnabled', 'ImapEnabled', 'SmtpClientAuthenticationDisabled', 'EwsEnabled',
                'ActiveSyncEnabled', 'OWAEnabled', 'MAPIEnabled')
NULLABLE = ('SmtpClientAuthenticationDisabled',)
# Real EXO warnings (the texts Get-Mailbox/Set-* print in Exchange Online PowerShell).
WARN_FIRST_1000 = ('By default, only the first 1000 items are returned. Use the ResultSize '
                   'parameter to specify the number of items returned. To return all items, '
                   'specify "-ResultSize Unlimited". Be aware that, depending upon the actual '
                   'number of items, returning all items can take a long time and consume a '
                   'large amount of memory. Also, we don\'t recommend storing the results in a '
                   'variable. Instead, pipe the results to another task or script to perform '
                   'batch changes.')
WARN_MORE = ('There are more results available than are currently displayed. To view them, '
             'increase the value for the ResultSize parameter.')
WARN_UNCHANGED = ("The command completed successfully but no settings of '%s' have been "
                  "modified.")


def cas_defaults():
    """A new EXO mailbox: every client protocol on, SMTP AUTH following the tenant ($null)."""
    return {'PopEnabled': True, 'ImapEnabled': True, 'SmtpClientAuthenticationDisabled': None,
            'EwsEnabled': True, 'ActiveSyncEnabled': True, 'OWAEnabled': True,
            'MAPIEnabled': True}


def transport_defaults():
    """Get-TransportConfig of a tenant created after January 2020 (SMTP AUTH off org-wide)."""
    return {'SmtpClientAuthenticationDisabled': True, 'MaxSendSize': '35 MB (36,700,160 bytes)',
            'MaxReceiveSize': '36 MB (37,748,736 bytes)', 'MaxRecipientEnvelopeLimit': '500',
            'ExternalPostmasterAddress': None, 'ReplyAllStormProtectionEnabled': True,
            'AllowLegacyTLSClients': False}


class CmdletError(Exception):
    """A cmdlet failure, answered in the adminapi error envelope."""

    def __init__(self, status, code, exc_type, text, message='Error executing cmdlet',
                 prefix='Ex6F9304'):
        super().__init__(text)
        self.status, self.code, self.exc_type, self.text = status, code, exc_type, text
        self.message, self.prefix = message, prefix


def not_found(identity):
    return CmdletError(404, 'NotFound',
                       'Microsoft.Exchange.Configuration.Tasks.ManagementObjectNotFoundException',
                       "The operation couldn't be performed because object '%s' couldn't be "
                       "found on '%s'." % (identity, DC))


def bad_parameter(text):
    return CmdletError(400, 'BadRequest',
                       'Microsoft.Exchange.AdminApi.CommandInvocation.'
                       'AmbiguousParameterSetException', text, message='Invalid Operation',
                       prefix='')


def bad_value(name, value, target='System.Boolean'):
    return CmdletError(400, 'BadRequest',
                       'Microsoft.Exchange.AdminApi.CommandInvocation.'
                       'ParameterTransformationException',
                       'Cannot process argument transformation on parameter \'%s\'. Cannot '
                       'convert value "%s" to type "%s". Boolean parameters accept only Boolean '
                       'values and numbers, such as $True, $False, 1 or 0.'
                       % (name, '' if value is None else value, target),
                       message='Invalid Operation', prefix='')


def error_body(status, code, message, details_text=None, exc_type=None, internal_text=None):
    """The adminapi error envelope (see the module docstring for the captures it copies)."""
    err = {'code': code, 'message': message}
    if details_text is not None:
        err['details'] = [{'code': 'Client', 'target': '', 'message': details_text}]
    inner = {'message': message, 'type': ODATA_ERROR, 'stacktrace': ''}
    if exc_type:
        inner['internalexception'] = {'message': internal_text or message, 'type': exc_type,
                                      'stacktrace': ''}
    err['innererror'] = inner
    err['adminapi.warnings@odata.type'] = '#Collection(String)'
    err['@adminapi.warnings'] = []
    return Response(status, {'error': err})


def pagination_expired():
    """Exchange's answer to a follow-up page it cannot serve (Microsoft Q&A 1023619)."""
    return error_body(400, 'BadRequest', 'Invalid Operation', exc_type='System.Exception',
                      internal_text='Expired or Invalid pagination request. Default Expiry '
                                    'time is 00:30:00')


def cmdlet_error_response(e):
    if e.status == 404:  # the module relays these with the generic internal exception
        internal = ("Exception of type 'Microsoft.Exchange.Management.PSDirectInvoke."
                    "DirectInvokeCmdletExecutionException' was thrown.")
        exc = 'Microsoft.Exchange.Management.PSDirectInvoke.DirectInvokeCmdletExecutionException'
    else:
        internal, exc = e.text, e.exc_type
    return error_body(e.status, e.code, e.message, '%s|%s|%s' % (e.prefix, e.exc_type, e.text),
                      exc, internal)


def annotate(obj):
    """Collections carry ``<name>@odata.type: #Collection(String)`` and GUIDs ``@data.type`` /
    ``@odata.type`` annotations, as in the captured get-mailbox answer."""
    out = {}
    for key, value in obj.items():
        if isinstance(value, list):
            out[key + '@odata.type'] = '#Collection(String)'
        elif key in ('Guid', 'ExchangeGuid'):
            out[key + '@data.type'] = 'System.Guid'
            out[key + '@odata.type'] = '#Guid'
        out[key] = value
    return out


def to_bool(name, value, nullable=False):
    if value is None:
        if nullable:
            return None
        raise bad_value(name, value)
    if isinstance(value, bool):
        return value
    if isinstance(value, int):
        return value != 0
    text = str(value).strip().lower().lstrip('$')
    if text in ('true', '1'):
        return True
    if text in ('false', '0'):
        return False
    if nullable and text in ('null', ''):
        return None
    raise bad_value(name, value)


# -- connectors --------------------------------------------------------------------------------
# The parameters of New-/Set-OutboundConnector and New-/Set-InboundConnector in Exchange Online
# (MicrosoftDocs/office-docs-powershell, exchange-ps/ExchangePowerShell), by lower-case name.
CONNECTOR_PARAMETERS = {
    'outbound': ('allaccepteddomains', 'cloudservicesmailenabled', 'comment', 'connectorsource',
                 'connectortype', 'enabled', 'istransportrulescoped', 'recipientdomains',
                 'routeallmessagesviaonpremises', 'senderrewritingenabled', 'smarthosts',
                 'testmode', 'tlsdomain', 'tlssettings', 'usemxrecord', 'validationrecipients'),
    'inbound': ('associatedaccepteddomains', 'cloudservicesmailenabled', 'comment',
                'connectorsource', 'connectortype', 'efskipips', 'efskiplastip', 'efusers',
                'enabled', 'requiretls', 'restrictdomainstocertificate',
                'restrictdomainstoipaddresses', 'senderdomains', 'senderipaddresses',
                'tlssendercertificatename', 'treatmessagesasinternal', 'trustedorganizations'),
}
CONNECTOR_PROPERTIES = dict((p.lower(), p) for p in (
    'Name', 'AllAcceptedDomains', 'CloudServicesMailEnabled', 'Comment', 'ConnectorSource',
    'ConnectorType', 'Enabled', 'IsTransportRuleScoped', 'RecipientDomains',
    'RouteAllMessagesViaOnPremises', 'SenderRewritingEnabled', 'SmartHosts', 'TestMode',
    'TlsDomain', 'TlsSettings', 'UseMXRecord', 'ValidationRecipients',
    'AssociatedAcceptedDomains', 'EFSkipIPs', 'EFSkipLastIP', 'EFUsers', 'RequireTls',
    'RestrictDomainsToCertificate', 'RestrictDomainsToIPAddresses', 'SenderDomains',
    'SenderIPAddresses', 'TlsSenderCertificateName', 'TreatMessagesAsInternal',
    'TrustedOrganizations'))
CONNECTOR_KINDS = dict(
    [(p, 'bool') for p in ('AllAcceptedDomains', 'CloudServicesMailEnabled', 'Enabled',
                           'IsTransportRuleScoped', 'RouteAllMessagesViaOnPremises',
                           'SenderRewritingEnabled', 'TestMode', 'UseMXRecord', 'EFSkipLastIP',
                           'RequireTls', 'RestrictDomainsToCertificate',
                           'RestrictDomainsToIPAddresses', 'TreatMessagesAsInternal')] +
    [(p, 'enum') for p in ('ConnectorType', 'ConnectorSource', 'TlsSettings')] +
    [(p, 'list') for p in ('RecipientDomains', 'SmartHosts', 'ValidationRecipients',
                           'AssociatedAcceptedDomains', 'EFSkipIPs', 'EFUsers', 'SenderDomains',
                           'SenderIPAddresses', 'TrustedOrganizations')])
CONNECTOR_ENUMS = {
    'ConnectorType': ('TenantConnectorType', ('Partner', 'OnPremises')),
    'ConnectorSource': ('TenantConnectorSource', ('Default', 'Migrated', 'HybridWizard')),
    'TlsSettings': ('TlsAuthLevel', ('EncryptionOnly', 'CertificateValidation',
                                     'DomainValidation')),
}


def connector_defaults(direction, name, guid):
    """A new connector as Get-*Connector shows it (each cmdlet's page gives the defaults)."""
    obj = {'Identity': name, 'Name': name, 'Guid': guid, 'Enabled': True, 'Comment': None,
           'ConnectorType': 'Partner', 'ConnectorSource': 'Default',
           'CloudServicesMailEnabled': False, 'IsValid': True, 'ObjectState': 'Unchanged',
           'WhenCreated': '2026-01-01T00:00:00+00:00'}
    if direction == 'outbound':
        obj.update(UseMXRecord=True, SmartHosts=[], RecipientDomains=[], TlsDomain=None,
                   TlsSettings=None, IsTransportRuleScoped=False, AllAcceptedDomains=False,
                   RouteAllMessagesViaOnPremises=False, SenderRewritingEnabled=False,
                   TestMode=False, ValidationRecipients=[], IsValidated=False,
                   LastValidationTimestamp=None)
    else:
        # RequireTls: "$true: Reject messages if they aren't sent over TLS. This value is the
        # default" (New-InboundConnector)
        obj.update(SenderDomains=[], SenderIPAddresses=[], AssociatedAcceptedDomains=[],
                   RequireTls=True, RestrictDomainsToIPAddresses=False,
                   RestrictDomainsToCertificate=False, TreatMessagesAsInternal=False,
                   TlsSenderCertificateName=None, EFTestMode=False, EFSkipLastIP=False,
                   EFSkipIPs=[], EFSkipMailGateway=[], EFUsers=[], ScanAndDropRecipients=[],
                   TrustedOrganizations=[])
    return obj


def connector_enum(prop, value):
    type_name, names = CONNECTOR_ENUMS[prop]
    if value in (None, '') and prop == 'TlsSettings':
        return None
    for name in names:
        if str(value).strip().lower() == name.lower():
            return name
    raise CmdletError(
        400, 'BadRequest', 'Microsoft.Exchange.AdminApi.CommandInvocation.'
        'ParameterTransformationException',
        'Cannot process argument transformation on parameter \'%s\'. Cannot convert value '
        '"%s" to type "Microsoft.Exchange.Data.%s". Error: "Unable to match the identifier '
        'name %s to a valid enumerator name. Specify one of the following enumerator names and '
        'try again: %s"' % (prop, value, type_name, value, ', '.join(names)),
        message='Invalid Operation', prefix='')


def connector_list(direction, prop, value):
    """A multi-valued parameter (a list, or one comma-separated string) as Get- shows it."""
    if value is None:
        return []
    items = value if isinstance(value, list) else str(value).split(',')
    items = [str(v).strip() for v in items if str(v).strip()]
    out = []
    for item in items:
        if prop == 'SenderIPAddresses' or prop == 'EFSkipIPs':
            connector_ip(prop, item)
        elif prop == 'SmartHosts' and ':' in item:
            raise CmdletError(400, 'BadRequest',
                              'Microsoft.Exchange.Management.Tasks.ValidationException',
                              "'%s' is not a valid smart host: give an FQDN or an IP "
                              'address.' % item)
        if prop == 'SenderDomains':
            # read back as an address space: "smtp:<domain>;1"
            item = 'smtp:%s;1' % item.split(':', 1)[-1].rsplit(';', 1)[0]
        out.append(item)
    return out


def connector_ip(prop, item):
    """SenderIPAddresses: IPv4, single or CIDR /24 to /32; EFSkipIPs: also a range a-b. IPv6 is
    not supported (New-InboundConnector)."""
    try:
        if prop == 'EFSkipIPs' and '-' in item:
            for part in item.split('-', 1):
                ipaddress.IPv4Address(part.strip())
            return
        net = ipaddress.IPv4Network(item, strict=False)
        if prop == 'SenderIPAddresses' and not 24 <= net.prefixlen <= 32:
            raise ValueError('mask')
    except ValueError:
        raise CmdletError(400, 'BadRequest',
                          'Microsoft.Exchange.Management.Tasks.ValidationException',
                          "The value '%s' of %s is not valid: give IPv4 addresses%s (IPv6 "
                          'addresses are not supported).'
                          % (item, prop, ' or CIDR ranges from /24 to /32'
                             if prop == 'SenderIPAddresses' else ', CIDR ranges or ranges'))


class ExoApi:
    def __init__(self, emu):
        self.emu = emu
        # Whether Get-CASMailbox objects carry ExternalDirectoryObjectId: every non-minimum
        # Get-EXOCasMailbox property set has it, but no public capture of Get-CASMailbox through
        # InvokeCommand shows it; False models the other plausible answer.
        self.cas_directory_id = True
        self.cmdlets = {
            'get-casmailbox': ('Get-CASMailbox', self.get_cas_mailbox),
            'set-casmailbox': ('Set-CASMailbox', self.set_cas_mailbox),
            'get-mailbox': ('Get-Mailbox', self.get_mailbox),
            'get-transportconfig': ('Get-TransportConfig', self.get_transport_config),
            'set-transportconfig': ('Set-TransportConfig', self.set_transport_config),
            'get-dkimsigningconfig': ('Get-DkimSigningConfig', self.get_dkim),
            'new-dkimsigningconfig': ('New-DkimSigningConfig', self.new_dkim),
            'set-dkimsigningconfig': ('Set-DkimSigningConfig', self.set_dkim),
            'rotate-dkimsigningconfig': ('Rotate-DkimSigningConfig', self.rotate_dkim),
            'get-accepteddomain': ('Get-AcceptedDomain', self.get_accepted_domain),
            'set-accepteddomain': ('Set-AcceptedDomain', self.set_accepted_domain),
        }
        for direction in ('Inbound', 'Outbound'):
            for verb in ('Get', 'New', 'Set', 'Remove'):
                name = '%s-%sConnector' % (verb, direction)
                self.cmdlets[name.lower()] = (name, functools.partial(
                    getattr(self, verb.lower() + '_connector'), direction.lower()))
        # connectors by direction ('inbound', 'outbound'), then by lower-case name: the objects
        # Get-*Connector returns (README, "Connectors")
        self.connectors = {'inbound': {}, 'outbound': {}}
        # DomainType of accepted domains that are not Authoritative (README, "Accepted domains")
        self.domain_types = {}
        # DKIM signing configs by domain; dkim_formats: domain -> 'classic' | 'v1' overrides the
        # CNAME target form chosen by the domain's creation date (email-authentication-dkim-
        # configure: the v1 form for custom domains added since May 2025).
        self.dkim = {}
        self.dkim_formats = {}
        # Seconds Exchange takes per 1,000 objects a Get-* page returns (the time of building
        # them; 1.5 s is what a large tenant's Get-CASMailbox page takes), slept outside the lock
        self.page_latency = 0.0
        # InvokeCommand requests of the tenant Exchange serves at once (None: no limit); one
        # more is answered 429 with CONCURRENT_REQUESTS (see the README, "Concurrency")
        self.max_concurrent = None
        self.in_flight = 0
        self.peak_in_flight = 0  # the most served at once
        self.peak_attempted = 0  # the most asked at once (refused ones too)
        self._filtered = {}  # (cmdlet, filter) -> (emu.users_version, users): a cache
        self._views = None  # (emu.users_version, [(user, filter_view)])

    # -- mailboxes -----------------------------------------------------------------------------
    @staticmethod
    def cas(user):
        """The stored protocol switches of a mailbox (created on first use)."""
        state = user.get('_cas')
        if state is None:
            state = user['_cas'] = cas_defaults()
        return state

    def mailboxes(self):
        return [u for u in self.emu.users if u['_mailbox']]

    def find_mailbox(self, key):
        """A mailbox by UPN, alias, any SMTP address, ExternalDirectoryObjectId or Guid (the
        emulator's index: the first user added that the key names)."""
        key = str(key or '').strip().lower()
        if key.startswith('smtp:'):
            key = key[5:]
        return next((u for u in self.emu.users_by_key(key) if u['_mailbox']), None)

    def guid(self, user):
        return stable_id(self.emu.tenant_id, 'exo-guid', user['id'])

    def recipient(self, user):
        """Properties Get-Mailbox and Get-CASMailbox share (names as Exchange writes them)."""
        name = self.name_of(user)
        primary = user['mail'] or user['userPrincipalName']
        return {
            'Identity': name, 'Id': name, 'Name': name, 'DisplayName': user['displayName'],
            'DistinguishedName': 'CN=%s,OU=%s,OU=Microsoft Exchange Hosted Organizations,'
                                 'DC=LABPR01A001,DC=PROD,DC=OUTLOOK,DC=COM'
                                 % (name, self.emu.tenant_domain),
            'PrimarySmtpAddress': primary,
            'EmailAddresses': list(user['proxyAddresses']),
            'ExternalDirectoryObjectId': user['id'],
            'Guid': self.guid(user),
            'ExchangeVersion': '0.20 (15.0.0.0)',
            'IsValid': True,
            'ObjectState': 'Unchanged',
        }

    @staticmethod
    def name_of(user):
        """The mailbox's Name: its alias, or for a mailbox made since Microsoft's change of
        2023 (MC365786, office365itpros.com 2022-04-21 "Exchange Online Plans Changes to Make
        Mailbox Identification More Effective"), its ExternalDirectoryObjectId."""
        return user['id'] if user.get('_name_is_id') else user['mailNickname']

    def filter_view(self, user):
        """The filterable properties of a mailbox (opath.FILTERABLE)."""
        return {'Name': self.name_of(user), 'DisplayName': user['displayName'],
                'PrimarySmtpAddress': user['mail'] or user['userPrincipalName'],
                'EmailAddresses': list(user['proxyAddresses']), 'Guid': self.guid(user),
                'Alias': user['mailNickname'], 'ExternalDirectoryObjectId': user['id'],
                'UserPrincipalName': user['userPrincipalName']}

    def views(self):
        """[(mailbox user, filter_view)] of every mailbox, made once until the users change."""
        version = self.emu.users_version
        if self._views is None or self._views[0] != version:
            self._views = (version, [(u, self.filter_view(u)) for u in self.mailboxes()])
        return self._views[1]

    def filtered(self, cmdlet, text):
        """The mailboxes the -Filter ``text`` of ``cmdlet`` selects (CmdletError when Exchange
        would refuse it); cached until the users change."""
        key = (cmdlet, text)
        version = self.emu.users_version
        hit = self._filtered.get(key)
        if hit is not None and hit[0] == version:
            return hit[1]
        try:
            test = opath.parse(text, cmdlet)
        except opath.FilterError as e:
            raise CmdletError(400, 'BadRequest', 'Microsoft.Exchange.Management.Tasks.'
                              'FilterParsingException' if 'syntax' in str(e) else
                              'System.Management.Automation.ParameterBindingException', str(e),
                              message='Invalid Operation', prefix='')
        addresses = opath.addresses_of(text)
        if addresses is not None:  # the index, then the predicate (it still decides)
            seen, candidates = set(), []
            for address in addresses:
                for user in self.emu.users_by_key(address[5:] if address.startswith('smtp:')
                                                  else address):
                    if user['_mailbox'] and user['id'] not in seen:
                        seen.add(user['id'])
                        candidates.append(user)
            users = [u for u in candidates if test(self.filter_view(u))]
        else:
            users = [u for u, view in self.views() if test(view)]
        if len(self._filtered) > 4096:
            self._filtered.clear()
        self._filtered[key] = (version, users)
        return users

    def cas_object(self, user):
        obj = self.recipient(user)
        obj.update(self.cas(user))
        obj.update({'ECPEnabled': True, 'OutlookMobileEnabled': True,
                    'UniversalOutlookEnabled': True, 'PopUseProtocolDefaults': True,
                    'ImapUseProtocolDefaults': True, 'ServerLegacyDN': None,
                    'ActiveSyncMailboxPolicy': 'Default',
                    'OwaMailboxPolicy': 'OwaMailboxPolicy-Default'})
        if not self.cas_directory_id:
            del obj['ExternalDirectoryObjectId']
        return annotate(obj)

    def mailbox_object(self, user):
        obj = self.recipient(user)
        obj.update({
            'UserPrincipalName': user['userPrincipalName'],
            'Alias': user['mailNickname'],
            'WindowsEmailAddress': user['mail'] or user['userPrincipalName'],
            'MicrosoftOnlineServicesID': user['userPrincipalName'],
            'RecipientType': 'UserMailbox', 'RecipientTypeDetails': 'UserMailbox',
            'ExchangeGuid': stable_id(self.emu.tenant_id, 'exchange-guid', user['id']),
            'IsMailboxEnabled': True, 'AccountDisabled': not user['accountEnabled'],
            'HiddenFromAddressListsEnabled': False, 'ForwardingSmtpAddress': None,
            'ForwardingAddress': None, 'DeliverToMailboxAndForward': False,
            'UsageLocation': 'United States' if user['usageLocation'] == 'US' else None,
        })
        return annotate(obj)

    def select(self, params, cmdlet):
        """The mailbox users of params' Identity, or all of them (those -Filter selects) under
        -ResultSize."""
        warnings = []
        if params.get('identity') is not None:
            if params.get('filter') is not None:
                raise bad_parameter('Parameter set cannot be resolved using the specified named '
                                    'parameters.')
            user = self.find_mailbox(params['identity'])
            if user is None:
                raise not_found(params['identity'])
            return [user], warnings
        size = params.get('resultsize')
        if params.get('filter') is not None:
            users = self.filtered(cmdlet, params['filter'])
        else:
            users = self.mailboxes()
        if size is None:
            limit = RESULT_SIZE_DEFAULT
            if len(users) > limit:
                warnings.append(WARN_FIRST_1000)
        elif str(size).strip().lower() == 'unlimited':
            limit = len(users)
        else:
            try:
                limit = int(size)
            except (TypeError, ValueError):
                raise bad_value('ResultSize', size, 'Microsoft.Exchange.Data.Unlimited`1'
                                                    '[System.UInt32]')
            if limit < 1:
                raise bad_value('ResultSize', size, 'Microsoft.Exchange.Data.Unlimited`1'
                                                    '[System.UInt32]')
            if len(users) > limit:
                warnings.append(WARN_MORE)
        return users[:limit], warnings

    # -- cmdlets -------------------------------------------------------------------------------
    # https://learn.microsoft.com/powershell/module/exchange/get-casmailbox
    def get_cas_mailbox(self, params):
        self.allow(params, ('identity', 'resultsize', 'filter'))
        users, warnings = self.select(params, 'Get-CASMailbox')
        return users, warnings, self.cas_object

    # https://learn.microsoft.com/powershell/module/exchange/get-mailbox
    def get_mailbox(self, params):
        self.allow(params, ('identity', 'resultsize', 'filter'))
        users, warnings = self.select(params, 'Get-Mailbox')
        return users, warnings, self.mailbox_object

    # https://learn.microsoft.com/powershell/module/exchange/set-casmailbox : no output
    def set_cas_mailbox(self, params):
        names = {n.lower(): n for n in CAS_SWITCHES}
        self.allow(params, ('identity', 'confirm') + tuple(names))
        if params.get('identity') in (None, ''):
            raise bad_parameter('Cannot process command because of one or more missing '
                                'mandatory parameters: Identity.')
        user = self.find_mailbox(params['identity'])
        if user is None:
            raise not_found(params['identity'])
        changes = {}
        for key, value in params.items():
            if key in names:
                name = names[key]
                changes[name] = to_bool(name, value, name in NULLABLE)
        state = self.cas(user)
        if all(state[k] == v for k, v in changes.items()):
            return [], [WARN_UNCHANGED % user['mailNickname']], None
        state.update(changes)
        return [], [], None

    # https://learn.microsoft.com/powershell/module/exchange/get-transportconfig
    def get_transport_config(self, params):
        self.allow(params, ())
        obj = {'Identity': 'Transport Settings', 'Name': 'Transport Settings',
               'Guid': stable_id(self.emu.tenant_id, 'transport-config'),
               'IsValid': True, 'ObjectState': 'Unchanged',
               'InternalSMTPServers': [], 'ExternalDsnReportingAuthority': None}
        obj.update(self.emu.transport_config)
        return [annotate(obj)], [], None

    # https://learn.microsoft.com/powershell/module/exchange/set-transportconfig : no output
    def set_transport_config(self, params):
        self.allow(params, ('smtpclientauthenticationdisabled', 'confirm'))
        if 'smtpclientauthenticationdisabled' not in params:
            return [], [WARN_UNCHANGED % 'Transport Settings'], None
        value = to_bool('SmtpClientAuthenticationDisabled',
                        params['smtpclientauthenticationdisabled'])
        if self.emu.transport_config.get('SmtpClientAuthenticationDisabled') == value:
            return [], [WARN_UNCHANGED % 'Transport Settings'], None
        self.emu.transport_config['SmtpClientAuthenticationDisabled'] = value
        return [], [], None

    # -- accepted domains (tests/lab/m365/README.md, "Accepted domains") -------------------
    def accepted(self):
        """The accepted domains: the initial domain and every verified domain with Email."""
        return dict((name, dom) for name, dom in self.emu.domains.items()
                    if dom.get('isInitial') or (dom.get('isVerified') and
                                                'Email' in dom.get('supportedServices', ())))

    def accepted_object(self, dom):
        name = dom['id']
        kind = self.domain_types.get(name, 'Authoritative')
        obj = {'Identity': name, 'Name': name, 'DomainName': name, 'DomainType': kind,
               'Default': bool(dom.get('isDefault')), 'InitialDomain': bool(dom.get('isInitial')),
               'MatchSubDomains': False, 'AddressBookEnabled': kind == 'Authoritative',
               'AuthenticationType': 'Managed', 'LiveIdInstanceType': 'Business',
               'PendingRemoval': False, 'PendingCompletion': False, 'IsCoexistenceDomain': False,
               'OutboundOnly': False, 'SendingFromDomainDisabled': False,
               'Guid': stable_id(self.emu.tenant_id, 'accepted-' + name),
               'IsValid': True, 'ObjectState': 'Unchanged'}
        return annotate(obj)

    def accepted_find(self, identity):
        name = str(identity or '').strip().rstrip('.').lower()
        dom = self.accepted().get(name)
        if dom is None:
            raise not_found(identity)
        return dom

    def get_accepted_domain(self, params):
        self.allow(params, ('identity', 'resultsize'))
        name = str(params.get('identity') or '').strip().rstrip('.').lower()
        dom = self.accepted().get(name)
        if dom is not None:
            return [self.accepted_object(dom)], [], None
        # "The value $null or a non-existent value for the Identity parameter returns *all*
        # objects as if you ran the Get- command without the Identity parameter."
        return [self.accepted_object(d) for _n, d in sorted(self.accepted().items())], [], None

    def set_accepted_domain(self, params):
        # the parameters Set-AcceptedDomain has in Exchange Online (MakeDefault, Name and
        # AddressBookEnabled are on-premises only)
        self.allow(params, ('identity', 'domaintype', 'matchsubdomains', 'outboundonly',
                            'sendingfromdomaindisabled', 'sendingtodomaindisabled',
                            'canhavecloudcache', 'confirm'))
        if params.get('identity') in (None, ''):
            raise bad_parameter('Cannot process command because of one or more missing '
                                'mandatory parameters: Identity.')
        dom = self.accepted_find(params['identity'])
        kind = params.get('domaintype')
        if kind is not None:
            wanted = {'authoritative': 'Authoritative', 'internalrelay': 'InternalRelay',
                      'externalrelay': 'ExternalRelay'}.get(str(kind).lower())
            if wanted is None:
                raise CmdletError(
                    400, 'BadRequest', 'Microsoft.Exchange.AdminApi.CommandInvocation.'
                    'ParameterTransformationException',
                    'Cannot process argument transformation on parameter \'DomainType\'. '
                    'Cannot convert value "%s" to type "Microsoft.Exchange.Data.Directory.'
                    'SystemConfiguration.AcceptedDomainType". Error: "Unable to match the '
                    'identifier name %s to a valid enumerator name. Specify one of the '
                    'following enumerator names and try again: Authoritative, ExternalRelay, '
                    'InternalRelay"' % (kind, kind), message='Invalid Operation', prefix='')
            if wanted == 'ExternalRelay':
                raise CmdletError(400, 'BadRequest',
                                  'Microsoft.Exchange.Management.Tasks.ValidationException',
                                  'ExternalRelay accepted domains are available only in '
                                  'on-premises Exchange organizations.')
            if dom.get('isInitial') and wanted != 'Authoritative':
                raise CmdletError(400, 'BadRequest',
                                  'Microsoft.Exchange.Management.Tasks.ValidationException',
                                  'The initial domain %s must stay Authoritative.' % dom['id'])
            if self.domain_types.get(dom['id'], 'Authoritative') == wanted:
                return [], [WARN_UNCHANGED % dom['id']], None
            if wanted == 'Authoritative':
                self.domain_types.pop(dom['id'], None)
            else:
                self.domain_types[dom['id']] = wanted
        return [], [], None

    # -- connectors (tests/lab/m365/README.md, "Connectors") -----------------------------------
    def connector_find(self, direction, identity):
        key = str(identity or '').strip().lower()
        for obj in self.connectors[direction].values():
            if key in (obj['Name'].lower(), obj['Guid'].lower()):
                return obj
        raise not_found(identity)

    def get_connector(self, direction, params):
        names = ('identity', 'resultsize') + (
            ('includetestmodeconnectors', 'istransportrulescoped') if direction == 'outbound'
            else ())
        self.allow(params, names)
        test_mode = to_bool('IncludeTestModeConnectors',
                            params.get('includetestmodeconnectors', False))
        found = [o for _n, o in sorted(self.connectors[direction].items())
                 if direction == 'inbound' or bool(o['TestMode']) == test_mode]
        if params.get('identity') not in (None, ''):
            key = str(params['identity']).strip().lower()
            found = [o for o in found if key in (o['Name'].lower(), o['Guid'].lower())]
            if not found:
                raise not_found(params['identity'])
        return [annotate(dict(o)) for o in found], [], None

    def new_connector(self, direction, params):
        self.allow(params, ('name', 'confirm') + CONNECTOR_PARAMETERS[direction])
        name = str(params.get('name') or '').strip()
        missing = [p for p, v in (('Name', name), ('SenderDomains', params.get('senderdomains')))
                   if v in (None, '', []) and (p == 'Name' or direction == 'inbound')]
        if missing:
            raise bad_parameter('Cannot process command because of one or more missing '
                                'mandatory parameters: %s.' % ' '.join(missing))
        if name.lower() in self.connectors[direction]:
            raise CmdletError(400, 'BadRequest',
                              'Microsoft.Exchange.Management.Tasks.ValidationException',
                              "The connector name '%s' is already used by another connector. "
                              'Please choose a different name.' % name)
        obj = connector_defaults(direction, name, stable_id(
            self.emu.tenant_id, '%s-connector-%s' % (direction, name.lower())))
        self.connector_apply(direction, obj, params, new=True)
        self.connectors[direction][name.lower()] = obj
        return [annotate(dict(obj))], [], None

    def set_connector(self, direction, params):
        self.allow(params, ('identity', 'confirm', 'name') + CONNECTOR_PARAMETERS[direction])
        if params.get('identity') in (None, ''):
            raise bad_parameter('Cannot process command because of one or more missing '
                                'mandatory parameters: Identity.')
        obj = self.connector_find(direction, params['identity'])
        changed = dict(obj)
        self.connector_apply(direction, changed, params, new=False)
        if changed == obj:
            return [], [WARN_UNCHANGED % obj['Name']], None
        del self.connectors[direction][obj['Name'].lower()]
        self.connectors[direction][changed['Name'].lower()] = changed
        return [], [], None

    def remove_connector(self, direction, params):
        self.allow(params, ('identity', 'confirm'))
        obj = self.connector_find(direction, params.get('identity'))
        del self.connectors[direction][obj['Name'].lower()]
        return [], [], None

    def connector_apply(self, direction, obj, params, new):
        """The parameters of New-/Set-*Connector on ``obj``, checked as the cmdlets' pages
        describe them; a CmdletError leaves ``obj`` half changed, so callers pass a copy."""
        for key, value in params.items():
            if key in ('identity', 'confirm'):
                continue
            prop = CONNECTOR_PROPERTIES[key]
            kind = CONNECTOR_KINDS.get(prop, 'text')
            if kind == 'bool':
                obj[prop] = to_bool(params.original[key], value)
            elif kind == 'enum':
                obj[prop] = connector_enum(prop, value)
            elif kind == 'list':
                obj[prop] = connector_list(direction, prop, value)
            elif prop == 'Name':
                obj[prop] = str(value).strip()
            else:
                obj[prop] = None if value in (None, '') else str(value)
        if direction == 'outbound':
            if 'usemxrecord' in params and not obj['UseMXRecord'] and \
                    ('smarthosts' not in params or not obj['SmartHosts']):
                raise CmdletError(400, 'BadRequest',
                                  'Microsoft.Exchange.Management.Tasks.ValidationException',
                                  'SmartHosts is required if you set UseMXRecord to $false, '
                                  'and it must be specified on the same command line.')
            if not obj['UseMXRecord'] and not obj['SmartHosts']:
                raise CmdletError(400, 'BadRequest',
                                  'Microsoft.Exchange.Management.Tasks.ValidationException',
                                  'A connector that does not use MX records needs SmartHosts.')
        elif obj['TreatMessagesAsInternal'] and (obj['ConnectorType'] != 'OnPremises' or
                                                 obj['CloudServicesMailEnabled']):
            raise CmdletError(400, 'BadRequest',
                              'Microsoft.Exchange.Management.Tasks.ValidationException',
                              'TreatMessagesAsInternal can be $true only on an OnPremises '
                              'connector without CloudServicesMailEnabled.')

    # -- DKIM (tests/lab/m365/README.md, "DKIM") ------------------------------------------
    def dkim_format(self, dom):
        fmt = self.dkim_formats.get(dom['id'])
        if fmt:
            return fmt
        if dom.get('isInitial'):
            return 'classic'
        return 'v1' if dom['added'] >= DKIM_V1_SINCE else 'classic'

    def dkim_targets(self, dom):
        dashes = dom['id'].replace('.', '-')
        initial = self.emu.tenant_domain
        if self.dkim_format(dom) == 'v1':
            digest = hashlib.sha256(('%s:%s:dkim' % (self.emu.tenant_id, dom['id'])).encode())
            letter = 'nr'[digest.digest()[0] % 2]
            base = '%s.%s-v1.dkim.mail.microsoft' % (initial.split('.')[0], letter)
        else:
            base = initial
        return tuple('selector%d-%s._domainkey.%s' % (i, dashes, base) for i in (1, 2))

    def dkim_cnames_ok(self, name, targets):
        """Both selectorN._domainkey.<domain> CNAMEs answer their targets at emu.dns_server."""
        if not self.emu.dns_server:
            return False
        address, port = self.emu.dns_server
        for i, target in enumerate(targets, 1):
            query = dns.message.make_query('selector%d._domainkey.%s' % (i, name), 'CNAME')
            try:
                answer, dummy = dns.query.udp_with_fallback(query, address, port=int(port),
                                                            timeout=3)
            except (dns.exception.DNSException, OSError):
                return False
            found = [rd.target.to_text().rstrip('.').lower() for rrset in answer.answer
                     if rrset.rdtype == dns.rdatatype.CNAME for rd in rrset]
            if target.lower() not in found:
                return False
        return True

    def dkim_object(self, name):
        cfg = self.dkim[name]
        obj = {'Identity': name, 'Name': name, 'Domain': name, 'Enabled': cfg['Enabled'],
               'Status': cfg['Status'], 'Selector1CNAME': cfg['targets'][0],
               'Selector2CNAME': cfg['targets'][1], 'Selector1KeySize': cfg['sizes'][0],
               'Selector2KeySize': cfg['sizes'][1], 'KeyCreationTime': cfg['created'],
               'RotateOnDate': cfg['rotate_on'], 'SelectorBeforeRotateOnDate': cfg['before'],
               'SelectorAfterRotateOnDate': cfg['after'], 'LastChecked': cfg['checked'],
               'Algorithm': 'RsaSHA256', 'HeaderCanonicalization': 'Relaxed',
               'BodyCanonicalization': 'Relaxed', 'NumberOfBytesToSign': 'All',
               'AdminDisplayName': '', 'IncludeKeyExpiration': False,
               'IncludeSignatureCreationTime': False,
               'Guid': stable_id(self.emu.tenant_id, 'dkim-' + name),
               'IsValid': True, 'ObjectState': 'Unchanged'}
        return annotate(obj)

    def dkim_refusal(self, name, targets):
        text = ('CNAME record does not exist for this config. Please publish the following two '
                'CNAME records first. Domain Name : %s Host Name : selector1._domainkey Points '
                'To Address : %s Host Name : selector2._domainkey Points To Address : %s '
                'If you have already published the CNAME records, sync will take a few minutes '
                'to as many as 4 days based on DNS. Return and retry this step later.'
                % (name, targets[0], targets[1]))
        return CmdletError(400, 'BadRequest',
                           'Microsoft.Exchange.Management.Tasks.ValidationException', text)

    def dkim_find(self, identity):
        name = str(identity or '').strip().rstrip('.').lower()
        if name not in self.dkim:
            raise not_found(identity)
        return name

    def get_dkim(self, params):
        self.allow(params, ('identity',))
        if params.get('identity') not in (None, ''):
            return [self.dkim_object(self.dkim_find(params['identity']))], [], None
        return [self.dkim_object(n) for n in sorted(self.dkim)], [], None

    def new_dkim(self, params):
        self.allow(params, ('domainname', 'enabled', 'keysize', 'confirm'))
        if params.get('domainname') in (None, '') or 'enabled' not in params:
            raise bad_parameter('Cannot process command because of one or more missing '
                                'mandatory parameters: %s.' % ' '.join(
                                    n for n, k in (('DomainName', 'domainname'),
                                                   ('Enabled', 'enabled'))
                                    if params.get(k) in (None, '')))
        enabled = to_bool('Enabled', params['enabled'])
        size = self.key_size(params)
        name = str(params['domainname']).strip().rstrip('.').lower()
        dom = self.emu.domains.get(name)
        if dom is None:
            raise CmdletError(400, 'BadRequest',
                              'Microsoft.Exchange.Management.Tasks.ValidationException',
                              'Domain %s is not an accepted domain for your organization.'
                              % name)
        if name in self.dkim:
            raise CmdletError(400, 'BadRequest',
                              'Microsoft.Exchange.Data.Directory.ADObjectAlreadyExistsException',
                              "The DKIM signing config for domain '%s' already exists." % name)
        targets = self.dkim_targets(dom)
        now = self.emu.clock().strftime('%Y-%m-%dT%H:%M:%S.0000000Z')
        ok = self.dkim_cnames_ok(name, targets)
        self.dkim[name] = {'Enabled': bool(enabled and ok),
                           'Status': 'Valid' if enabled and ok else 'CnameMissing',
                           'targets': targets, 'sizes': (size, size), 'created': now,
                           'rotate_on': now, 'before': 'selector1', 'after': 'selector1',
                           'checked': now}
        if enabled and not ok:
            raise self.dkim_refusal(name, targets)
        return [self.dkim_object(name)], [], None

    @staticmethod
    def key_size(params):
        if params.get('keysize') in (None, ''):
            return 2048
        try:
            size = int(params['keysize'])
        except (TypeError, ValueError):
            size = None
        if size not in (1024, 2048):
            raise CmdletError(400, 'BadRequest',
                              'Microsoft.Exchange.Management.Tasks.ValidationException',
                              'The KeySize parameter value %s is invalid. Valid values are '
                              '1024 or 2048.' % params['keysize'])
        return size

    def set_dkim(self, params):
        self.allow(params, ('identity', 'enabled', 'confirm'))
        name = self.dkim_find(params.get('identity'))
        cfg = self.dkim[name]
        cfg['checked'] = self.emu.clock().strftime('%Y-%m-%dT%H:%M:%S.0000000Z')
        if 'enabled' not in params:
            return [], [WARN_UNCHANGED % name], None
        enabled = to_bool('Enabled', params['enabled'])
        if enabled:
            if not self.dkim_cnames_ok(name, cfg['targets']):
                cfg['Status'] = 'CnameMissing'
                raise self.dkim_refusal(name, cfg['targets'])
            cfg['Status'] = 'Valid'
        if cfg['Enabled'] == enabled:
            return [], [WARN_UNCHANGED % name], None
        cfg['Enabled'] = enabled
        return [], [], None

    def rotate_dkim(self, params):
        self.allow(params, ('identity', 'keysize', 'confirm'))
        name = self.dkim_find(params.get('identity'))
        cfg = self.dkim[name]
        size = self.key_size(params) if params.get('keysize') not in (None, '') else None
        if not cfg['Enabled'] or cfg['Status'] not in ('Valid', 'CnameMissing'):
            raise CmdletError(400, 'BadRequest',
                              'Microsoft.Exchange.Management.Tasks.ValidationException',
                              'DKIM keys can be rotated only for an enabled signing config.')
        now = self.emu.clock()
        if cfg.get('rotating_until') and now < cfg['rotating_until']:
            raise CmdletError(400, 'BadRequest',
                              'Microsoft.Exchange.Management.Tasks.ValidationException',
                              'A key rotation for %s is already in progress.' % name)
        nxt = 'selector2' if cfg['after'] == 'selector1' else 'selector1'
        sizes = list(cfg['sizes'])
        if size:
            sizes[int(nxt[-1]) - 1] = size
        until = now + datetime.timedelta(hours=96)
        cfg.update(sizes=tuple(sizes), before=cfg['after'], after=nxt, rotating_until=until,
                   created=now.strftime('%Y-%m-%dT%H:%M:%S.0000000Z'),
                   rotate_on=until.strftime('%Y-%m-%dT%H:%M:%S.0000000Z'))
        return [], [], None

    @staticmethod
    def allow(params, names):
        unknown = [k for k in params if k not in names]
        if unknown:
            raise bad_parameter('Parameter set cannot be resolved using the specified named '
                                'parameters. Invalid cmdlet parameters specified. %s'
                                % ', '.join(params.original[k] for k in unknown))

    # -- HTTP ----------------------------------------------------------------------------------
    def invoke(self, tenant_segment, body, headers, query, entry):
        """The InvokeCommand call after authentication: (Response). A follow-up page must name
        the tenant by its GUID in the URL and the anchor (a domain works on the first page
        only) and come within CURSOR_LIFETIME of the emulator's clock (``emu.clock_offset``)."""
        if not isinstance(body, dict) or not isinstance(body.get('CmdletInput'), dict):
            return error_body(400, 'BadRequest', 'Invalid Operation',
                              "|Microsoft.Exchange.AdminApi.CommandInvocation."
                              "InvalidCmdletInputException|The request body must be "
                              "{\"CmdletInput\": {\"CmdletName\": ..., \"Parameters\": {...}}}.",
                              'Microsoft.Exchange.AdminApi.CommandInvocation.'
                              'InvalidCmdletInputException', 'The request body must carry '
                                                             'CmdletInput.')
        cmd = body['CmdletInput']
        raw_name = str(cmd.get('CmdletName') or '')
        raw_params = cmd.get('Parameters') or {}
        known = self.cmdlets.get(raw_name.strip().lower())
        entry['cmdlet'] = known[0] if known else raw_name
        if not isinstance(raw_params, dict):
            return error_body(400, 'BadRequest', 'Invalid Operation',
                              '|Microsoft.Exchange.AdminApi.CommandInvocation.'
                              'InvalidCmdletInputException|Parameters must be an object.')
        params = Params(raw_params)
        entry['identity'] = params.get('identity')
        entry['parameters'] = dict(raw_params)
        if known is None:
            text = ("The term '%s' is not recognized as a name of a cmdlet, function, script "
                    "file, or executable program. Check the spelling of the name, or if a path "
                    "was included, verify that the path is correct and try again." % raw_name)
            return error_body(400, 'BadRequest', 'Invalid Operation',
                              '|System.Management.Automation.CommandNotFoundException|' + text,
                              'System.Management.Automation.CommandNotFoundException', text)
        size = page_size(headers)
        offset = 0
        if query.get('$skiptoken'):
            try:
                token = query['$skiptoken']
                state = json.loads(base64.urlsafe_b64decode(token + '=' * (-len(token) % 4)))
                offset, size = int(state['o']), int(state['s'])
                if state['c'] != known[0]:
                    raise ValueError('another cmdlet')
                started = float(state['t'])
            except (ValueError, KeyError, TypeError):
                return error_body(400, 'BadRequest', "Invalid $skiptoken '%s'."
                                  % query['$skiptoken'])
            local, dummy, anchor_tenant = (headers.get('X-AnchorMailbox') or '').partition(
                ':')[2].rpartition('@')
            named = [tenant_segment] + ([anchor_tenant] if local.rstrip('@').lower()
                                        == SYSTEM_MAILBOX.lower() else [])
            if self.emu.now() - started > CURSOR_LIFETIME or \
                    any(t.lower() != self.emu.tenant_id.lower() for t in named):
                return pagination_expired()
        else:
            started = self.emu.now()
        try:
            with self.emu.lock:
                items, warnings, make = known[1](params)
                page = items[offset:offset + size]
                if make is not None:
                    page = [make(u) for u in page]
        except CmdletError as e:
            return cmdlet_error_response(e)
        entry['objects'] = len(page)
        if self.page_latency and make is not None:
            time.sleep(self.page_latency * len(page) / 1000.0)
        base = '%s/adminapi/beta/%s' % (self.emu.url, tenant_segment)
        out = {'@odata.context': base + '/$metadata#Collection(Exchange.GenericHashTable)',
               'adminapi.warnings@odata.type': '#Collection(String)',
               '@adminapi.warnings': warnings if offset == 0 else [],
               'value': page}
        if offset + size < len(items):
            token = base64.urlsafe_b64encode(json.dumps(
                {'o': offset + size, 's': size, 'c': known[0], 't': started}).encode()
            ).decode().rstrip('=')
            out['@odata.nextLink'] = base + '/InvokeCommand?$skiptoken=' + token
        resp_headers = {}
        if size_requested(headers) is not None:
            resp_headers['Preference-Applied'] = 'odata.maxpagesize=%d' % size
        return Response(200, out, resp_headers)

    @staticmethod
    def fault_response(fault):
        headers = dict(fault['headers'])
        if fault['retry_after'] is not None:
            headers['Retry-After'] = str(fault['retry_after'])
        if fault['content_type']:
            headers['Content-Type'] = fault['content_type']
        if fault['body'] is not None:
            return Response(fault['status'], fault['body'], headers)
        code, message = GRAPH_FAULTS.get(fault['status'], ('UnknownError', 'Injected fault.'))
        resp = error_body(fault['status'], code, message)
        resp.headers.update(headers)
        return resp


class Params(dict):
    """Cmdlet parameters by lower-case name (PowerShell is case-insensitive); ``original`` keeps
    the spelling the caller used."""

    def __init__(self, raw):
        super().__init__((str(k).lower(), v) for k, v in raw.items())
        self.original = {str(k).lower(): str(k) for k in raw}


def size_requested(headers):
    """odata.maxpagesize from ``Prefer`` (or ``X-Prefer``, which the module sends), else None."""
    for name in ('Prefer', 'X-Prefer'):
        m = re.search(r'odata\.maxpagesize\s*=\s*(\d+)', headers.get(name) or '', re.I)
        if m:
            return int(m.group(1))
    return None


def page_size(headers):
    wanted = size_requested(headers)
    if wanted is None or wanted < 1:
        return PAGE_DEFAULT
    return min(wanted, PAGE_MAX)


def anchor_ok(emu, value, tenant):
    """The system mailbox anchor (``APP:`` or ``UPN:`` form, at the tenant id or a verified
    domain) or the ``UPN:``/``SMTP:`` of an existing mailbox."""
    kind, dummy, rest = (value or '').partition(':')
    kind = kind.upper()
    local, at, domain = rest.rpartition('@')
    if kind in ('APP', 'UPN') and local.lower() == SYSTEM_MAILBOX.lower() and at:
        return emu.tenant_of(domain) == tenant
    if kind in ('UPN', 'SMTP') and at:
        return emu.exo.find_mailbox(rest) is not None
    return False
