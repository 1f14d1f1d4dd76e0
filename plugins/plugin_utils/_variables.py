# -*- coding: utf-8 -*-
# Copyright (c) exchangeonline.mail contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# Private to this collection: may change without notice.
"""The check of a host's variables that every playbook of the collection makes first (action
plugin exchangeonline.mail.check_variables).

Each known name comes from one source: the playbooks' variables from
``playbooks/vars/exo_variables.yml`` (whose entries point at a module option, a role option or a
doc fragment for their type and keys), the roles' variables from their
``meta/argument_specs.yml`` plus the names their tasks register, and what a playbook sets itself
from its own include_role tasks. Nothing here keeps a second list.
"""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import copy
import difflib
import importlib
import os
import re

from collections.abc import Mapping

import yaml

from ansible.module_utils.common.arg_spec import ArgumentSpecValidator
from ansible.module_utils.errors import ArgumentTypeError

from ansible_collections.exchangeonline.mail.plugins.module_utils._options import check_options
from ansible_collections.exchangeonline.mail.plugins.module_utils._records import RecordError

COLLECTION = 'ansible_collections.exchangeonline.mail'
ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
PREFIX = 'exo_'
# A role-prefixed name that is not a variable of the role is taken for a typo only this close to
# one (difflib's ratio): users keep variables of their own that start like a role (domain_...).
ROLE_CUTOFF = 0.8
# The closest name shown for an unknown exo_* name or dict key (which is always an error).
SUGGEST_CUTOFF = 0.6
# What an option spec keeps for checking a value: its type and shape, not its defaults.
SHAPE = ('type', 'elements', 'choices', 'options', 'no_log')
TYPE_WORDS = {'bool': 'true or false', 'int': 'a whole number', 'float': 'a number',
              'str': 'text', 'path': 'a path', 'list': 'a list', 'dict': 'a dict',
              'raw': 'a value'}
EXO_REFERENCE = re.compile(r'\b(exo_[a-z0-9_]+)')
NAME_REFERENCE = re.compile(r'\b([a-z_][a-z0-9_]*)')
# Quoted text in a template ('exo_pattern' in selectattr('exo_pattern', ...)) names no variable.
QUOTED = re.compile(r"'[^']*'|\"[^\"]*\"")


# libyaml's loader where PyYAML has it: the check reads about twenty YAML files per host.
LOADER = getattr(yaml, 'CSafeLoader', yaml.SafeLoader)


def _yaml(path):
    with open(path, encoding='utf-8') as f:
        return yaml.load(f, Loader=LOADER)  # nosec: a safe loader


def closest(name, known, cutoff):
    """(the known name closest to ``name``, its ratio), or (None, 0) below ``cutoff``."""
    best, ratio = None, 0.0
    for candidate in sorted(known):
        score = difflib.SequenceMatcher(None, name, candidate).ratio()
        if score > ratio:
            best, ratio = candidate, score
    return (best, ratio) if ratio >= cutoff else (None, 0.0)


def _type_name(value):
    for kind, types in (('bool', bool), ('int', int), ('float', float), ('str', str),
                        ('list', (list, tuple))):
        if isinstance(value, types):
            return kind
    return type(value).__name__


def _cut(text, limit):
    return text if len(text) <= limit else text[:limit] + '...'


def either(choices):
    """'a, b or c'."""
    words = ['null' if c is None else str(c) for c in choices]
    return words[0] if len(words) == 1 else '%s or %s' % (', '.join(words[:-1]), words[-1])


def shape(spec):
    """An option spec reduced to what a value is checked against (suboptions too)."""
    out = dict((k, copy.deepcopy(v)) for k, v in (spec or {}).items() if k in SHAPE)
    if out.get('options'):
        out['options'] = dict((k, shape(v)) for k, v in out['options'].items())
    return out


def _tasks(node):
    """Every task of a list of plays, tasks or blocks (blocks, rescue, always walked)."""
    for item in node or []:
        if not isinstance(item, dict):
            continue
        yield item
        for key in ('tasks', 'pre_tasks', 'post_tasks', 'handlers', 'block', 'rescue', 'always'):
            if isinstance(item.get(key), list):
                yield from _tasks(item[key])


