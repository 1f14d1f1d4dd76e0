"""The OPATH ``-Filter`` subset of Get-CASMailbox and Get-Mailbox, as Exchange Online documents it.

Sources (MicrosoftDocs/office-docs-powershell, exchange/docs-conceptual):
- filter-properties.md, "Filterable properties for the Filter parameter": a property is filterable
  only on the cmdlets its section lists ("Using it on a cmdlet that isn't listed returns a 'not a
  recognized filterable property' error"). For Get-CASMailbox that includes Name, DisplayName,
  PrimarySmtpAddress, EmailAddresses, SamAccountName (strings, wildcards accepted) and Guid
  (exact); not Alias, not ExternalDirectoryObjectId (which Get-Mailbox has, "String or $null").
- recipient-filters.md: the operators -and, -or, -not, -eq, -ne, -lt, -gt, -like, -notlike;
  "Wildcards (*) work only with the -like operator, and only on text string properties"; in
  Exchange Online "the wildcard character is supported only as a suffix in most parameters".
  String comparison is not case-sensitive.
What this lab takes: those operators but -lt/-gt (documented only on numbers and dates), values in
single quotes ('' for a quote) or $null, parentheses. Anything else is refused as Exchange refuses
a filter it cannot parse.
"""

import re

# cmdlet -> {lower-case property: (property, kind)}; kind 'text' takes -like, 'exact' does not
_COMMON = {'name': ('Name', 'text'), 'displayname': ('DisplayName', 'text'),
           'primarysmtpaddress': ('PrimarySmtpAddress', 'text'),
           'emailaddresses': ('EmailAddresses', 'text'),
           'samaccountname': ('SamAccountName', 'text'), 'guid': ('Guid', 'exact')}
FILTERABLE = {
    'Get-CASMailbox': dict(_COMMON),
    'Get-Mailbox': dict(_COMMON, alias=('Alias', 'text'),
                        externaldirectoryobjectid=('ExternalDirectoryObjectId', 'exact'),
                        userprincipalname=('UserPrincipalName', 'text')),
}
_TOKEN = re.compile(r"\s*(?:(?P<lp>\()|(?P<rp>\))|(?P<op>-[A-Za-z]+)|'(?P<str>(?:[^']|'')*)'"
                    r"|(?P<null>\$null\b)|(?P<word>[A-Za-z][A-Za-z0-9]*))", re.I)


class FilterError(ValueError):
    """The text of Exchange's refusal of a filter."""


# properties whose -eq values the emulator's address index answers (addresses_of)
ADDRESS_PROPERTIES = ('EmailAddresses', 'PrimarySmtpAddress')


def addresses_of(text):
    """The addresses of a filter that is only ``<address property> -eq '<value>'`` clauses
    joined by -or (what a client asking for many mailboxes sends), else None: the emulator then
    looks them up in its index instead of testing every mailbox (the predicate still decides)."""
    clause = r"\s*(?:EmailAddresses|PrimarySmtpAddress)\s+-eq\s+'((?:[^']|'')*)'\s*"
    parts = re.split(r'(?i)\s-or\s', str(text or ''))
    found = []
    for part in parts:
        m = re.fullmatch(clause, part, re.I)
        if not m:
            return None
        found.append(m.group(1).replace("''", "'").lower())
    return found


def parse(text, cmdlet):
    """A predicate over {property: value} for the filter ``text`` of ``cmdlet``, else
    FilterError."""
    tokens, pos = [], 0
    text = str(text or '')
    while pos < len(text):
        m = _TOKEN.match(text, pos)
        if not m or m.end() == pos:
            if text[pos:].strip() == '':
                break
            raise FilterError('Invalid filter syntax. For a description of the filter parameter '
                              'syntax see the command help. "%s" at position %d.'
                              % (text, pos + 1))
        pos = m.end()
        kind = m.lastgroup
        value = m.group(kind)
        tokens.append((kind, value.replace("''", "'") if kind == 'str' else value))
    parser = _Parser(tokens, text, FILTERABLE[cmdlet], cmdlet)
    predicate = parser.expression()
    if parser.i != len(tokens):
        parser.fail()
    return predicate


class _Parser:
    def __init__(self, tokens, text, properties, cmdlet):
        self.tokens, self.text, self.properties, self.cmdlet = tokens, text, properties, cmdlet
        self.i = 0

    def fail(self):
        raise FilterError('Invalid filter syntax. For a description of the filter parameter '
                          'syntax see the command help. "%s" at position %d.'
                          % (self.text, min(self.i + 1, len(self.text))))

    def peek(self, kind=None, value=None):
        if self.i >= len(self.tokens):
            return False
        k, v = self.tokens[self.i]
        return (kind is None or k == kind) and (value is None or v.lower() == value)

    def take(self):
        if self.i >= len(self.tokens):
            self.fail()
        self.i += 1
        return self.tokens[self.i - 1]

    def expression(self):
        left = self.conjunction()
        while self.peek('op', '-or'):
            self.take()
            left = _either(left, self.conjunction())
        return left

    def conjunction(self):
        left = self.unary()
        while self.peek('op', '-and'):
            self.take()
            left = _both(left, self.unary())
        return left

    def unary(self):
        if self.peek('op', '-not'):
            self.take()
            inner = self.unary()
            return lambda o: not inner(o)
        if self.peek('lp'):
            self.take()
            inner = self.expression()
            if self.take()[0] != 'rp':
                self.fail()
            return inner
        return self.comparison()

    def comparison(self):
        kind, word = self.take()
        if kind != 'word':
            self.fail()
        prop = self.properties.get(word.lower())
        if prop is None:
            raise FilterError("Cannot bind parameter 'Filter' to the target. Exception setting "
                              "\"Filter\": \"'%s' is not a recognized filterable property. For "
                              "more information about the filterable properties, see the "
                              "command help.\"" % word)
        kind, op = self.take()
        op = op.lower()
        if kind != 'op' or op not in ('-eq', '-ne', '-like', '-notlike'):
            self.fail()
        kind, value = self.take()
        if kind not in ('str', 'null'):
            self.fail()
        name, ptype = prop
        if kind == 'null':
            if op not in ('-eq', '-ne'):
                self.fail()
            want_null = op == '-eq'
            return lambda o: (_values(o, name) == []) is want_null
        if op in ('-like', '-notlike'):
            if ptype != 'text' or '*' in value.rstrip('*'):
                raise FilterError("The value '%s' of the property %s is not valid: the "
                                  "wildcard character (*) is supported only as a suffix."
                                  % (value, name) if ptype == 'text' else
                                  "Wildcards are not supported for the property %s." % name)
            prefix = value.lower().rstrip('*')
            whole = not value.endswith('*')
            positive = op == '-like'
            return lambda o: any((v == prefix) if whole else v.startswith(prefix)
                                 for v in _values(o, name)) is positive
        want = value.lower()
        positive = op == '-eq'
        return lambda o: any(v == want for v in _values(o, name)) is positive


def _either(a, b):
    return lambda o: a(o) or b(o)


def _both(a, b):
    return lambda o: a(o) and b(o)


def _values(obj, name):
    """The lower-case strings of a property (EmailAddresses: each address without its prefix as
    well as with it, as the documented EmailAddresses -eq 'address' matches)."""
    value = obj.get(name)
    if value is None:
        return []
    values = value if isinstance(value, list) else [value]
    out = []
    for v in values:
        v = str(v).lower()
        out.append(v)
        if name == 'EmailAddresses' and ':' in v:
            out.append(v.partition(':')[2])
    return out
