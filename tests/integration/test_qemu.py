#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""livemig qemu-source / qemu-dest against two real QEMUs running the
boot-sector test guest (qemutest.py: TCG, 256 MiB in a shared
memory-backend-file in /dev/shm, a 64 MiB hot set swept forever):

- live pre-copy (the source QEMU under liblivemig-track.so) with none and
  zstd over 1 and 4 channels (one with auto-converge: the vCPU throttle's
  cgroup there while it runs, gone after): more than one pass, the destination running
  and sweeping on, the source in postmigrate, the destination's RAM when the
  device state loaded byte-equal to the source's at STOP, every hot page
  holding the last sweep's counter or the one before;
- stop-and-copy without the shim, and with a shim that tracks another
  file, each saying so;
- failures: the destination killed mid-way (live and stop-and-copy),
  SIGINT to qemu-source and SIGTERM to qemu-dest (cancel; again with a
  control socket, whose thread must not take the signal), a device state
  the destination cannot load, the preconditions (exit 2); two signals
  while auto-converge throttles (exit 130, the throttle lifted, the cgroup
  taken over by the next run).

Skipped (77) when qemu-system-x86_64 is missing."""
import hashlib
import json
import os
import signal
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import lmtest  # noqa: E402
import qemutest  # noqa: E402

LIVEMIG = os.environ.get("LIVEMIG", "build/livemig")
MIB = qemutest.MiB
HOT_START, HOT_PAGES = 16 * MIB, 16384  # boot.S's defaults
failures = 0


def check(cond, what):
    global failures
    if not cond:
        failures += 1
        print("FAIL:", what, flush=True)
    return cond


def sha(path, off=0, size=None):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        f.seek(off)
        left = size
        while left is None or left > 0:
            b = f.read(MIB if left is None else min(MIB, left))
            if not b:
                break
            h.update(b)
            if left is not None:
                left -= len(b)
    return h.hexdigest()


def livemig(*args, env=None):
    return subprocess.Popen([LIVEMIG] + list(args), stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=env)


def pair(d, tag, src_vm, dst_vm, src_args=(), dst_args=(), env=None):
    """Starts qemu-dest, then qemu-source; returns both processes."""
    sock = os.path.join(d, tag + ".sock")
    dst = livemig("qemu-dest", "--qmp", dst_vm.lm_qmp_path, "--listen", "unix:" + sock,
                  "--json", os.path.join(d, tag + "-dst.json"), *dst_args, env=env)
    lmtest.wait_listening("unix:" + sock, dst)
    src = livemig("qemu-source", "--qmp", src_vm.lm_qmp_path, "--connect", "unix:" + sock,
                  "--json", os.path.join(d, tag + "-src.json"), *src_args)
    return src, dst


def vms(d, src_track=True, src_extra=(), dst_mb=256, track_path=None):
    """A running source guest and a destination QEMU waiting (-incoming
    defer); both are context managers."""
    src = qemutest.Qemu(d, os.path.join(d, "src.ram"), track=src_track,
                        track_path=track_path, extra=src_extra)
    try:
        dst = qemutest.Qemu(d, os.path.join(d, "dst.ram"), ram_mb=dst_mb, track=False,
                            incoming=True)
    except Exception:
        src.quit()
        raise
    return src, dst


def throttle_cgroups(pid):
    return [p for p in ("/sys/fs/cgroup/cpu/livemig-throttle-%d" % pid,
                        "/sys/fs/cgroup/livemig-throttle-%d" % pid) if os.path.isdir(p)]


def migrate(d, method, channels, live=True, track_path=None, auto_converge=False):
    mode = "live" if live else "stop-and-copy"
    tag = "%s-%s-%d%s%s" % (mode, method, channels, "-other" if track_path else "",
                            "-auto-converge" if auto_converge else "")
    if track_path:
        open(track_path, "wb").close()
    src_vm, dst_vm = vms(d, src_track=live or track_path, track_path=track_path)
    with src_vm, dst_vm:
        check(qemutest.wait_running(src_vm.ram_path), tag + ": the guest never ran")
        before = max(qemutest.hot_counters(src_vm.ram_path))
        snap = os.path.join(d, "snap")
        env = dict(os.environ, LIVEMIG_X_RAM_SNAPSHOT=snap)
        args = ("--set", "multifd-compression=" + method, "--set", "multifd-channels=%d" % channels)
        if auto_converge:
            args += ("--cap", "auto-converge=on")
        src, dst = pair(d, tag, src_vm, dst_vm, args, env=env)
        if auto_converge:
            # Opened at the start (it samples the vCPUs' own use), gone at
            # the end.
            end = time.time() + 10
            while not throttle_cgroups(src_vm.pid) and src.poll() is None and time.time() < end:
                time.sleep(0.01)
            check(throttle_cgroups(src_vm.pid), tag + ": the throttle's cgroup while it runs")
        so, se = src.communicate(timeout=120)
        do, de = dst.communicate(timeout=120)
        if not check(src.returncode == 0 and dst.returncode == 0,
                     "%s: exit %d/%d\n%s\n%s" % (tag, src.returncode, dst.returncode, se, de)):
            return
        check(dst_vm.qmp.status() == "running", tag + ": destination QEMU running")
        check(src_vm.qmp.status() == "postmigrate", tag + ": source QEMU in postmigrate")
        check(not throttle_cgroups(src_vm.pid), tag + ": no throttle cgroup left")
        # The destination's RAM when the device state had loaded (before it
        # ran) equals the source's, stopped since STOP.
        check(sha(snap + ".mem0") == sha(src_vm.ram_path), tag + ": RAM files byte-equal")
        # No page lost: the hot set is one consistent sweep, the one in
        # progress at STOP (pages behind it hold the sweep before).
        counters = qemutest.hot_counters(snap + ".mem0")
        last = counters[0]
        check(qemutest.consistent_sweep(counters),
              "%s: hot set at device-state time: %d..%d, not one sweep"
              % (tag, min(counters), max(counters)))
        os.unlink(snap + ".mem0")
        # After cont the guest sweeps on at the destination.
        time.sleep(0.3)
        now = qemutest.hot_counters(dst_vm.ram_path)
        check(min(now) > last - 1 and max(now) > last,
              "%s: destination guest not sweeping: %d..%d after %d" % (tag, min(now), max(now),
                                                                      last))
        sj = json.load(open(os.path.join(d, tag + "-src.json")))
        dj = json.load(open(os.path.join(d, tag + "-dst.json")))
        q = sj["qemu"]
        check(sj["status"] == "completed" and sj["verify"]["match"] is True, tag + ": verified")
        check(sj["device-state"]["bytes"] > 0 and
              sj["device-state"]["bytes"] == dj["qemu"]["device-state-bytes"],
              tag + ": device-state bytes")
        # The passes, the final one (guest stopped) last.
        passes = len(sj["iterations"])
        if live:
            check(q["mode"] == "live" and q["shim"] and sj["dirty-tracker"] == "uffd-remote",
                  "%s: mode %s, shim %s, tracker %s" % (tag, q["mode"], q["shim"],
                                                        sj["dirty-tracker"]))
            # It really ran live: the guest swept the hot set while the RAM
            # moved, and the final pass (guest stopped) resent what it
            # wrote meanwhile.
            final = sj["iterations"][-1]["pages"]
            check(passes >= 2 and final > 0, "%s: %d passes, %d pages in the final one"
                  % (tag, passes, final))
            check(last > before + 1, "%s: the guest swept %d..%d during pre-copy"
                  % (tag, before, last))
        else:
            want = ("does not track " + src_vm.ram_path if track_path else
                    "runs without the tracking shim")
            check(q["mode"] == "stop-and-copy" and passes == 2 and
                  sj["iterations"][1]["pages"] == 0 and want in se and
                  ": stop-and-copy (the guest stops now, for one pass)" in se,
                  "%s: mode %s, %d pass(es): %s" % (tag, q["mode"], passes, se))
        parts = q["downtime-parts"]
        check(set(parts) == {"final-ram-pass-ms", "verify-ms", "device-state-ms", "resume-ms"}
              and sum(parts.values()) == q["downtime-ms"], tag + ": downtime parts")
        exact = (dj["qemu"]["resume-us"] - q["stop-us"]) / 1000
        check(0 < exact <= q["downtime-ms"] + 1,
              "%s: STOP->RESUME %.1f ms within %d" % (tag, exact, q["downtime-ms"]))
        check(q["query-migrate"]["status"] == "completed", tag + ": QEMU's query-migrate")
        # The test's RAM copy is inside the device-state step.
        print("%s: ok, %d passes, downtime %.1f ms, parts %s (of which the test's RAM copy "
              "%d), device state %d bytes" % (tag, passes, exact, parts,
                                              dj["qemu"]["x-ram-snapshot-ms"],
                                              sj["device-state"]["bytes"]), flush=True)


def random_region(vm):
    """64 MiB of data the guest never touches (above its hot set), so that
    a first pass at 16 MB/s takes 4 s; its hash."""
    with open(vm.ram_path, "r+b") as f:
        f.seek(128 * MIB)
        f.write(os.urandom(64 * MIB))
    return sha(vm.ram_path, 128 * MIB, 64 * MIB)


def sweeping(vm):
    a = qemutest.hot_counters(vm.ram_path)
    time.sleep(0.3)
    return max(qemutest.hot_counters(vm.ram_path)) > max(a)


def interrupted(d, tag, live, who, sig, control=False):
    """who ("src" or "dst") gets sig 1.5 s into the first pass: the source
    QEMU runs again (sweeping, RAM untouched by livemig), the destination
    QEMU still waits.  control: both run a control socket (whose thread
    must not take the signal)."""
    src_vm, dst_vm = vms(d, src_track=live)
    with src_vm, dst_vm:
        check(qemutest.wait_running(src_vm.ram_path), tag + ": the guest never ran")
        before = random_region(src_vm)
        ctl = [("--control", "unix:" + os.path.join(d, "%s-%s.qmp" % (tag, side)))
               if control else () for side in ("src", "dst")]
        src, dst = pair(d, tag, src_vm, dst_vm, ("--set", "max-bandwidth=16M", *ctl[0]),
                        ("--set", "net-timeout=2", *ctl[1]))
        time.sleep(1.5)
        (src if who == "src" else dst).send_signal(sig)
        _, se = src.communicate(timeout=60)
        _, de = dst.communicate(timeout=60)
        check(src.returncode == 1, "%s: source exit %d\n%s" % (tag, src.returncode, se))
        if sig != signal.SIGKILL:
            check(dst.returncode == 1, "%s: destination exit %d\n%s" % (tag, dst.returncode, de))
            check("cancelling" in (se if who == "src" else de), "%s: says it cancels" % tag)
        check(src_vm.qmp.status() == "running", tag + ": source QEMU running again")
        check(sweeping(src_vm), tag + ": the source guest sweeps on")
        check(sha(src_vm.ram_path, 128 * MIB, 64 * MIB) == before,
              tag + ": source RAM unchanged")
        check(dst_vm.qmp.status() == "inmigrate", tag + ": destination QEMU still waiting")
        print("%s: ok" % tag, flush=True)


def dest_qemu_dies(d):
    """The destination QEMU killed during pre-copy: qemu-dest notices at
    once and cancels (not after a pre-copy that might never converge); the
    source QEMU runs on (attack review of issue 11)."""
    tag = "dest-qemu-killed"
    src_vm, dst_vm = vms(d)
    with src_vm, dst_vm:
        check(qemutest.wait_running(src_vm.ram_path), tag + ": the guest never ran")
        src, dst = pair(d, tag, src_vm, dst_vm, ("--set", "max-bandwidth=16M"),
                        ("--set", "net-timeout=2"))
        time.sleep(1.5)
        dst_vm.proc.kill()
        t0 = time.time()
        _, de = dst.communicate(timeout=60)
        dt = time.time() - t0
        _, se = src.communicate(timeout=60)
        check(dst.returncode == 1 and "has exited: cancelling" in de and dt < 5,
              "%s: destination exit %d after %.1f s\n%s" % (tag, dst.returncode, dt, de))
        check(src.returncode == 1, "%s: source exit %d\n%s" % (tag, src.returncode, se))
        check(src_vm.qmp.status() == "running", tag + ": source QEMU running again")
        check(sweeping(src_vm), tag + ": the source guest sweeps on")
        print("%s: ok (%.1f s)" % (tag, dt), flush=True)


def quota(cgroups):
    """The throttle's quota in the first of cgroups: -1 or "max" = none."""
    for path in (os.path.join(cgroups[0], "cpu.cfs_quota_us"),
                 os.path.join(cgroups[0], "vcpu", "cpu.max")):
        if os.path.exists(path):
            return open(path).read().split()[0]
    return None


