"""smtp_test against hostile SMTP servers (tests/lab/hostile_smtp.py): a reply that never ends, a
line without end, a server trickling a byte a second. Each fails in its phase, within the step's
deadline (``timeout``), with bounded memory; secrets stay out of the output on these paths too.

Memory is measured by the kernel, not by the code under test: a plain SmtpTest run in a child
process, whose peak RSS ``os.wait4`` reports; a control child that allocates 300 MB shows that
the measurement sees such growth. The playbook runs check what the user sees."""

import base64
import json
import os
import resource
import subprocess
import sys
import time

import pytest

from tests.lab.ansible_runner import environment
from tests.lab.hostile_smtp import HostileSmtp

SENDER = 'adele@contoso.example'
RCPT = 'bob@contoso.example'
PASSWORD = 'Hostile-Lab-Passw0rd-7c2e91'
TIMEOUT = 3.0

# A plain SmtpTest run, as the module does it; prints the result and nothing else.
CHILD = r'''
import json, sys
from ansible_collections.exchangeonline.mail.plugins.module_utils._smtp_test import SmtpTest
params = json.loads(sys.argv[1])
result = SmtpTest(params, False).run()
print(json.dumps(result))
'''
CONTROL = 'data = bytearray(300 * 1024 * 1024)'


def direct_params(port, **extra):
    params = dict(host='127.0.0.1', port=port, tls='none', auth='none', timeout=TIMEOUT,
                  sender=SENDER, to=[RCPT], headers={}, quit_after=None, confirm_delivery=None,
                  allow_plaintext_auth=False, min_tls_version='TLSv1_2', validate_certs=True,
                  username=None, password=None, access_token=None, subject=None, body=None,
                  ehlo_name=None)
    params.update(extra)
    return params


def measured(argv, env=None, cwd=None):
    """(stdout, peak RSS in MiB, wall seconds) of the process ``argv``: it is reaped with
    os.wait4, which returns the kernel's rusage of exactly that process and the descendants it
    waited for (ansible-playbook's workers and module processes). Its address space is capped at
    4 GiB, so a run without bounds fails instead of eating the machine; killed after 120 s."""
    def cap():
        resource.setrlimit(resource.RLIMIT_AS, (4 << 30, 4 << 30))
    started = time.monotonic()
    out_path = os.path.join(os.environ.get('TMPDIR', '/tmp'),
                            'smtp-child-%d-%d.out' % (os.getpid(), time.monotonic_ns()))
    with open(out_path, 'wb') as out:
        pid = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT, preexec_fn=cap,
                               env=env, cwd=cwd).pid
        while True:
            done, status, usage = os.wait4(pid, os.WNOHANG)
            if done:
                break
            if time.monotonic() - started > 120:
                os.kill(pid, 9)
                os.wait4(pid, 0)
                pytest.fail('%s did not end within 120 s' % argv[0])
            time.sleep(0.02)
    seconds = time.monotonic() - started
    with open(out_path) as f:
        text = f.read()
    os.unlink(out_path)
    assert os.WIFEXITED(status), text[-3000:]
    return text, usage.ru_maxrss / 1024.0, seconds


def direct_run(params):
    """(result, peak RSS in MiB, wall seconds) of a plain SmtpTest run in a child process."""
    text, rss, seconds = measured([sys.executable, '-c', CHILD, json.dumps(params)])
    return json.loads(text.strip().splitlines()[-1]), rss, seconds


def playbook_run(tasks, workdir):
    """(results, peak RSS in MiB of ansible-playbook with its workers, wall seconds)."""
    os.makedirs(workdir, exist_ok=True)
    playbook, log = os.path.join(workdir, 'play.json'), os.path.join(workdir, 'results.jsonl')
    with open(playbook, 'w') as f:
        json.dump([{'hosts': 'localhost', 'connection': 'local', 'gather_facts': False,
                    'tasks': tasks}], f)
    env = environment(workdir, {'EXO_RESULT_LOG': log})
    text, rss, seconds = measured(
        [os.path.join(os.path.dirname(sys.executable), 'ansible-playbook'), playbook, '-i',
         'localhost,'], env=env, cwd=workdir)
    with open(log) as f:
        return [json.loads(line) for line in f if line.strip()], rss, seconds


