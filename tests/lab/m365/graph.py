"""The Microsoft Graph v1.0 half: domains, users, mailboxSettings, licenseDetails and $batch.

Every handler cites the learn.microsoft.com page whose response shape it copies. State lives in
the emulator (``emu.domains``, ``emu.users``) and is read and changed under ``emu.lock``.
"""

import base64
import json
import re
import urllib.parse

from .common import GRAPH_FAULTS, Response, graph_error, stable_id

DOMAIN_READ = ('Domain.Read.All', 'Domain.ReadWrite.All')
DOMAIN_WRITE = ('Domain.ReadWrite.All',)
USER_READ = ('User.Read.All', 'User.ReadWrite.All', 'Directory.Read.All',
             'Directory.ReadWrite.All')
MAILBOX_SETTINGS = ('MailboxSettings.Read', 'MailboxSettings.ReadWrite')
# subscribedsku-list.md: Organization.Read.All (least privileged), Directory.Read.All,
# Organization.ReadWrite.All, Directory.ReadWrite.All
ORGANIZATION_READ = ('Organization.Read.All', 'Directory.Read.All', 'Organization.ReadWrite.All',
                     'Directory.ReadWrite.All')
# Properties GET /users returns without $select (user-list.md, "default properties").
USER_DEFAULT = ('businessPhones', 'displayName', 'givenName', 'jobTitle', 'mail', 'mobilePhone',
                'officeLocation', 'preferredLanguage', 'surname', 'userPrincipalName', 'id')
SETTABLE_SERVICES = ('Email', 'OfficeCommunicationsOnline', 'Yammer', 'Intune')
MAX_BATCH = 20
NOT_FOUND = ("Resource '%s' does not exist or one of its queried reference-property objects are "
             "not present.")


class GraphRequest:
    """One Graph call (top level or inside $batch)."""

    def __init__(self, method, path, query, body, headers, claims, request_id, client_request_id):
        self.method = method
        self.path = path            # below /v1.0, e.g. /users/abc/mailboxSettings
        self.query = query          # {name: value}, names as sent (e.g. '$top')
        self.body = body            # parsed JSON or None
        self.headers = headers
        self.claims = claims
        self.request_id = request_id
        self.client_request_id = client_request_id

    def error(self, status, code, message, headers=None):
        return graph_error(status, code, message, self.request_id, self.client_request_id,
                           headers)

    def roles(self):
        return set(self.claims.get('roles') or ())


def parse_json(raw):
    if not raw:
        return None
    return json.loads(raw.decode('utf-8'))