class Known:
    """Everything the playbooks and roles of the collection at ``root`` take."""

    def __init__(self, root=ROOT):
        self.root = root
        self.variables = _yaml(os.path.join(root, 'playbooks', 'vars', 'exo_variables.yml'))[
            'playbook_variables']
        self.roles = {}     # role: {entry point: {option: spec}}
        self._outputs = {}  # role: names its tasks register or set (read when asked)
        self._fragments = {}
        self._settings_of = {}
        roles_dir = os.path.join(root, 'roles')
        for role in sorted(os.listdir(roles_dir)):
            specs = os.path.join(roles_dir, role, 'meta', 'argument_specs.yml')
            if not os.path.isfile(specs):
                continue
            entries = (_yaml(specs) or {}).get('argument_specs') or {}
            self.roles[role] = dict((entry, spec.get('options') or {})
                                    for entry, spec in entries.items())

    @staticmethod
    def _role_outputs(tasks_dir):
        names = set()
        for name in sorted(os.listdir(tasks_dir)) if os.path.isdir(tasks_dir) else []:
            if not name.endswith(('.yml', '.yaml')):
                continue
            for task in _tasks(_yaml(os.path.join(tasks_dir, name))):
                if isinstance(task.get('register'), str):
                    names.add(task['register'])
                for action in ('ansible.builtin.set_fact', 'set_fact'):
                    if isinstance(task.get(action), dict):
                        names.update(k for k in task[action] if k != 'cacheable')
        return names

    # -- the roles ---------------------------------------------------------------------------
    def role_options(self, role):
        """The options of ``role`` (all entry points)."""
        names = set()
        for options in self.roles[role].values():
            names.update(options)
        return names

    def role_names(self, role):
        """Every variable of ``role``: its options (all entry points) and its outputs."""
        if role not in self._outputs:
            self._outputs[role] = self._role_outputs(os.path.join(self.root, 'roles', role,
                                                                  'tasks'))
        return set(self._outputs[role]) | self.role_options(role)

    def role_of(self, name):
        """The role whose prefix (``<role>_``) ``name`` has, or None."""
        for role in sorted(self.roles, key=len, reverse=True):
            if name.startswith(role + '_'):
                return role
        return None

    # -- the sources of the playbooks' variables ---------------------------------------------
    @staticmethod
    def module(name):
        code = importlib.import_module('%s.plugins.modules.%s' % (COLLECTION, name))
        return code.module_kwargs()['argument_spec'], getattr(code, 'LIMITS', {})

    def fragment_options(self, name):
        if name not in self._fragments:
            code = importlib.import_module('%s.plugins.doc_fragments.%s' % (COLLECTION, name))
            options = {}
            # DOCUMENTATION and the fragment's named parts (dns.provider): every option of the
            # group, since module_defaults hands each of them to every module of it.
            for part in sorted(vars(code.ModuleDocFragment)):
                text = getattr(code.ModuleDocFragment, part)
                if part.isupper() and isinstance(text, str):
                    options.update(yaml.load(text, Loader=LOADER).get('options') or {})  # nosec
            self._fragments[name] = options
        return self._fragments[name]

    def source(self, name):
        """(the spec a value of the playbook variable ``name`` is checked against, the number
        ranges that apply to it, as _options.check_options takes them)."""
        entry = self.variables[name]
        limits = {}
        if entry.get('option'):
            module, option = entry['option'].split('.', 1)
            argument_spec, module_limits = self.module(module)
            spec = shape(argument_spec[option])
            for path, rng in module_limits.items():
                if path == option or path.startswith(option + '.'):
                    limits[name + path[len(option):]] = rng
        elif entry.get('role'):
            role, point, option = entry['role'].split('.', 2)
            spec = shape(self.roles[role][point][option])
        else:
            spec = shape(entry)
        return spec, limits

    def keys(self, name):
        """{key: role option spec} of a dict variable whose keys come from a role, the doc
        fragment's option names of one whose keys are an action group's options, None for any
        key."""
        source = self.variables[name].get('keys')
        if not source or source.get('free'):
            return None
        if source.get('doc_fragment'):
            return dict((k, None) for k in self.fragment_options(source['doc_fragment']))
        prefix, exclude = source['prefix'], set(source.get('exclude') or ())
        return dict((option[len(prefix):], spec)
                    for option, spec in self.roles[source['role']]['main'].items()
                    if option.startswith(prefix) and option[len(prefix):] not in exclude)

    def defaults(self):
        """{dict variable: {every key: the role's default or None}} for the dict variables whose
        keys come from a role: the playbooks read the user's dict over this one, so that every
        key exists and none is ever looked up as an attribute of the dict (``pop``)."""
        out = {}
        for name in sorted(self.variables):
            keys = self.keys(name)
            if keys and any(spec is not None for spec in keys.values()):
                out[name] = dict((k, copy.deepcopy((spec or {}).get('default')))
                                 for k, spec in sorted(keys.items()))
        return out

    # -- what a playbook sets itself ---------------------------------------------------------
    def settings(self, playbook):
        """{role variable: [the exo_* variables it is made from]} for every role variable that
        ``playbook`` (and the playbooks it imports) gives its roles."""
        if playbook not in self._settings_of:
            self._settings_of[playbook] = {}
            self._settings(playbook, self._settings_of[playbook], set())
        return self._settings_of[playbook]

    def _settings(self, playbook, out, seen):
        path = os.path.join(self.root, 'playbooks', playbook + '.yml')
        if playbook in seen or not os.path.isfile(path):
            return
        seen.add(playbook)
        for play in _yaml(path) or []:
            imported = play.get('ansible.builtin.import_playbook') or play.get('import_playbook')
            if isinstance(imported, str):
                self._settings(os.path.splitext(os.path.basename(imported))[0], out, seen)
                continue
            play_vars = play.get('vars') or {}
            for task in _tasks(play.get('tasks')):
                if not any(task.get(k) for k in ('ansible.builtin.include_role', 'include_role',
                                                 'ansible.builtin.import_role', 'import_role')):
                    continue
                for variable, template in (task.get('vars') or {}).items():
                    out[variable] = sorted(self._exo_names(str(template), play_vars, set()))

    def _exo_names(self, text, play_vars, seen):
        """The exo_* variables a template refers to, also through the play's own vars."""
        text = QUOTED.sub('', text)
        names = set(EXO_REFERENCE.findall(text)) & set(self.variables)
        for name in set(NAME_REFERENCE.findall(text)) & set(play_vars):
            if name not in seen:
                seen.add(name)
                names |= self._exo_names(str(play_vars[name]), play_vars, seen)
        return names


