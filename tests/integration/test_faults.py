#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Liveness on real migrations of a writing guest: every wait is bounded.
--timeout is a deadline in every phase (connect, setup, a pass); a stopped
destination or source is found by the missing heartbeat; a link cut for good fails
both sides within net-timeout, one cut for less than net-timeout does not
fail at all.  Each case checks the exit codes, the time to give up (an
upper bound) and the message.  The link cases need root (two network
namespaces joined by a veth pair) and are skipped otherwise."""
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

c = t.Checker("faults")
d = t.tmpdir()


def source(uri, *args, netns=None):
    cmd = [t.LIVEMIG, "source", "--connect", uri, "--no-progress"] + list(args)
    if netns:
        cmd = ["ip", "netns", "exec", netns] + cmd
    return subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def last_line(text):
    """The outcome line of a side's output (stdout and stderr)."""
    lines = [x for x in text.strip().splitlines() if "failed" in x or "completed in" in x]
    return lines[-1] if lines else text.strip()[-200:]


def check_time(name, dt, upper, lower=0.0):
    return c.check(lower <= dt <= upper, "%s: gave up after %.1f s, want %.1f..%.1f s"
                   % (name, dt, lower, upper))


# ---- --timeout: a deadline from the start, in every phase --------------------

# A pass that cannot end in time: 64 MiB at 2 MiB/s.  Both sides exit 1
# soon after 3 s, the guest still running.
uri = "tcp:127.0.0.1:%d" % t.free_port()
dest = t.start_dest(uri)
t0 = time.time()
src = source(uri, "--mem", "64M", "--fill", "random", "--dirty-rate", "1M",
             "--set", "max-bandwidth=2M", "--timeout", "3")
rc, out, err = t.finish(src, timeout=30)
dt = time.time() - t0
drc, dout, derr = t.finish(dest, timeout=30)
name = "timeout in the first pass"
if (c.check(rc == 1 and drc == 1, "%s: exit %s/%s\n%s\n%s" % (name, rc, drc, err, derr))
        and check_time(name, dt, 5.0, 2.9)
        and c.check("timeout: not done within 3 s (on the source, in phase first pass)" in err,
                    "%s: source says %r" % (name, err))
        and c.check("source reported: timeout: not done within 3 s" in derr,
                    "%s: destination says %r" % (name, derr))
        and c.check(t.GUEST_RAN_ON in err, "%s: the guest did not run on" % name)):
    print("ok: %s: source exit 1 after %.1f s: %s" % (name, dt, last_line(err)))


def mute_destination(name, backlog_full):
    """A listener that never answers: its kernel accepts and the process
    never reads (the source waits for READY), or its accept queue is full
    and the SYN goes unanswered (the connect itself waits).  The deadline
    ends either, well before net-timeout."""
    ls = socket.socket()
    ls.bind(("127.0.0.1", 0))
    ls.listen(0 if backlog_full else 8)
    uri = "tcp:127.0.0.1:%d" % ls.getsockname()[1]
    filler = socket.create_connection(ls.getsockname()) if backlog_full else None
    t0 = time.time()
    src = source(uri, "--mem", "4M", "--dirty-rate", "1M", "--timeout", "2")
    rc, out, err = t.finish(src, timeout=30)
    dt = time.time() - t0
    if filler:
        filler.close()
    ls.close()
    if (c.check(rc == 1, "%s: exit %s\n%s" % (name, rc, err))
            and check_time(name, dt, 3.5, 1.9)
            and c.check("timeout: not done within 2 s (on the source, in phase setup)" in err,
                        "%s: source says %r" % (name, err))):
        print("ok: %s: source exit 1 after %.1f s: %s" % (name, dt, last_line(err)))


mute_destination("timeout in setup", False)
mute_destination("timeout while connecting", True)