def killed_throttling(d):
    """SIGINT and SIGTERM to qemu-source while auto-converge throttles (a
    downtime-limit it never meets): it exits at once (130) but lifts the
    throttle first; the cgroup it leaves is taken over by the next run,
    which migrates and removes it."""
    src_vm, dst_vm = vms(d)
    with src_vm, dst_vm:
        check(qemutest.wait_running(src_vm.ram_path), "throttled: the guest never ran")
        args = ("--cap", "auto-converge=on", "--set", "max-bandwidth=64M",
                "--set", "downtime-limit=1", "--set", "cpu-throttle-initial=90")
        src, dst = pair(d, "throttled", src_vm, dst_vm, args, ("--set", "net-timeout=2"))
        end = time.time() + 60
        while src.poll() is None and time.time() < end and (
                not throttle_cgroups(src_vm.pid) or
                quota(throttle_cgroups(src_vm.pid)) in (None, "-1", "max")):
            time.sleep(0.05)
        cg = throttle_cgroups(src_vm.pid)
        check(cg and quota(cg) not in (None, "-1", "max"), "throttled: never throttled")
        src.send_signal(signal.SIGINT)  # two kinds: both pending, neither lost
        src.send_signal(signal.SIGTERM)
        _, se = src.communicate(timeout=60)
        dst.communicate(timeout=60)
        check(src.returncode == 130, "throttled: source exit %d\n%s" % (src.returncode, se))
        check(cg and quota(cg) in ("-1", "max"), "throttled: the throttle lifted at exit: %s"
              % (quota(cg) if cg else None))
        src, dst = pair(d, "throttled-again", src_vm, dst_vm, ("--cap", "auto-converge=on"))
        _, se = src.communicate(timeout=120)
        if src.returncode:
            dst.kill()  # it would wait for ever
        _, de = dst.communicate(timeout=120)
        check(src.returncode == 0 and dst.returncode == 0,
              "throttled: the next run: exit %d/%d\n%s\n%s" % (src.returncode, dst.returncode,
                                                              se, de))
        check(not throttle_cgroups(src_vm.pid), "throttled: no throttle cgroup left")
        print("throttled: ok", flush=True)
    for path in throttle_cgroups(src_vm.pid):  # after a failure: empty once QEMU quit
        for sub in ("vcpu", ""):
            if os.path.isdir(os.path.join(path, sub)):
                os.rmdir(os.path.join(path, sub))


