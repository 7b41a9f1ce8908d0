#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""A source facing a destination that breaks the protocol must fail cleanly
and soon: exit 1, a clear message, no hang.  The fake destination speaks
the wire format through lmtest.py's independent encoder."""
import os
import socket
import struct
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import lmtest as t  # noqa: E402

c = t.Checker("bad-peer")
NCH = 2


def recvn(s, n):
    b = b""
    while len(b) < n:
        chunk = s.recv(n - len(b))
        if not chunk:
            raise EOFError
        b += chunk
    return b


def read_msg(s):
    _, mtype, _, length, _ = struct.unpack("<IHHII", recvn(s, 16))
    return mtype, recvn(s, length)


def case(name, act, expect, timeout=20):
    ls = socket.socket()
    ls.bind(("127.0.0.1", 0))
    ls.listen(NCH + 1)
    ls.settimeout(10)
    port = ls.getsockname()[1]
    src = subprocess.Popen([t.LIVEMIG, "source", "--connect", "tcp:127.0.0.1:%d" % port,
                            "--mem", "4M", "--fill", "random", "--no-progress",
                            "--set", "multifd-channels=%d" % NCH],
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    conns = {}
    try:
        for _ in range(NCH + 1):
            s, _ = ls.accept()
            conns[struct.unpack("<H", recvn(s, 40)[6:8])[0]] = s
        mtype, _ = read_msg(conns[0])
        if mtype != 1:
            raise RuntimeError("expected PARAMS, got %d" % mtype)
        act(conns[0])
    except (OSError, EOFError, RuntimeError) as e:
        print("note: %s: %s" % (name, e))
    t0 = time.time()
    rc, out, err = t.finish(src, timeout=timeout)
    for s in conns.values():
        s.close()
    ls.close()
    ok = c.check(rc == 1, "%s: exit status %s (want 1)\n%s" % (name, rc, err))
    ok = ok and c.check(expect in err, "%s: expected %r in stderr, got:\n%s" % (name, expect, err))
    if ok:
        print("ok: %s -> %s (%.1f s)" % (name, err.strip().splitlines()[-1], time.time() - t0))
    return err


def result_first(main):
    # A verdict before the source asked for one (no COMPLETE yet).
    main.sendall(t.msg(2))
    main.sendall(t.msg(5, struct.pack("<BBHQQQ", 1, 0, 0, 0, 0, 0)))
    time.sleep(2)


def ack_unsent_pass(main):
    # Pass 7 acknowledged while pass 1 is still going.
    main.sendall(t.msg(2))
    main.sendall(t.msg(8, struct.pack("<I", 7)))
    time.sleep(2)


def error_with_escapes(main):
    main.sendall(t.msg(6, struct.pack("<I", 5) + b"disk\x1b[2J\x00on fire"))
    time.sleep(1)


case("RESULT before COMPLETE", result_first, "unexpected message 5")
case("ITER_ACK for a pass not sent", ack_unsent_pass, "ITER_ACK for pass 7 after pass 0")
err = case("ERROR with control bytes", error_with_escapes, "destination reported: disk?[2J?on fire")
c.check("\x1b" not in err, "an escape byte from the peer reached the terminal")
c.done()