# ---- a stopped peer: its kernel still acknowledges -----------------------------
def stopped(which):
    """SIGSTOPs one side mid-pass: the other gives up on its own within
    net-timeout (a stopped source's destination with its receivers blocked
    in reads); SIGCONT then, and the stopped one exits 1 at once, told why
    (or finding the connection gone)."""
    name = which + " stopped"
    uri = "tcp:127.0.0.1:%d" % t.free_port()
    dump = os.path.join(d, "stopped.bin")
    if os.path.exists(dump):
        os.unlink(dump)
    dest = t.start_dest(uri, "--set", "net-timeout=3", dump=dump)
    src = source(uri, "--mem", "64M", "--fill", "random", "--dirty-rate", "4M",
                 "--set", "max-bandwidth=8M", "--set", "net-timeout=3")
    time.sleep(1.5)
    running = src.poll() is None
    stop, other = (dest, src) if which == "destination" else (src, dest)
    stop.send_signal(signal.SIGSTOP)
    t0 = time.time()
    orc, oout, oerr = t.finish(other, timeout=30)
    dt = time.time() - t0
    stop.send_signal(signal.SIGCONT)
    t1 = time.time()
    stopped_rc, sout, serr = t.finish(stop, timeout=30)
    sdt = time.time() - t1
    err = oerr if other is src else serr  # the source's stderr
    if (c.check(running, "%s: the migration ended before the stop" % name)
            and c.check(orc == 1, "%s: the other side's exit %s\n%s" % (name, orc, oerr))
            and check_time(name, dt, 3.0 + 1.5)
            and c.check("main channel: peer silent for 3 s" in oerr,
                        "%s: the other side says %r" % (name, oerr))
            and c.check(stopped_rc == 1, "%s: exit %s after SIGCONT\n%s" % (name, stopped_rc, serr))
            and check_time(name + " (after SIGCONT)", sdt, 2.0)
            and c.check("reported: main channel: peer silent" in serr
                        or "connection closed" in serr, "%s: after SIGCONT %r" % (name, serr))
            and c.check(t.GUEST_RAN_ON in err, "%s: the guest did not run on" % name)
            and c.check(not os.path.exists(dump), "%s: the destination wrote an image" % name)):
        print("ok: %s: the other side exits 1 %.1f s after SIGSTOP: %s; the stopped one "
              "exits 1 %.1f s after SIGCONT: %s" % (name, dt, last_line(oerr), sdt,
                                                   last_line(serr)))


stopped("destination")
stopped("source")


# ---- a killed peer, a reset connection ----------------------------------------
def killed_or_reset(name, act, expect, args=()):
    """Mid-pass, act(dest, src, port) kills one side or resets one of the
    destination's connections.  The sides still alive exit 1 within 2 s
    with expect in their message (or, given a list, each side with its
    own; a tuple: one of them), the source's guest runs on, and the
    destination leaves no image behind.  args: more for the source."""
    port = t.free_port()
    uri = "tcp:127.0.0.1:%d" % port
    dump = os.path.join(d, "killed.bin")
    if os.path.exists(dump):
        os.unlink(dump)
    dest = t.start_dest(uri, dump=dump)
    src = source(uri, "--mem", "64M", "--fill", "random", "--dirty-rate", "4M",
                 "--set", "max-bandwidth=8M", *args)
    time.sleep(1.5)
    running = src.poll() is None and dest.poll() is None
    t0 = time.time()
    act(dest, src, port)
    results = []
    for p in (src, dest):
        rc, out, err = t.finish(p, timeout=30)
        results.append((rc, err, time.time() - t0))
    (rc, err, dt), (drc, derr, ddt) = results
    alive = [(who, r, e, when) for who, r, e, when in
             (("source", rc, err, dt), ("destination", drc, derr, ddt)) if r != -9]
    ok = c.check(running, "%s: the migration ended before the fault" % name)
    for who, r, e, when in alive:
        ok = ok and c.check(r == 1, "%s: %s exit %s\n%s" % (name, who, r, e))
        ok = ok and check_time("%s (%s)" % (name, who), when, 2.0)
        want = expect[0 if who == "source" else 1] if isinstance(expect, list) else expect
        want = want if isinstance(want, tuple) else (want,)
        ok = ok and c.check(any(w in e for w in want), "%s: %s says %r" % (name, who, e))
    ok = ok and c.check(rc == -9 or t.GUEST_RAN_ON in err, "%s: the guest did not run on" % name)
    ok = ok and c.check(not os.path.exists(dump), "%s: the destination wrote an image" % name)
    if ok:
        print("ok: %s: %s" % (name, "; ".join("%s exit 1 after %.1f s: %s" % (who, when, last_line(e))
                                             for who, r, e, when in alive)))


