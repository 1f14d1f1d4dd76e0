# -*- coding: utf-8 -*-
# Copyright (c) exchangeonline.mail contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function
__metaclass__ = type


class ModuleDocFragment(object):

    # The attribute descriptions every module shares; modules give support and details.
    DOCUMENTATION = r'''
options: {}
attributes:
  check_mode:
    description: Can run in check_mode and return changed status prediction without modifying
      target.
  diff_mode:
    description: Will return details on what has changed (or possibly needs changing in
      check_mode), when in diff mode.
  idempotent:
    description: When run twice in a row outside check mode, with the same arguments, the second
      invocation indicates no change.
'''

    DNS = r'''
options: {}
attributes:
  action_group:
    description: Use C(group/exchangeonline.mail.dns) in C(module_defaults) to set defaults for
      this module.
    support: full
    membership:
      - exchangeonline.mail.dns
'''

    M365 = r'''
options: {}
attributes:
  action_group:
    description: Use C(group/exchangeonline.mail.m365) in C(module_defaults) to set defaults for
      this module.
    support: full
    membership:
      - exchangeonline.mail.m365
'''
