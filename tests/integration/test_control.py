#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""The control socket (--control unix:PATH, issue 12 item 1) driven by a
plain Python QMP client: a running migration queried, its max-bandwidth
lowered (the measured rate follows within a second) and raised, a
migration that cannot converge under downtime-limit=1 completing once the
limit is raised, migrate_cancel (the guest runs on at the source), events
in order on both sides, malformed and premature requests answered with
errors while the migration goes on, another uid refused, the socket
removed at exit, and `livemig ctl`'s output and exit codes."""
import json
import os
import socket
import stat
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import lmtest as t  # noqa: E402
from lmtest import Qmp, passes, query, statuses, wait_path  # noqa: E402

c = t.Checker("control")
L = t.LIVEMIG
tmp = tempfile.mkdtemp(prefix="lm-ctl-")
MiB = 1 << 20


def rate(q, seconds):
    """Wire bytes/s over the next seconds, from ram.transferred."""
    a = query(q)["ram"]["transferred"]
    t0 = time.time()
    time.sleep(seconds)
    b = query(q)["ram"]["transferred"]
    return (b - a) / (time.time() - t0)


def ctl(*args, timeout=30):
    p = subprocess.run([L, "ctl"] + list(args), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                       text=True, timeout=timeout)
    return p.returncode, p.stdout, p.stderr


# ---- 1. steering a running migration -----------------------------------------
uri = "unix:" + os.path.join(tmp, "mig.sock")
cd, cs = os.path.join(tmp, "cd.sock"), os.path.join(tmp, "cs.sock")
src_json = os.path.join(tmp, "src.json")
dest = t.start_dest(uri, "--control", "unix:" + cd)
c.check(wait_path(cd, dest), "the destination's control socket exists")
c.check(stat.S_IMODE(os.stat(cd).st_mode) == 0o600, "control socket mode 0600")
qd = Qmp(cd)
c.check("QMP" in qd.greeting and qd.greeting["QMP"]["capabilities"] == [] and
        "qemu" in qd.greeting["QMP"]["version"], "greeting: %s" % qd.greeting)
c.check(query(qd).get("status") == "setup", "destination waiting: setup")
mp = qd.cmd("query-migrate-parameters").get("return", {})
c.check("max-ram" in mp and "max-bandwidth" not in mp, "destination parameters: %s" % mp)

