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

The in-process path gives what the module process gives: the task's ``environment:`` applies
(to the options' environment fallbacks and to msal, requests and their proxy settings) while
the options are checked and the work runs; the result carries ``warnings`` and
``deprecations`` (the argument spec's and the module's) and ``invocation`` as AnsibleModule
returns them on the ansible-core in use; values of ``no_log`` options are hidden in the whole
result. With ``-vvv`` each task prints which path ran it, and why.
"""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import contextlib
import importlib
import logging
import os
import sys
import warnings as python_warnings

from ansible import constants as C
from ansible.errors import AnsibleActionFail
from ansible.module_utils.common import warnings as module_warnings
from ansible.module_utils.common.arg_spec import ModuleArgumentSpecValidator
from ansible.module_utils.common.parameters import remove_values
from ansible.module_utils.errors import NoLogError, UnsupportedError
from ansible.plugins.action import ActionBase
from ansible.plugins.connection.local import Connection as LocalConnection
from ansible.utils.display import Display

display = Display()

IN_PROCESS = 'runs in this process'  # the start of the -vvv line of the in-process path
MODULE_PROCESS = 'runs as a module process'
# What interpreter discovery is asked with: the controller's own Python may run the work.
DISCOVERY = ('', 'auto', 'auto_silent', 'auto_legacy', 'auto_legacy_silent')
# The libraries whose log records a module process sends to its stderr, which Ansible drops on
# success: in this process they would reach the worker's stderr or ANSIBLE_LOG_PATH unredacted.
QUIET_LOGGERS = ('msal', 'urllib3', 'requests')


class InProcessAction(ActionBase):
    """Subclasses set MODULE: the module's FQCN, e.g. ``exchangeonline.mail.mail_dns``."""

    MODULE = None
    TRANSFERS_FILES = False

    def _module_code(self):
        """The module's Python module (its argument spec, limits and work), or None with a
        warning when it cannot be imported here: then the module process runs it (and reports
        the same import error if the collection is broken, or works where this controller
        differs from the module's interpreter)."""
        namespace, collection, name = self.MODULE.split('.')
        try:
            return importlib.import_module('ansible_collections.%s.%s.plugins.modules.%s'
                                           % (namespace, collection, name))
        except ImportError as e:
            display.warning('%s: the in-process path cannot import the module (%s: %s); it %s'
                            % (self.MODULE, type(e).__name__, e, MODULE_PROCESS))
            return None

    def _why_not_here(self, code, task_vars):
        """None when the module's work can run in this process, else why not."""
        if os.environ.get('EXO_MAIL_INPROCESS', '1') == '0':
            return 'EXO_MAIL_INPROCESS=0'
        if self._task.async_val:
            return 'async'
        if self._play_context.become:
            return 'become'
        # Exactly ansible.builtin.local: a connection derived from it may run commands elsewhere.
        if type(self._connection) is not LocalConnection:  # pylint: disable=unidiomatic-typecheck
            return 'connection %s' % getattr(self._connection, 'transport', '?')
        interpreter = self._python_interpreter(task_vars)
        if interpreter is not None:
            return 'ansible_python_interpreter is %s' % interpreter
        libraries, available, dummy = code.REQUIRES
        if not available:  # the module process says which library is missing, as a module does
            return '%s missing on the controller' % libraries
        return None

    def _python_interpreter(self, task_vars):
        """None when a module process would run this Python (the controller's, the usual
        ``{{ ansible_playbook_python }}``, or discovery); else the interpreter asked for: its
        user, namespace or libraries may differ, so the module process must run there."""
        try:
            wanted = C.config.get_config_value('INTERPRETER_PYTHON', variables=task_vars)
            wanted = str(self._templar.template(wanted) or '').strip()
        except Exception as e:  # pylint: disable=broad-except
            return 'not known here (%s)' % type(e).__name__
        if wanted in DISCOVERY or os.path.abspath(wanted) == os.path.abspath(sys.executable):
            return None
        return wanted

    def run(self, tmp=None, task_vars=None):
        result = super(InProcessAction, self).run(tmp, task_vars)
        del tmp
        code = self._module_code()
        if code is None:
            result.update(self._run_module_process(task_vars))
            return result
        # What the module process would be told: check and diff mode, and (ansible-core 2.19
        # and later) whether to return the invocation.
        flags = {}
        self._update_module_args(self.MODULE, flags, task_vars or {})
        environment = {}
        self._compute_environment_string(raw_environment_out=environment)
        result.update(self._run(code, task_vars, flags, environment))
        self.show_progress(result, task_vars)
        return result

    def _run(self, code, task_vars, flags, environment):
        """The result; the task's environment applies while the options are checked and the
        work runs here, never while a module process is started (for another connection it is
        the target's environment: a PATH or SSH_AUTH_SOCK meant for it must not reach ssh)."""
        from ansible_collections.exchangeonline.mail.plugins.module_utils._run import (
            shaped_input_failure)
        with task_environment(environment):
            checked = validate(self.MODULE, code, self._task.args)
        if checked.problem is not None:
            # Refused here for both paths: a NUL in an option would make the module process
            # fail in its syslog call before any check of ours could name the option.
            problem = shaped_input_failure(dict(checked.problem, phase='input'),
                                           getattr(code, 'input_failure', None),
                                           checked.params or self._task.args)
            return remove_values(problem, checked.no_log_values)
        why_not = self._why_not_here(code, task_vars or {})
        if why_not:
            display.vvv('%s: %s (%s)' % (self.MODULE, MODULE_PROCESS, why_not))
            return self._run_module_process(task_vars)
        display.vvv('%s: %s (connection local)' % (self.MODULE, IN_PROCESS))
        with task_environment(environment), quiet_libraries():
            outcome = run_here(code, checked.params, flags['_ansible_check_mode'],
                               flags['_ansible_diff'])
        # As AnsibleModule's exit_json and fail_json: the warnings and deprecations, then the
        # invocation (ansible-core 2.19 and later return it only when asked), values of no_log
        # options hidden everywhere.
        warnings = checked.warnings + outcome.pop('warnings', [])
        if warnings:
            outcome['warnings'] = warnings
        if checked.deprecations:
            outcome['deprecations'] = checked.deprecations
        if flags.get('_ansible_inject_invocation', True):
            outcome.setdefault('invocation', {'module_args': checked.params})
        return remove_values(outcome, checked.no_log_values)

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


@contextlib.contextmanager
def task_environment(environment):
    """The task's ``environment:`` in os.environ while the block runs, as the module process
    gets it (each value as text), the worker's own environment restored afterwards."""
    saved = dict((name, os.environ.get(name)) for name in environment)
    try:
        for name, value in environment.items():
            try:
                os.environ[str(name)] = str(value)
            except ValueError as e:  # a NUL: no process could be given it either
                raise AnsibleActionFail('environment: %s cannot be set (%s); remove the NUL '
                                        'character from the task\'s environment' % (name, e))
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


@contextlib.contextmanager
def quiet_libraries():
    """What a module process sends to the stderr Ansible drops stays out of sight here too:
    Python warnings (urllib3's for validate_certs: false) and the libraries' log records (msal
    logs a token endpoint's answer text at ERROR)."""
    loggers = [logging.getLogger(name) for name in QUIET_LOGGERS]
    saved = [(logger.propagate, logger.handlers[:]) for logger in loggers]
    sink = logging.NullHandler()
    try:
        for logger in loggers:
            logger.propagate = False
            logger.handlers = [sink]
        with python_warnings.catch_warnings():
            python_warnings.simplefilter('ignore')
            yield
    finally:
        for logger, (propagate, handlers) in zip(loggers, saved):
            logger.propagate = propagate
            logger.handlers = handlers


class Checked:
    """What validate() found: ``params`` (validated), ``no_log_values``, ``warnings`` and
    ``deprecations`` of the argument spec, and ``problem``: a failed result, or None."""

    def __init__(self, params=None, no_log_values=(), warnings=(), deprecations=(),
                 problem=None):
        self.params = params
        self.no_log_values = set(no_log_values)
        self.warnings = list(warnings)
        self.deprecations = list(deprecations)
        self.problem = problem


def validate(module_name, code, args):
    """The module's argument spec, then the collection's own option checks, as AnsibleModule
    and run_module do them (a :class:`Checked`)."""
    from ansible_collections.exchangeonline.mail.plugins.module_utils._run import run_work
    from ansible_collections.exchangeonline.mail.plugins.module_utils._options import (
        check_options, check_raw_args)

    kwargs = code.module_kwargs()
    spec = kwargs['argument_spec']
    # The no_log values as given (a list or dict value is hidden item by item before the spec
    # turns it into one text), and below as validated (defaults, environment fallbacks).
    given = no_log_values(spec, dict(args))
    problem = run_work(lambda: check_raw_args(dict(args), spec))
    if problem:
        return Checked(no_log_values=given, problem=problem)
    validator = ModuleArgumentSpecValidator(
        spec, kwargs.get('mutually_exclusive'), kwargs.get('required_together'),
        kwargs.get('required_one_of'), kwargs.get('required_if'), kwargs.get('required_by'))
    # ModuleArgumentSpecValidator records its warnings and deprecations (an option and its
    # alias both set, a deprecated option) where AnsibleModule collects a module's: read the
    # new ones back. (ansible-core 2.19 and later show them through the task's warning
    # context when they are recorded in the controller, and record nothing there.)
    seen = (len(module_warnings.get_warning_messages()),
            len(module_warnings.get_deprecation_messages()))
    try:
        validation = validator.validate(dict(args))
    except Exception as e:  # pylint: disable=broad-except
        # ansible-core's own validator failed on a value it should have refused: name the
        # option whose value alone makes it fail (one small check per option given)
        culprit = None
        for name in sorted(k for k in args if k in spec):
            try:
                ModuleArgumentSpecValidator({name: spec[name]}).validate({name: args[name]})
            except Exception:  # pylint: disable=broad-except
                culprit = name
                break
        return Checked(no_log_values=given, problem={
            'failed': True, 'changed': False, 'phase': 'input',
            'msg': 'input: ansible-core could not check the options of %s%s (%s: %s); check the '
                   'type of each option against the documentation'
                   % (module_name, ', at option %s' % culprit if culprit else '',
                      type(e).__name__, remove_values(str(e), given)[:200])})
    warnings = list(module_warnings.get_warning_messages()[seen[0]:])
    deprecations = [dict(d) for d in module_warnings.get_deprecation_messages()[seen[1]:]]
    if validation.error_messages:
        errors = list(validation.errors)
        # ansible-core reports a value it cannot scan for no_log first, with a message that
        # names no option; the error that names it follows.
        named = [e for e in errors if not isinstance(e, NoLogError)] or errors
        msg = '; '.join(e.msg for e in named)
        if isinstance(named[0], UnsupportedError):  # as AnsibleModule says it
            msg = 'Unsupported parameters for (%s) module: %s' % (module_name, msg)
        hidden = given | no_log_values(spec, validation.validated_parameters or {})
        return Checked(no_log_values=hidden,
                       problem={'failed': True, 'changed': False, 'msg': msg})
    params = validation.validated_parameters
    hidden = given | no_log_values(spec, params)
    checked = Checked(params, hidden, warnings, deprecations)
    checked.problem = run_work(lambda: check_options(params, spec, code.LIMITS)) or None
    return checked


def no_log_values(argument_spec, params):
    """The texts to hide from the result: the value of each ``no_log`` option given or filled
    in from a default or environment fallback (every string and number inside a list or dict
    value), in sub-options too; as AnsibleModule finds them (a unit test compares the two on
    each ansible-core version)."""
    found = set()
    for name, option in argument_spec.items():
        value = params.get(name) if isinstance(params, dict) else None
        if value is None:
            continue
        if option.get('no_log'):
            found.update(_texts(value))
        if option.get('options'):
            for item in value if isinstance(value, list) else [value]:
                if isinstance(item, dict):
                    found.update(no_log_values(option['options'], item))
    return found


def _texts(value):
    """Each non-empty string and each number inside ``value``, as text."""
    if isinstance(value, bytes):
        value = value.decode('utf-8', 'surrogateescape')
    if isinstance(value, str):
        return [value] if value else []
    if isinstance(value, dict):
        value = list(value.values())
    if isinstance(value, (list, tuple, set, frozenset)):
        return [text for item in value for text in _texts(item)]
    if isinstance(value, bool):
        return []
    if isinstance(value, (int, float)):
        return [str(value)]
    return []


def run_here(code, params, check_mode, diff_mode):
    """The module's result dict, computed in this process."""
    from ansible_collections.exchangeonline.mail.plugins.module_utils._run import (
        checked_work, run_work, shaped_input_failure)
    return shaped_input_failure(
        run_work(checked_work(code.work, params, check_mode, diff_mode,
                              code.module_kwargs()['argument_spec'], code.LIMITS)),
        getattr(code, 'input_failure', None), params)
