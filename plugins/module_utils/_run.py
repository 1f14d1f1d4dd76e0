# -*- coding: utf-8 -*-
# Copyright (c) exchangeonline.mail contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# Private to this collection: may change without notice.
"""Glue between the engines and Ansible: one place turns their errors into task failures, for
the module process and for the in-process path of the action plugins alike."""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

from ansible_collections.exchangeonline.mail.plugins.module_utils._graph import GraphError
from ansible_collections.exchangeonline.mail.plugins.module_utils._identity import IdentityError
from ansible_collections.exchangeonline.mail.plugins.module_utils._records import RecordError
from ansible_collections.exchangeonline.mail.plugins.module_utils._rfc2136 import DnsError


def run_work(work):
    """``work()``'s result dict, or a failed result carrying the phase and the message."""
    try:
        return work()
    except RecordError as e:
        return {'failed': True, 'msg': '%s: %s' % (e.phase, e), 'phase': e.phase,
                'changed': False}
    except DnsError as e:
        return {'failed': True, 'msg': str(e), 'phase': e.phase, 'rcode': e.rcode,
                'changed': False}
    except IdentityError as e:
        return {'failed': True, 'msg': str(e), 'phase': e.phase, 'aadsts': e.aadsts,
                'changed': False}
    except GraphError as e:
        return {'failed': True, 'msg': str(e), 'phase': e.phase, 'status': e.status,
                'code': e.code, 'request_id': e.request_id, 'changed': False}


def run_module(module, work):
    """Run ``work()`` inside an AnsibleModule and exit with its result."""
    result = run_work(work)
    for warning in result.pop('warnings', []):
        module.warn(warning)
    if result.pop('failed', False):
        module.fail_json(**result)
    module.exit_json(**result)