def load_fails(d):
    """The source has a device the destination lacks: QEMU's load fails,
    after the source QEMU's migrate completed - it resumes from postmigrate."""
    src_vm, dst_vm = vms(d, src_track=False, src_extra=("-device", "virtio-rng-pci"))
    with src_vm, dst_vm:
        src, dst = pair(d, "load", src_vm, dst_vm, (), ("--set", "net-timeout=2"))
        so, se = src.communicate(timeout=60)
        do, de = dst.communicate(timeout=60)
        check(src.returncode == 1 and dst.returncode == 1,
              "load: exit %d/%d\n%s\n%s" % (src.returncode, dst.returncode, se, de))
        check("device state" in se, "load: the source says why: " + se)
        check(src_vm.qmp.status() == "running", "load: source QEMU running again")
        dst_vm.proc.wait(timeout=10)
        check(dst_vm.proc.returncode is not None, "load: destination QEMU quit")


def multifd_left_on(d):
    """Both QEMUs have QEMU's own multifd on (say, from an earlier
    migration into the source): livemig's device-state stream, one fd,
    still goes through."""
    src_vm, dst_vm = vms(d, src_track=False)
    with src_vm, dst_vm:
        for vm in (src_vm, dst_vm):
            vm.qmp.execute("migrate-set-capabilities",
                           capabilities=[{"capability": "multifd", "state": True}])
        src, dst = pair(d, "multifd-on", src_vm, dst_vm)
        _, se = src.communicate(timeout=120)
        _, de = dst.communicate(timeout=120)
        check(src.returncode == 0 and dst.returncode == 0,
              "multifd-on: exit %d/%d\n%s\n%s" % (src.returncode, dst.returncode, se, de))
        check(dst_vm.qmp.status() == "running", "multifd-on: destination QEMU running")


