# -*- coding: utf-8 -*-
# Copyright (c) exchangeonline.mail contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# Private to this collection: may change without notice.
"""The one error base of the collection's engines.

Every failure an engine expects is a :class:`TaskError`: the **phase** it happened in (``input``,
``plan``, ``read``, ``update``, ``token``, ``delivery`` ...), a **message** for the user that says
what the server answered and what to do, and **fields**: result keys the failed task still
carries (``rcode``, ``status``, ``request_id``, ``before`` ...). ``str()`` is always
``"<phase>: <message>"``; :meth:`TaskError.result` is the failed task's result, the only way an
error becomes one (``_run.run_engine`` calls it for the module process and the in-process path
alike). Anything else an engine raises is a bug and is reported as one.
"""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

from typing import Any, Dict, Mapping, Optional


class TaskError(Exception):
    """An expected failure: ``phase``, ``message`` and the result ``fields`` it carries."""

    # The phase of an instance made without one; subclasses name their usual phase.
    default_phase = 'internal'

    def __init__(self, message: str, phase: Optional[str] = None,
                 fields: Optional[Mapping[str, Any]] = None) -> None:
        self.phase = phase or self.default_phase
        self.message = message
        self.fields = dict(fields or {})
        super(TaskError, self).__init__('%s: %s' % (self.phase, message))

    def result(self) -> Dict[str, Any]:
        """The failed task's result: ``msg`` (``str(self)``), ``phase``, ``changed: false`` and
        the fields (which may override ``changed``, for instance when an outcome is unknown)."""
        result = {'failed': True, 'changed': False, 'msg': str(self), 'phase': self.phase}
        result.update(self.fields)
        return result


class InputError(TaskError):
    """Options the collection cannot work with (phase ``input``), or data it refuses to touch
    (phase ``plan``). Raised before anything is changed."""

    default_phase = 'input'
