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
from ansible.module_utils.errors import NoLogError, UnsupportedError
from ansible.plugins.action import ActionBase
from ansible.utils.display import Display

display = Display()

LOCAL_CONNECTIONS = ('local', 'ansible.builtin.local')


class InProcessAction(ActionBase):
    """Subclasses set MODULE: the module's FQCN, e.g. ``exchangeonline.mail.mail_dns``."""

    MODULE = None
    TRANSFERS_FILES = False

    def _module_code(self):
        """The module's Python module (its argument spec, limits and work), or None when it
        cannot even be imported here (the module process then reports why)."""
        namespace, collection, name = self.MODULE.split('.')
        try:
            return importlib.import_module('ansible_collections.%s.%s.plugins.modules.%s'
                                           % (namespace, collection, name))
        except ImportError:
            return None

    def _runs_here(self, code):
        """True when the module's work can run in this process."""
        if os.environ.get('EXO_MAIL_INPROCESS', '1') == '0':
            return False
        if self._task.async_val or self._play_context.become:
            return False
        if getattr(self._connection, '_load_name', None) not in LOCAL_CONNECTIONS:
            return False
        return getattr(code, 'HAS_DNSPYTHON', True) is not False and \
            getattr(code, 'HAS_M365_LIBS', True) is not False  # else the module process says so

    def run(self, tmp=None, task_vars=None):
        from ansible_collections.exchangeonline.mail.plugins.module_utils._run import (
            shaped_input_failure)
        result = super(InProcessAction, self).run(tmp, task_vars)
        del tmp
        code = self._module_code()
        if code is None:
            result.update(self._run_module_process(task_vars))
            return result
        params, no_log_values, problem = validate(self.MODULE, code, self._task.args)
        if problem is not None:
            problem = shaped_input_failure(dict(problem, phase='input'),
                                           getattr(code, 'input_failure', None),
                                           params or self._task.args)
            # Refused here for both paths: a NUL in an option would make the module process
            # fail in its syslog call before any check of ours could name the option.
            result.update(problem)
            return remove_values(result, no_log_values)
        if not self._runs_here(code):
            result.update(self._run_module_process(task_vars))
            self.show_progress(result, task_vars)
            return result
        outcome = run_here(code, params, bool(self._play_context.check_mode),
                           bool(self._play_context.diff))
        for warning in outcome.pop('warnings', []):
            display.warning(remove_values(warning, no_log_values))
        result.update(outcome)
        result = remove_values(result, no_log_values)
        self.show_progress(result, task_vars)
        return result

    def _run_module_process(self, task_vars):
        # A copy: _execute_module adds Ansible's internal _ansible_* keys to the dict it gets,
        # and the task's own args are used again by the next try of an until/retries loop.
        return self._execute_module(module_name=self.MODULE, module_args=dict(self._task.args),
                                    task_vars=task_vars)

    def retried(self):
        """True when this task repeats until a condition holds (until, or retries)."""
        return bool(self._task.until) or bool(getattr(self._task, 'retries', None))

    def show_progress(self, result, task_vars):
        """Called with the result of each call, on both paths; subclasses may print a line."""


def validate(module_name, code, args):
    """(validated params, no_log values, failed result or None): the module's argument spec,
    then the collection's own option checks, as AnsibleModule and run_module would do them."""
    from ansible_collections.exchangeonline.mail.plugins.module_utils._run import run_work
    from ansible_collections.exchangeonline.mail.plugins.module_utils._options import (
        check_options, check_raw_args)

    kwargs = code.module_kwargs()
    problem = run_work(lambda: check_raw_args(dict(args), kwargs['argument_spec']))
    if problem:
        return None, [], problem
    validator = ArgumentSpecValidator(
        kwargs['argument_spec'], kwargs.get('mutually_exclusive'),
        kwargs.get('required_together'), kwargs.get('required_one_of'),
        kwargs.get('required_if'), kwargs.get('required_by'))
    try:
        validation = validator.validate(dict(args))
    except Exception as e:  # pylint: disable=broad-except
        # ansible-core's own validator failed on a value it should have refused
        return None, [], {'failed': True, 'changed': False, 'phase': 'input',
                          'msg': 'input: ansible-core could not check the options of %s (%s: %s); '
                                 'check the type of each option against the documentation'
                                 % (module_name, type(e).__name__, str(e)[:200])}
    no_log_values = validation._no_log_values
    if validation.error_messages:
        errors = list(validation.errors)
        # ansible-core reports a value it cannot scan for no_log first, with a message that
        # names no option; the error that names it follows.
        named = [e for e in errors if not isinstance(e, NoLogError)] or errors
        msg = '; '.join(e.msg for e in named)
        if isinstance(named[0], UnsupportedError):  # as AnsibleModule says it
            msg = 'Unsupported parameters for (%s) module: %s' % (module_name, msg)
        return None, no_log_values, {'failed': True, 'changed': False, 'msg': msg}
    params = validation.validated_parameters
    outcome = run_work(lambda: check_options(params, kwargs['argument_spec'], code.LIMITS))
    if outcome:
        return params, no_log_values, outcome
    return params, no_log_values, None


def run_here(code, params, check_mode, diff_mode):
    """The module's result dict, computed in this process."""
    from ansible_collections.exchangeonline.mail.plugins.module_utils._run import (
        checked_work, run_work, shaped_input_failure)
    return shaped_input_failure(
        run_work(checked_work(code.work, params, check_mode, diff_mode,
                              code.module_kwargs()['argument_spec'], code.LIMITS)),
        getattr(code, 'input_failure', None), params)