def preconditions(d):
    # A private (share=off) backend: livemig cannot see the guest's RAM.
    with qemutest.Qemu(d, os.path.join(d, "priv.ram"), track=False, share="off") as vm:
        src = livemig("qemu-source", "--qmp", vm.lm_qmp_path, "--connect", "unix:/nonexistent")
        _, se = src.communicate(timeout=30)
        check(src.returncode == 2 and "is not shared" in se and se.count("\n") == 1,
              "share=off: exit %d: %s" % (src.returncode, se))
        check(vm.qmp.status() == "running", "share=off: source untouched")
    # Sizes differ.
    src_vm, dst_vm = vms(d, dst_mb=128)
    with src_vm, dst_vm:
        src, dst = pair(d, "size", src_vm, dst_vm)
        _, se = src.communicate(timeout=60)
        _, de = dst.communicate(timeout=60)
        check(src.returncode == 2 and dst.returncode == 2 and "registered" in de,
              "sizes: exit %d/%d\n%s\n%s" % (src.returncode, dst.returncode, se, de))
        check(src_vm.qmp.status() == "running", "sizes: source QEMU running")
        check(dst_vm.qmp.status() == "inmigrate", "sizes: destination QEMU untouched")
    # auto-converge with more vCPUs than can be throttled.
    with qemutest.Qemu(d, os.path.join(d, "smp.ram"), extra=("-smp", "65")) as vm:
        src = livemig("qemu-source", "--qmp", vm.lm_qmp_path, "--connect", "unix:/nonexistent",
                      "--cap", "auto-converge=on")
        _, se = src.communicate(timeout=60)
        check(src.returncode == 2 and "has 65 vCPUs, more than the 64 that can be throttled"
              in se, "65 vCPUs: exit %d: %s" % (src.returncode, se))
        check(vm.qmp.status() == "running", "65 vCPUs: source untouched")
    # The destination QEMU is not waiting for a migration.
    with qemutest.Qemu(d, os.path.join(d, "dst.ram"), track=False) as vm:
        dst = livemig("qemu-dest", "--qmp", vm.lm_qmp_path, "--listen", "unix:/tmp/x-unused")
        _, de = dst.communicate(timeout=30)
        check(dst.returncode == 2 and "-incoming defer" in de and de.count("\n") == 1,
              "no -incoming: exit %d: %s" % (dst.returncode, de))


