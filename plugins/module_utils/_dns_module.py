# -*- coding: utf-8 -*-
# Copyright (c) exchangeonline.mail contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# Private to this collection: may change without notice.
"""Glue between the DNS engines and AnsibleModule: one place turns errors into fail_json."""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

from ansible_collections.exchangeonline.mail.plugins.module_utils._records import RecordError
from ansible_collections.exchangeonline.mail.plugins.module_utils._rfc2136 import DnsError


def run_module(module, work):
    """Run ``work()`` (returns the result dict; may raise RecordError/DnsError) and exit."""
    try:
        result = work()
    except RecordError as e:
        module.fail_json(msg='%s: %s' % (e.phase, e), phase=e.phase, changed=False)
    except DnsError as e:
        module.fail_json(msg=str(e), phase=e.phase, rcode=e.rcode, changed=False)
    for warning in result.pop('warnings', []):
        module.warn(warning)
    module.exit_json(**result)
