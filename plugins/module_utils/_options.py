# -*- coding: utf-8 -*-
# Copyright (c) exchangeonline.mail contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# Private to this collection: may change without notice.
"""Checks of every module's options that Ansible's argument spec cannot express, made before
any work starts (and before the module process is started at all, by the action plugins).

* Every number is finite and in its documented range: ``nan`` and ``inf`` pass Ansible's
  ``float`` conversion, and a ``nan`` deadline never expires.
* No string anywhere in the options holds a NUL character: it ends a C string in the path of a
  file, in syslog and in every protocol the collection speaks.
"""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import decimal
import math
from typing import Any, Dict, Mapping, Optional

from ansible.module_utils.common.validation import check_type_dict

from ansible_collections.exchangeonline.mail.plugins.module_utils._records import RecordError

# An argument spec as AnsibleModule takes it: option name -> its spec (type, options...).
ArgumentSpec = Mapping[str, Optional[Mapping[str, Any]]]


class Range:
    """``low <= value <= high`` (``low < value`` with ``above``)."""

    __slots__ = ('low', 'high', 'above', 'unit')

    def __init__(self, low: float, high: float, above: bool = False, unit: str = '') -> None:
        self.low = low
        self.high = high
        self.above = above
        self.unit = unit

    def describe(self) -> str:
        unit = ' %s' % self.unit if self.unit else ''
        if self.above:
            return 'more than %s and at most %s%s' % (self.low, self.high, unit)
        return 'from %s to %s%s' % (self.low, self.high, unit)

    def check(self, option: str, value: Any) -> None:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise RecordError('%s must be a number %s, got %r' % (option, self.describe(), value))
        if isinstance(value, float) and not math.isfinite(value):
            raise RecordError('%s must be a finite number %s, got %s'
                              % (option, self.describe(), value))
        if value < self.low or (self.above and value == self.low) or value > self.high:
            raise RecordError('%s must be %s, got %s' % (option, self.describe(), value))


def seconds(high: float, above: bool = True) -> Range:
    return Range(0, high, above=above, unit='seconds')


# A pause between two polls: at least 0.1 s, so that no option turns a wait into a busy loop.
PAUSE = Range(0.1, 3600, unit='seconds')


PORT = Range(1, 65535)
CONCURRENCY_RANGE = Range(1, 64)  # requests in flight (mailbox_info, mailbox_protocols)
PREFERENCE = Range(0, 65535)
TTL = Range(0, 2147483647, unit='seconds')  # RFC 2181 section 8


# The mta_sts option of mail_dns and mail_dns_check (RFC 8461 section 3.2 bounds max_age).
MTA_STS_LIMITS = {'mta_sts.max_age': Range(0, 31557600, unit='seconds'),
                  'mta_sts.timeout': seconds(300)}


def mta_sts_options(for_check: bool) -> Dict[str, Any]:
    """The suboptions of ``mta_sts``: mail_dns publishes a policy (mode testing by default,
    policy_check); mail_dns_check expects one only when mode is given."""
    options: Dict[str, Any] = dict(
        mode=dict(type='str', choices=['enforce', 'testing', 'none']),
        max_age=dict(type='int', default=604800),
        mx=dict(type='list', elements='str'),
        address=dict(type='str'),
        ca_path=dict(type='path'),
        timeout=dict(type='float', default=10.0),
    )
    if not for_check:
        options['mode']['default'] = 'testing'
        options['policy_check'] = dict(type='bool', default=True)
    return options


def check_raw_args(args: Mapping[str, Any], argument_spec: ArgumentSpec,
                   prefix: str = '') -> None:
    """RecordError for raw task arguments that some ansible-core versions crash on instead of
    refusing them: ``inf`` or ``nan`` for an ``int`` option (2.19), a list or dict for a number
    option, and anything but a dict (or its text form) for an option with suboptions (2.19 to
    2.21)."""
    for key in sorted(argument_spec):
        spec = argument_spec[key] or {}
        value = args.get(key)
        option = prefix + key  # the name in messages: mta_sts.timeout
        if spec.get('type') in ('int', 'float') and isinstance(value, (list, dict)):
            # ansible-core turns a container into text for a number and crashes on some
            # (OverflowError for [False, None, 9223372036854775808], every version)
            raise RecordError('%s must be a number, got %s %s'
                              % (option, 'a list' if isinstance(value, list) else 'a dict',
                                 _shown(value)))
        if spec.get('type') == 'int' or spec.get('elements') == 'int':
            for item in (value if isinstance(value, list) else [value]):
                if _infinite(item):
                    raise RecordError('%s must be a whole number, got %s' % (option, item))
        if not spec.get('options') or value is None:
            continue
        listed = spec.get('type') == 'list'
        shape = 'a list of dicts' if listed else 'a dict'
        elements = value if listed and isinstance(value, list) else [value]
        for element in elements:
            # a dict, or the JSON / key=value text Ansible turns into one
            if not isinstance(element, (dict, str)):
                raise RecordError('%s must be %s (of %s), got %r'
                                  % (option, shape, ', '.join(sorted(spec['options'])), value))
            if isinstance(element, str):  # JSON or key=value, as Ansible will read it
                try:
                    element = check_type_dict(element)
                except (TypeError, ValueError):
                    continue  # the argument spec names it
            if isinstance(element, dict):
                check_raw_args(element, spec['options'], option + '.')


def _shown(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + '...'


def _infinite(value: Any) -> bool:
    """True for inf/nan, also as text ('INF', '-Infinity'), as ansible-core reads numbers."""
    if isinstance(value, float):
        return not math.isfinite(value)
    if isinstance(value, str):
        try:
            return not decimal.Decimal(value.strip()).is_finite()
        except (decimal.InvalidOperation, ValueError):
            return False
    return False


def check_options(params: Mapping[str, Any], argument_spec: ArgumentSpec,
                  limits: Mapping[str, Range]) -> None:
    """RecordError (phase ``input``) naming the first option that breaks a rule.

    ``limits`` maps option names to Ranges; ``parent.child`` names a suboption (of a dict, or
    of each element of a list of dicts)."""
    for option in sorted(argument_spec):
        _check_value(option, params.get(option), argument_spec[option], option, limits)


def _check_value(label: str, value: Any, spec: Optional[Mapping[str, Any]], path: str,
                 limits: Mapping[str, Range]) -> None:
    if value is None:
        return
    _check_nul(label, value)
    if path in limits:
        limits[path].check(label, value)
    suboptions = (spec or {}).get('options')
    if not suboptions:
        return
    elements = value if isinstance(value, list) else [value]
    for index, element in enumerate(elements):
        if not isinstance(element, dict):
            continue
        where = '%s[%d]' % (label, index) if isinstance(value, list) else label
        for name in sorted(suboptions):
            _check_value('%s.%s' % (where, name), element.get(name), suboptions[name],
                         '%s.%s' % (path, name), limits)


def _check_nul(label: str, value: Any, depth: int = 0) -> None:
    if depth > 20:
        raise RecordError('%s is nested too deeply' % label)
    if isinstance(value, str):
        if '\x00' in value:
            raise RecordError('%s contains a NUL character (\\x00); no name, path or text the '
                              'collection sends can hold one' % label)
    elif isinstance(value, dict):
        for key, item in value.items():
            _check_nul(label, key, depth + 1)
            _check_nul('%s.%s' % (label, key) if isinstance(key, str) else label, item,
                       depth + 1)
    elif isinstance(value, (list, tuple)):
        for index, item in enumerate(value):
            _check_nul('%s[%d]' % (label, index), item, depth + 1)