def kill(which):
    return lambda dest, src, port: (dest if which == "destination" else src).kill()


def reset_last_channel(dest, src, port):
    # The destination's newest connection (a multifd channel: the source
    # connects the main channel first), destroyed by the kernel (ss -K).
    out = subprocess.run(["ss", "-Htn", "state", "established", "( sport = :%d )" % port],
                         capture_output=True, text=True).stdout.split()
    peers = sorted(int(w.rsplit(":", 1)[1]) for w in out if w.startswith("127.0.0.1:")
                   and not w.endswith(":%d" % port))
    subprocess.run(["ss", "-K", "-tn", "state", "established",
                    "( sport = :%d and dport = :%d )" % (port, peers[-1])], capture_output=True)


killed_or_reset("destination killed", kill("destination"),
                "connection closed on every channel: the destination exited or was killed")
killed_or_reset("source killed", kill("source"),
                "connection closed on every channel: the source exited or was killed")
def reset_main_channel(dest, src, port):
    # The oldest: the source connects the main channel first.
    out = subprocess.run(["ss", "-Htn", "state", "established", "( sport = :%d )" % port],
                         capture_output=True, text=True).stdout.split()
    peers = sorted(int(w.rsplit(":", 1)[1]) for w in out if w.startswith("127.0.0.1:")
                   and not w.endswith(":%d" % port))
    subprocess.run(["ss", "-K", "-tn", "state", "established",
                    "( sport = :%d and dport = :%d )" % (port, peers[0])], capture_output=True)


if os.geteuid() != 0 or subprocess.run(["ss", "-K", "dport", "= :1"],
                                       capture_output=True).returncode:
    print("skip: resetting one connection needs root and ss -K")
else:
    killed_or_reset("one channel reset", reset_last_channel, "channel")
    # The destination blames the main channel, not a multifd one that
    # closed after it.  The source may not tell a reset main channel from a
    # destination that closed everything (it did, once it had failed): it
    # may say either.
    killed_or_reset("main channel reset", reset_main_channel,
                    [("main channel: ", "connection closed on every channel"), "main channel: "])


# ---- channel-recovery: a lost multifd connection is replaced -------------------
def connections(port):
    """The destination's established connections on port, as (peer port,
    bytes received), most received first: the main channel, which carries
    control messages only, comes last."""
    out = subprocess.run(["ss", "-Htni", "state", "established", "( sport = :%d )" % port],
                         capture_output=True, text=True).stdout.splitlines()
    conns = []
    for addr, info in zip(out[0::2], out[1::2]):
        peer = int(addr.split()[-1].rsplit(":", 1)[1])
        got = [int(w.split(":")[1]) for w in info.split() if w.startswith("bytes_received:")]
        conns.append((peer, got[0] if got else 0))
    return sorted(conns, key=lambda x: -x[1])


def reset(port, peer):
    subprocess.run(["ss", "-K", "-tn", "state", "established",
                    "( sport = :%d and dport = :%d )" % (port, peer)], capture_output=True)


def reset_busiest(port):
    """Resets the multifd connection that has carried the most; False when
    the migration is over."""
    conns = connections(port)
    if len(conns) < 2:
        return False
    reset(port, conns[0][0])
    return True


def strangers(port):
    """Connections a destination must refuse during the passes without
    failing: a port probe, garbage, a hello without RECONNECT, a RECONNECT
    of another session, a RESOLVE.  Returns their sockets (kept open)."""
    socks = []
    for data in (b"", b"GET / HTTP/1.0\r\n\r\n" + bytes(40), t.hello(1, 2),
                 t.hello(1, 2, uuid=b"\x5a" * 16, flags=1), t.hello(0, 2, flags=2)):
        sk = socket.create_connection(("127.0.0.1", port))
        sk.sendall(data)
        socks.append(sk)
    return socks


