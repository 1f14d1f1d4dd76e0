# -*- coding: utf-8 -*-
# Copyright (c) exchangeonline.mail contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# Private to this collection: may change without notice.
"""Glue between the engines and Ansible: one place turns their errors into task failures, for
the module process and for the in-process path of the action plugins alike."""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import traceback
from typing import Any, Callable, Dict, Mapping, Optional, Tuple, TypeVar, Union

from ansible_collections.exchangeonline.mail.plugins.module_utils._errors import TaskError
from ansible_collections.exchangeonline.mail.plugins.module_utils._options import (
    ArgumentSpec,
    Range,
    check_options,
)

# The start of the message of an exception no engine expected: tests look for it.
UNEXPECTED = 'unexpected error'

Result = Dict[str, Any]
T = TypeVar('T')
# A module's work(params, check_mode, diff_mode) and input_failure(result, params).
ModuleWork = Callable[[Dict[str, Any], bool, bool], Result]
InputFailure = Callable[[Result, Dict[str, Any]], Result]
# A module's REQUIRES: the libraries' names, whether they imported, the import traceback.
Requires = Tuple[str, bool, Optional[str]]


def run_work(work: Callable[[], T]) -> Union[T, Result]:
    """``work()``'s result dict, or a failed result carrying the phase and the message."""
    try:
        return work()
    except TaskError as e:
        return e.result()
    except Exception as e:  # pylint: disable=broad-except
        # A bug, not the user's fault: say so, and keep the trace for -vvv and bug reports.
        return {'failed': True, 'changed': False, 'phase': 'internal',
                'msg': '%s (a bug in exchangeonline.mail; please report it with this message): '
                       '%s: %s' % (UNEXPECTED, type(e).__name__, str(e)[:500]),
                'exception': traceback.format_exc()}


def checked_work(work: ModuleWork, params: Dict[str, Any], check_mode: bool, diff_mode: bool,
                 argument_spec: ArgumentSpec,
                 limits: Mapping[str, Range]) -> Callable[[], Result]:
    """The work of a module call, after the option checks of _options."""
    def run() -> Result:
        check_options(params, argument_spec, limits)
        return work(params, check_mode, diff_mode)
    return run


def shaped_input_failure(result: Result, input_failure: Optional[InputFailure],
                         params: Dict[str, Any]) -> Result:
    """``result``, reshaped by the module's ``input_failure(result, params)`` when it is a
    failure of the option checks and the module has such a function."""
    if input_failure is not None and result.get('failed') and result.get('phase') == 'input':
        return input_failure(result, params)
    return result


def run_module(module: Any, work: ModuleWork, limits: Mapping[str, Range], requires: Requires,
               input_failure: Optional[InputFailure] = None) -> None:
    """A module's main(): fail naming the missing library when ``requires`` (the module's
    ``REQUIRES``: library names, whether they imported, the import traceback) says so, else run
    ``work(params, check_mode, diff_mode)`` and exit with its result; ``limits`` are the
    module's numeric ranges (see _options.check_options); ``input_failure`` gives a failure of
    those checks the module's result shape. ``module`` is the AnsibleModule (``Any``:
    ansible-core ships no type hints)."""
    from ansible.module_utils.basic import missing_required_lib
    libraries, available, import_error = requires
    if not available:
        module.fail_json(msg=missing_required_lib(libraries), exception=import_error)
    result = shaped_input_failure(
        run_work(checked_work(work, module.params, module.check_mode, module._diff,
                              module.argument_spec, limits)), input_failure, module.params)
    for warning in result.pop('warnings', []):
        module.warn(warning)
    if result.pop('failed', False):
        module.fail_json(**result)
    module.exit_json(**result)
