#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""A flood of half-open connections before the source (issue 10: hellos
are read concurrently, each within its own time; the number of half-open
connections is bounded).  More silent clients than the destination's cap
(32) and a few that stall in the middle of a hello or a TLS handshake
connect first and stay connected; the destination has accepted every one
of them (the oldest past the cap closed to make room) when the source
starts.  The source still connects, migrates and verifies while the rest
are half open; they are closed once its connections are in, every flood
connection is counted in refused-connections, and the destination's log
is not a line per connection.  Plain, then with TLS (PSK)."""
import os
import select
import shutil
import socket
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import lmtest as t  # noqa: E402

c = t.Checker("flood")
d = t.tmpdir()
CAP = 32          # LM_GATE_SLOTS (src/core/gate.h)
SILENT = CAP + 16
SLOW = 4


def closed(sk):
    """Whether the destination closed sk (EOF or reset); never waits."""
    try:
        return sk.recv(1, socket.MSG_PEEK | socket.MSG_DONTWAIT) == b""
    except BlockingIOError:
        return False
    except OSError:
        return True


def wait_closed(socks, n, timeout=20):
    """Waits until n of socks are closed; returns how many are."""
    end = time.time() + timeout
    while time.time() < end:
        done = sum(closed(sk) for sk in socks)
        if done >= n:
            return done
        select.select(socks, [], [], 0.05)
    return sum(closed(sk) for sk in socks)


def flood(name, tls_args):
    port = t.free_port()
    uri = "tcp:127.0.0.1:%d" % port
    sd, dd, sj, dj = (os.path.join(d, name + n) for n in ("-s.bin", "-d.bin", "-s.json",
                                                           "-d.json"))
    dest = t.start_dest(uri, *tls_args, dump=dd, json_path=dj)
    socks = [socket.create_connection(("127.0.0.1", port)) for _ in range(SILENT)]
    # Slow clients: a TLS record header (a ClientHello to come) with TLS,
    # the first bytes of a hello without; then nothing.
    stall = b"\x16\x03\x01\x02\x00" if tls_args else t.hello(0, 2)[:10]
    for _ in range(SLOW):
        sk = socket.create_connection(("127.0.0.1", port))
        sk.sendall(stall)
        socks.append(sk)
    # Every one accepted before the source starts: the cap closed the
    # oldest ones (and only those) to make room for the rest.
    over = len(socks) - CAP
    n = wait_closed(socks, over)
    ok = c.check(n == over and not any(closed(sk) for sk in socks[over:]),
                 "%s: %d of %d flood connections closed before the source, want the first %d"
                 % (name, n, len(socks), over))
    src = subprocess.Popen([t.LIVEMIG, "source", "--connect", uri, "--no-progress",
                            "--mem", "8M", "--fill", "random", "--dump", sd, "--json", sj]
                           + tls_args, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                           text=True)
    rc, out, err = t.finish(src, timeout=60)
    drc, dout, derr = t.finish(dest, timeout=30)
    # The source's connections were taken while flood connections were
    # still half open; those were closed once the source was in.
    cut = [x for x in derr.splitlines()
           if "the source's connections are in: closed" in x]
    logged = [x for x in derr.splitlines() if "refused a connection" in x]
    ok = ok and (
        c.check(rc == 0 and drc == 0, "%s: exit %s/%s\n%s\n%s" % (name, rc, drc, err, derr))
        and c.check(t.load_json(sj)["verify"]["match"] is True and t.same_files(sd, dd),
                    name + ": the image differs")
        and c.check(len(cut) == 1 and "half open or refused" in cut[0],
                    "%s: no flood connection was half open when the source was in\n%s"
                    % (name, derr))
        and c.check(wait_closed(socks, len(socks), timeout=5) == len(socks),
                    name + ": flood connections left open after the migration")
        and c.check(t.load_json(dj)["refused-connections"] == len(socks),
                    "%s: refused-connections %d, want %d" % (
                        name, t.load_json(dj)["refused-connections"], len(socks)))
        and c.check(len(logged) <= 11 and "were left out" in derr,
                    "%s: %d log lines for %d flood connections\n%s"
                    % (name, len(logged), len(socks), derr)))
    for sk in socks:
        sk.close()
    if ok:
        print("ok: %s: migrated and verified past %d half-open connections; %d refused, "
              "%d lines logged: %s" % (name, len(socks), t.load_json(dj)["refused-connections"],
                                       len(logged) + 1, cut[0].split("warning: ")[-1]))


flood("plain", [])

# A source's own burst of connections beyond the cap (100 channels, their
# hellos sent at once) is never cut to make room: the ones past the cap
# wait for a slot (review of issue 10: 33 channels used to lock out).
port = t.free_port()
uri = "tcp:127.0.0.1:%d" % port
dest = t.start_dest(uri)
rc, out, err = t.run_source(uri, "--mem", "8M", "--set", "multifd-channels=100")
drc, dout, derr = t.finish(dest, 60)
c.check(rc == 0 and drc == 0 and "refused" not in derr,
        "100 channels past a cap of %d: exits %s/%s %r" % (CAP, rc, drc, (err + derr)[-400:]))
if shutil.which("psktool"):
    psk = os.path.join(d, "psk")
    os.makedirs(psk)
    subprocess.run(["psktool", "-u", "qemu", "-p", os.path.join(psk, "keys.psk")], check=True,
                   capture_output=True)
    flood("tls", ["--set", "tls-creds=psk:" + psk])
else:
    print("note: psktool (Debian package gnutls-bin) is not installed: the TLS case skipped")
c.done()
