#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""QEMU 7.2's own multifd migration against QEMU + livemig (qemu-source /
qemu-dest), the same VM on the same machine, back to back, alternating
which goes first.  The VM: the boot-sector guest (tests/qemu/boot.S) under
TCG, its RAM (--mem-mb) in a shared file that starts as an image 90 %
filled from the corpus (bench/make-image.sh), sweeping a --hot-mb hot set
(one counter write per page, as fast as TCG runs it).  Loopback TCP,
--channels channels, each method; downtime-limit and an unlimited
bandwidth set the same on both.

Per run: total time (the migrate command, or qemu-source's start, until the
destination's RESUME event), the guest's downtime (the source's STOP event
to the destination's RESUME event, both QMP timestamps on this host's
clock: QEMU's own "downtime" figure leaves its resume out, this does not),
bytes on the wire (every packet on the loopback of a network namespace
that this script, and so every QEMU and livemig it starts, runs in:
headers included, both directions; the tools' own figures are kept as
"tool-bytes": QEMU 7.2's ram.transferred counts multifd pages
uncompressed, livemig's its ram.transferred plus the device state), and
CPU seconds of every process:
each QEMU, with its vCPU threads (the guest itself) apart, and each
livemig.

--guest linux: instead, a real Linux guest (bench/linux-guest.sh: Debian's
kernel under TCG, its page cache and a tmpfs filled with this host's real
files, a process heap filled from them whose first --hot-mb MiB it rewrites
at --rate-mb MiB/s, a line a second on its serial console).  It boots once
(about 25 s under TCG); each run migrates it to a fresh destination QEMU,
which is the next run's source when the guest kept running there.  A QEMU
starts with the tracking shim only when the run it is the source of is
livemig's.

Every run also checks that the destination's guest keeps running (QMP
status "running", and its hot-set counters change or, Linux, its console
prints on), and records the load of other processes while it ran
(bench/matrix.py's helpers: the machine's busy CPU from /proc/stat minus
this script's, its reaped children's and both QEMUs', per second of the
run: "other-cpus", 1.0 is one core).  Memory is warmed once first (touch
and free twice the guest's RAM, as the matrix does).

Usage (as root, from the source tree, after ninja -C build):
  bench/qemu-vm.py [--guest boot|linux] [--runs 5] [--methods zstd,none]
                   [--channels 2] [--mem-mb 1024] [--hot-mb 64] [--rate-mb 32]
                   [--downtime-limit 300] [--image FILE] [--tools qemu,livemig]
                   [--build build] [--json FILE]
"""
import argparse
import ctypes
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "tests", "integration"))
import lmtest  # noqa: E402
import qemutest  # noqa: E402
sys.path.insert(0, HERE)
import matrix  # noqa: E402 (its load and warm-up helpers)
import netlink  # noqa: E402

CLK_TCK = os.sysconf("SC_CLK_TCK")
TIMEOUT = 300  # one migration, seconds


def cpu(pid, tid=None):
    """utime + stime in seconds of a process (or one of its threads)."""
    path = "/proc/%d/stat" % pid if tid is None else "/proc/%d/task/%d/stat" % (pid, tid)
    with open(path) as f:
        cols = f.read().rsplit(")", 1)[1].split()
    return (int(cols[11]) + int(cols[12])) / CLK_TCK


class Cpu:
    """CPU seconds of a QEMU and of its vCPU threads since construction."""

    def __init__(self, vm):
        self.vm, self.tids = vm, vm.vcpu_tids()
        self.t0, self.v0 = self.now()

    def now(self):
        return cpu(self.vm.pid), sum(cpu(self.vm.pid, t) for t in self.tids)

    def delta(self):
        t, v = self.now()
        return {"qemu": round(t - self.t0, 2), "vcpu": round(v - self.v0, 2)}


def event_us(ev):
    return ev["timestamp"]["seconds"] * 1000000 + ev["timestamp"]["microseconds"]


class Window:
    """A run's bytes on the wire (link: a netlink.Loopback this script runs
    in), the CPU of every process it did not start per second of the run
    (1.0 = one core busy), and the steal time: the machine's busy CPU
    (matrix.machine_busy) minus this script's and its reaped children's
    (matrix.our_cpu: the livemig processes) minus the QEMUs' (given)."""

    def __init__(self, link):
        self.link, self.wire = link, link.wire_bytes()
        self.busy, self.steal = matrix.machine_busy()
        self.ours, self.t0 = matrix.our_cpu(), time.monotonic()

    def end(self, qemu_seconds):
        busy, steal = matrix.machine_busy()
        other = (busy - self.busy) - (matrix.our_cpu() - self.ours) - qemu_seconds
        wall = time.monotonic() - self.t0
        return {"wire-bytes": self.link.wire_bytes() - self.wire,
                "other-cpus": round(max(0.0, other) / wall, 2),
                "steal-s": round(steal - self.steal, 2)}


def forget_events(*vms):
    """Drops the QMP events of earlier runs (a guest migrated before, or
    left running by a failed run, has sent STOP and RESUME already): a QMP
    command's reply comes after every event sent before it."""
    for vm in vms:
        vm.qmp.execute("query-status")
        vm.qmp.events.clear()


def enter_netns(link):
    """This process (and every process it starts from now on) into the
    namespace of link (a netlink.Loopback)."""
    fd = os.open("/run/netns/" + link.a, os.O_RDONLY)
    try:
        if ctypes.CDLL(None, use_errno=True).setns(fd, 0x40000000) != 0:  # CLONE_NEWNET
            raise OSError(ctypes.get_errno(), "setns into " + link.a)
    finally:
        os.close(fd)


def qemu_seconds(c):
    return c["source"]["qemu"] + c["destination"]["qemu"]


# ---------------------------------------------------------------- the guests

class BootGuest:
    """The boot-sector guest: a fresh pair of QEMUs for every run."""

    def __init__(self, d, a, image):
        self.d, self.a, self.image, self.hot = d, a, image, a.hot_mb * 256
        self.pending = ()

    def pair(self, tool, next_tool):
        """(source, destination) for one run of tool, the guest running."""
        a, d = self.a, self.d
        src = qemutest.Qemu(d, os.path.join(d, "src.ram"), ram_mb=a.mem_mb,
                            track=tool == "livemig", hot_pages=self.hot, image=self.image)
        try:
            dst = qemutest.Qemu(d, os.path.join(d, "dst.ram"), ram_mb=a.mem_mb, track=False,
                                hot_pages=self.hot, incoming=True)
        except Exception:
            src.quit()
            raise
        if not qemutest.wait_running(src.ram_path, hot_pages=self.hot):
            self.done(src, dst, False)
            raise RuntimeError("the guest never ran")
        self.pending = (src, dst)
        return src, dst

    def alive(self, vm):
        """The guest runs on vm: its hot-set counters change."""
        self.why = "its hot-set counters did not change in 10 s"
        c0 = qemutest.hot_counters(vm.ram_path, hot_pages=self.hot)
        deadline = time.time() + 10
        while time.time() < deadline:
            time.sleep(0.2)
            if qemutest.hot_counters(vm.ram_path, hot_pages=self.hot) != c0:
                return vm.qmp.status() == "running"
        return False

    def done(self, src, dst, moved):
        src.quit()
        dst.quit()
        self.pending = ()

    def close(self):
        for vm in self.pending:
            vm.quit()


class LinuxGuest:
    """The Linux guest (bench/linux-guest.sh), booted once and migrated from
    QEMU to QEMU: each run's destination is the next run's source when the
    guest kept running there; otherwise the source goes on (a failed
    migration leaves it running), or, when it does not run or lacks the
    shim the next run needs, a fresh guest boots."""

    BOOT_TIMEOUT = 300  # seconds until "lmguest ready" under a loaded TCG

    def __init__(self, d, a, files):
        self.d, self.a, self.n, self.cur, self.pending = d, a, 0, None, None
        with open(os.path.join(files, "cmdline")) as f:
            cmdline = f.read().split()
        cmdline = [w for w in cmdline if not w.startswith(("lmhot=", "lmrate="))]
        cmdline += ["lmhot=%d" % a.hot_mb, "lmrate=%d" % a.rate_mb]
        self.args = ["-kernel", os.path.join(files, "vmlinuz"),
                     "-initrd", os.path.join(files, "initrd.cpio"), "-append", " ".join(cmdline)]

    def qemu(self, track, incoming):
        self.n += 1
        base = os.path.join(self.d, "linux-%d" % self.n)
        vm = qemutest.Qemu(self.d, base + ".ram", ram_mb=self.a.mem_mb, track=track,
                           incoming=incoming, drive=False,
                           extra=self.args + ["-serial", "file:%s.serial" % base])
        vm.serial, vm.tracked = base + ".serial", track
        return vm

    def ticks(self, vm):
        with open(vm.serial, errors="replace") as f:
            return f.read().count("lmguest t=")

    def boot(self, track):
        vm = self.qemu(track, incoming=False)
        deadline = time.time() + self.BOOT_TIMEOUT
        while self.ticks(vm) < 3:  # ready, and writing for 3 s
            if time.time() > deadline or vm.proc.poll() is not None:
                self.drop(vm)
                raise RuntimeError("the Linux guest was not ready in %d s" % self.BOOT_TIMEOUT)
            time.sleep(0.5)
        return vm

    def pair(self, tool, next_tool):
        want = tool == "livemig"
        if self.cur and (self.cur.qmp.status() != "running" or (want and not self.cur.tracked)):
            self.drop(self.cur)
            self.cur = None
        if not self.cur:
            self.cur = self.boot(want)
        self.pending = self.qemu(next_tool == "livemig", incoming=True)
        return self.cur, self.pending

    def alive(self, vm):
        """The guest runs on vm: two more console lines within 30 s (else
        self.why says what it saw)."""
        n0, deadline = self.ticks(vm), time.time() + 30
        while time.time() < deadline:
            time.sleep(0.5)
            if self.ticks(vm) >= n0 + 2:
                break
        c, status = Cpu(vm), vm.qmp.status()
        time.sleep(1)
        self.why = "%d console lines in 30 s, status %s, vCPU %.2f s in 1 s" % (
            self.ticks(vm) - n0, status, c.delta()["vcpu"])
        return self.ticks(vm) >= n0 + 2 and status == "running"

    def drop(self, vm):
        """Quits vm, removes its files; its console's end stays in
        vm.serial_tail."""
        vm.quit()
        with open(vm.serial, errors="replace") as f:
            vm.serial_tail = f.read()[-400:]
        for p in (vm.ram_path, vm.serial):
            if os.path.exists(p):
                os.unlink(p)

    def done(self, src, dst, moved):
        """After a run: the guest lives on dst when moved, else on src."""
        self.drop(src if moved else dst)
        self.cur, self.pending = dst if moved else src, None

    def close(self):
        for vm in (self.cur, self.pending):
            if vm:
                self.drop(vm)


# ---------------------------------------------------------------- the runs

def run_qemu(d, a, method, src, dst):
    forget_events(src, dst)
    port = lmtest.free_port()
    # x-ignore-shared off: a guest that came in by livemig (qemu-dest sets
    # it) would otherwise leave its RAM behind.
    caps = [{"capability": "multifd", "state": True},
            {"capability": "x-ignore-shared", "state": False}]
    params = {"multifd-channels": a.channels, "multifd-compression": method}
    for vm in (src, dst):
        vm.qmp.execute("migrate-set-capabilities", capabilities=caps)
        vm.qmp.execute("migrate-set-parameters", **params)
    src.qmp.execute("migrate-set-parameters", **{"max-bandwidth": 1 << 40,
                                                  "downtime-limit": a.downtime_limit})
    dst.qmp.execute("migrate-incoming", uri="tcp:127.0.0.1:%d" % port)
    cs, cd, win = Cpu(src), Cpu(dst), Window(a.link)
    t0 = time.time()
    src.qmp.execute("migrate", uri="tcp:127.0.0.1:%d" % port)
    while True:
        q = src.qmp.execute("query-migrate")
        if q["status"] in ("completed", "failed", "cancelled"):
            break
        if time.time() - t0 > TIMEOUT:
            src.qmp.execute("migrate_cancel")
            return {"error": "did not complete in %d s" % TIMEOUT}
        time.sleep(0.05)
    if q["status"] != "completed":
        return {"error": "QEMU: " + q.get("error-desc", q["status"])}
    resume = event_us(dst.qmp.wait_event("RESUME", timeout=30))
    stop = event_us(src.qmp.wait_event("STOP"))
    c = {"source": cs.delta(), "destination": cd.delta()}
    return {"total-s": round(resume / 1e6 - t0, 3), "downtime-ms": (resume - stop) / 1000,
            "own-downtime-ms": q["downtime"], "tool-bytes": q["ram"]["transferred"],
            "cpu": c, **win.end(qemu_seconds(c))}


def wait_rusage(p, timeout):
    """Waits for p (bounded: killed after timeout) and returns its exit
    status and CPU seconds."""
    end = time.time() + timeout
    while True:
        pid, status, ru = os.wait4(p.pid, os.WNOHANG)
        if pid:
            p.returncode = os.waitstatus_to_exitcode(status)
            return p.returncode, round(ru.ru_utime + ru.ru_stime, 2)
        if time.time() > end:
            p.kill()
        time.sleep(0.02)


def run_livemig(d, a, method, src, dst):
    forget_events(src, dst)
    port = lmtest.free_port()
    lm = os.path.join(a.build, "livemig")
    dj, sj = os.path.join(d, "dst.json"), os.path.join(d, "src.json")
    dp = subprocess.Popen([lm, "qemu-dest", "--qmp", dst.lm_qmp_path, "--listen",
                           "tcp:127.0.0.1:%d" % port, "--json", dj],
                          stderr=subprocess.PIPE, text=True)
    lmtest.wait_listening("tcp:127.0.0.1:%d" % port, dp)
    cs, cd, win = Cpu(src), Cpu(dst), Window(a.link)
    t0 = time.time()
    sp = subprocess.Popen([lm, "qemu-source", "--qmp", src.lm_qmp_path, "--connect",
                           "tcp:127.0.0.1:%d" % port, "--json", sj,
                           "--set", "multifd-channels=%d" % a.channels,
                           "--set", "multifd-compression=" + method,
                           "--set", "downtime-limit=%d" % a.downtime_limit],
                          stderr=subprocess.PIPE, text=True)
    src_rc, src_cpu = wait_rusage(sp, TIMEOUT)
    dst_rc, dst_cpu = wait_rusage(dp, 30)
    if src_rc or dst_rc:
        return {"error": "livemig exit %d/%d: %s %s" % (src_rc, dst_rc, sp.stderr.read(),
                                                       dp.stderr.read())}
    resume = event_us(dst.qmp.wait_event("RESUME", timeout=30))
    stop = event_us(src.qmp.wait_event("STOP"))
    c = {"source": cs.delta(), "destination": cd.delta()}
    w = win.end(qemu_seconds(c))
    c["source"]["livemig"], c["destination"]["livemig"] = src_cpu, dst_cpu
    s = json.load(open(sj))
    return {"total-s": round(resume / 1e6 - t0, 3), "downtime-ms": (resume - stop) / 1000,
            "parts": s["qemu"]["downtime-parts"], "passes": len(s["iterations"]),
            "tool-bytes": s["ram"]["transferred"] + s["device-state"]["bytes"], "cpu": c, **w}


def summary(runs, a):
    print("\n%d runs each; medians (min-max); downtime-limit %d ms" % (a.runs, a.downtime_limit))
    print("%-8s %-5s %-18s %-22s %-8s %-8s %-22s %-22s %s" % (
        "tool", "method", "total s", "downtime ms", "within", "wire MiB",
        "src CPU s qemu/vcpu/lm", "dst CPU s qemu/vcpu/lm", "others"))
    med = {}
    for method in a.methods:
        for tool in ("qemu", "livemig"):
            rs = [r for r in runs if r["tool"] == tool and r["method"] == method
                  and "error" not in r]
            bad = sum(1 for r in runs if r["tool"] == tool and r["method"] == method
                      and "error" in r)
            if not rs:
                print("%-8s %-5s all %d failed" % (tool, method, bad))
                continue

            def m(f):
                v = [f(r) for r in rs]
                return statistics.median(v), min(v), max(v)

            tot, dt = m(lambda r: r["total-s"]), m(lambda r: r["downtime-ms"])
            within = sum(1 for r in rs if r["downtime-ms"] <= a.downtime_limit)
            wire = statistics.median(r["wire-bytes"] for r in rs) / 2**20

            def side(s):
                k = ("qemu", "vcpu", "livemig")
                return "/".join("%.2f" % statistics.median(r["cpu"][s].get(x, 0) for r in rs)
                                for x in k)
            med[tool, method] = tot[0]
            load = m(lambda r: r["other-cpus"])
            print("%-8s %-5s %-18s %-22s %-8s %-8.0f %-22s %-22s %s" % (
                tool, method, "%.2f (%.2f-%.2f)" % tot, "%.0f (%.0f-%.0f)" % dt,
                "%d/%d%s" % (within, len(rs), " +%d failed" % bad if bad else ""), wire,
                side("source"), side("destination"), "%.2f (%.2f-%.2f)" % load))
        if ("qemu", method) in med and ("livemig", method) in med:
            print("%-8s %-5s livemig/QEMU total time: %.2f" % (
                "", method, med["livemig", method] / med["qemu", method]))


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--guest", choices=("boot", "linux"), default="boot",
                    help="the boot-sector guest, or a real Linux guest (bench/linux-guest.sh)")
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--methods", default="zstd,none")
    ap.add_argument("--tools", default="qemu,livemig", help="which migrations to run")
    ap.add_argument("--channels", type=int, default=2)
    ap.add_argument("--mem-mb", type=int, default=1024)
    ap.add_argument("--hot-mb", type=int, default=64)
    ap.add_argument("--rate-mb", type=int, default=32,
                    help="--guest linux: MiB/s the guest rewrites of its hot set")
    ap.add_argument("--downtime-limit", type=int, default=300)
    ap.add_argument("--image", help="the boot guest's RAM image (default: made by "
                    "bench/make-image.sh, 90 %% corpus), or the Linux guest's directory "
                    "(default: made by bench/linux-guest.sh); in /var/tmp/livemig-bench")
    ap.add_argument("--build", default="build")
    ap.add_argument("--json", help="every run, as JSON")
    a = ap.parse_args()
    a.methods, a.tools = a.methods.split(","), a.tools.split(",")
    os.environ.setdefault("LM_TRACK_LIB", os.path.join(a.build, "liblivemig-track.so"))
    os.environ.setdefault("LM_BOOT_IMG", os.path.join(a.build, "tests/qemu/boot.img"))
    if a.guest == "linux":
        image = a.image or "/var/tmp/livemig-bench/linux-guest"
        if not os.path.exists(os.path.join(image, "initrd.cpio")):
            subprocess.run([os.path.join(HERE, "linux-guest.sh"), image], check=True)
    else:
        image = a.image or "/var/tmp/livemig-bench/qemu-vm-%dm-0.9.img" % a.mem_mb
        if not os.path.exists(image):
            subprocess.run([os.path.join(HERE, "make-image.sh"), image, "%dM" % a.mem_mb,
                            "0.9"], check=True)
    # Every run in a fixed order: the pairs alternate which tool goes first.
    plan = []
    for i in range(a.runs):
        for method in a.methods:
            order = ("qemu", "livemig") if i % 2 == 0 else ("livemig", "qemu")
            plan += [(t, method, i) for t in order if t in a.tools]
    matrix.warm(2 * a.mem_mb << 20)
    runs = []
    # Stopped by a signal (also when started in the background, where
    # SIGINT is ignored): the finally below quits the QEMUs.
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(1))
    a.link = netlink.Loopback()
    with tempfile.TemporaryDirectory(dir="/dev/shm", prefix="lm-qemu-vm-") as d:
        guest = None
        try:
            enter_netns(a.link)
            guest = LinuxGuest(d, a, image) if a.guest == "linux" else BootGuest(d, a, image)
            for k, (tool, method, i) in enumerate(plan):
                nxt = plan[k + 1][0] if k + 1 < len(plan) else None
                f = run_qemu if tool == "qemu" else run_livemig
                try:
                    src, dst = guest.pair(tool, nxt)
                except Exception as e:
                    r = {"error": "no guest: %s: %s" % (type(e).__name__, e)}
                else:
                    try:
                        r = f(d, a, method, src, dst)
                        if "error" not in r and not guest.alive(dst):
                            r["error"] = ("the guest did not keep running on the "
                                          "destination: " + guest.why)
                    except Exception as e:  # one bad run is reported, not fatal
                        r = {"error": "%s: %s" % (type(e).__name__, e)}
                    guest.done(src, dst, "error" not in r)
                    if "error" in r:  # what the QEMUs said, and the console's end
                        r["stderr"] = [(getattr(vm, "err", None) or "")[-400:]
                                       for vm in (src, dst)]
                        r["serial-tail"] = getattr(dst, "serial_tail", None)
                r.update(tool=tool, method=method, run=i)
                runs.append(r)
                print(json.dumps(r), flush=True)
        finally:
            if guest:
                guest.close()
            a.link.close()
    del a.link
    if a.json:
        with open(a.json, "w") as f:
            json.dump({"args": vars(a), "runs": runs}, f, indent=1)
    summary(runs, a)


if __name__ == "__main__":
    main()
