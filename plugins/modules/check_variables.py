#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright (c) exchangeonline.mail contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function
__metaclass__ = type

DOCUMENTATION = r'''
module: check_variables
short_description: Check a host's variables against what the collection's playbooks and roles take
version_added: 0.1.0
description:
  - "The first task of every playbook of the collection. It fails, before anything changes, when
    one of the host's variables (inventory, group and extra variables) is a typo or has a wrong
    value, and names the closest known name, for example
    C(exo_patern: unknown variable; did you mean exo_pattern?)."
  - "Every C(exo_*) variable must be one of the playbooks' variables, which are listed with
    their sources in C(playbooks/vars/exo_variables.yml) (and described in the README). A value
    is checked against the type, choices and number range of the module or role option it is
    for (C(exo_ttl) as O(exchangeonline.mail.mail_dns#module:ttl))."
  - The keys of the dict variables are checked too; C(exo_dns) takes the options of
    C(group/exchangeonline.mail.dns), C(exo_m365) those of C(group/exchangeonline.mail.m365),
    C(exo_protocols) and C(exo_smtp_test) the variables of the roles
    exchangeonline.mail.mailbox_protocols and exchangeonline.mail.smtp_test without their
    prefix. The known keys come from the doc fragments and the roles' argument specs.
  - "A variable that starts like a role of the collection (C(dns_migration_), C(domain_),
    C(mailbox_protocols_), C(smtp_test_), C(legacy_forwarding_)) but is none of the role's
    variables fails only when it is close to one of them (difflib ratio 0.8 or more, for
    example C(dns_migration_primry)): users have variables of their own with such names
    (C(domain_controller)). List such a name in C(exo_ignore_variables) to keep it."
  - A role variable that the running playbook sets itself from an C(exo_*) variable (for
    example C(dns_migration_primary), which migrate sets from C(exo_primary)) gets a warning, as
    the value in the inventory is not used.
  - Runs on the controller and talks to no server.
author:
  - exchangeonline.mail maintainers (@exchangeonline)
extends_documentation_fragment:
  - exchangeonline.mail.attributes
attributes:
  check_mode:
    support: full
    details: Reads variables only; the same in check mode.
  diff_mode:
    support: none
  idempotent:
    support: full
    details: Never changes anything.
options:
  playbook:
    description:
      - The playbook that runs, without C(.yml) (V(migrate), V(check), V(rollback),
        V(smtp_test), V(enable_pop)). Its required variables must be set, and the role
        variables it sets itself are found from its include_role tasks.
    type: str
  required:
    description:
      - Fail when a variable the playbook requires is not set (C(exo_pattern) for migrate).
        V(false) for hosts that are not domains, such as migrate's old servers.
    type: bool
    default: true
notes:
  - The check reads only names and the values of the C(exo_*) variables, and reports no value
    of an option that is secret.
'''

EXAMPLES = r'''
- name: Check this host's exo_* variables before anything changes
  exchangeonline.mail.check_variables:
    playbook: migrate
  register: exchangeonline_mail_vars
  any_errors_fatal: true

- name: Read exo_protocols over a dict with every key, so that a missing key is null
  ansible.builtin.debug:
    msg: >-
      {{ (ansible_facts['exchangeonline_mail_defaults']['exo_protocols']
          | combine(exo_protocols | default({})))['pop'] }}
'''

RETURN = r'''
ansible_facts:
  description: Facts the playbooks read.
  returned: success
  type: dict
  contains:
    exchangeonline_mail_defaults:
      description: The same as RV(defaults), as a fact, so that later plays of the run find it.
      type: dict
checked:
  description: The host's exo_* variables that were checked.
  returned: always
  type: list
  elements: str
defaults:
  description:
    - For each dict variable whose keys are a role's variables (C(exo_protocols),
      C(exo_smtp_test)), a dict with every key and the role's default (null where it has none).
      Combine the user's dict over it, so that every key exists. In Jinja2, C(d['pop']) of a
      dict without the key C(pop) is the dict's C(pop) method, not an undefined value.
  returned: success
  type: dict
  sample:
    exo_protocols: {imap: null, pop: null, smtp_auth: null, tenant_smtp_auth: null}
problems:
  description: What is wrong, one sentence each, naming the variable and the closest known name.
  returned: on failure
  type: list
  elements: str
  sample: ["exo_patern: unknown variable; did you mean exo_pattern?"]
'''
