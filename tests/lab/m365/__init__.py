"""A local Microsoft 365 stand-in for the lab: identity (token endpoint, OpenID configuration,
JWKS) and Microsoft Graph v1.0 (domains, users, mailboxSettings, licenseDetails, $batch) over
HTTPS with its own CA. Real msal and requests talk to it; see ``emulator.M365Emulator``.
"""