# 128 MiB at 40 MiB/s: pass 1 lasts about 3 s.  A guest dirtying 20 MiB/s
# of a 16 MiB region never converges with downtime-limit 1 ms (about 50
# pages dirty after the shortest pass, 9 would fit) and always with 2 s.
src = subprocess.Popen([L, "source", "--connect", uri, "--no-progress", "--mem", "128M",
                        "--fill", "random", "--dirty-rate", "20M", "--dirty-hot", "16M",
                        "--dirty-threads", "2",
                        "--set", "max-bandwidth=40M", "--set", "downtime-limit=1",
                        "--control", "unix:" + cs, "--json", src_json],
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
c.check(wait_path(cs, src), "the source's control socket exists")
# `livemig ctl --events` from the start, until the migration ends.
ev_proc = subprocess.Popen([L, "ctl", cs, "--events"], stdout=subprocess.PIPE,
                           stderr=subprocess.PIPE, text=True)
qs = Qmp(cs)
end = time.time() + 10
while time.time() < end and query(qs).get("status") != "active":
    time.sleep(0.05)
st = query(qs)
c.check(st.get("status") == "active" and st["ram"]["total"] == 128 * MiB and
        st["role"] == "source", "query while active: %s" % st.get("status"))

# Requests that are wrong get errors; the migration goes on.
raw = Qmp(cs, negotiate=False)
r = raw.cmd("query-migrate", id=1)
c.check(r.get("error", {}).get("class") == "CommandNotFound" and r.get("id") == 1,
        "a command before qmp_capabilities: %s" % r)
raw.send(b'{"execute": query-migrate}\n')
r = raw.reply()
c.check(r.get("error", {}).get("class") == "GenericError" and
        "JSON parse error" in r["error"]["desc"], "bad JSON: %s" % r)
raw.send(b"[1, 2]\n")
r = raw.reply()
c.check(r.get("error", {}).get("class") == "GenericError", "not an object: %s" % r)
c.check(raw.cmd("qmp_capabilities") == {"return": {}}, "negotiation after errors")
r = raw.cmd("migrate", {"uri": "tcp:x:1"}, id="m")
c.check(r.get("error", {}).get("class") == "CommandNotFound" and r.get("id") == "m",
        "unknown command: %s" % r)
r = raw.cmd("migrate-set-parameters", {"multifd-channels": 8})
c.check(r.get("error", {}).get("class") == "GenericError" and
        "cannot change while a migration runs" in r["error"]["desc"],
        "a parameter that is not changeable: %s" % r)
raw.close()

# max-bandwidth down to 4 MiB/s: the rate follows within a second.
before = rate(qs, 0.8)
r = qs.cmd("migrate-set-parameters", {"max-bandwidth": 4 * MiB})
t_set = time.time()
c.check(r == {"return": {}}, "max-bandwidth lowered: %s" % r)
time.sleep(max(0, t_set + 0.3 - time.time()))
after = rate(qs, 1.0)
c.check(before > 8 * MiB and after < 6 * MiB,
        "rate %.1f MiB/s, then %.1f MiB/s within a second of max-bandwidth 4 MiB/s"
        % (before / MiB, after / MiB))
mp = qs.cmd("query-migrate-parameters").get("return", {})
c.check(mp.get("max-bandwidth") == 4 * MiB and mp.get("downtime-limit") == 1,
        "query-migrate-parameters: %s" % {k: mp.get(k) for k in ("max-bandwidth",
                                                                  "downtime-limit")})
# Up again, and the pre-copy passes go on without converging.
c.check(qs.cmd("migrate-set-parameters", {"max-bandwidth": "40M"}) == {"return": {}},
        "max-bandwidth raised")
time.sleep(0.3)
up = rate(qs, 1.0)
c.check(up > 8 * MiB, "rate back to %.1f MiB/s" % (up / MiB))
end = time.time() + 20
while time.time() < end and query(qs).get("dirty-sync-count", 0) < 4:
    time.sleep(0.1)
st = query(qs)
c.check(st.get("status") == "active" and st.get("dirty-sync-count", 0) >= 4,
        "not converging under downtime-limit 1 ms: %s after %s passes"
        % (st.get("status"), st.get("dirty-sync-count")))
# A limit it can meet: it completes.
r = qs.cmd("migrate-set-parameters", {"downtime-limit": 2000})
t_raise = time.time()
c.check(r == {"return": {}}, "downtime-limit raised: %s" % r)
rc, out, err = t.finish(src, timeout=60)
took = time.time() - t_raise
c.check(rc == 0 and "completed" in out and took < 5,
        "source completes %.1f s after the raise: %s %s" % (took, rc, err[-400:]))
drc, dout, derr = t.finish(dest, timeout=30)
c.check(drc == 0, "destination completes: %s %s" % (drc, derr[-400:]))
try:
    js = t.load_json(src_json)
    c.check(js["status"] == "completed" and js["parameters"]["max-bandwidth"] == 40 * MiB,
            "JSON: %s, max-bandwidth %s" % (js["status"], js["parameters"]["max-bandwidth"]))
except (OSError, ValueError, KeyError) as e:
    c.check(False, "source JSON: %s" % e)

# Events: the destination's client saw everything from setup on, the
# source's from the moment it connected; in order, passes one by one.
for name, q in (("destination", qd), ("source", qs)):
    evs = q.all_events()
    sts, ps = statuses(evs), passes(evs)
    want = ["setup", "active", "device", "completed"]
    c.check(sts == want[len(want) - len(sts):] and sts[-1:] == ["completed"],
            "%s: MIGRATION events %s" % (name, sts))
    c.check(len(ps) >= 4 and ps == list(range(ps[0], ps[0] + len(ps))),
            "%s: MIGRATION_PASS events %s" % (name, ps[:3] + ["..."] + ps[-3:]))
    c.check(all(e["timestamp"]["seconds"] > 1600000000 for e in evs),
            "%s: events carry timestamps" % name)
    order = [e["timestamp"]["seconds"] * 10**6 + e["timestamp"]["microseconds"] for e in evs]
    c.check(order == sorted(order), "%s: timestamps in order" % name)
    q.close()
rc, out, err = t.finish(ev_proc, timeout=10)
lines = [json.loads(x) for x in out.splitlines() if x.strip()]
sts = statuses(lines)
c.check(rc == 0 and sts == ["setup", "active", "device", "completed"][-len(sts):] and
        sts[-1:] == ["completed"] and passes(lines),
        "livemig ctl --events: exit %s, %s, %d passes" % (rc, sts, len(passes(lines))))
c.check(not os.path.exists(cs) and not os.path.exists(cd), "control sockets removed at exit")

# ---- 2. migrate_cancel, and livemig ctl ------------------------------------------
uri = "unix:" + os.path.join(tmp, "mig2.sock")
dest = t.start_dest(uri)
src = subprocess.Popen([L, "source", "--connect", uri, "--no-progress", "--mem", "64M",
                        "--dirty-rate", "5M", "--set", "max-bandwidth=8M",
                        "--control", "unix:" + cs],
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
c.check(wait_path(cs, src), "control socket (cancel)")
end = time.time() + 10
while time.time() < end:
    rc, out, err = ctl(cs, "query-migrate")
    if rc == 0 and json.loads(out)["status"] == "active":
        break
    time.sleep(0.05)
c.check(rc == 0 and json.loads(out)["ram"]["total"] == 64 * MiB,
        "livemig ctl query-migrate: exit %s" % rc)
rc, out, err = ctl(cs, "migrate-set-parameters", '{"downtime-limit": 50}')
c.check(rc == 0 and out.strip() == "{}", "ctl migrate-set-parameters: %s %r" % (rc, out))
rc, out, err = ctl(cs, "migrate-set-parameters", '{"multifd-compression": "zstd"}')
c.check(rc == 1 and "multifd-compression cannot change" in err,
        "ctl: an error is exit 1 with its desc: %s %r" % (rc, err))
rc, out, err = ctl(cs, "no-such-command")
c.check(rc == 1 and "CommandNotFound" in err, "ctl unknown command: %s %r" % (rc, err))
rc, out, err = ctl(cs, "migrate-set-parameters", "{not json")
c.check(rc == 2 and "JSON object" in err, "ctl bad arguments: exit %s" % rc)
rc, out, err = ctl(cs, "query-migrate-parameters")
c.check(rc == 0 and json.loads(out)["downtime-limit"] == 50, "ctl sees the change")
q = Qmp(cs)
rc, out, err = ctl(cs, "migrate_cancel")
c.check(rc == 0 and out.strip() == "{}", "ctl migrate_cancel: %s %r" % (rc, out))
rc, out, err = t.finish(src, timeout=30)
c.check(rc == 1 and "cancelled" in err and t.GUEST_RAN_ON in err,
        "cancelled, the guest runs on at the source: %s %s" % (rc, err[-300:]))
evs = q.all_events()
c.check(statuses(evs)[-1:] == ["cancelled"], "cancel event: %s" % statuses(evs))
drc, _, derr = t.finish(dest, timeout=30)
c.check(drc == 1, "destination discards after the cancel: %s" % drc)
rc, out, err = ctl(cs, "query-migrate")
c.check(rc == 1 and "cannot connect" in err, "ctl without a socket: exit %s" % rc)
rc, out, err = ctl()
c.check(rc == 2 and "usage" in err, "ctl without arguments: exit %s" % rc)
rc, out, err = ctl("--help")
c.check(rc == 0 and "--events" in out, "ctl --help")
rc, out, err = ctl(cs, "--events", "x")
c.check(rc == 2, "ctl --events takes nothing more: exit %s" % rc)
for args, word in ((["dest", "--listen", uri, "--control", "tcp:1.2.3.4:5"], "unix:PATH"),
                   (["dest", "--listen", uri, "--control", "unix:/" + "x" * 200], "107")):
    p = subprocess.run([L] + args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                       timeout=30)
    c.check(p.returncode == 2 and word in p.stderr,
            "--control usage error: %s %r" % (p.returncode, p.stderr))

# ---- 3. another user ---------------------------------------------------------------
if os.geteuid() != 0:
    print("control: not root, the other-uid check is skipped")
else:
    # A directory others may enter: only the socket's own mode and
    # SO_PEERCRED stand in the way.
    pub = tempfile.mkdtemp(prefix="lm-ctl-uid-")
    os.chmod(pub, 0o755)
    cd = os.path.join(pub, "cd.sock")
    dest = t.start_dest(uri, "--control", "unix:" + cd)
    c.check(wait_path(cd, dest), "control socket (other uid)")
    probe = ("import socket,sys\n"
             "s=socket.socket(socket.AF_UNIX)\n"
             "try:\n s.connect(sys.argv[1])\nexcept OSError as e:\n print('refused', e.errno); sys.exit()\n"
             "s.settimeout(5)\nprint('read', len(s.recv(4096)))\n")

    def as_nobody(path):
        py = "/usr/bin/python3" if os.path.exists("/usr/bin/python3") else sys.executable
        p = subprocess.run([py, "-c", probe, path], stdout=subprocess.PIPE,
                           stderr=subprocess.PIPE, text=True, timeout=30,
                           preexec_fn=lambda: (os.setgid(65534), os.setuid(65534)))
        return p.stdout.strip()

    # The mode keeps it out; with the mode opened, SO_PEERCRED does.
    got = as_nobody(cd)
    c.check(got.startswith("refused 13"), "another uid, mode 0600: %s" % got)
    os.chmod(cd, 0o666)
    got = as_nobody(cd)
    c.check(got == "read 0", "another uid, SO_PEERCRED: %s" % got)
    q = Qmp(cd)
    c.check(query(q).get("status") == "setup", "the owner still gets in")
    q.close()
    dest.terminate()
    rc, out, err = t.finish(dest, timeout=30)
    c.check("refused a connection of another user" in err, "refusal logged: %r" % err[-300:])

# Clients that connect and never negotiate do not hold the slots for ever:
# each is closed LM_QMP_NEGOTIATE_S (10 s) after it came, so an operator
# gets in after them (attack review: 8 idle clients locked the socket).
port = t.free_port()
cd = os.path.join(tmp, "idle.sock")
dest = t.start_dest("tcp:127.0.0.1:%d" % port, "--control", "unix:" + cd, "--timeout", "40")
c.check(wait_path(cd, dest), "control socket (idle clients)")
idle = []
for _ in range(8):
    sk = socket.socket(socket.AF_UNIX)
    sk.connect(cd)
    idle.append(sk)
time.sleep(0.5)
rc, out, err = ctl(cd, "query-migrate")
c.check(rc != 0, "a 9th client is refused while 8 idle ones hold the slots: %s %r" % (rc, err))
time.sleep(11)
rc, out, err = ctl(cd, "query-migrate")
c.check(rc == 0 and '"setup"' in out, "after 10 s the idle clients are closed: %s %r" % (rc, err))
for sk in idle:
    sk.close()
dest.terminate()
t.finish(dest, timeout=30)

c.done()