def recovery_case(name, faults, expect_resets, *args):
    """A writing guest migrates with channel-recovery on (args: more for
    the source); faults(port) - called mid-pass - resets expect_resets
    multifd connections (ss -K) and returns how many it reset.  Both sides
    exit 0, the digest and the bytes match, and each side's statistics
    count the recoveries."""
    port = t.free_port()
    uri = "tcp:127.0.0.1:%d" % port
    sd, dd, sj, dj = (os.path.join(d, n) for n in ("rs.bin", "rd.bin", "rs.json", "rd.json"))
    for f in (sd, dd, sj, dj):
        if os.path.exists(f):
            os.unlink(f)
    dest = t.start_dest(uri, dump=dd, json_path=dj)
    t0 = time.time()
    src = source(uri, "--mem", MEM, "--fill", "random", "--dirty-rate", "2M",
                 "--set", "max-bandwidth=12M", "--cap", "channel-recovery=on",
                 "--dump", sd, "--json", sj, *args)
    time.sleep(1.0)
    running = src.poll() is None and dest.poll() is None
    resets, strange = faults(port)
    rc, out, err = t.finish(src, timeout=60)
    dt = time.time() - t0
    drc, dout, derr = t.finish(dest, timeout=30)
    ok = (c.check(running and resets == expect_resets, "%s: the migration ended after %d of "
                  "%d resets" % (name, resets, expect_resets))
          and c.check(rc == 0 and drc == 0, "%s: exit %s/%s\n%s\n%s" % (name, rc, drc, err, derr))
          and c.check(t.load_json(sj)["verify"]["match"] is True, name + ": digest")
          and c.check(t.same_files(sd, dd), name + ": destination bytes differ"))
    if not ok:
        return
    n, dn = t.load_json(sj)["channel-recoveries"], t.load_json(dj)["channel-recoveries"]
    if (c.check(n >= expect_resets and dn >= expect_resets,
                "%s: channel-recoveries %d (source), %d (destination), want >= %d\n%s\n%s"
                % (name, n, dn, expect_resets, err, derr))
            and c.check("reconnected" in err and "replacement connection taken" in derr,
                        "%s: no recovery logged\n%s\n%s" % (name, err, derr))
            and c.check(not strange or (derr.count("a connection during the migration") == 4
                                          and "a connection closed before its hello" in derr),
                        "%s: strangers not refused (or not logged)\n%s" % (name, derr))):
        print("ok: %s: completed in %.1f s, identical, %d recoveries: %s"
              % (name, dt, n, [x for x in err.splitlines() if "reconnected" in x][-1]))


def reset_one(port):
    socks = strangers(port)
    time.sleep(0.3)
    done = reset_busiest(port)
    time.sleep(0.5)
    for sk in socks:
        sk.close()
    return int(done), True


def reset_three(port):
    # The busiest channel, then (a new connection carrying less) the other
    # one, then whichever is busiest by then.
    done = 0
    for _ in range(3):
        done += reset_busiest(port)
        time.sleep(0.7)
    return done, False


def reset_main(dest, src, port):
    reset(port, connections(port)[-1][0])