class GraphApi:
    def __init__(self, emu):
        self.emu = emu
        self.routes = [
            ('GET', r'/domains', self.list_domains),
            ('POST', r'/domains', self.create_domain),
            ('GET', r'/domains/(?P<d>[^/]+)', self.get_domain),
            ('PATCH', r'/domains/(?P<d>[^/]+)', self.update_domain),
            ('DELETE', r'/domains/(?P<d>[^/]+)', self.delete_domain),
            ('GET', r'/domains/(?P<d>[^/]+)/verificationDnsRecords', self.verification_records),
            ('GET', r'/domains/(?P<d>[^/]+)/serviceConfigurationRecords', self.service_records),
            ('POST', r'/domains/(?P<d>[^/]+)/verify', self.verify_domain),
            ('GET', r'/users', self.list_users),
            ('GET', r'/users/(?P<u>[^/]+)', self.get_user),
            ('GET', r'/users/(?P<u>[^/]+)/mailboxSettings', self.mailbox_settings),
            ('GET', r'/users/(?P<u>[^/]+)/licenseDetails', self.license_details),
            ('GET', r'/subscribedSkus', self.subscribed_skus),
            ('POST', r'/\$batch', self.batch),
        ]

    @property
    def root(self):
        return self.emu.url + '/v1.0'

    def dispatch(self, req):
        path = req.path.rstrip('/') or '/'
        allowed = False
        for method, pattern, handler in self.routes:
            m = re.fullmatch(pattern, path, flags=re.IGNORECASE)
            if m:
                if method == req.method:
                    args = {k: urllib.parse.unquote(v) for k, v in m.groupdict().items()}
                    return handler(req, **args)
                allowed = True
        if allowed:
            return req.error(405, 'Request_BadRequest',
                             "The HTTP method '%s' is not allowed for the resource." % req.method)
        segment = path.strip('/').split('/')[0]
        return req.error(400, 'BadRequest',
                         "Resource not found for the segment '%s'." % segment)

    # -- permissions ---------------------------------------------------------------------------
    @staticmethod
    def denied(req, needed, code='Authorization_RequestDenied',
               message='Insufficient privileges to complete the operation.'):
        """403 when the token has none of ``needed`` (permissions reference:
        https://learn.microsoft.com/graph/permissions-reference)."""
        if req.roles() & set(needed):
            return None
        return req.error(403, code, message)

    # -- domains -------------------------------------------------------------------------------
    def domain_resource(self, d):
        """https://learn.microsoft.com/graph/api/resources/domain : every property of the JSON
        representation."""
        return {
            'authenticationType': 'Managed',
            'availabilityStatus': d.get('availabilityStatus'),
            'id': d['id'],
            'isAdminManaged': True,
            'isDefault': d['isDefault'],
            'isInitial': d['isInitial'],
            'isRoot': d['isVerified'] and self.emu.parent_domain(d['id']) is None,
            'isVerified': d['isVerified'],
            'supportedServices': list(d['supportedServices']),
            'passwordValidityPeriodInDays': d.get('passwordValidityPeriodInDays'),
            'passwordNotificationWindowInDays': d.get('passwordNotificationWindowInDays'),
            'state': None,
        }

    def find_domain(self, req, name):
        d = self.emu.domains.get(name.lower().rstrip('.'))
        if d is None:
            return None, req.error(404, 'Request_ResourceNotFound', NOT_FOUND % name)
        return d, None

    # https://learn.microsoft.com/graph/api/domain-list
    def list_domains(self, req):
        failure = self.denied(req, DOMAIN_READ)
        if failure:
            return failure
        with self.emu.lock:
            value = [self.domain_resource(d) for d in self.emu.domains.values()]
        return Response(200, {'@odata.context': self.root + '/$metadata#domains', 'value': value})

    # https://learn.microsoft.com/graph/api/domain-get
    def get_domain(self, req, d):
        failure = self.denied(req, DOMAIN_READ)
        if failure:
            return failure
        with self.emu.lock:
            dom, failure = self.find_domain(req, d)
            if failure:
                return failure
            body = self.domain_resource(dom)
        body['@odata.context'] = self.root + '/$metadata#domains/$entity'
        return Response(200, body)

    # https://learn.microsoft.com/graph/api/domain-post-domains : 201 Created + domain
    def create_domain(self, req):
        failure = self.denied(req, DOMAIN_WRITE)
        if failure:
            return failure
        name = (req.body or {}).get('id') if isinstance(req.body, dict) else None
        if not name or not isinstance(name, str):
            return req.error(400, 'Request_BadRequest',
                             "Invalid value specified for property 'id' of resource 'Domain'.")
        name = name.strip().rstrip('.').lower()
        if not re.fullmatch(r'(?!-)[a-z0-9-]{1,63}(?<!-)(\.(?!-)[a-z0-9-]{1,63}(?<!-))+', name):
            return req.error(400, 'Request_BadRequest',
                             "Invalid value specified for property 'id' of resource 'Domain'.")
        with self.emu.lock:
            if name in self.emu.domains:
                return req.error(400, 'Request_BadRequest',
                                 'A conflicting object with one or more of the specified property '
                                 'values is present in the directory.')
            dom = self.emu.add_domain(name)
            body = self.domain_resource(dom)
        body['@odata.context'] = self.root + '/$metadata#domains/$entity'
        return Response(201, body, {'Location': "%s/domains('%s')" % (self.root, name)})

    # https://learn.microsoft.com/graph/api/domain-update : 204 No Content
    def update_domain(self, req, d):
        failure = self.denied(req, DOMAIN_WRITE)
        if failure:
            return failure
        body = req.body if isinstance(req.body, dict) else {}
        with self.emu.lock:
            dom, failure = self.find_domain(req, d)
            if failure:
                return failure
            services = body.get('supportedServices')
            if services is not None:
                if not isinstance(services, list) or any(s not in SETTABLE_SERVICES
                                                         for s in services if s not in
                                                         dom['supportedServices']):
                    return req.error(400, 'Request_BadRequest',
                                     "Invalid value specified for property 'supportedServices' "
                                     "of resource 'Domain'.")
                if services and not dom['isVerified']:
                    # Not documented word for word: Graph refuses services on an unverified
                    # domain with 400 Request_BadRequest.
                    return req.error(400, 'Request_BadRequest',
                                     "Unable to update domain '%s': the domain must be verified "
                                     "before you can set its supported services." % dom['id'])
            if body.get('isDefault') and not dom['isVerified']:
                return req.error(400, 'Request_BadRequest',
                                 'Unverified domains cannot be set as default.')
            if services is not None:
                dom['supportedServices'] = list(services)
            if body.get('isDefault'):
                for other in self.emu.domains.values():
                    other['isDefault'] = False
                dom['isDefault'] = True
            for key in ('passwordValidityPeriodInDays', 'passwordNotificationWindowInDays'):
                if key in body:
                    dom[key] = body[key]
        return Response(204)

    # https://learn.microsoft.com/graph/api/domain-delete : 204 No Content
    def delete_domain(self, req, d):
        failure = self.denied(req, DOMAIN_WRITE)
        if failure:
            return failure
        with self.emu.lock:
            dom, failure = self.find_domain(req, d)
            if failure:
                return failure
            if dom['isInitial'] or dom['isDefault']:
                return req.error(400, 'Request_BadRequest',
                                 'The initial or default domain cannot be deleted.')
            del self.emu.domains[dom['id']]
        return Response(204)

    def records_body(self, records):
        context = '/$metadata#Collection(microsoft.graph.domainDnsRecord)'
        return {'@odata.context': self.root + context,
                'value': records}

    # https://learn.microsoft.com/graph/api/domain-list-verificationdnsrecords ; record shapes
    # https://learn.microsoft.com/graph/api/resources/domaindnstxtrecord and domaindnsmxrecord.
    def verification_records(self, req, d):
        failure = self.denied(req, DOMAIN_READ)
        if failure:
            return failure
        with self.emu.lock:
            dom, failure = self.find_domain(req, d)
            if failure:
                return failure
            code = dom['verificationCode']
            name = dom['id']
        records = [
            {'@odata.type': '#microsoft.graph.domainDnsTxtRecord',
             'id': stable_id(name, 'verify', 'txt'), 'isOptional': False, 'label': name,
             'recordType': 'Txt', 'supportedService': 'Email', 'ttl': 3600,
             'text': 'MS=' + code},
            {'@odata.type': '#microsoft.graph.domainDnsMxRecord',
             'id': stable_id(name, 'verify', 'mx'), 'isOptional': False, 'label': name,
             'recordType': 'Mx', 'supportedService': 'Email', 'ttl': 3600,
             'mailExchange': code + '.msv1.invalid', 'preference': 32767},
        ]
        return Response(200, self.records_body(records))

    # https://learn.microsoft.com/graph/api/domain-list-serviceconfigurationrecords ; shapes of
    # resources/domaindnsmxrecord, domaindnstxtrecord, domaindnscnamerecord, domaindnssrvrecord.
    def service_records(self, req, d):
        failure = self.denied(req, DOMAIN_READ)
        if failure:
            return failure
        with self.emu.lock:
            dom, failure = self.find_domain(req, d)
            if failure:
                return failure
            records = self.emu.service_records(dom)
        return Response(200, self.records_body(records))

    # https://learn.microsoft.com/graph/api/domain-verify : 200 + domain (availabilityStatus set)
    def verify_domain(self, req, d):
        failure = self.denied(req, DOMAIN_WRITE)
        if failure:
            return failure
        with self.emu.lock:
            dom, failure = self.find_domain(req, d)
            if failure:
                return failure
            if dom['isVerified']:
                return req.error(400, 'Request_BadRequest', 'Domain is already verified.')
            name, code = dom['id'], dom['verificationCode']
        if not self.emu.dns_has_verification(name, code):
            # Confirm-MgDomain / Graph answer 400 Request_BadRequest "Domain verification failed
            # with the following error: ..."; the text after the colon is our wording.
            return req.error(400, 'Request_BadRequest',
                             'Domain verification failed with the following error: Unable to '
                             "verify domain ownership: the DNS record 'MS=%s' (TXT) or '%s."
                             "msv1.invalid' (MX) was not found at '%s'. Add it and try again."
                             % (code, code, name))
        with self.emu.lock:
            dom['isVerified'] = True
            dom['availabilityStatus'] = 'AvailableImmediately'
            body = self.domain_resource(dom)
            dom['availabilityStatus'] = None  # only the verify response carries it
        body['@odata.context'] = self.root + '/$metadata#domains/$entity'
        return Response(200, body)

    # -- users ---------------------------------------------------------------------------------
    def find_user(self, req, key):
        user = self.emu.find_user(key)
        if user is None:
            return None, req.error(404, 'Request_ResourceNotFound', NOT_FOUND % key)
        return user, None

    @staticmethod
    def user_resource(user, select=None):
        """https://learn.microsoft.com/graph/api/resources/user : the default property set, or
        exactly the $select'ed properties (plus id, as Graph always returns it)."""
        names = USER_DEFAULT if not select else [s for s in select if s] + ['id']
        out = {}
        for name in names:
            for key in user:
                if key.lower() == name.lower():
                    out[key] = user[key]
                    break
            else:
                if name.lower() in (k.lower() for k in USER_DEFAULT):
                    out[name] = None
        return out

    def parse_filter(self, req, text):
        """A predicate for the $filter subset the collection uses: ``prop eq 'v'``,
        ``startswith(prop,'v')``, ``proxyAddresses/any(x:x eq 'v')``, joined by ``or``/``and``
        (https://learn.microsoft.com/graph/filter-query-parameter)."""
        clause = (r"\s*(?:(?P<prop>\w+)\s+eq\s+'(?P<v1>(?:[^']|'')*)'"
                  r"|startswith\(\s*(?P<sprop>\w+)\s*,\s*'(?P<v2>(?:[^']|'')*)'\s*\)"
                  r"|(?P<aprop>\w+)/any\(\s*(?P<var>\w+)\s*:\s*(?P=var)\s+eq\s+"
                  r"'(?P<v3>(?:[^']|'')*)'\s*\))\s*")
        parts = re.split(r'\s+(and|or)\s+', text.strip())
        tests, ops = [], []
        for i, part in enumerate(parts):
            if i % 2:
                ops.append(part)
                continue
            m = re.fullmatch(clause, part)
            if not m:
                return None, req.error(400, 'Request_UnsupportedQuery', 'Unsupported Query.')
            tests.append(self.clause_test(m))
        if any(t is None for t in tests):
            return None, req.error(400, 'Request_UnsupportedQuery', 'Unsupported Query.')

        def predicate(user):
            result = tests[0](user)
            for op, test in zip(ops, tests[1:]):
                result = (result and test(user)) if op == 'and' else (result or test(user))
            return result
        return predicate, None

    @staticmethod
    def clause_test(m):
        def value_of(user, prop):
            for key, val in user.items():
                if key.lower() == prop.lower():
                    return val
            return None
        if m.group('prop'):
            prop, want = m.group('prop'), m.group('v1').replace("''", "'").lower()
            return lambda u: str(value_of(u, prop) or '').lower() == want
        if m.group('sprop'):
            prop, want = m.group('sprop'), m.group('v2').replace("''", "'").lower()
            return lambda u: str(value_of(u, prop) or '').lower().startswith(want)
        prop, want = m.group('aprop'), m.group('v3').replace("''", "'").lower()
        return lambda u: any(str(v).lower() == want for v in (value_of(u, prop) or ()))

    # https://learn.microsoft.com/graph/api/user-list ; paging:
    # https://learn.microsoft.com/graph/paging ($top 1..999, default 100, @odata.nextLink)
    def list_users(self, req):
        failure = self.denied(req, USER_READ)
        if failure:
            return failure
        q = req.query
        try:
            top = int(q.get('$top', '100'))
        except ValueError:
            top = -1
        if not 1 <= top <= 999:
            return req.error(400, 'Request_UnsupportedQuery',
                             "Invalid page size specified: '%s'. Must be between 1 and 999 "
                             "inclusive." % q.get('$top'))
        skip = 0
        if '$skiptoken' in q:
            try:
                token = q['$skiptoken']
                skip = int(base64.urlsafe_b64decode(token + '=' * (-len(token) % 4)).decode()
                           .split(':', 1)[1])
            except (ValueError, IndexError):
                return req.error(400, 'Request_BadRequest',
                                 "Invalid value '%s' for $skiptoken." % q['$skiptoken'])
        predicate = None
        if q.get('$filter'):
            predicate, failure = self.parse_filter(req, q['$filter'])
            if failure:
                return failure
        select = [s.strip() for s in q['$select'].split(',')] if q.get('$select') else None
        with self.emu.lock:
            users = [u for u in self.emu.users if predicate is None or predicate(u)]
            page = [self.user_resource(u, select) for u in users[skip:skip + top]]
        body = {'@odata.context': self.root + '/$metadata#users', 'value': page}
        if q.get('$count', '').lower() == 'true':
            body['@odata.count'] = len(users)
        if skip + top < len(users):
            token = base64.urlsafe_b64encode(('X:%d' % (skip + top)).encode()).decode().rstrip('=')
            keep = [(k, v) for k, v in q.items() if k not in ('$skiptoken', '$top', '$count')]
            keep += [('$top', str(top)), ('$skiptoken', token)]
            body['@odata.nextLink'] = (self.root + '/users?'
                                       + urllib.parse.urlencode(keep, safe="$'(),:@",
                                                                quote_via=urllib.parse.quote))
        return Response(200, body)

    # https://learn.microsoft.com/graph/api/user-get
    def get_user(self, req, u):
        failure = self.denied(req, USER_READ)
        if failure:
            return failure
        select = ([s.strip() for s in req.query['$select'].split(',')]
                  if req.query.get('$select') else None)
        with self.emu.lock:
            user, failure = self.find_user(req, u)
            if failure:
                return failure
            body = self.user_resource(user, select)
        body['@odata.context'] = self.root + '/$metadata#users/$entity'
        return Response(200, body)

    # https://learn.microsoft.com/graph/api/user-get-mailboxsettings ; an account without an
    # Exchange Online mailbox gets 404 MailboxNotEnabledForRESTAPI (Exchange's error, as Graph
    # relays it); a missing permission is Exchange's 403 ErrorAccessDenied.
    def mailbox_settings(self, req, u):
        failure = self.denied(req, MAILBOX_SETTINGS, 'ErrorAccessDenied',
                              'Access is denied. Check credentials and try again.')
        if failure:
            return failure
        with self.emu.lock:
            user, failure = self.find_user(req, u)
            if failure:
                return failure
            if not user['_mailbox']:
                return req.error(404, 'MailboxNotEnabledForRESTAPI',
                                 'The mailbox is either inactive, soft-deleted, or is hosted '
                                 'on-premise.')
            uid = user['id']
            settings = json.loads(json.dumps(user['_mailboxSettings']))
        settings['@odata.context'] = "%s/$metadata#users('%s')/mailboxSettings" % (self.root, uid)
        return Response(200, settings)

    # https://learn.microsoft.com/graph/api/user-list-licensedetails
    def license_details(self, req, u):
        failure = self.denied(req, USER_READ)
        if failure:
            return failure
        with self.emu.lock:
            user, failure = self.find_user(req, u)
            if failure:
                return failure
            value = json.loads(json.dumps(user['_licenseDetails']))
            uid = user['id']
        return Response(200, {'@odata.context': "%s/$metadata#users('%s')/licenseDetails"
                                                % (self.root, uid), 'value': value})

    # https://learn.microsoft.com/graph/api/subscribedsku-list : the tenant's SKUs (the lab's
    # tenant holds every SKU of emulator.SKUS, 100 units each), the plans of each
    def subscribed_skus(self, req):
        failure = self.denied(req, ORGANIZATION_READ)
        if failure:
            return failure
        with self.emu.lock:
            used = {}
            for user in self.emu.users:
                for lic in user['assignedLicenses']:
                    used[lic['skuId']] = used.get(lic['skuId'], 0) + 1
        value = []
        for part, (sku_id, plans) in self.emu.skus.items():
            value.append({
                'accountName': 'Contoso Lab', 'accountId': self.emu.tenant_id,
                'appliesTo': 'User', 'capabilityStatus': 'Enabled',
                'consumedUnits': used.get(sku_id, 0),
                'id': '%s_%s' % (self.emu.tenant_id, sku_id), 'skuId': sku_id,
                'skuPartNumber': part, 'subscriptionIds': [stable_id(self.emu.tenant_id, 'sub',
                                                                     part)],
                'prepaidUnits': {'enabled': max(100, used.get(sku_id, 0)), 'suspended': 0,
                                 'warning': 0, 'lockedOut': 0},
                'servicePlans': [{'servicePlanId': pid, 'servicePlanName': name,
                                  'provisioningStatus': 'Success', 'appliesTo': 'User'}
                                 for pid, name in plans]})
        return Response(200, {'@odata.context': self.root + '/$metadata#subscribedSkus',
                              'value': value})

    # -- $batch --------------------------------------------------------------------------------
    # https://learn.microsoft.com/graph/json-batching : {"requests": [{id, method, url, headers,
    # body, dependsOn}]} -> 200 {"responses": [{id, status, headers, body}]}; at most 20 requests.
    def batch(self, req):
        body = req.body
        if not isinstance(body, dict) or not isinstance(body.get('requests'), list):
            return req.error(400, 'BadRequest', 'Invalid batch payload format.')
        items = body['requests']
        if len(items) > MAX_BATCH:
            return req.error(400, 'BadRequest',
                             'Too many requests in the batch. The maximum number of requests '
                             'in a batch is %d.' % MAX_BATCH)
        ids = [str(i.get('id')) for i in items if isinstance(i, dict)]
        if len(ids) != len(items) or len(set(ids)) != len(ids) or any(
                not i.get('id') or not i.get('method') or not i.get('url') for i in items):
            return req.error(400, 'BadRequest',
                             'Invalid batch payload format: every request needs a unique id, '
                             'a method and a url.')
        responses, status_by_id, log_items = [], {}, []
        for item in items:
            rid = str(item['id'])
            depends = [str(x) for x in item.get('dependsOn') or ()]
            if any(status_by_id.get(x, 0) >= 400 or x not in status_by_id for x in depends):
                resp = req.error(424, 'FailedDependency', 'Failed dependency.')
            else:
                resp = self.batch_item(req, item)
            status_by_id[rid] = resp.status
            headers = {'Content-Type': 'application/json'} if resp.body is not None else {}
            headers.update({k: v for k, v in resp.headers.items()
                            if k.lower() in ('retry-after', 'location', 'content-type')})
            out = {'id': rid, 'status': resp.status, 'headers': headers}
            if isinstance(resp.body, bytes):
                # A body that is not JSON travels base64-encoded in the JSON batch answer (as
                # Graph does for file content; see the emulator README).
                out['body'] = base64.b64encode(resp.body).decode('ascii')
            elif resp.body is not None:
                out['body'] = resp.body
            responses.append(out)
            log_items.append({'id': rid, 'method': item['method'].upper(), 'url': item['url'],
                              'status': resp.status})
        resp = Response(200, {'responses': responses})
        resp.batch_items = log_items
        return resp

    def batch_item(self, req, item):
        url = item['url']
        if url.lower().startswith(('http://', 'https://')):
            return req.error(400, 'BadRequest', 'Batch request urls must be relative.')
        split = urllib.parse.urlsplit('/' + url.lstrip('/'))
        path = split.path
        if path.lower().startswith('/v1.0/'):
            path = path[5:]
        query = dict(urllib.parse.parse_qsl(split.query, keep_blank_values=True))
        inner = GraphRequest(item['method'].upper(), path, query, item.get('body'),
                             dict(item.get('headers') or {}), req.claims, req.request_id,
                             req.client_request_id)
        if inner.path.lower() == '/$batch':
            return req.error(400, 'BadRequest', 'Nested batch requests are not supported.')
        return self.emu.answer_fault(self.emu.take_fault(inner.method, '/v1.0' + path), None,
                                     lambda: self.dispatch(inner),
                                     lambda fault: self.fault_response(inner, fault),
                                     self.root + '/' + url.lstrip('/'))

    @staticmethod
    def fault_response(req, fault):
        headers = dict(fault['headers'])
        if fault['retry_after'] is not None:
            headers['Retry-After'] = str(fault['retry_after'])
        if fault['content_type']:
            headers['Content-Type'] = fault['content_type']
        if fault['body'] is not None:
            return Response(fault['status'], fault['body'], headers)
        code, message = GRAPH_FAULTS.get(fault['status'], ('UnknownError', 'Injected fault.'))
        return req.error(fault['status'], code, message, headers)
