#!/usr/bin/env python3
"""The shipped systemd unit (deploy/xiaozhi-server.service) is valid and
hardened, and its command line works with the real binary.

argv[1]: xiaozhi-server, argv[2]: the unit, argv[3]: deploy/appliance.ini.
- `systemd-analyze verify` on the unit (ExecStart pointed at this build's
  binary) reports nothing: every key parses;
- `systemd-analyze security --offline=true` rates its exposure 2.0 or
  lower ("OK" on systemd's scale);
- the ExecStart line, with ${STATE_DIRECTORY} and the config path filled
  in, starts this build's server, and the unit's KillSignal stops it
  with status 0.
Skips (77) without systemd-analyze."""
import os
import re
import shlex
import shutil
import signal
import subprocess
import sys
import tempfile
import time

binary, unit, ini = (os.path.abspath(a) for a in sys.argv[1:4])
analyze = shutil.which("systemd-analyze")
if not analyze:
    print("SKIP: systemd-analyze is not installed")
    sys.exit(77)

failures = []


def check(cond, what):
    print(("ok   " if cond else "FAIL ") + what)
    if not cond:
        failures.append(what)


text = open(unit).read()
m = re.search(r"^ExecStart=(\S+)(.*)$", text, re.M)
check(m is not None, "the unit has an ExecStart line")
installed_bin, args = m.group(1), m.group(2)
conf = re.search(r"--config (\S+)", args).group(1)

tmp = tempfile.mkdtemp(prefix="xz-unit-")
proc = None
try:
    local = os.path.join(tmp, "xiaozhi-server.service")
    with open(local, "w") as f:
        f.write(text.replace(installed_bin, binary).replace(conf, ini))
    r = subprocess.run([analyze, "verify", local], capture_output=True,
                       text=True)
    msgs = [l for l in (r.stdout + r.stderr).splitlines()
            if l.strip() and "Documentation" not in l]
    check(r.returncode == 0 and not msgs,
          "systemd-analyze verify accepts every line (%s)" % "; ".join(msgs))

    r = subprocess.run([analyze, "security", "--offline=true", local],
                       capture_output=True, text=True)
    m = re.search(r"Overall exposure level for \S+: ([0-9.]+)", r.stdout)
    level = float(m.group(1)) if m else 99.0
    check(level <= 2.0, "exposure level %.1f <= 2.0" % level)

    # The command line itself, as systemd would run it.
    state = os.path.join(tmp, "state")
    os.mkdir(state)
    argv = [binary] + shlex.split(
        args.replace("${STATE_DIRECTORY}", state).replace(conf, ini))
    argv += ["--set", "server.host=127.0.0.1", "--set", "server.port=0"]
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    started = False
    deadline = time.time() + 60
    while time.time() < deadline:
        line = proc.stdout.readline()
        if line.startswith("listening on "):
            started = True
            break
        if not line and proc.poll() is not None:
            break
    check(started, "the unit's ExecStart command line starts the server")
    proc.send_signal(signal.SIGTERM)
    try:
        out, err = proc.communicate(timeout=60)
    except subprocess.TimeoutExpired:
        proc.kill()
        out, err = proc.communicate()
    check(proc.returncode == 0,
          "KillSignal (SIGTERM) stops it with status 0 (%s)" % err[-300:])
finally:
    if proc and proc.poll() is None:
        proc.kill()
        proc.wait()
    shutil.rmtree(tmp, ignore_errors=True)

sys.exit(1 if failures else 0)
