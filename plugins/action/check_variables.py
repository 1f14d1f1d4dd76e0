# -*- coding: utf-8 -*-
# Copyright (c) exchangeonline.mail contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function
__metaclass__ = type

from ansible.module_utils.parsing.convert_bool import boolean
from ansible.plugins.action import ActionBase

from ansible_collections.exchangeonline.mail.plugins.plugin_utils._variables import check_host


class ActionModule(ActionBase):
    """Check the host's variables (see the module exchangeonline.mail.check_variables)."""

    TRANSFERS_FILES = False
    _VALID_ARGS = frozenset(('playbook', 'required'))

    def run(self, tmp=None, task_vars=None):
        result = super(ActionModule, self).run(tmp, task_vars)
        del tmp
        playbook = self._task.args.get('playbook')
        required = boolean(self._task.args.get('required', True), strict=False)
        host = task_vars['inventory_hostname']
        # The host's own variables (inventory, extra vars, facts), not the play's.
        names = [str(n) for n in task_vars['hostvars'].raw_get(host)]

        def value(name):
            return self._templar.template(task_vars[name])

        problems, warnings, defaults = check_host(host, playbook, names, value,
                                                  required=required)
        result.update(changed=False, defaults=defaults,
                      checked=sorted(n for n in names if n.startswith('exo_')),
                      ansible_facts={'exchangeonline_mail_defaults': defaults})
        if warnings:
            result['warnings'] = warnings
        if problems:
            # the defaults are for the tasks that follow, which do not run: not in the way of
            # the message
            del result['defaults'], result['ansible_facts']
            result.update(failed=True, problems=problems, msg=(
                'The variables of %s have %d problem%s, so nothing was changed: %s' % (
                    host, len(problems), '' if len(problems) == 1 else 's',
                    ' '.join('(%d) %s%s' % (i, p, '' if p.endswith(('.', '?')) else '.')
                             for i, p in enumerate(problems, 1)))))
        else:
            result['msg'] = '%s: %d exo_* variable(s) checked' % (host, len(result['checked']))
        return result
