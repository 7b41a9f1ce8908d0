#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""A guest writing during the migration: for each dirty tracker, channels
1/2/4 and methods none/zstd the destination ends identical to the source's
final memory (built-in digest, a byte comparison of both dumps, and every
page's stamp); the SYNC barrier is what keeps a stale page from winning; a
guest dirtying faster than the link does not converge within its timeout
and is left running unharmed, and converges with auto-converge."""
import os
import struct
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import lmtest as t  # noqa: E402

c = t.Checker("live")
d = t.tmpdir()
MAGIC = 0x504D41545354534C
MEM = 96 << 20
TSAN = os.environ.get("LM_TEST_TSAN") == "1"  # under ThreadSanitizer (tests/meson.build)


def stamps(path, pages):
    """Page index -> stamp version (0 = never written by the guest)."""
    out = {}
    with open(path, "rb") as f:
        for p in range(pages):
            head = f.read(t.PAGE)[:32]
            magic, idx, ver, _ = struct.unpack("<QQQQ", head)
            out[p] = ver if magic == MAGIC and idx == p else 0
    return out


def migrate(name, src_args, dst_args=(), expect_ok=True, timeout=120):
    uri = "tcp:127.0.0.1:%d" % t.free_port()
    sj, sd, dd = (os.path.join(d, n) for n in ("s.json", "s.bin", "d.bin"))
    for f in (sd, dd):
        if os.path.exists(f):
            os.unlink(f)
    dest = t.start_dest(uri, *dst_args, dump=dd)
    rc, out, err = t.run_source(uri, "--json", sj, "--dump", sd, *src_args, timeout=timeout)
    drc, dout, derr = t.finish(dest, timeout=60)
    return rc, drc, out, err, derr, sj, sd, dd


trackers = ["uffd-async", "uffd-sync"]
for tracker in trackers:
    for method in ("none", "zstd"):
        for ch in (1, 2, 4):
            name = "%s/%s/%d channels" % (tracker, method, ch)
            rc, drc, out, err, derr, sj, sd, dd = migrate(name, [
                "--mem", str(MEM), "--fill", "system", "--dirty-rate", "16M",
                "--dirty-threads", "2", "--dirty-hot", "24M", "--set", "max-bandwidth=48M",
                "--set", "multifd-channels=%d" % ch, "--set", "multifd-compression=" + method,
                "--set", "dirty-tracker=" + tracker, "--set", "downtime-limit=100"])
            if not c.check(rc == 0 and drc == 0, "%s: exit %s/%s\n%s\n%s" % (name, rc, drc, err,
                                                                           derr)):
                continue
            s = t.load_json(sj)
            c.check(s["dirty-tracker"] == tracker, name + ": tracker " + s["dirty-tracker"])
            c.check(s["verify"]["match"] is True, name + ": digest")
            c.check(t.same_files(sd, dd), name + ": destination bytes differ from the source's")
            src, dst = stamps(sd, MEM // t.PAGE), stamps(dd, MEM // t.PAGE)
            stale = [p for p in src if src[p] != dst[p]]
            c.check(not stale, "%s: %d pages with another stamp, e.g. %s" % (name, len(stale),
                                                                            stale[:3]))
            written = sum(1 for v in src.values() if v >= 1)
            rewritten = sum(1 for v in src.values() if v > 1)
            c.check(written > 2000 and rewritten > 200,
                    "%s: the guest wrote only %d pages (%d more than once)"
                    % (name, written, rewritten))
            c.check(s["dirty-sync-count"] >= 2 and len(s["iterations"]) == s["dirty-sync-count"],
                    "%s: %d passes, %d in the iterations array"
                    % (name, s["dirty-sync-count"], len(s["iterations"])))
            c.check(s["downtime"] < 1000, "%s: downtime %d ms" % (name, s["downtime"]))
            print("ok: %s: %d passes, downtime %d ms, %d pages written, %d more than once"
                  % (name, s["dirty-sync-count"], s["downtime"], written, rewritten))

# The barrier: with one receiver slowed down and the barrier switched off
# (test hook), a stale page from an earlier pass overtakes its newer copy at
# least once in five runs; with the barrier, never.
def reorder(no_barrier):
    flag = "on" if no_barrier else "off"
    return migrate("reorder", [
        "--mem", "16M", "--fill", "random", "--dirty-rate", "100M", "--timeout", "30",
        "--set", "downtime-limit=20", "--set", "x-no-barrier=" + flag],
        ["--set", "x-no-barrier=" + flag, "--set", "x-delay-channel=1:8"])


broken = runs = 0
for i in range(0 if TSAN else 12):
    rc, drc, out, err, derr, sj, sd, dd = reorder(False)
    c.check(rc == 0 and drc == 0 and t.same_files(sd, dd), "barrier on, run %d: %s" % (i, err))
    rc, drc, out, err, derr, sj, sd, dd = reorder(True)
    runs += 1
    if rc != 0:
        # A stale page lands last (the destination's image differs: it
        # says so first), or two receivers write one page at once (its
        # packet checksum no longer matches).
        c.check("image differs" in err or "digest mismatch" in err or
                "checksum mismatch" in err, "barrier off: %r" % err)
        broken += 1
    if broken >= 2 and i >= 4:
        break
if TSAN:
    # Without the barrier receivers race on purpose, and at TSan's speed a
    # 20 ms downtime-limit never fits.
    print("skipped under ThreadSanitizer: the barrier test")
else:
    c.check(broken >= 1, "without the barrier no run went wrong: the test cannot see reordering")
    print("ok: without the SYNC barrier %d of %d runs went wrong; with it none"
          % (broken, runs))

# Dirtying faster than the link (max-bandwidth 8M against 64M/s of writes):
# no convergence within the timeout; the source keeps its guest and memory.
rc, drc, out, err, derr, sj, sd, dd = migrate("no convergence", [
    "--mem", "64M", "--fill", "random", "--dirty-rate", "64M", "--dirty-hot", "32M",
    "--set", "max-bandwidth=8M", "--set", "downtime-limit=50", "--timeout", "12"])
c.check(rc == 1 and "did not converge" in err, "no convergence: %s %r" % (rc, err))
c.check(drc == 1, "no convergence: the destination must fail too, got %s" % drc)
c.check(t.GUEST_RAN_ON in err, "the source guest kept running")
s = t.load_json(sj)
c.check(s["status"] == "failed" and s["dirty-sync-count"] >= 2, "no convergence: status")

# With auto-converge the same guest is throttled until it fits.
rc, drc, out, err, derr, sj, sd, dd = migrate("auto-converge", [
    "--mem", "64M", "--fill", "random", "--dirty-rate", "64M", "--dirty-hot", "32M",
    "--set", "max-bandwidth=8M", "--set", "downtime-limit=300", "--timeout", "100",
    "--cap", "auto-converge=on", "--set", "cpu-throttle-increment=20"], timeout=150)
if c.check(rc == 0 and drc == 0, "auto-converge: %s %r %r" % (rc, err, derr)):
    s = t.load_json(sj)
    c.check(s["cpu-throttle-percentage"] >= 20, "auto-converge: throttle %d"
            % s["cpu-throttle-percentage"])
    c.check(t.same_files(sd, dd), "auto-converge: bytes differ")
    print("ok: auto-converge: throttled to %d%%, %d passes, downtime %d ms"
          % (s["cpu-throttle-percentage"], s["dirty-sync-count"], s["downtime"]))
# SIGTERM on a source whose guest is writing cancels cleanly: the writer
# threads never take the signal, the guest is left running and says how much
# it wrote, and the destination is told.
uri = "tcp:127.0.0.1:%d" % t.free_port()
dest = t.start_dest(uri)
src = subprocess.Popen([t.LIVEMIG, "source", "--connect", uri, "--no-progress", "--mem", "64M",
                        "--fill", "random", "--dirty-rate", "64M", "--dirty-threads", "4",
                        "--set", "max-bandwidth=8M"],
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
import time  # noqa: E402
time.sleep(2)
src.terminate()
rc, out, err = t.finish(src, timeout=30)
drc, dout, derr = t.finish(dest, timeout=30)
c.check(rc == 1 and "cancel" in err and t.GUEST_RAN_ON in err,
        "SIGTERM with a running guest: exit %s %r" % (rc, err))
c.check(drc == 1 and "cancel" in derr, "SIGTERM: destination %s %r" % (drc, derr))
c.done()