@pytest.fixture
def hostile():
    servers = []

    def start(**kwargs):
        server = HostileSmtp(**kwargs).start()
        servers.append(server)
        return server
    yield start
    for server in servers:
        server.stop()


HOSTILE = [
    # (id, at, how, line size, failed phase, text in msg)
    ('endless-greeting', 'greeting', 'lines', 200, 'connect',
     'the greeting went on past 100 lines'),
    ('endless-greeting-long-lines', 'greeting', 'lines', 2000, 'connect',
     'the greeting went on past 32768 bytes'),
    ('endless-ehlo', 'EHLO', 'lines', 200, 'ehlo', 'the reply to EHLO went on past 100 lines'),
    ('endless-line', 'greeting', 'line', 512, 'connect',
     'the greeting has a line longer than 2048 bytes'),
    ('endless-rcpt-line', 'RCPT', 'line', 512, 'rcpt',
     'the reply to RCPT has a line longer than 2048 bytes'),
    ('trickle-greeting', 'greeting', 'trickle', 512, 'connect',
     'the greeting was not complete within 3.0 s'),
    ('trickle-data', '.', 'trickle', 512, 'data',
     'the reply to the message was not complete within 3.0 s'),
]


@pytest.mark.parametrize('case', HOSTILE, ids=[c[0] for c in HOSTILE])
def test_direct_run_fails_in_its_phase_in_time_with_bounded_memory(hostile, case):
    name, at, how, size, phase, text = case
    baseline_server = hostile(at='MAIL', how='550 5.7.1 refused')
    baseline, baseline_rss, dummy = direct_run(direct_params(baseline_server.port))
    assert baseline['failed_phase'] == 'mail', baseline['msg']

    server = hostile(at=at, how=how, line_size=size, interval=1.0)
    result, rss, seconds = direct_run(direct_params(server.port))
    assert result['failed_phase'] == phase and text in result['msg'], result['msg']
    assert server.connections == 1
    if how == 'trickle':
        # the step's deadline, however the bytes come: not one timeout per read
        assert TIMEOUT * 1000 - 50 <= result['timings_ms'][phase] <= TIMEOUT * 1000 + 800
        assert 'no answer' not in result['msg']
    else:
        assert result['timings_ms'][phase] < TIMEOUT * 1000
    assert seconds < TIMEOUT + 10
    # The broken session gets no QUIT: the client drops it.
    assert not any(c.upper().startswith('QUIT') for c in server.commands), server.commands
    assert server.wait_ended()
    assert rss < baseline_rss + 20, (rss, baseline_rss)
    # The transcript keeps what came, within its bounds.
    assert len(result['transcript']) <= 1001
    assert sum(len(t['line']) for t in result['transcript']) <= 262144 + 1000


def test_the_memory_measurement_sees_growth():
    """The control: a child that allocates 300 MB is measured as such (the RSS figure above is
    the kernel's and would show a reader that keeps what it reads)."""
    dummy, rss, dummy = measured([sys.executable, '-c', CONTROL])
    assert rss > 300


def module_args(port, **extra):
    out = dict(host='127.0.0.1', port=port, tls='none', auth='none', sender=SENDER, to=[RCPT],
               timeout=TIMEOUT)
    out.update(extra)
    return out


def send(name, **module_args):
    return {'name': name, 'exchangeonline.mail.smtp_test': module_args, 'register': 'out',
            'ignore_errors': True}


def test_playbook_memory_stays_bounded_with_an_endless_greeting(hostile, tmp_path):
    """The whole ansible-playbook process tree (the module runs in its worker, or in a module
    process under it): its peak RSS with a refusing server, then with an endless greeting
    served as fast as it is read."""
    refusing = hostile(at='MAIL', how='550 5.7.1 refused')
    results, baseline_rss, dummy = playbook_run(
        [send('refused', **module_args(refusing.port))], str(tmp_path / 'baseline'))
    assert results[-1]['result']['failed_phase'] == 'mail'
    endless = hostile(at='greeting', how='lines', line_size=200)
    results, rss, seconds = playbook_run(
        [send('endless', **module_args(endless.port))], str(tmp_path / 'endless'))
    r = results[-1]['result']
    assert r['failed_phase'] == 'connect' and 'went on past 100 lines' in r['msg'], r['msg']
    assert rss < baseline_rss + 20, (rss, baseline_rss)


