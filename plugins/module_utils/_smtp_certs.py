# -*- coding: utf-8 -*-
# Copyright (c) exchangeonline.mail contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# Private to this collection: may change without notice.
"""TLS for an SMTP test: the client context (minimum version, CA, verification), what the
server's certificate says (checked or, without verification, parsed with cryptography when it is
there), and the texts of a failed certificate check or handshake."""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import datetime
import os
import ssl
from typing import Any, Dict, Iterable, Optional, Tuple, cast

from ansible_collections.exchangeonline.mail.plugins.module_utils._smtp_hints import SmtpFailure


def tls_details(sock: ssl.SSLSocket, verified: bool) -> Dict[str, Any]:
    out: Dict[str, Any] = {'version': sock.version(), 'cipher': None, 'bits': None, 'verified': verified,
                           'peer_certificate': None}
    cipher = sock.cipher()
    if cipher:
        out['cipher'], out['bits'] = cipher[0], cipher[2]
    # ssl's dict of a checked certificate: its values are strings and tuples, by key
    cert: Optional[Dict[str, Any]] = sock.getpeercert() if verified else None
    if cert:
        def name(rdns: Iterable[Iterable[Tuple[str, str]]]) -> str:
            return ', '.join('%s=%s' % (k, v) for rdn in rdns for k, v in rdn)
        not_before, not_after = (_cert_time(cert.get(k)) for k in ('notBefore', 'notAfter'))
        out['peer_certificate'] = {
            'subject': name(cert.get('subject', ())), 'issuer': name(cert.get('issuer', ())),
            'not_before': not_before.isoformat() if not_before else None,
            'not_after': not_after.isoformat() if not_after else None,
            'expires_in_days': (not_after - datetime.datetime.now(datetime.timezone.utc)).days
            if not_after else None,
            'names': [v for k, v in cert.get('subjectAltName', ())]}
    else:
        der = sock.getpeercert(binary_form=True)
        out['peer_certificate'] = _unverified_certificate(der) if der else None
    return out


def _cert_time(text: Optional[str]) -> Optional[datetime.datetime]:
    if not text:
        return None
    return datetime.datetime.fromtimestamp(ssl.cert_time_to_seconds(text),
                                           tz=datetime.timezone.utc)


def _unverified_certificate(der: bytes) -> Dict[str, Any]:
    """What an unchecked peer certificate says (needs cryptography, else only its size)."""
    try:
        from cryptography import x509
        from cryptography.x509.oid import ExtensionOID
    except ImportError:
        return {'der_bytes': len(der)}
    cert = x509.load_der_x509_certificate(der)
    try:
        san = cert.extensions.get_extension_for_oid(ExtensionOID.SUBJECT_ALTERNATIVE_NAME).value
        names = [str(n.value) for n in cast(x509.SubjectAlternativeName, san)]
    except x509.ExtensionNotFound:
        names = []
    not_after = getattr(cert, 'not_valid_after_utc', None) or \
        cert.not_valid_after.replace(tzinfo=datetime.timezone.utc)
    not_before = getattr(cert, 'not_valid_before_utc', None) or \
        cert.not_valid_before.replace(tzinfo=datetime.timezone.utc)
    return {'subject': cert.subject.rfc4514_string(), 'issuer': cert.issuer.rfc4514_string(),
            'not_before': not_before.isoformat(), 'not_after': not_after.isoformat(),
            'expires_in_days': (not_after - datetime.datetime.now(datetime.timezone.utc)).days,
            'names': names}


def tls_context(params: Dict[str, Any]) -> ssl.SSLContext:
    ctx = ssl.create_default_context()
    ctx.minimum_version = getattr(ssl.TLSVersion, params.get('min_tls_version') or 'TLSv1_2')
    if params.get('validate_certs', True):
        ca = params.get('ca_path')
        if ca:
            try:
                if os.path.isdir(ca):
                    ctx.load_verify_locations(capath=ca)
                else:
                    ctx.load_verify_locations(cafile=ca)
            except (OSError, ssl.SSLError, ValueError) as e:
                raise SmtpFailure('connect', 'cannot use ca_path %s: %s' % (ca, e),
                                  hint='give a PEM file of the CA certificates that sign the '
                                       'server\'s certificate, or a directory of them')
    else:
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
    return ctx


def cert_error(e: ssl.SSLError) -> str:
    return getattr(e, 'verify_message', None) or str(e)


def cert_hint(params: Dict[str, Any]) -> str:
    if params.get('ca_path'):
        return ('the certificate is not valid for %s or not signed by a CA in ca_path %s: '
                'connect by the name in the certificate or fix ca_path'
                % (params['host'], params['ca_path']))
    return ('the certificate is not valid for %s or not signed by a trusted CA: connect by the '
            'name in the certificate (smtp.office365.com for Exchange Online) or give the '
            'server\'s CA in ca_path' % params['host'])


def tls_hint(params: Dict[str, Any]) -> str:
    return ('the server and this client share no TLS version or cipher at min_tls_version %s '
            'or above' % (params.get('min_tls_version') or 'TLSv1_2'))
