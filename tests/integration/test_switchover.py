#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Switchover on real migrations of a writing guest (docs/design.md,
"Switchover"): at most one side ever runs the guest.  A destination that
holds RESULT back past the switchover deadline, or a cancel while it does,
gives the guest back to the source; a lost COMMIT is resolved on a new
connection; when neither side can learn the other's state both say
"unknown" (exit 3), the guest stays stopped, and resume-source resumes it
only once the destination has discarded its image.  Each case checks exit
codes, time, messages, the source guest's state and every page's stamp,
and that a destination that must not run the guest wrote no image."""
import os
import signal
import socket
import struct
import subprocess
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import lmtest as t  # noqa: E402

c = t.Checker("switchover")
d = t.tmpdir()
GUEST = ["--mem", "64M", "--fill", "random", "--dirty-rate", "8M"]


def run(name, dest_args, src_args, during=None):
    """One migration; during(dest, src) runs while it does.  Returns
    (rc, err, drc, derr, seconds, image written)."""
    uri = "tcp:127.0.0.1:%d" % t.free_port()
    dump = os.path.join(d, "image.bin")
    if os.path.exists(dump):
        os.unlink(dump)
    dest = t.start_dest(uri, *dest_args, dump=dump)
    t0 = time.time()
    src = subprocess.Popen([t.LIVEMIG, "source", "--connect", uri, "--no-progress"] + GUEST
                           + list(src_args), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                           text=True)
    if during:
        during(dest, src)
    rc, out, err = t.finish(src, timeout=60)
    dt = time.time() - t0
    drc, dout, derr = t.finish(dest, timeout=60)
    return rc, out + err, drc, dout + derr, dt, os.path.exists(dump)


def report(name, ok, rc, err, drc, derr, dt):
    def last(text):
        lines = [x for x in text.splitlines() if "livemig" in x and ("failed:" in x or
                 "unknown:" in x or "resume-source:" in x or " in " in x)]
        return lines[-1].strip() if lines else text.strip()[-160:]
    if ok:
        print("ok: %s: source exit %s after %.1f s (%s); destination exit %s (%s)"
              % (name, rc, dt, last(err), drc, last(derr)))
    else:
        print("FAILED: %s\n--- source (exit %s)\n%s\n--- destination (exit %s)\n%s"
              % (name, rc, err, drc, derr))


# A destination that holds RESULT back for 6 s: the guest stopped for
# downtime-limit (300 ms) + switchover-timeout (700 ms) and then resumes
# at the source; the destination is told why and writes no image.
name = "stall at switchover"
rc, err, drc, derr, dt, image = run(name, ["--set", "x-stall-switchover=6000"],
                                    ["--set", "switchover-timeout=700"])
why = ("switchover: the destination did not confirm within 1000 ms of the guest's stop "
       "(downtime-limit 300 + switchover-timeout 700 ms)")
ok = (c.check(rc == 1 and why in err, "%s: source exit %s" % (name, rc))
      and c.check(t.GUEST_RAN_ON in err, "%s: the source guest is not running intact" % name)
      and c.check(drc == 1 and "source reported: " + why in derr, "%s: destination" % name)
      and c.check(not image, "%s: the destination wrote an image" % name))
report(name, ok, rc, err, drc, derr, dt)

# The same stall, cancelled (SIGINT) while the guest is stopped: cancel
# works until the source commits.
name = "cancel during switchover"


def interrupt(dest, src):
    time.sleep(2.5)  # 64 MiB at loopback speed: in the 10 s stall by now
    src.send_signal(signal.SIGINT)


rc, err, drc, derr, dt, image = run(name, ["--set", "x-stall-switchover=10000"],
                                    ["--set", "switchover-timeout=60000"], interrupt)
ok = (c.check(rc == 1 and "migration failed: migration cancelled" in err,
              "%s: source exit %s" % (name, rc))
      and c.check(dt < 6, "%s: %.1f s" % (name, dt))
      and c.check(t.GUEST_RAN_ON in err, "%s: the source guest is not running intact" % name)
      and c.check(drc == 1 and "source reported: migration cancelled" in derr,
                  "%s: destination" % name)
      and c.check(not image, "%s: the destination wrote an image" % name))
report(name, ok, rc, err, drc, derr, dt)

# COMMIT lost on a reset main channel: the destination is in doubt, the
# source tells it again on a resolving connection; both complete.
name = "COMMIT lost, resolved"
nt = ["--set", "net-timeout=2"]
rc, err, drc, derr, dt, image = run(name, nt, nt + ["--set", "x-lose-commit=once"])
ok = (c.check(rc == 0 and drc == 0, "%s: exits %s/%s" % (name, rc, drc))
      and c.check("the destination confirmed COMMIT" in err, "%s: source" % name)
      and c.check("in doubt" in derr and "answered that the image is taken over" in derr,
                  "%s: destination" % name)
      and c.check(t.GUEST_STOPPED in err, "%s: the source guest runs" % name)
      and c.check("verify    match" in derr and image, "%s: no verified image" % name)
      and c.check(dt < 8, "%s: %.1f s" % (name, dt)))
report(name, ok, rc, err, drc, derr, dt)

# The same with channel-recovery on: its acceptor, stopped after the
# passes, must leave the listening socket to the resolving connections.
name = "COMMIT lost, resolved, channel-recovery on"
rc, err, drc, derr, dt, image = run(name, nt, nt + ["--set", "x-lose-commit=once",
                                                    "--cap", "channel-recovery=on"])
ok = (c.check(rc == 0 and drc == 0, "%s: exits %s/%s" % (name, rc, drc))
      and c.check("the destination confirmed COMMIT" in err and image,
                  "%s: not resolved" % name))
report(name, ok, rc, err, drc, derr, dt)

# ... also while a stranger connects and says nothing (it holds the
# destination's accept for 2 s, longer than the source waits for an answer
# with net-timeout 2: the first answer goes unheard, the next one counts).
name = "COMMIT lost, resolved past a silent stranger"


def stranger(dest, src):
    # Once the source's three connections are in, so that the stranger is
    # still half open when the resolving connections come.
    port = int(dest.args[3].rsplit(":", 1)[1])
    end = time.time() + 30
    while time.time() < end:
        out = subprocess.run(["ss", "-Htn", "state", "established", "( sport = :%d )" % port],
                             capture_output=True, text=True).stdout
        if len(out.splitlines()) >= 3:
            break
        time.sleep(0.05)
    stranger.sock = socket.create_connection(("127.0.0.1", port))


rc, err, drc, derr, dt, image = run(name, nt, nt + ["--set", "x-lose-commit=once",
                                                    "--set", "max-bandwidth=40M"], stranger)
stranger.sock.close()
ok = (c.check(rc == 0 and drc == 0, "%s: exits %s/%s" % (name, rc, drc))
      and c.check(("no complete hello" in derr or "half open or refused" in derr) and image,
                  "%s: destination" % name))
report(name, ok, rc, err, drc, derr, dt)

# COMMIT lost and never resent: neither side can know.  Both end
# "unknown" (exit 3, JSON status too); the guest stays stopped and the
# destination, after waiting 3 x net-timeout, keeps no image.
name = "outcome unknown"
sj, dj = os.path.join(d, "s.json"), os.path.join(d, "d.json")
rc, err, drc, derr, dt, image = run(name, nt + ["--json", dj],
                                    nt + ["--set", "x-lose-commit=always", "--json", sj])
ok = (c.check(rc == 3 and "livemig source: outcome unknown: " in err and "COMMIT was sent, the "
              "destination did not confirm it" in err, "%s: source exit %s" % (name, rc))
      and c.check(t.GUEST_STOPPED in err, "%s: the source guest runs" % name)
      and c.check(drc == 3 and "outcome unknown: the source's decision never came" in derr,
                  "%s: destination exit %s" % (name, drc))
      and c.check(t.load_json(sj)["status"] == "unknown" and t.load_json(dj)["status"] ==
                  "unknown", "%s: JSON status" % name)
      and c.check(not image, "%s: the destination wrote an image" % name))
report(name, ok, rc, err, drc, derr, dt)

# The same, with --on-unknown resume-source: the destination (in doubt)
# discards its image when asked, and only then the guest resumes.
name = "resume-source"
rc, err, drc, derr, dt, image = run(name, nt, nt + ["--set", "x-lose-commit=always",
                                                    "--on-unknown", "resume-source"])
ok = (c.check(rc == 1 and "resume-source: the destination discarded its image; the guest "
              "runs here" in err, "%s: source exit %s" % (name, rc))
      and c.check(t.GUEST_RAN_ON in err, "%s: the source guest is not running intact" % name)
      and c.check(drc == 1 and "the source asked (CANCEL); answered that the image is "
                  "discarded" in derr,
                  "%s: destination exit %s" % (name, drc))
      and c.check(not image, "%s: the destination wrote an image" % name))
report(name, ok, rc, err, drc, derr, dt)

# An idle guest (no guest callbacks): resume-source has nothing to
# resume and says what the destination did.
name = "resume-source, idle guest"
GUEST_SAVED = GUEST
GUEST = ["--mem", "64M", "--fill", "random"]
rc, err, drc, derr, dt, image = run(name, nt, nt + ["--set", "x-lose-commit=always",
                                                    "--on-unknown", "resume-source"])
GUEST = GUEST_SAVED
ok = (c.check(rc == 1 and "resume-source: the destination discarded its image" in err,
              "%s: source exit %s" % (name, rc))
      and c.check(drc == 1 and not image, "%s: destination exit %s" % (name, drc)))
report(name, ok, rc, err, drc, derr, dt)

# ... refused while the destination cannot be asked (killed once COMMIT
# is lost): it may be running the guest.
name = "resume-source refused"


def kill_dest_after_commit(dest, src):
    for line in src.stderr:
        if "x-lose-commit" in line:
            dest.kill()
            return


rc, err, drc, derr, dt, image = run(name, nt, nt + ["--set", "x-lose-commit=always",
                                                    "--on-unknown", "resume-source"],
                                    kill_dest_after_commit)
ok = (c.check(rc == 3 and "resume-source: refused: the destination cannot be asked and may "
              "run the guest" in err, "%s: source exit %s" % (name, rc))
      and c.check(t.GUEST_STOPPED in err, "%s: the source guest runs" % name)
      and c.check(drc == -9, "%s: destination exit %s" % (name, drc)))
report(name, ok, rc, err, drc, derr, dt)

# A relay between the two (socat, ssh -L) that passes COMMIT on, reads the
# destination's OUTCOME and dies before passing it back: the destination
# runs the guest; the source must not resume it on seeing the relay's
# close - it asks again (through the dead relay: no answer) and ends
# "unknown" with the guest stopped.  Never both.
def relay(listen, target, swallow_outcome):
    """Forwards every connection to target; on the main channel (hello
    channel 0) drops the connection both ways when the destination's
    OUTCOME (type 11) comes, and then stops relaying new ones."""
    ls = socket.socket()
    ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    ls.bind(("127.0.0.1", listen))
    ls.listen(16)
    dead = threading.Event()

    def pump(a, b, watch):
        buf = b""
        try:
            while True:
                data = a.recv(65536)
                if not data:
                    break
                if watch:
                    buf += data
                    while len(buf) >= 16:
                        mtype, mlen = struct.unpack_from("<HxxI", buf, 4)
                        if mtype == 11 and swallow_outcome:
                            dead.set()  # a clean close both ways, no OUTCOME
                            for x in (a, b):
                                x.shutdown(socket.SHUT_RDWR)
                                x.close()
                            return
                        if len(buf) < 16 + mlen:
                            break
                        buf = buf[16 + mlen:]
                b.sendall(data)
        except OSError:
            pass
        for x in (a, b):
            try:
                x.shutdown(socket.SHUT_WR)
            except OSError:
                pass

    def serve():
        while not dead.is_set():
            ls.settimeout(0.2)
            try:
                a, _ = ls.accept()
            except OSError:
                continue
            if dead.is_set():
                a.close()
                break
            b = socket.create_connection(("127.0.0.1", target))
            hello = b""
            while len(hello) < 40:
                chunk = a.recv(40 - len(hello))
                if not chunk:
                    break
                hello += chunk
            b.sendall(hello)
            main = len(hello) == 40 and struct.unpack_from("<H", hello, 6)[0] == 0
            threading.Thread(target=pump, args=(a, b, False), daemon=True).start()
            threading.Thread(target=pump, args=(b, a, main), daemon=True).start()
        ls.close()

    threading.Thread(target=serve, daemon=True).start()


name = "relay dies with OUTCOME"
dport, rport = t.free_port(), t.free_port()
dump = os.path.join(d, "image.bin")
if os.path.exists(dump):
    os.unlink(dump)
dest = t.start_dest("tcp:127.0.0.1:%d" % dport, *nt, dump=dump)
relay(rport, dport, True)
t0 = time.time()
src = subprocess.Popen([t.LIVEMIG, "source", "--connect", "tcp:127.0.0.1:%d" % rport,
                        "--no-progress"] + GUEST + nt, stdout=subprocess.PIPE,
                       stderr=subprocess.PIPE, text=True)
rc, out, err = t.finish(src, timeout=60)
dt = time.time() - t0
drc, dout, derr = t.finish(dest, timeout=60)
err, derr = out + err, dout + derr
ok = (c.check(not (drc == 0 and t.GUEST_RAN_ON in err), "%s: the guest runs on both sides" % name)
      and c.check(drc == 0 and os.path.exists(dump), "%s: destination exit %s" % (name, drc))
      and c.check(rc == 3 and t.GUEST_STOPPED in err and "outcome unknown" in err,
                  "%s: source exit %s" % (name, rc)))
report(name, ok, rc, err, drc, derr, dt)
c.done()