class Proxy:
    """A TCP relay in front of a destination that relays the first
    `forward` connections and resets every later one at once: a link on
    which no replacement connection can get through."""

    def __init__(self, dest_port, forward):
        self.dest_port, self.forward, self.pairs = dest_port, forward, []
        self.ls = socket.socket()
        self.ls.bind(("127.0.0.1", 0))
        self.ls.listen(16)
        self.port = self.ls.getsockname()[1]
        threading.Thread(target=self.accept, daemon=True).start()

    @staticmethod
    def reset(sk):
        # shutdown first: a pump thread blocked in recv keeps the socket
        # alive past close() otherwise, and its peer would see nothing.
        sk.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        try:
            sk.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        sk.close()

    def accept(self):
        while True:
            try:
                a, _ = self.ls.accept()
            except OSError:
                return
            if len(self.pairs) >= self.forward:
                self.reset(a)
                continue
            b = socket.create_connection(("127.0.0.1", self.dest_port))
            self.pairs.append((a, b))
            for x, y in ((a, b), (b, a)):
                threading.Thread(target=self.pump, args=(x, y), daemon=True).start()

    @staticmethod
    def pump(x, y):
        try:
            while True:
                data = x.recv(1 << 16)
                if not data:
                    break
                y.sendall(data)
        except OSError:
            pass
        try:
            y.shutdown(socket.SHUT_WR)
        except OSError:
            pass

    def cut(self, i):
        """Resets connection i (0 = the main channel) on both sides."""
        for sk in self.pairs[i]:
            self.reset(sk)

    def close(self):
        self.ls.close()


def recovery_fails(name):
    """channel-recovery on, but the link lets no new connection through:
    a multifd connection reset mid-pass fails the migration after the
    source's tries, and the message says what was tried and why it failed.
    Both sides exit 1 within a few seconds, the guest runs on, no image."""
    port = t.free_port()
    dump = os.path.join(d, "norec.bin")
    if os.path.exists(dump):
        os.unlink(dump)
    dest = t.start_dest("tcp:127.0.0.1:%d" % port, dump=dump)
    proxy = Proxy(port, 3)
    src = source("tcp:127.0.0.1:%d" % proxy.port, "--mem", "64M", "--fill", "random",
                 "--dirty-rate", "4M", "--set", "max-bandwidth=8M", "--cap",
                 "channel-recovery=on")
    time.sleep(1.5)
    running = src.poll() is None and dest.poll() is None and len(proxy.pairs) == 3
    t0 = time.time()
    proxy.cut(2)
    rc, out, err = t.finish(src, timeout=30)
    dt = time.time() - t0
    drc, dout, derr = t.finish(dest, timeout=30)
    ddt = time.time() - t0
    proxy.close()
    # The cause (a reset: ECONNRESET or EPIPE), then the reason of the last
    # try: the relay's reset ends the connect or the wait for the answer,
    # whichever it meets.
    want = "channel-recovery failed after 3 attempts: "
    if (c.check(running, "%s: the migration ended before the fault" % name)
            and c.check(rc == 1 and drc == 1, "%s: exit %s/%s\n%s\n%s" % (name, rc, drc, err, derr))
            and check_time(name + " (source)", dt, 4.0, 1.4)
            and check_time(name + " (destination)", ddt, 4.5)
            and c.check("channel 2: connection lost (" in err and want in err
                        and "(on the source, in phase first pass)" in err,
                        "%s: source says %r" % (name, err))
            and c.check("source reported: channel 2: connection lost" in derr and want in derr,
                        "%s: destination says %r" % (name, derr))
            and c.check(t.GUEST_RAN_ON in err, "%s: the guest did not run on" % name)
            and c.check(not os.path.exists(dump), "%s: the destination wrote an image" % name)):
        print("ok: %s: source exit 1 after %.1f s: %s; destination exit 1 after %.1f s: %s"
              % (name, dt, last_line(err), ddt, derr))


recovery_fails("channel-recovery, no replacement gets through")
killed_or_reset("channel-recovery, destination killed", kill("destination"),
                "connection closed on every channel: the destination exited or was killed",
                args=("--cap", "channel-recovery=on"))
killed_or_reset("channel-recovery, source killed", kill("source"),
                "connection closed on every channel: the source exited or was killed",
                args=("--cap", "channel-recovery=on"))

