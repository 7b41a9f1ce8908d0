#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Soak: back-to-back migrations of a writing guest, each with a random
fault injected at a random moment (some with none), over a shaped veth
link between two network namespaces.  Counts what an operator cares about:

  completed   both sides exit 0, the destination verified the image
  no-contact  the fault came before the source reached the destination (which
              then waits for a source, as it should, until interrupted)
  failed      both sides failed cleanly: the source guest runs on with every
              page's stamp intact, the destination wrote no image
  unknown     a side ended "outcome unknown" (exit 3)
  hung        a side did not end within its bound (must be 0)
  stranded    the migration did not complete and the source guest is not
              running, or the source handed the guest over and the
              destination does not run it (must be 0)
  twice       the destination ran the guest while the source guest runs on
              (must be 0)
  damaged     a source stamp differs from its last write, or an image that
              was reported complete does not verify (must be 0)

Usage (root): bench/soak.py [--runs 100] [--mem 512M] [--seed N]
                            [--cap channel-recovery=on] [--rate 1gbit]
Each run prints one line; the summary comes last.  Not run by make check.
"""
import argparse
import os
import random
import signal
import subprocess
import sys
import tempfile
import time

from netlink import Link

HERE = os.path.dirname(os.path.abspath(__file__))
LIVEMIG = os.environ.get("LIVEMIG", os.path.join(HERE, "..", "build", "livemig"))
RAN_ON = "was running at the end; every page's stamp is intact"
STOPPED = "was stopped at the end; every page's stamp is intact"
NET_TIMEOUT = 3
FAULTS = ["none", "channel-reset", "dest-kill", "source-kill", "dest-stop", "link-blip",
          "link-cut", "switchover-stall", "commit-lost"]


def reset_one_channel(ns, port):
    """Destroys the destination's newest multifd connection (ss -K)."""
    out = subprocess.run(["ip", "netns", "exec", ns, "ss", "-Htn", "state", "established",
                          "( sport = :%d )" % port], capture_output=True, text=True).stdout
    peers = sorted(int(w.rsplit(":", 1)[1]) for w in out.split()
                   if w.startswith("10.214.0.2:"))
    if peers:
        subprocess.run(["ip", "netns", "exec", ns, "ss", "-K", "-tn", "state", "established",
                        "( sport = :%d and dport = :%d )" % (port, peers[-1])],
                       capture_output=True)


def finish(p, bound):
    """(exit code, output); "HANG" when it did not end within bound, or
    "NOSOURCE" for a destination that never heard from a source (it then
    waits for one, as it should) and ends at once when interrupted."""
    try:
        out, err = p.communicate(timeout=bound)
        return p.returncode, out + err
    except subprocess.TimeoutExpired:
        p.send_signal(signal.SIGINT)
        try:
            out, err = p.communicate(timeout=5)
            if "RAM       0.0 MiB" in out:
                return "NOSOURCE", out + err
        except subprocess.TimeoutExpired:
            p.kill()
            out, err = p.communicate()
        return "HANG", out + err


