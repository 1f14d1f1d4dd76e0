# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Test-only callback: appends every task result as one JSON line to $EXO_RESULT_LOG."""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

DOCUMENTATION = r'''
name: result_log
type: aggregate
short_description: Write task results to a JSON-lines file for the lab's tests
description:
  - Test-only. Appends each task result to the file named by E(EXO_RESULT_LOG).
options: {}
'''

import json
import os

from ansible.plugins.callback import CallbackBase


class CallbackModule(CallbackBase):
    CALLBACK_VERSION = 2.0
    CALLBACK_TYPE = 'aggregate'
    CALLBACK_NAME = 'result_log'
    CALLBACK_NEEDS_ENABLED = False

    def _log(self, result, status):
        path = os.environ.get('EXO_RESULT_LOG')
        if not path:
            return
        entry = {'host': result._host.get_name(), 'task': result._task.get_name(),
                 'status': status, 'result': result._result}
        with open(path, 'a') as f:
            f.write(json.dumps(entry, default=str) + '\n')

    def v2_runner_on_ok(self, result):
        self._log(result, 'ok')

    def v2_runner_on_failed(self, result, ignore_errors=False):
        self._log(result, 'failed')

    def v2_runner_on_skipped(self, result):
        self._log(result, 'skipped')