class Check:
    """The problems (which stop the run) and warnings of one host's variables.

    ``names``: every variable name the host has (inventory, extra vars, facts); ``value(name)``:
    the templated value of one of them, asked for the known exo_* variables only."""

    def __init__(self, known, host, playbook, names, value, required=True):
        self.known = known
        self.host = host
        self.playbook = playbook
        self.required = required
        self.names = set(names)
        self.value = value
        self.problems = []
        self.warnings = []

    def run(self):
        ignore = set()
        if 'exo_ignore_variables' in self.names:
            ignore = set(self.value('exo_ignore_variables') or ())
        for name in sorted(self.names - ignore):
            if name.startswith(PREFIX):
                self.exo_variable(name)
            elif self.known.role_of(name):
                self.role_variable(name)
        for name, entry in sorted(self.known.variables.items()):
            if self.required and self.playbook in (entry.get('required_in') or ()) \
                    and name not in self.names:
                spec = self.known.source(name)[0]
                self.problems.append('Set %s%s for %s' % (
                    name, ' (%s)' % either(spec['choices']) if spec.get('choices') else '',
                    self.host))
        return self

    def exo_variable(self, name):
        if name not in self.known.variables:
            best = closest(name, self.known.variables, SUGGEST_CUTOFF)[0]
            self.problems.append('%s: unknown variable; %s If it is a variable of your own, '
                                 'add it to exo_ignore_variables.' % (
                                     name, 'did you mean %s?' % best if best else
                                     'the exo_* variables of the playbooks are listed in '
                                     'playbooks/vars/exo_variables.yml (and README.md).'))
            return
        try:
            value = self.value(name)
        except Exception as e:  # pylint: disable=broad-except
            self.problems.append('%s: its value cannot be templated: %s' % (name, str(e)[:300]))
            return
        if value is None:
            return
        spec, limits = self.known.source(name)
        if spec.get('type') == 'dict' and not isinstance(value, Mapping):
            # Not even as text: a dict written as a string ("{key_secret: ...}", JSON, k=v)
            # holds secrets, and Ansible's own conversion of it would skip the key check.
            self.problems.append('%s must be a dict (a YAML mapping), got %s (not shown: it may '
                                 'hold secrets); write it as a mapping, without quotes'
                                 % (name, TYPE_WORDS.get(_type_name(value), _type_name(value))))
            return
        problem = value_problem(name, value, spec, limits, self.host)
        if problem:
            self.problems.append(problem)
            return
        if isinstance(value, dict):
            self.dict_keys(name, value)

    def dict_keys(self, name, value):
        keys = self.known.keys(name)
        entry = self.known.variables[name]
        for key in entry.get('required_keys') or ():
            if value.get(key) is None:
                self.problems.append('Set %s.%s for %s' % (name, key, self.host))
        if keys is None:
            return
        for key in sorted(value, key=str):
            if key not in keys:
                best = closest(str(key), keys, SUGGEST_CUTOFF)[0]
                self.problems.append('%s has an unknown key %s; %s' % (
                    name, key, 'did you mean %s?' % best if best else
                    'its keys are %s' % ', '.join(sorted(keys))))
                continue
            if keys[key] is not None and value[key] is not None:
                problem = value_problem('%s.%s' % (name, key), value[key], shape(keys[key]), {},
                                        self.host)
                if problem:
                    self.problems.append(problem)

    def role_variable(self, name):
        settings = self.known.settings(self.playbook) if self.playbook else {}
        role = self.known.role_of(name)
        known = self.known.role_names(role)
        if name in known:
            if name in settings:
                self.warnings.append(
                    '%s is set for %s, but the playbook %s sets it itself%s, so this value is '
                    'not used' % (name, self.host, self.playbook, self.made_from(settings[name])))
            return
        # Only what follows the prefix is compared (the shared "domain_" alone would make
        # domain_fqdn look like domain_dns), and only with options (no one sets an output).
        prefix = role + '_'
        options = dict((option[len(prefix):], option) for option in self.known.role_options(role)
                       if option.startswith(prefix))
        best = options.get(closest(name[len(prefix):], options, ROLE_CUTOFF)[0])
        if best is None:
            return  # a variable of the user's own that starts like the role's
        hint = ''
        if best in settings:
            hint = ' (the playbook %s sets %s itself%s)' % (
                self.playbook, best, self.made_from(settings[best]))
        self.problems.append(
            '%s: unknown variable of the role exchangeonline.mail.%s; did you mean %s?%s If it '
            'is a variable of your own, add it to exo_ignore_variables.' % (name, role, best, hint))

    @staticmethod
    def made_from(exo_names):
        if not exo_names:
            return ''
        return ' from %s: set %s instead' % (either(exo_names), either(exo_names))