def recovery_in_switchover(name):
    """An idle guest on one channel whose receiver takes 2 s before each
    packet (x-delay-channel): its data packet at 2 s, SYNC(1) at 4 s, then
    the guest stops and SYNC|FINAL waits 2 s more at the destination.  At
    5 s, in the switchover, the connection is reset: the sender replaces
    it, and the receiver - which still reads the final SYNC the old
    connection held - answers from its end that it has it.  Both exit 0,
    identical."""
    port = t.free_port()
    sd, dd = (os.path.join(d, n) for n in ("ws.bin", "wd.bin"))
    for f in (sd, dd):
        if os.path.exists(f):
            os.unlink(f)
    dest = t.start_dest("tcp:127.0.0.1:%d" % port, "--set", "x-delay-channel=1:2000", dump=dd)
    src = source("tcp:127.0.0.1:%d" % port, "--mem", "64K", "--fill", "random",
                 "--set", "multifd-channels=1", "--cap", "channel-recovery=on", "--dump", sd)
    time.sleep(5.0)
    done = reset_busiest(port)
    rc, out, err = t.finish(src, timeout=60)
    drc, dout, derr = t.finish(dest, timeout=30)
    if (c.check(done, "%s: the migration ended before the reset" % name)
            and c.check(rc == 0 and drc == 0, "%s: exit %s/%s\n%s\n%s" % (name, rc, drc, err, derr))
            and c.check(t.same_files(sd, dd), name + ": destination bytes differ")
            and c.check("channel 1: connection lost in phase switchover" in err,
                        "%s: no recovery in the switchover\n%s" % (name, err))):
        print("ok: %s: %s" % (name, [x for x in err.splitlines() if "reconnected" in x][0]))


MEM = os.environ.get("LM_TEST_RECOVERY_MEM", "24M")
if os.geteuid() != 0 or subprocess.run(["ss", "-K", "dport", "= :1"],
                                       capture_output=True).returncode:
    print("skip: channel-recovery cases need root and ss -K")
else:
    recovery_case("channel-recovery, one channel reset", reset_one, 1)
    # zlib: one stream per channel, which a replacement starts afresh
    # (on pages it compresses: random ones go as stored blocks).
    recovery_case("channel-recovery, three resets, zlib", reset_three, 3,
                  "--set", "multifd-compression=zlib", "--fill", "system",
                  "--set", "max-bandwidth=4M")
    recovery_in_switchover("channel-recovery, reset in the switchover")
    # Not the main channel: that stays fatal, and the message says so.
    # The destination sees the reset first.  The source may find, by the
    # time its half second for the peer's reason is up, every connection
    # closed by the destination's own failure: then it blames a gone peer.
    killed_or_reset("channel-recovery, main channel reset", reset_main,
                    [("main channel: Connection reset by peer (fatal: channel-recovery",
                      "connection closed on every channel"),
                     "main channel: Software caused connection abort (fatal: "
                     "channel-recovery replaces multifd channels, not the main channel)"],
                    args=("--cap", "channel-recovery=on"))


# ---- the link: two network namespaces joined by a veth pair --------------------
def ip(*args):
    return subprocess.run(["ip"] + list(args), capture_output=True, text=True)


def netns_usable():
    if os.geteuid() != 0:
        return "not root"
    probe = "lmprobe%d" % os.getpid()
    r = ip("netns", "add", probe)
    if r.returncode:
        return "ip netns add failed: " + r.stderr.strip()
    ip("netns", "del", probe)
    return None


def wait_listen_in(proc, port, timeout=10):
    """The destination runs in another namespace: watch its own view of
    TCP sockets (/proc/PID/net/tcp) for the listener."""
    deadline = time.time() + timeout
    while time.time() < deadline and proc.poll() is None:
        try:
            with open("/proc/%d/net/tcp" % proc.pid) as f:
                for line in f.read().splitlines()[1:]:
                    cols = line.split()
                    if cols[3] == "0A" and int(cols[1].split(":")[1], 16) == port:
                        return True
        except OSError:
            pass
        time.sleep(0.02)
    return False


