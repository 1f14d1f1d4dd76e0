# -*- coding: utf-8 -*-
# Copyright (c) exchangeonline.mail contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function
__metaclass__ = type


class ModuleDocFragment(object):

    DOCUMENTATION = r'''
options:
  server:
    description:
      - The authoritative DNS server to read from and send RFC 2136 updates to, usually the
        primary of the zone. A host name or an IPv4/IPv6 address.
    type: str
    required: true
  port:
    description:
      - The server's DNS port, from 1 to 65535.
    type: int
    default: 53
  zone:
    description:
      - The zone that holds O(domain). When omitted it is found from the SOA the server returns
        for O(domain).
    type: str
  key_name:
    description:
      - Name of the TSIG key that signs every query, transfer and update.
      - Without a key (and without O(key_file)) requests go unsigned; most servers refuse
        unsigned updates.
    type: str
  key_secret:
    description:
      - The base64 secret of the TSIG key O(key_name).
      - Mutually exclusive with O(key_file).
    type: str
  key_algorithm:
    description:
      - The TSIG algorithm. Ignored with O(key_file), which names its own.
    type: str
    default: hmac-sha256
    choices: [hmac-sha256, hmac-sha384, hmac-sha512, hmac-sha224, hmac-sha1, hmac-md5]
  key_file:
    description:
      - A BIND key file (as written by C(tsig-keygen)) holding the TSIG key. With more than one
        key in the file, O(key_name) chooses.
    type: path
  protocol:
    description:
      - Transport for queries and updates. Zone transfers always use TCP.
    type: str
    default: tcp
    choices: [tcp, udp]
  timeout:
    description:
      - Seconds to wait for each answer from the server; more than 0 and at most 300.
      - When the answer to an UPDATE does not come within it, the module reads the zone again
        (three reads over about 3 seconds) to learn whether the update was applied; see the
        C(outcome) return value of M(exchangeonline.mail.mail_dns).
    type: float
    default: 10.0
requirements:
  - dnspython >= 2.3.0
'''