def value_problem(label, value, spec, limits, host):
    """What is wrong with ``value`` for ``spec`` (None: nothing; a null value is not set)."""
    if value is None:
        return None
    choices = spec.get('choices')
    if choices and spec.get('type') != 'list' and not isinstance(value, (dict, list)) \
            and value not in choices:
        return 'Set %s (%s) for %s, not %s' % (label, either(choices), host, value)
    checked = dict(spec)
    result = ArgumentSpecValidator({label: checked}).validate({label: value})
    if result.error_messages:
        if any(isinstance(e, ArgumentTypeError) for e in result.errors):
            kind = TYPE_WORDS.get(spec.get('type'), spec.get('type'))
            if spec.get('elements'):
                kind += ' of %s' % TYPE_WORDS.get(spec['elements'], spec['elements'])
            return '%s must be %s, got %s' % (
                label, kind, '(a secret, not shown)' if spec.get('no_log') else
                _cut(repr(value), 80))
        return '%s: %s' % (label, '; '.join(result.error_messages))
    try:
        check_options(result.validated_parameters, {label: checked}, limits)
    except RecordError as e:
        return e.message
    return None


def check_host(host, playbook, names, value, known=None, required=True):
    """(problems, warnings, defaults) of one host (see Check)."""
    known = known or Known()
    check = Check(known, host, playbook, names, value, required).run()
    return check.problems, check.warnings, known.defaults()
