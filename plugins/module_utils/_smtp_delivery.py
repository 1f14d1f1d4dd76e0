# -*- coding: utf-8 -*-
# Copyright (c) exchangeonline.mail contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# Private to this collection: may change without notice.
"""Delivery proof of a test-send: the message, found by its Message-ID through Microsoft Graph
in the recipient mailbox's Inbox or Junk Email, addressed to one of its recipients."""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import time
from typing import Any, Callable, Dict, List, Optional, Tuple

from ansible_collections.exchangeonline.mail.plugins.module_utils._poll import poll
from ansible_collections.exchangeonline.mail.plugins.module_utils._smtp_hints import SmtpFailure

# Where a delivered message is looked for (well-known folder names of Graph): the Inbox, then
# Junk Email (a message filed as spam was delivered too; the result names the folder).
DELIVERY_FOLDERS = ('inbox', 'junkemail')


class DeliveryProof(object):
    """The delivery phase of SmtpTest (in _smtp_test)."""

    # SmtpTest's state and its identity() (set in its __init__ and defined there), declared
    # for the type checker: annotations only, nothing here at run time
    params: Dict[str, Any]
    result: Dict[str, Any]
    header_recipients: List[str]
    identity: Callable[[], Any]

    # -- delivery ---------------------------------------------------------------------------
    def confirm(self, message_id: str) -> None:
        """Poll the mailbox's Inbox and Junk Email for the message (folder-scoped queries: the
        sender's Sent Items copy of a message to itself has the same internetMessageId) until
        one addressed to a recipient of the message is there, or the timeout."""
        from ansible_collections.exchangeonline.mail.plugins.module_utils._graph import (
            GraphClient, GraphError, path_segment)
        from ansible_collections.exchangeonline.mail.plugins.module_utils._identity import (
            IdentityError)
        spec = self.params['confirm_delivery']
        mailbox = spec.get('mailbox') or self.params['to'][0]
        segment = path_segment(mailbox, 'confirm_delivery.mailbox')
        timeout, interval = spec.get('timeout'), spec.get('interval')
        accepted = time.monotonic()
        self.result['delivered'] = False
        query = {'$filter': "internetMessageId eq '%s'" % message_id.replace("'", "''"),
                 '$select': 'id,internetMessageId,receivedDateTime,subject,parentFolderId,'
                            'toRecipients,ccRecipients,bccRecipients',
                 '$top': '10'}
        folders = list(DELIVERY_FOLDERS)
        try:
            graph = GraphClient(self.identity(), phase='delivery')

            def attempt() -> Tuple[bool, bool]:
                """One look in each folder, as poll's (done, value): (True, True) once the
                message is found, (False, False) while it is not (poll returns that value)."""
                for folder in list(folders):
                    try:
                        found = graph.get('/users/%s/mailFolders/%s/messages'
                                          % (segment, folder), params=query,
                                          permission='Mail.ReadBasic.All')
                    except GraphError as e:
                        if e.status != 404 or e.code != 'ErrorItemNotFound':
                            raise
                        if folder == 'inbox':
                            raise SmtpFailure('delivery', str(e), hint=(
                                'the mailbox %s has no Inbox that Graph can read: give '
                                'confirm_delivery.mailbox as a user or shared mailbox of '
                                'Exchange Online' % mailbox))
                        folders.remove(folder)  # no such folder: the Inbox is proof enough
                        self.result.setdefault('warnings', []).append(
                            'The mailbox %s has no Junk Email folder (Graph answered 404 '
                            'ErrorItemNotFound); only its Inbox is looked in.' % mailbox)
                        continue
                    item = self.delivered_item(found.get('value') or [], message_id, mailbox)
                    if item is not None:
                        self.result.update(delivered=True, delivered_folder=folder,
                                           delivered_message=item, delivery_ms=int(
                                               (time.monotonic() - accepted) * 1000))
                        if folder == 'junkemail':
                            self.result.setdefault('warnings', []).append(
                                'The message was delivered to Junk Email of %s, not to the '
                                'Inbox: check the sender domain\'s SPF, DKIM and DMARC and the '
                                'anti-spam policies.' % mailbox)
                        return True, True
                return False, False

            # A look every interval (up to 10 % earlier or later), the last at the timeout.
            delivered = poll(attempt, timeout, interval=interval, max_interval=interval,
                             jitter=0.1)[0]
            if not delivered:
                raise SmtpFailure(
                    'delivery', 'the message %s was accepted but did not arrive in the Inbox '
                    'or Junk Email of %s within %s s' % (message_id, mailbox, timeout),
                    hint='look it up in the message trace of the Exchange admin centre (a '
                         'quarantined message, or one an inbox rule moved to another '
                         'folder, is not found here); raise confirm_delivery.timeout if '
                         'delivery is slow')
        except IdentityError as e:
            raise SmtpFailure('delivery', str(e))
        except GraphError as e:
            raise SmtpFailure('delivery', str(e))

    def delivered_item(self, items: Any, message_id: str,
                       mailbox: str) -> Optional[Dict[str, Any]]:
        """The first of ``items`` that is this message as a recipient got it: the same
        internetMessageId, and one of the message's recipients listed (the To: and Cc: of the
        message sent, the envelope recipients, the mailbox looked in). Every copy shows the
        To: and Cc: of the message, also a Bcc or envelope-only recipient's, so an item without
        recipients counts only when the message had no To: or Cc: (headers replaced them)."""
        ours = {a.lower() for a in self.params['to'] + self.header_recipients + [mailbox]}
        for item in items if isinstance(items, list) else []:
            if not isinstance(item, dict) or item.get('internetMessageId') != message_id:
                continue
            listed = {str(((r or {}).get('emailAddress') or {}).get('address') or '').lower()
                      for key in ('toRecipients', 'ccRecipients', 'bccRecipients')
                      for r in item.get(key) or () if isinstance(r, dict)} - {''}
            if listed & ours or not listed and not self.header_recipients:
                return item
        return None
