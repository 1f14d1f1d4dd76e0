# -*- coding: utf-8 -*-
# Copyright (c) exchangeonline.mail contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function
__metaclass__ = type

from ansible_collections.exchangeonline.mail.plugins.plugin_utils._inprocess import (
    InProcessAction,
)


class ActionModule(InProcessAction):
    MODULE = 'exchangeonline.mail.connector'