def one_run(i, link, args, rng, tmp):
    fault = rng.choice(FAULTS)
    at = rng.uniform(0.3, 2.5)
    port = 5000 + i % 1000
    uri = "tcp:10.214.0.1:%d" % port
    dump = os.path.join(tmp, "d.bin")
    if os.path.exists(dump):
        os.unlink(dump)
    nt = ["--set", "net-timeout=%d" % NET_TIMEOUT]
    caps = sum((["--cap", c] for c in args.cap), [])
    dargs = nt + caps + (["--set", "x-stall-switchover=%d" % (3000 + 1000 * NET_TIMEOUT)]
                         if fault == "switchover-stall" else [])
    sargs = nt + caps + (["--set", "x-lose-commit=once"] if fault == "commit-lost" else [])
    dest = subprocess.Popen(["ip", "netns", "exec", link.a, LIVEMIG, "dest", "--listen", uri,
                             "--no-progress", "--dump", dump] + dargs,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    time.sleep(0.3)
    src = subprocess.Popen(["ip", "netns", "exec", link.b, LIVEMIG, "source", "--connect", uri,
                            "--no-progress", "--mem", args.mem, "--dirty-rate", args.dirty_rate,
                            "--dirty-hot", args.dirty_hot] + sargs,
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    time.sleep(at)
    injected = src.poll() is None and dest.poll() is None
    if fault == "channel-reset":
        reset_one_channel(link.a, port)
    elif fault in ("dest-kill", "source-kill"):
        (dest if fault == "dest-kill" else src).send_signal(signal.SIGKILL)
    elif fault == "dest-stop":
        dest.send_signal(signal.SIGSTOP)
        time.sleep(NET_TIMEOUT + 1.5)
        dest.send_signal(signal.SIGCONT)
    elif fault in ("link-blip", "link-cut"):
        link.set(False)
        if fault == "link-blip":
            time.sleep(NET_TIMEOUT / 3)
            link.set(True)
    # The bound: the longest legitimate end is a resolution after a lost
    # COMMIT (4 x net-timeout) on top of a 512 MiB migration.
    rc, sout = finish(src, 120)
    drc, dout = finish(dest, 60)
    if fault == "link-cut":
        link.set(True)
    image = os.path.exists(dump)
    verified = "verify    match" in dout
    if "HANG" in (rc, drc):
        outcome = "hung"
    elif drc == "NOSOURCE":
        outcome = "no-contact"
    elif "DAMAGED" in sout or (drc == 0 and not verified):
        outcome = "damaged"
    elif image and RAN_ON in sout:
        outcome = "twice"
    elif rc == 0 and drc == 0 and verified and STOPPED in sout:
        outcome = "completed"
    elif (rc != 0 and rc != -9 and RAN_ON not in sout) or (rc == 0 and drc != 0):
        outcome = "stranded"
    elif 3 in (rc, drc):
        outcome = "unknown"
    elif rc in (1, -9) and drc in (1, -9) and not image and (rc == -9 or RAN_ON in sout):
        outcome = "failed"
    else:
        outcome = "other"
    recovered = "channel-recover" in sout
    print("%3d %-16s at %.1f s%s: %-9s source %s, destination %s%s" % (
        i + 1, fault, at, "" if injected else " (after the end)", outcome, rc, drc,
        ", recovered" if recovered else ""), flush=True)
    if outcome in ("hung", "damaged", "twice", "stranded", "other"):
        print("  --- source\n  " + sout.strip().replace("\n", "\n  ") +
              "\n  --- destination\n  " + dout.strip().replace("\n", "\n  "), flush=True)
    return fault, injected, outcome


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--runs", type=int, default=100)
    ap.add_argument("--mem", default="512M")
    ap.add_argument("--dirty-rate", default="32M")
    ap.add_argument("--dirty-hot", default="128M")
    ap.add_argument("--rate", default="1gbit", help="the link's tbf rate")
    ap.add_argument("--cap", action="append", default=[], help="NAME=on, for both sides")
    ap.add_argument("--seed", type=int, default=1)
    args = ap.parse_args()
    if os.geteuid() != 0:
        sys.exit("soak.py: needs root (network namespaces, ss -K)")
    if not os.access(LIVEMIG, os.X_OK):
        sys.exit("soak.py: %s not built (make build, or set LIVEMIG)" % LIVEMIG)
    rng = random.Random(args.seed)
    link = Link(args.rate)
    counts, channel = {}, [0, 0]
    t0 = time.time()
    try:
        with tempfile.TemporaryDirectory() as tmp:
            for i in range(args.runs):
                fault, injected, outcome = one_run(i, link, args, rng, tmp)
                counts[outcome] = counts.get(outcome, 0) + 1
                if fault == "channel-reset" and injected:
                    channel[0] += 1
                    channel[1] += outcome == "completed"
    finally:
        link.close()
    order = ["completed", "failed", "no-contact", "unknown", "hung", "stranded", "twice",
             "damaged", "other"]
    print("soak: %d runs in %.0f s, %s, %s guest, net-timeout %d s, link %s%s" % (
        args.runs, time.time() - t0, args.mem, args.dirty_rate, NET_TIMEOUT, args.rate,
        "".join(", --cap " + c for c in args.cap)))
    print("  " + ", ".join("%s %d" % (k, counts.get(k, 0)) for k in order))
    if channel[0]:
        print("  channel resets: %d of %d completed" % (channel[1], channel[0]))
    bad = sum(counts.get(k, 0) for k in ("hung", "stranded", "twice", "damaged", "other"))
    sys.exit(1 if bad else 0)


if __name__ == "__main__":
    main()