def link_case(name, cut_s, net_timeout, expect_ok):
    tag = "%d%d" % (os.getpid() % 100000, int(time.time() * 1000) % 1000)
    na, nb, va, vb = "lmfa" + tag, "lmfb" + tag, "lva" + tag, "lvb" + tag
    procs = []
    try:
        for cmd in (["netns", "add", na], ["netns", "add", nb],
                    ["link", "add", va, "netns", na, "type", "veth", "peer", "name", vb,
                     "netns", nb],
                    ["-n", na, "addr", "add", "10.213.0.1/24", "dev", va],
                    ["-n", nb, "addr", "add", "10.213.0.2/24", "dev", vb],
                    ["-n", na, "link", "set", va, "up"], ["-n", nb, "link", "set", vb, "up"]):
            r = ip(*cmd)
            if r.returncode:
                raise RuntimeError("ip %s: %s" % (" ".join(cmd), r.stderr.strip()))
        # About 25 MB/s: the migration is still running when the link goes.
        subprocess.run(["ip", "netns", "exec", nb, "tc", "qdisc", "add", "dev", vb, "root",
                        "tbf", "rate", "200mbit", "burst", "256kb", "latency", "50ms"],
                       check=True, capture_output=True)
        port = 4444
        uri = "tcp:10.213.0.1:%d" % port
        sd, dd, sj = (os.path.join(d, n) for n in ("s.bin", "d.bin", "s.json"))
        for f in (sd, dd, sj):
            if os.path.exists(f):
                os.unlink(f)
        nt = "net-timeout=%d" % net_timeout
        dest = subprocess.Popen(["ip", "netns", "exec", na, t.LIVEMIG, "dest", "--listen", uri,
                                 "--no-progress", "--dump", dd, "--set", nt],
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        procs.append(dest)
        if not wait_listen_in(dest, port):
            raise RuntimeError("the destination never listened")
        src = source(uri, "--mem", "96M", "--dirty-rate", "8M", "--set", nt, "--dump", sd,
                     "--json", sj, netns=nb)
        procs.append(src)
        time.sleep(1.5)
        running = src.poll() is None
        ip("-n", nb, "link", "set", vb, "down")
        t0 = time.time()
        if cut_s:
            time.sleep(cut_s)
            ip("-n", nb, "link", "set", vb, "up")
        rc, out, err = t.finish(src, timeout=60)
        dt = time.time() - t0
        drc, dout, derr = t.finish(dest, timeout=30)
        ddt = time.time() - t0
    except (OSError, RuntimeError, subprocess.CalledProcessError) as e:
        c.check(False, "%s: setting up the link: %s" % (name, e))
        return
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
                p.wait()
        ip("netns", "del", na)
        ip("netns", "del", nb)
    if not c.check(running, "%s: the migration ended before the cut" % name):
        return
    if expect_ok:
        ok = (c.check(rc == 0 and drc == 0, "%s: exit %s/%s\n%s\n%s" % (name, rc, drc, err, derr))
              and c.check(t.load_json(sj)["verify"]["match"] is True, name + ": digest")
              and c.check(t.same_files(sd, dd), name + ": destination bytes differ"))
        if ok:
            print("ok: %s: completed %.1f s after the cut, identical: %s"
                  % (name, dt, last_line(out)))
        return
    silent = "peer silent for %d s" % net_timeout
    upper = net_timeout + 1.5
    if (c.check(rc == 1 and drc == 1, "%s: exit %s/%s\n%s\n%s" % (name, rc, drc, err, derr))
            and check_time(name + " (source)", dt, upper)
            and check_time(name + " (destination)", ddt, upper)
            and c.check(silent in err, "%s: source says %r" % (name, err))
            and c.check(silent in derr, "%s: destination says %r" % (name, derr))
            and c.check(t.GUEST_RAN_ON in err, "%s: the guest did not run on" % name)
            and c.check(not os.path.exists(dd), "%s: the destination wrote an image" % name)):
        print("ok: %s: source exit 1 after %.1f s: %s; destination exit 1 after %.1f s: %s"
              % (name, dt, last_line(err), ddt, last_line(derr)))


why = netns_usable()
if why:
    print("skip: link cut cases need network namespaces (%s)" % why)
else:
    link_case("link cut for good", None, 3, False)
    link_case("link cut for 1 s", 1, 5, True)
c.done()
