# -*- coding: utf-8 -*-
# Copyright (c) exchangeonline.mail contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# Private to this collection: may change without notice.
"""The Exchange Online admin REST endpoint (``/adminapi/beta/{tenant}/InvokeCommand``).

Graph has no protocol switches (POP, IMAP, SMTP AUTH), so these cmdlets go through the endpoint
the ExchangeOnlineManagement module uses. It is undocumented: everything that knows its shape
lives in this file, so it can be swapped for another transport.
"""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

from ansible_collections.exchangeonline.mail.plugins.module_utils._graph import (
    GraphClient,
    _error_fields,
)
from ansible_collections.exchangeonline.mail.plugins.module_utils._identity import EXCHANGE

ANCHOR = 'APP:SystemMailbox{bb558c35-97f1-4cb9-8ff7-d53741dc928c}@%s'
PERMISSION = 'Exchange.ManageAsApp (plus an Exchange administrator role for the app)'
PAGE_SIZE = 1000


class ExoAdminClient(GraphClient):
    """InvokeCommand with the Graph client's retries, token refresh and error handling."""

    service = 'Exchange Online'
    option = 'exo_endpoint'

    def __init__(self, identity, **kwargs):
        kwargs.setdefault('phase', 'exchange')
        base = '%s/adminapi/beta/%s' % (identity.endpoints[EXCHANGE], identity.tenant_id)
        super(ExoAdminClient, self).__init__(identity, resource=EXCHANGE, base=base, **kwargs)

    @staticmethod
    def error_fields(body):
        """Cmdlet errors carry a generic error.message ("Error executing cmdlet"); the text is in
        details[0].message or innererror.internalexception.message, after the last '|'
        ("Ex6F9304|Microsoft.Exchange...ManagementObjectNotFoundException|The operation...")."""
        code, message, request_id, date = _error_fields(body)
        err = body.get('error') if isinstance(body, dict) else None
        if isinstance(err, dict):
            details = err.get('details') if isinstance(err.get('details'), list) else []
            inner = err.get('innererror') or err.get('innerError')
            internal = inner.get('internalexception') if isinstance(inner, dict) else None
            texts = [d.get('message') for d in details if isinstance(d, dict)]
            texts.append(internal.get('message') if isinstance(internal, dict) else None)
            for text in texts:
                if text and isinstance(text, str):
                    message = '%s: %s' % (message, text.rsplit('|', 1)[-1].strip()[:600])
                    break
        return code, message, request_id, date

    @staticmethod
    def service_hint(status, code, message):
        """Exchange Online answers 401 "User is not allowed to call <cmdlet>" to an app that has
        Exchange.ManageAsApp but no Exchange role that holds the cmdlet (RBAC)."""
        if status == 401 and 'not allowed to call' in (message or ''):
            return ('the app\'s service principal has no Exchange Online role that holds this '
                    'cmdlet: register it in Exchange (New-ServicePrincipal) and add it to a role '
                    'group with the roles the cmdlets need (View-Only Recipients and View-Only '
                    'Configuration to read, Mail Recipients for Set-CASMailbox, Organization '
                    'Transport Settings for Set-TransportConfig), or give it the Exchange '
                    'Administrator role')
        return None

    def invoke(self, cmdlet, parameters=None, phase=None, page_size=PAGE_SIZE, check=None):
        """Every object the cmdlet returns, following @odata.nextLink (the same POST again, on
        this endpoint only, within the paging bounds); ``check(object)`` says what is wrong with
        one object (None: nothing)."""
        headers = {'X-AnchorMailbox': ANCHOR % self.identity.tenant_id,
                   'Prefer': 'odata.maxpagesize=%d' % page_size}
        body = {'CmdletInput': {'CmdletName': cmdlet, 'Parameters': parameters or {}}}
        phase = phase or cmdlet

        def fetch(url, first):
            answer = self.request('POST', url, json=body, headers=headers, phase=phase,
                                  permission=PERMISSION)[1]
            if 'value' not in answer and not cmdlet.lower().startswith('get-'):
                # a cmdlet that returns nothing: how the endpoint says so is not documented
                # (the lab answers "value": []), so an object without "value" is taken as none
                answer = dict(answer, value=[])
            return answer
        return self.collect(fetch, self.base + '/InvokeCommand', phase, 'POST', check)