def test_playbook_reports_each_hostile_server_in_time(hostile, play):
    cases = [c for c in HOSTILE if c[0] in ('endless-greeting', 'endless-ehlo', 'endless-line',
                                            'trickle-greeting')]
    servers = {c[0]: hostile(at=c[1], how=c[2], line_size=c[3]) for c in cases}
    started = time.monotonic()
    run = play([send(c[0], **module_args(servers[c[0]].port)) for c in cases])
    seconds = time.monotonic() - started
    for name, at, how, size, phase, text in cases:
        task = run.task(name)
        r = task['result']
        assert task['status'] == 'failed'
        assert r['failed_phase'] == phase and r['msg'].startswith('%s failed: ' % phase)
        assert text in r['msg'], r['msg']
        assert ' -- ' in r['msg'] and 'check' in r['hint']  # what to do
        assert r['elapsed_ms'] <= TIMEOUT * 1000 + 1000
    assert 'Traceback' not in run.stdout + run.stderr
    # four tasks, one of them trickling for the whole timeout; ansible itself takes a few s
    assert seconds < TIMEOUT * 2 + 30


TOKEN = 'eyJ0eXAiOiJKV1QiLCJhbGciOiJSUzI1NiJ9.eyJhdWQiOiJob3N0aWxlLWxhYiJ9.c2lnbmF0dXJlLTQ5'


@pytest.mark.parametrize('how', ['lines', 'trickle', 'line'])
def test_no_secret_in_verbose_output_when_the_server_breaks_after_auth(hostile, play, how):
    plain, oauth = hostile(at='AUTH', how=how), hostile(at='AUTH', how=how)
    common = dict(username=SENDER, allow_plaintext_auth=True)
    run = play([send('plain', **module_args(plain.port, auth='plain', password=PASSWORD,
                                            **common)),
                send('xoauth2', **module_args(oauth.port, auth='xoauth2', access_token=TOKEN,
                                              **common))],
               verbosity=3)
    for name, server in (('plain', plain), ('xoauth2', oauth)):
        r = run.task(name)['result']
        assert r['failed_phase'] == 'auth', r['msg']
        assert 'AUTH %s ********' % name.upper() in [t['line'] for t in r['transcript']]
    blobs = [base64.b64encode(('\x00%s\x00%s' % (SENDER, PASSWORD)).encode()).decode(),
             base64.b64encode(('user=%s\x01auth=Bearer %s\x01\x01' % (SENDER, TOKEN))
                              .encode()).decode()]
    # both were sent, so both could have leaked
    assert any(blobs[0] in c for c in plain.commands)
    assert any(blobs[1] in c for c in oauth.commands)
    text = run.stdout + run.stderr + repr(run.results)
    assert PASSWORD not in text and TOKEN not in text and TOKEN[:30] not in text
    assert not any(b in text or b[:24] in text for b in blobs)


def test_control_characters_are_refused_before_any_connection(hostile, play):
    server = hostile(at='never')
    cases = [('body', {'body': 'hello\x00world'}, 'body contains a NUL character'),
             ('bell', {'body': 'hello\x07world'}, 'body holds the control character U+0007'),
             ('subject', {'subject': 'hi\x1b[2J'}, 'subject holds the control character U+001B'),
             ('header', {'headers': {'X-Id': 'a\r\nBcc: victim@example.com'}},
              "headers: the value of 'X-Id' holds the control character U+000D"),
             ('to', {'to': [RCPT + '\n']}, 'to[0] '),
             ('ehlo', {'ehlo_name': 'host\x7f'}, 'ehlo_name ')]
    run = play([send(name, **module_args(server.port, **extra)) for name, extra, dummy in cases])
    for name, extra, text in cases:
        r = run.task(name)['result']
        assert r['failed_phase'] == 'input' and text in r['msg'], r['msg']
    assert server.connections == 0 and server.commands == []


def test_a_broken_quit_after_the_message_was_accepted_is_no_failure(hostile, play):
    server = hostile(at='QUIT', how='trickle')
    run = play([send('quit', **module_args(server.port, body='hello\n'))])
    r = run.last['result']
    assert run.last['status'] == 'ok', r.get('msg')
    assert r['phase'] == 'data' and r['queue_id'] == 'HOSTILE1'
    assert TIMEOUT * 1000 - 50 <= r['timings_ms']['quit'] <= TIMEOUT * 1000 + 800


