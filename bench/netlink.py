# SPDX-License-Identifier: MIT
"""Two hosts on one machine, for bench/soak.py and bench/matrix.py.

Link(rate): two network namespaces joined by a veth pair, both ends shaped
with tc tbf to rate (e.g. "1gbit"): the destination listens in namespace
a at 10.214.0.1, the source runs in namespace b.  Loopback(): one
namespace whose loopback carries nothing else, both sides at 127.0.0.1.
Both need root and are removed by close() (call it from a finally).
wire_bytes() counts every packet on the link, both directions, headers
included, so it is the bytes a real link would carry.
"""
import json
import os
import subprocess

DST_ADDR = "10.214.0.1"
SRC_ADDR = "10.214.0.2"


def ip(*args, check=False):
    r = subprocess.run(["ip"] + list(args), capture_output=True, text=True)
    if check and r.returncode:
        raise RuntimeError("ip %s: %s" % (" ".join(args), r.stderr.strip()))
    return r


def tx_bytes(ns, dev):
    """Bytes sent by dev in namespace ns."""
    out = ip("-n", ns, "-j", "-s", "link", "show", "dev", dev, check=True).stdout
    return json.loads(out)[0]["stats64"]["tx"]["bytes"]


class Link:
    """A veth pair between two namespaces, shaped with tbf to rate."""

    def __init__(self, rate, tag=""):
        tag = str(os.getpid()) + tag
        self.rate = rate
        self.a, self.b, self.va, self.vb = ("lmsa" + tag, "lmsb" + tag, "lsa" + tag,
                                            "lsb" + tag)
        self.dst_ns, self.src_ns, self.dst_addr = self.a, self.b, DST_ADDR
        try:
            for cmd in (["netns", "add", self.a], ["netns", "add", self.b],
                        ["link", "add", self.va, "netns", self.a, "type", "veth", "peer",
                         "name", self.vb, "netns", self.b],
                        ["-n", self.a, "addr", "add", DST_ADDR + "/24", "dev", self.va],
                        ["-n", self.b, "addr", "add", SRC_ADDR + "/24", "dev", self.vb],
                        ["-n", self.a, "link", "set", self.va, "up"],
                        ["-n", self.b, "link", "set", self.vb, "up"],
                        ["-n", self.a, "link", "set", "lo", "up"],
                        ["-n", self.b, "link", "set", "lo", "up"]):
                ip(*cmd, check=True)
            for ns, dev in ((self.a, self.va), (self.b, self.vb)):
                r = subprocess.run(["ip", "netns", "exec", ns, "tc", "qdisc", "add", "dev", dev,
                                    "root", "tbf", "rate", rate, "burst", "512kb", "latency",
                                    "50ms"], capture_output=True, text=True)
                if r.returncode:
                    raise RuntimeError("tc tbf rate %s: %s" % (rate, r.stderr.strip()))
        except BaseException:
            self.close()
            raise

    def set(self, up):
        """Takes the source's end down or up (a cut link)."""
        ip("-n", self.b, "link", "set", self.vb, "up" if up else "down")

    def wire_bytes(self):
        return tx_bytes(self.a, self.va) + tx_bytes(self.b, self.vb)

    def close(self):
        ip("netns", "del", self.a)
        ip("netns", "del", self.b)


class Loopback:
    """One namespace with only its loopback, both sides in it."""

    rate = None

    def __init__(self, tag=""):
        self.a = "lmlo" + str(os.getpid()) + tag
        self.dst_ns = self.src_ns = self.a
        self.dst_addr = "127.0.0.1"
        ip("netns", "add", self.a, check=True)
        try:
            ip("-n", self.a, "link", "set", "lo", "up", check=True)
        except BaseException:
            self.close()
            raise

    def wire_bytes(self):
        return tx_bytes(self.a, "lo")

    def close(self):
        ip("netns", "del", self.a)
