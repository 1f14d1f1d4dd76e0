"""Raw task arguments that ansible-core crashes on are refused first, naming the option."""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import pytest

from ansible_collections.exchangeonline.mail.plugins.module_utils._options import check_raw_args
from ansible_collections.exchangeonline.mail.plugins.module_utils._records import RecordError

SPEC = {'port': {'type': 'int', 'default': 53}, 'timeout': {'type': 'float'},
        'ports': {'type': 'list', 'elements': 'int'}}


@pytest.mark.parametrize('option, value', [
    ('port', [False, None, 9223372036854775808]), ('port', {'a': 1}), ('timeout', [1.0]),
])
def test_a_container_for_a_number_is_refused_naming_the_option(option, value):
    with pytest.raises(RecordError) as err:
        check_raw_args({option: value}, SPEC)
    assert str(err.value).startswith('input: %s must be a number' % option) or \
        ('%s must be a number' % option) in str(err.value)


def test_numbers_and_lists_of_them_pass():
    check_raw_args({'port': 53, 'timeout': 2.5, 'ports': [1, 2]}, SPEC)
    check_raw_args({'port': '53'}, SPEC)
