#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Live statistics that are true while a migration runs and after it ends
(issue 12, a new user's findings): ram.remaining goes down during every
pass, not only the first; what is not known yet (expected-downtime and
dirty-pages-rate before the first dirty sync after pass 1, a destination's
remaining after pass 1) is null, not 0; the source's control socket exists
during the guest's fill, and a client connected then (or to a destination
waiting for its source) sees every MIGRATION event from setup on; a
destination's progress on a terminal says it waits for its source, and its
rates start with the first page (not averaged with the wait)."""
import os
import pty
import re
import select
import signal
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import lmtest as t  # noqa: E402
from lmtest import Qmp, query, statuses, wait_path  # noqa: E402

c = t.Checker("progress")
L = t.LIVEMIG
tmp = tempfile.mkdtemp(prefix="lm-prog-")
MiB = 1 << 20


def wait_for(q, cond, timeout):
    """Polls query-migrate until cond(st) holds; the last answer."""
    end = time.time() + timeout
    st = query(q)
    while time.time() < end and not cond(st):
        time.sleep(0.05)
        st = query(q)
    return st


# ---- a running guest that never converges (downtime-limit 1 ms) ------------
# 64 MiB at 16 MiB/s: pass 1 lasts 4 s; the guest writes a 32 MiB hot set
# at 32 MiB/s, so every later pass has about 32 MiB to send: 2 s each.
uri = "unix:" + os.path.join(tmp, "mig.sock")
cd, cs = os.path.join(tmp, "cd.sock"), os.path.join(tmp, "cs.sock")
dest_json = os.path.join(tmp, "dest.json")
dest = t.start_dest(uri, "--control", "unix:" + cd, json_path=dest_json)
src = subprocess.Popen([L, "source", "--connect", uri, "--no-progress", "--mem", "64M",
                        "--fill", "random", "--dirty-rate", "32M", "--dirty-hot", "32M",
                        "--set", "max-bandwidth=16M", "--set", "downtime-limit=1",
                        "--control", "unix:" + cs],
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
c.check(wait_path(cs, src) and wait_path(cd, dest), "control sockets")
qs, qd = Qmp(cs), Qmp(cd)

# Pass 1: nothing measured yet: unknown, not 0.
st = wait_for(qs, lambda st: st.get("status") == "active" and st["ram"]["transferred"] > 0, 20)
c.check(st.get("status") == "active" and st.get("dirty-sync-count") == 1 and
        st.get("expected-downtime") is None and st["ram"].get("dirty-pages-rate") is None,
        "pass 1: expected-downtime %r, dirty-pages-rate %r (null: not measured yet)"
        % (st.get("expected-downtime"), st["ram"].get("dirty-pages-rate")))
std = wait_for(qd, lambda st: st["ram"]["transferred"] > 0, 10)
c.check(std["ram"]["remaining"] is not None and 0 < std["ram"]["remaining"] < 64 * MiB,
        "destination in pass 1: remaining %r" % std["ram"]["remaining"])

# Pass 2 and 3: remaining goes down as pages go out.
for k in (2, 3):
    st = wait_for(qs, lambda st: st.get("dirty-sync-count", 0) >= k, 20)
    samples = []
    while len(samples) < 6:
        st = query(qs)
        if st.get("dirty-sync-count") != k:
            break
        samples.append(st["ram"]["remaining"])
        time.sleep(0.15)
    c.check(len(samples) >= 3 and all(b < a for a, b in zip(samples, samples[1:])),
            "pass %d: remaining goes down: %s" % (k, samples))
    c.check(st.get("expected-downtime") is not None and
            st["ram"].get("dirty-pages-rate") is not None and st["ram"]["dirty-pages-rate"] > 0,
            "pass %d: expected-downtime %r, dirty-pages-rate %r" % (
                k, st.get("expected-downtime"), st["ram"].get("dirty-pages-rate")))

# The destination after pass 1 cannot know what the source still has.
std = query(qd)
c.check(std.get("dirty-sync-count", 0) >= 2 and std["ram"]["remaining"] is None and
        std.get("expected-downtime") is None,
        "destination in pass %s: remaining %r, expected-downtime %r (null)"
        % (std.get("dirty-sync-count"), std["ram"]["remaining"], std.get("expected-downtime")))

# Cancelled on the destination in pass 2+: its JSON keeps remaining null.
r = qd.cmd("migrate_cancel")
c.check(r == {"return": {}}, "destination migrate_cancel: %s" % r)
rc, out, err = t.finish(src, timeout=60)
drc, dout, derr = t.finish(dest, timeout=60)
c.check(rc == 1 and drc == 1, "cancelled on the destination: exit %s/%s" % (rc, drc))
c.check("destination reported: migration cancelled" in err and t.GUEST_RAN_ON in err,
        "the source says why: %r" % err[-400:])
try:
    js = t.load_json(dest_json)
    c.check(js["status"] == "cancelled" and js["ram"]["remaining"] is None,
            "destination JSON after a cancel in pass 2+: %s, remaining %r"
            % (js["status"], js["ram"]["remaining"]))
except (OSError, ValueError, KeyError) as e:
    c.check(False, "destination JSON: %s" % e)
qs.close()
qd.close()

# ---- a failure in pass 1 ---------------------------------------------------
# The rates were never measured: null after the end too; remaining is
# what was not sent.
uri = "unix:" + os.path.join(tmp, "mig2.sock")
src_json = os.path.join(tmp, "src2.json")
dest = t.start_dest(uri)
src = subprocess.Popen([L, "source", "--connect", uri, "--no-progress", "--mem", "64M",
                        "--fill", "random", "--dirty-rate", "30M",
                        "--set", "max-bandwidth=16M", "--control", "unix:" + cs,
                        "--json", src_json],
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
c.check(wait_path(cs, src), "control socket (failure in pass 1)")
qs = Qmp(cs)
ev_proc = subprocess.Popen([L, "ctl", cs, "--events"], stdout=subprocess.PIPE,
                           stderr=subprocess.PIPE, text=True)
wait_for(qs, lambda st: st["ram"]["transferred"] > 8 * MiB, 20)
r = qs.cmd("migrate_cancel")
rc, out, err = t.finish(src, timeout=60)
t.finish(dest, timeout=60)
erc, eout, eerr = t.finish(ev_proc, timeout=30)
c.check(erc == 1 and '"cancelled"' in eout, "ctl --events after a cancel: exit %s" % erc)
try:
    js = t.load_json(src_json)
    ram = js["ram"]
    c.check(js["status"] == "cancelled" and js["expected-downtime"] is None and
            ram["dirty-pages-rate"] is None and 0 < ram["remaining"] < ram["total"],
            "cancelled in pass 1: expected-downtime %r, dirty-pages-rate %r, remaining %r"
            % (js["expected-downtime"], ram["dirty-pages-rate"], ram["remaining"]))
except (OSError, ValueError, KeyError) as e:
    c.check(False, "source JSON: %s" % e)
qs.close()

# ---- a running guest that completes: the summary counts passes as
# dirty-sync-count does, the final one apart.
uri = "unix:" + os.path.join(tmp, "mig6.sock")
src_json = os.path.join(tmp, "src6.json")
dest = t.start_dest(uri)
rc, out, err = t.run_source(uri, "--mem", "32M", "--dirty-rate", "4M", "--set",
                            "downtime-limit=300", "--json", src_json)
t.finish(dest, timeout=60)
try:
    n = t.load_json(src_json)["dirty-sync-count"]
    m = re.search(r"precopy +(\d+) pass(es)? while the guest ran \+ the final one", out)
    c.check(rc == 0 and m and int(m.group(1)) == n - 1,
            "summary: %r, dirty-sync-count %d" % (m.group(0) if m else out, n))
except (OSError, ValueError, KeyError) as e:
    c.check(False, "source JSON: %s" % e)

# ---- SIGINT during the source's fill: a cancel, the JSON written -----------
uri = "unix:" + os.path.join(tmp, "mig7.sock")
src_json = os.path.join(tmp, "src7.json")
dest = t.start_dest(uri)
src = subprocess.Popen([L, "source", "--connect", uri, "--no-progress", "--mem", "1G",
                        "--control", "unix:" + cs, "--json", src_json],
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
c.check(wait_path(cs, src), "control socket (SIGINT in the fill)")
qs = Qmp(cs)
filling = query(qs).get("status") == "none"
src.send_signal(signal.SIGINT)
qs.close()
rc, out, err = t.finish(src, timeout=120)
drc, dout, derr = t.finish(dest, timeout=60)
try:
    st = t.load_json(src_json)["status"]
except (OSError, ValueError, KeyError) as e:
    st = str(e)
c.check(filling and rc == 1 and st == "cancelled" and "migration cancelled" in err,
        "SIGINT during the fill (%s): exit %s, JSON %s, %r" % (filling, rc, st, err[-300:]))

# ---- SIGINT on the destination: the source is told -------------------------
uri = "unix:" + os.path.join(tmp, "mig4.sock")
dest = t.start_dest(uri)
src = subprocess.Popen([L, "source", "--connect", uri, "--no-progress", "--mem", "64M",
                        "--fill", "random", "--set", "max-bandwidth=16M", "--control",
                        "unix:" + cs], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
c.check(wait_path(cs, src), "control socket (SIGINT)")
qs = Qmp(cs)
wait_for(qs, lambda st: st["ram"]["transferred"] > 4 * MiB, 20)
qs.close()
dest.send_signal(signal.SIGINT)
rc, out, err = t.finish(src, timeout=60)
drc, dout, derr = t.finish(dest, timeout=60)
c.check(rc == 1 and drc == 1 and "destination reported: migration cancelled" in err,
        "SIGINT on the destination: exit %s/%s, the source says %r" % (rc, drc, err[-300:]))

# ---- the control socket before the fill; setup is an event -----------------
uri = "unix:" + os.path.join(tmp, "mig3.sock")
dest = t.start_dest(uri, "--control", "unix:" + cd)
c.check(wait_path(cd, dest), "control socket (events)")
qd = Qmp(cd)  # the destination waits for its source: in setup
src = subprocess.Popen([L, "source", "--connect", uri, "--no-progress", "--mem", "512M",
                        "--control", "unix:" + cs],
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
c.check(wait_path(cs, src), "the source's control socket exists")
qs = Qmp(cs)
st = query(qs)
c.check(st.get("status") == "none", "the socket exists during the fill: status %r"
        % st.get("status"))
rc, out, err = t.finish(src, timeout=120)
drc, dout, derr = t.finish(dest, timeout=60)
c.check(rc == 0 and drc == 0, "migration with early clients: exit %s/%s" % (rc, drc))
for name, q in (("source", qs), ("destination", qd)):
    sts = statuses(q.all_events())
    c.check(sts == ["setup", "active", "device", "completed"],
            "%s: every MIGRATION event from setup on: %s" % (name, sts))
    q.close()

# ---- the destination's progress on a terminal ------------------------------
# It waits 2 s for its source, then 128 MiB come at 32 MiB/s.
uri = "unix:" + os.path.join(tmp, "mig5.sock")
master, slave = pty.openpty()
dest = subprocess.Popen([L, "dest", "--listen", uri], stdout=subprocess.DEVNULL, stderr=slave)
os.close(slave)
t.wait_listening(uri, dest)
time.sleep(2)
src = subprocess.Popen([L, "source", "--connect", uri, "--no-progress", "--mem", "128M",
                        "--fill", "random", "--set", "max-bandwidth=32M"],
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
shown = b""
end = time.time() + 60
while time.time() < end:
    ready = select.select([master], [], [], 0.2)[0]
    try:
        got = os.read(master, 4096) if ready else b""
    except OSError:  # the destination closed the terminal
        break
    shown += got
    if not got and dest.poll() is not None:
        break
src.wait(timeout=60)
dest.wait(timeout=60)
os.close(master)
lines = [x.strip() for x in shown.decode(errors="replace").replace("\r", "\n").split("\n")]
setup = [x for x in lines if x.startswith("setup")]
active = [x for x in lines if x.startswith("active")]
c.check(setup and all(x.endswith("waiting for the source") for x in setup),
        "destination in setup: %s" % setup[:2])
m = re.search(r"wire ([0-9.]+) MiB/s", active[0]) if active else None
c.check(m and float(m.group(1)) > 22,
        "the first rate shown at 32 MiB/s, after a 2 s wait: %r" % (active[:1],))

c.done()
