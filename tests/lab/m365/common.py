"""Shapes shared by the emulator's identity and Graph halves: responses, error bodies, ids."""

import datetime
import json
import uuid


class Response:
    """One HTTP answer: status, JSON body (dict, or None for no body) and extra headers."""

    def __init__(self, status, body=None, headers=None):
        self.status = status
        self.body = body
        self.headers = dict(headers or {})

    def payload(self):
        if self.body is None:
            return b''
        if isinstance(self.body, bytes):
            return self.body
        return json.dumps(self.body).encode('utf-8')


def utcnow():
    return datetime.datetime.now(datetime.timezone.utc)


def graph_date():
    """innerError.date as Graph writes it: 2024-05-01T10:11:12."""
    return utcnow().strftime('%Y-%m-%dT%H:%M:%S')


def aad_timestamp():
    """AAD error timestamp: 2024-05-01 10:11:12Z."""
    return utcnow().strftime('%Y-%m-%d %H:%M:%SZ')


def new_id():
    return str(uuid.uuid4())


def stable_id(*parts):
    """A GUID that is the same for the same inputs (users, records): deterministic fixtures."""
    return str(uuid.uuid5(uuid.NAMESPACE_URL, 'exo-lab:' + ':'.join(str(p) for p in parts)))


# Graph error shape, https://learn.microsoft.com/graph/errors :
# {"error": {"code", "message", "innerError": {"date", "request-id", "client-request-id"}}}
def graph_error(status, code, message, request_id, client_request_id, headers=None):
    body = {'error': {'code': code, 'message': message,
                      'innerError': {'date': graph_date(), 'request-id': request_id,
                                     'client-request-id': client_request_id}}}
    return Response(status, body, headers)


# Default code/message for injected Graph faults, after https://learn.microsoft.com/graph/errors
# and https://learn.microsoft.com/graph/throttling (429 example: code TooManyRequests).
GRAPH_FAULTS = {
    400: ('BadRequest', 'Bad request.'),
    401: ('InvalidAuthenticationToken', 'Access token validation failure.'),
    403: ('Authorization_RequestDenied', 'Insufficient privileges to complete the operation.'),
    404: ('Request_ResourceNotFound', 'Resource not found.'),
    409: ('Conflict', 'Conflict.'),
    429: ('TooManyRequests', 'Please retry again later.'),
    500: ('UnknownError', 'An internal server error occurred.'),
    502: ('BadGateway', 'Bad gateway.'),
    503: ('serviceNotAvailable', 'The service is temporarily unavailable. Please retry.'),
    504: ('GatewayTimeout', 'The gateway did not receive a response in time.'),
}


# AAD (Microsoft Entra ID) token endpoint error shape, documented at
# https://learn.microsoft.com/entra/identity-platform/v2-oauth2-client-creds-grant-flow
# (section "Error response")
# and https://learn.microsoft.com/entra/identity-platform/reference-error-codes :
# {error, error_description "AADSTSnnnnn: ...", error_codes [n], timestamp, trace_id,
#  correlation_id, error_uri}
def aad_error(status, error, code, text, correlation_id=None, headers=None):
    trace_id = new_id()
    correlation_id = correlation_id or new_id()
    stamp = aad_timestamp()
    description = 'AADSTS%d: %s Trace ID: %s Correlation ID: %s Timestamp: %s' % (
        code, text, trace_id, correlation_id, stamp)
    body = {'error': error, 'error_description': description, 'error_codes': [code],
            'timestamp': stamp, 'trace_id': trace_id, 'correlation_id': correlation_id,
            'error_uri': 'https://login.microsoftonline.com/error?code=%d' % code}
    return Response(status, body, headers)
