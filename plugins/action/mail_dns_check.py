# -*- coding: utf-8 -*-
# Copyright (c) exchangeonline.mail contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function
__metaclass__ = type

from ansible import constants as C

from ansible_collections.exchangeonline.mail.plugins.plugin_utils._inprocess import (
    InProcessAction,
    display,
)


class ActionModule(InProcessAction):
    MODULE = 'exchangeonline.mail.mail_dns_check'

    def show_progress(self, result, task_vars):
        """In a task that repeats (until/retries), each failed round prints one line before
        Ansible's "FAILED - RETRYING": which servers are behind and what they serve. On stderr,
        as Ansible's warnings, so a machine-readable stdout callback stays intact."""
        if self.retried() and result.get('failed') and result.get('phase') == 'check' \
                and result.get('summary'):
            display.display('[%s] %s' % (task_vars.get('inventory_hostname'), result['summary']),
                            color=C.COLOR_DEBUG, stderr=True)
