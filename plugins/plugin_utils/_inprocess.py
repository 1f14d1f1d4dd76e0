# -*- coding: utf-8 -*-
# Copyright (c) exchangeonline.mail contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# Private to this collection: may change without notice.
"""Action plugin base: run a module's work inside the worker process for ``connection: local``.

The collection's DNS and Microsoft 365 modules only talk to network services, and the
recommended inventory is one ``connection: local`` host per domain or tenant. For those tasks
the module's own ``work()`` runs in the worker process with the module's own argument spec,
which saves the module subprocess (about 0.2 s of Python start-up and imports per task). Any
other connection, ``become``, ``async``, a controller without the module's Python requirements,
or ``EXO_MAIL_INPROCESS=0`` runs the module the ordinary way.
"""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import importlib
import os

from ansible.module_utils.common.arg_spec import ArgumentSpecValidator
from ansible.module_utils.common.parameters import remove_values
from ansible.module_utils.errors import UnsupportedError
from ansible.plugins.action import ActionBase
from ansible.utils.display import Display

display = Display()

LOCAL_CONNECTIONS = ('local', 'ansible.builtin.local')


class InProcessAction(ActionBase):
    """Subclasses set MODULE: the module's FQCN, e.g. ``exchangeonline.mail.mail_dns``."""

    MODULE = None
    TRANSFERS_FILES = False

    def _module_code(self):
        """The module's Python module when it can run here, else None."""
        if os.environ.get('EXO_MAIL_INPROCESS', '1') == '0':
            return None
        if self._task.async_val or self._play_context.become:
            return None
        if getattr(self._connection, '_load_name', None) not in LOCAL_CONNECTIONS:
            return None
        namespace, collection, name = self.MODULE.split('.')
        try:
            code = importlib.import_module('ansible_collections.%s.%s.plugins.modules.%s'
                                           % (namespace, collection, name))
        except ImportError:
            return None
        if getattr(code, 'HAS_DNSPYTHON', True) is False or \
                getattr(code, 'HAS_M365_LIBS', True) is False:
            return None  # the module process reports the missing library
        return code

    def run(self, tmp=None, task_vars=None):
        result = super(InProcessAction, self).run(tmp, task_vars)
        del tmp
        code = self._module_code()
        if code is None:
            result.update(self._execute_module(module_name=self.MODULE,
                                               module_args=self._task.args,
                                               task_vars=task_vars))
            return result

        from ansible_collections.exchangeonline.mail.plugins.module_utils._run import (
            run_work)

        kwargs = code.module_kwargs()
        validator = ArgumentSpecValidator(
            kwargs['argument_spec'], kwargs.get('mutually_exclusive'),
            kwargs.get('required_together'), kwargs.get('required_one_of'),
            kwargs.get('required_if'), kwargs.get('required_by'))
        validation = validator.validate(dict(self._task.args))
        no_log_values = validation._no_log_values
        if validation.error_messages:
            msg = validation.errors.msg
            if isinstance(validation.errors[0], UnsupportedError):  # as AnsibleModule says it
                msg = 'Unsupported parameters for (%s) module: %s' % (self.MODULE, msg)
            result.update(failed=True, changed=False, msg=msg)
            return remove_values(result, no_log_values)
        check_mode = bool(self._play_context.check_mode)
        diff_mode = bool(self._play_context.diff)
        outcome = run_work(lambda: code.work(validation.validated_parameters, check_mode,
                                             diff_mode))
        for warning in outcome.pop('warnings', []):
            display.warning(remove_values(warning, no_log_values))
        result.update(outcome)
        return remove_values(result, no_log_values)
