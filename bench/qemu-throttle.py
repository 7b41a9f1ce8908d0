#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Auto-converge from outside QEMU: which throttle holds a target dirty rate
better, a CPU quota on the vCPU threads (cgroup) or QMP stop/cont duty
cycles?  The boot-sector guest (slowed by its spin parameter so that one
sweep of its 192 MiB hot set takes seconds) runs under TCG with
liblivemig-track.so; tests/qemu/track_probe syncs every INTERVAL and counts
pages.  For each throttle percentage p the target is (100 - p) % of the
unthrottled rate; reported per method: the mean rate (and its error against
the target), the spread of the per-sync rates (coefficient of variation),
and the guest's longest stall seen from its counters.

Usage (from the build directory's parent, as root):
  bench/qemu-throttle.py [--build build] [--seconds 6] [--period-ms 100]
"""
import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests",
                                "integration"))
import qemutest  # noqa: E402

HOT_PAGES = 49152  # 192 MiB from 16 MiB


class Probe:
    def __init__(self, exe, vm):
        self.p = subprocess.Popen([exe, str(vm.pid), "%x" % vm.ram_addr(), str(vm.size),
                                   vm.ram_path], stdin=subprocess.PIPE,
                                  stdout=subprocess.PIPE, text=True)
        first = self.p.stdout.readline().strip()
        if first != "ready uffd-remote":
            raise RuntimeError(first)

    def sync(self):
        self.p.stdin.write("sync\n")
        self.p.stdin.flush()
        return int(self.p.stdout.readline().split()[0])

    def close(self):
        self.p.stdin.write("quit\n")
        self.p.stdin.close()
        self.p.wait(timeout=10)


def cpu_seconds(pid, tids):
    """utime + stime of the threads, in seconds."""
    t = 0
    for tid in tids:
        with open("/proc/%d/task/%d/stat" % (pid, tid)) as f:
            cols = f.read().rsplit(")", 1)[1].split()
        t += (int(cols[11]) + int(cols[12])) / os.sysconf("SC_CLK_TCK")
    return t


class CgroupV1:
    """cpu.cfs_quota_us on a child of the cpu hierarchy holding the vCPUs:
    (100 - pct) % of the CPU share they used unthrottled (share, in CPUs)."""

    def __init__(self, tids, period_us, share):
        self.share = share
        self.dir = "/sys/fs/cgroup/cpu/livemig-bench-%d" % os.getpid()
        os.mkdir(self.dir)
        self.tids = tids
        with open(os.path.join(self.dir, "cpu.cfs_period_us"), "w") as f:
            f.write(str(period_us))
        self.period = period_us
        for t in tids:
            with open(os.path.join(self.dir, "tasks"), "w") as f:
                f.write(str(t))

    def set(self, pct):
        q = -1 if pct == 0 else max(1000, int(self.period * self.share * (100 - pct) / 100))
        with open(os.path.join(self.dir, "cpu.cfs_quota_us"), "w") as f:
            f.write(str(q))

    def close(self):
        for t in self.tids:
            with open("/sys/fs/cgroup/cpu/tasks", "w") as f:
                f.write(str(t))
        os.rmdir(self.dir)


class StopCont:
    """QMP stop for pct % of each period, cont for the rest, in a thread."""

    def __init__(self, qmp, period_ms):
        self.qmp, self.period = qmp, period_ms / 1000.0
        self.pct, self.quit = 0, False
        self.t = threading.Thread(target=self.run)
        self.t.start()

    def run(self):
        while not self.quit:
            pct = self.pct
            if pct == 0:
                time.sleep(self.period)
                continue
            self.qmp.execute("stop")
            time.sleep(self.period * pct / 100)
            self.qmp.execute("cont")
            time.sleep(self.period * (100 - pct) / 100)

    def set(self, pct):
        self.pct = pct

    def close(self):
        self.quit = True
        self.t.join()
        if self.qmp.status() != "running":
            self.qmp.execute("cont")


def measure(probe, ram, seconds, interval):
    """Per-sync rates (pages/s) over seconds; and the guest's longest stall
    (no counter change between two reads of one page, 5 ms apart)."""
    probe.sync()
    rates = []
    t_end = time.time() + seconds
    last = time.time()
    while time.time() < t_end:
        time.sleep(interval)
        n = probe.sync()
        now = time.time()
        rates.append(n / (now - last))
        last = now
    return rates


def stall_ms(ram, seconds=1.0):
    """The longest time the sweep made no progress, sampling one word often."""
    import mmap
    import struct
    with open(ram, "r+b") as f:
        m = mmap.mmap(f.fileno(), 0, mmap.MAP_SHARED, mmap.PROT_READ)
    # The sweep position is found by reading all counters is too slow; use the
    # counter of the last hot page, which changes once per sweep, and the
    # first page that differs from page 0 -- cheap enough with a stride.
    best, last_pos, last_t = 0.0, None, time.time()
    t_end = time.time() + seconds
    while time.time() < t_end:
        c0 = struct.unpack_from("<I", m, 16 << 20)[0]
        lo, hi = 0, HOT_PAGES
        while lo < hi:  # first page whose counter is below page 0's
            mid = (lo + hi) // 2
            if struct.unpack_from("<I", m, (16 << 20) + mid * 4096)[0] == c0:
                lo = mid + 1
            else:
                hi = mid
        pos = (c0, lo)
        now = time.time()
        if pos != last_pos:
            last_pos, last_t = pos, now
        best = max(best, now - last_t)
        time.sleep(0.001)
    m.close()
    return best * 1000


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--build", default="build")
    ap.add_argument("--seconds", type=float, default=6)
    ap.add_argument("--interval", type=float, default=0.2)
    ap.add_argument("--period-ms", type=int, default=100)
    ap.add_argument("--spin", type=int, default=2000)
    ap.add_argument("--pcts", default="25,50,75,90")
    a = ap.parse_args()
    qemutest.TRACK_LIB = os.path.join(a.build, "liblivemig-track.so")
    qemutest.BOOT_IMG = os.path.join(a.build, "tests/qemu/boot.img")
    exe = os.path.join(a.build, "tests/qemu/track_probe")
    pcts = [int(x) for x in a.pcts.split(",")]
    with tempfile.TemporaryDirectory(dir="/dev/shm", prefix="lm-throttle-") as d:
        ram = os.path.join(d, "vm.ram")
        with qemutest.Qemu(d, ram, hot_pages=HOT_PAGES, spin=a.spin) as vm:
            time.sleep(1)
            probe = Probe(exe, vm)
            tids = vm.vcpu_tids()
            c0, t0 = cpu_seconds(vm.pid, tids), time.time()
            base = statistics.mean(measure(probe, ram, a.seconds, a.interval))
            share = (cpu_seconds(vm.pid, tids) - c0) / (time.time() - t0)
            print("unthrottled: %.0f pages/s, vCPU threads %s using %.2f CPU; period %d ms, "
                  "sync every %.0f ms" % (base, tids, share, a.period_ms, a.interval * 1000))
            print("%-9s %4s %8s %8s %7s %6s %9s" % ("method", "pct", "target", "mean", "error",
                                                    "cv", "stall ms"))
            for name in ("cgroup", "stop/cont"):
                t = CgroupV1(tids, a.period_ms * 1000, share) if name == "cgroup" else \
                    StopCont(vm.qmp, a.period_ms)
                try:
                    for pct in pcts:
                        t.set(pct)
                        time.sleep(0.3)
                        r = measure(probe, ram, a.seconds, a.interval)
                        st = stall_ms(ram)
                        target = base * (100 - pct) / 100
                        mean = statistics.mean(r)
                        print("%-9s %4d %8.0f %8.0f %+6.1f%% %6.2f %9.0f"
                              % (name, pct, target, mean, 100 * (mean - target) / target,
                                 statistics.pstdev(r) / mean if mean else 0, st))
                        sys.stdout.flush()
                    t.set(0)
                finally:
                    t.close()
            probe.close()


if __name__ == "__main__":
    main()