def main():
    if not qemutest.have_qemu():
        print("SKIP: qemu-system-x86_64 not installed (apt-get install qemu-system-x86)")
        return 77
    t0 = time.time()
    with tempfile.TemporaryDirectory(dir="/dev/shm", prefix="livemig-qemu-") as d:
        preconditions(d)
        for method, channels in (("none", 1), ("zstd", 4), ("none", 4)):
            migrate(d, method, channels)
        migrate(d, "zstd", 1, auto_converge=True)
        migrate(d, "none", 4, live=False)
        migrate(d, "zstd", 1, live=False, track_path=os.path.join(d, "other.ram"))
        interrupted(d, "live-killed", True, "dst", signal.SIGKILL)
        interrupted(d, "stop-and-copy-killed", False, "dst", signal.SIGKILL)
        dest_qemu_dies(d)
        interrupted(d, "sigint-source", True, "src", signal.SIGINT)
        interrupted(d, "sigterm-dest", False, "dst", signal.SIGTERM)
        interrupted(d, "sigint-source-control", True, "src", signal.SIGINT, control=True)
        interrupted(d, "sigterm-dest-control", True, "dst", signal.SIGTERM, control=True)
        load_fails(d)
        multifd_left_on(d)
        killed_throttling(d)
    print("failures: %d (%.0f s)" % (failures, time.time() - t0))
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