def test_transcript_is_cut_and_says_so(hostile, play):
    server = hostile(at='never')
    rcpts = ['user%03d@contoso.example' % i for i in range(600)]
    run = play([send('many', **module_args(server.port, to=rcpts, quit_after='rcpt'))])
    r = run.last['result']
    assert run.last['status'] == 'ok', r.get('msg')
    assert sum(1 for c in server.commands if c.upper().startswith('RCPT')) == 600
    transcript = r['transcript']
    assert len(transcript) == 1001
    note = transcript[-1]
    assert note['direction'] == 'note'
    # the greeting, EHLO and 3 reply lines, MAIL and its reply: 7 lines; 600 x 2 for RCPT;
    # RSET, QUIT and their replies: 1211 in all, 1000 kept.
    assert note['line'] == ('the transcript was cut here at 1000 lines or 262144 bytes: 211 '
                            'later lines left out')


def test_421_hint_names_exchange_online_only_for_exchange_online(hostile, play):
    other = hostile(at='MAIL', how='421 4.7.0 Too many connections from your host, try later')
    exo = hostile(at='MAIL', how='421 4.7.66 Too many concurrent connections from this client.',
                  greeting='220 AM0PR10CA0041.outlook.office365.com Microsoft ESMTP MAIL '
                           'Service ready at Mon, 1 Dec 2025 09:00:00 +0000')
    run = play([send('other', **module_args(other.port)), send('exo', **module_args(exo.port))])
    r = run.task('other')['result']
    assert (r['failed_phase'], r['smtp_code'], r['enhanced_code']) == ('mail', 421, '4.7.0')
    assert 'retry later' in r['hint'] and 'Exchange' not in r['hint'], r['hint']
    r = run.task('exo')['result']
    assert (r['failed_phase'], r['smtp_code'], r['enhanced_code']) == ('mail', 421, '4.7.66')
    assert 'Exchange Online is throttling' in r['hint'], r['hint']


EXO_GREETING = ('220 AM0PR10CA0041.outlook.office365.com Microsoft ESMTP MAIL Service ready at '
                'Mon, 1 Dec 2025 09:00:00 +0000')
# Exchange Online's sender thread limit also comes at the end of DATA, in its newer wording:
# "432 4.3.2 Concurrent connections limit exceeded. Visit https://aka.ms/concurrent_sending ...
# (in reply to end of DATA command)" (Postfix logs of smtp.office365.com in a public log
# parser's test data); nodemailer's "Message failed: 432 4.3.2 STOREDRV.ClientSubmit; sender
# thread limit exceeded" (timeoff-management#308) is an end-of-DATA answer too.
CONCURRENT = ('432 4.3.2 Concurrent connections limit exceeded. Visit https://aka.ms/'
              'concurrent_sending for more information. [Hostname=AM0PR10MB1234.EURPRD10.PROD.'
              'OUTLOOK.COM]')


def test_432_then_a_closed_connection_names_the_432_and_its_hint(hostile):
    from ansible_collections.exchangeonline.mail.plugins.module_utils._smtp_test import SmtpTest
    server = hostile(at='MAIL', how='432 4.3.2 STOREDRV.ClientSubmit; sender thread limit '
                     'exceeded', greeting=EXO_GREETING)
    r = SmtpTest(direct_params(server.port), False).run()
    assert (r['failed_phase'], r['smtp_code'], r['enhanced_code']) == ('mail', 432, '4.3.2'), \
        r['msg']
    assert 'sender thread limit exceeded, then closed the connection' in r['msg']
    assert 'at most 3 sessions' in r['hint']
    assert server.connections == 1


def test_432_at_the_end_of_data_is_not_said_to_be_retried(hostile):
    from ansible_collections.exchangeonline.mail.plugins.module_utils._smtp_test import SmtpTest
    server = hostile(at='.', how=CONCURRENT, greeting=EXO_GREETING)
    r = SmtpTest(direct_params(server.port), False).run()
    assert (r['failed_phase'], r['smtp_code'], r['enhanced_code']) == ('data', 432, '4.3.2'), \
        r['msg']
    assert r['send_as_proven'] is False
    assert 'at most 3 sessions' in r['hint'] and 'tries MAIL FROM 3 times' not in r['hint']
    assert 'at the end of DATA' in r['hint'] and 'not sent again' in r['hint'], r['hint']
