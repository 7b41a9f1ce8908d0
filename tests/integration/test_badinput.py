#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""A destination fed bad input must fail cleanly: non-zero exit (not a
signal), a clear message, no hang.  A bad connection before the migration
began (a bad hello, another session's, a duplicate, a silent one) is refused
and logged instead, and the destination waits on for the source.  The
streams are built by an independent encoder of the wire format
(lmtest.py)."""
import os
import socket
import struct
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import lmtest as t  # noqa: E402

c = t.Checker("bad-input")
PAGE = t.PAGE
d = t.tmpdir()


def connect(port):
    s = socket.create_connection(("127.0.0.1", port), timeout=20)
    return s


def handshake(port, nch=2, method=0, level=0, blocks=(("pc.ram", 1 << 20),), flags=0):
    """A well-behaved opening: returns (main, [channels])."""
    main = connect(port)
    main.sendall(t.hello(0, nch))
    chans = []
    for i in range(1, nch + 1):
        ch = connect(port)
        ch.sendall(t.hello(i, nch))
        chans.append(ch)
    main.sendall(t.msg(1, t.params(nch, method, level, blocks, flags)))
    ready = main.recv(16)
    if len(ready) != 16 or struct.unpack("<H", ready[4:6])[0] != 2:
        raise RuntimeError("no READY")
    return main, chans


def case(name, attack, expect, timeout=30):
    port = t.free_port()
    uri = "tcp:127.0.0.1:%d" % port
    dest = t.start_dest(uri)
    socks = []
    try:
        socks = attack(port) or []
    except (OSError, RuntimeError) as e:
        # The destination may close on us mid-attack: that is fine.
        print("note: %s: %s" % (name, e))
    rc, out, err = t.finish(dest, timeout=timeout)
    for s in socks:
        s.close()
    ok = c.check(rc != "HANG", name + ": destination hung")
    ok = ok and c.check(isinstance(rc, int) and rc == 1,
                        "%s: exit status %s (want 1; negative = killed by a signal)\n%s"
                        % (name, rc, err))
    ok = ok and c.check(expect in err, "%s: expected %r in stderr, got:\n%s" % (name, expect, err))
    if ok:
        print("ok: %s -> %s" % (name, err.strip().splitlines()[-1]))


def refused(name, attack, expect, finish=None):
    """A connection the destination must refuse before the migration began:
    it logs why, waits on, and then the real source migrates to it - or,
    when the attack's own session got in first, finish(port) brings the
    rest of that session's connections, which it takes, and the session's
    end then fails it ("closed")."""
    port = t.free_port()
    uri = "tcp:127.0.0.1:%d" % port
    dj = os.path.join(d, "d.json")
    dest = t.start_dest(uri, json_path=dj)
    socks = []
    try:
        socks = attack(port) or []
        time.sleep(0.3)
        socks += finish(port) if finish else []
    except (OSError, RuntimeError) as e:
        print("note: %s: %s" % (name, e))
    waiting = dest.poll() is None
    if finish:
        for s in socks:
            s.close()
        rc, src_err = 0, ""
    else:
        rc, out, src_err = t.run_source(uri, "--mem", "4M", "--fill", "random")
    drc, dout, err = t.finish(dest, timeout=30)
    for s in socks:
        s.close()
    log = [x for x in err.splitlines() if "refused a connection: " in x]
    ok = c.check(drc != "HANG", name + ": destination hung")
    ok = ok and c.check(waiting, name + ": the destination did not wait on")
    ok = ok and c.check(log and expect in log[0],
                        "%s: expected 'refused a connection: ...%s' in stderr, got:\n%s"
                        % (name, expect, err))
    ok = ok and c.check(t.load_json(dj)["refused-connections"] >= 1, name + ": not counted")
    if finish:  # the attack's session went on: its connections were taken
        ok = ok and c.check(drc == 1 and "closed" in err.strip().splitlines()[-1],
                            "%s: exit %s (want 1, the session's end)\n%s" % (name, drc, err))
    else:
        ok = ok and c.check(rc == 0 and drc == 0, "%s: the source after it: exit %s/%s\n%s\n%s"
                            % (name, rc, drc, src_err, err))
    if ok:
        print("ok: %s -> %s" % (name, log[0]))


def garbage(port):
    s = connect(port)
    s.sendall(os.urandom(100))
    return [s]


def truncated_hello(port):
    s = connect(port)
    s.sendall(t.hello(0, 2)[:20])
    s.shutdown(socket.SHUT_WR)
    return [s]


def wrong_magic(port):
    s = connect(port)
    s.sendall(t.hello(0, 2, magic=0x12345678))
    return [s]


def wrong_version(port):
    s = connect(port)
    s.sendall(t.hello(0, 2, version=9))
    return [s]


def duplicate_channel(port):
    socks = []
    for ch in (0, 1, 1):
        s = connect(port)
        s.sendall(t.hello(ch, 2))
        socks.append(s)
    return socks


def other_session(port):
    a = connect(port)
    a.sendall(t.hello(0, 2))
    # Hellos are vetted concurrently: the first one taken defines the
    # session, so let the main channel's be taken before the stranger's.
    time.sleep(0.3)
    b = connect(port)
    b.sendall(t.hello(1, 2, uuid=b"\x22" * 16))
    return [a, b]


def rest_of_session(first, nch=2):
    """The multifd channels from first on, of the session the attacks
    open with (uuid 0x11...)."""
    def more(port):
        socks = []
        for ch in range(first, nch + 1):
            s = connect(port)
            s.sendall(t.hello(ch, nch))
            socks.append(s)
        time.sleep(0.3)
        return socks
    return more


def bad_params(port):
    main = connect(port)
    main.sendall(t.hello(0, 1))
    ch = connect(port)
    ch.sendall(t.hello(1, 1))
    p = bytearray(t.params(1))
    p[8:12] = struct.pack("<I", 8192)  # page size
    main.sendall(t.msg(1, bytes(p)))
    return [main, ch]


def bad_message_crc(port):
    main = connect(port)
    main.sendall(t.hello(0, 1))
    ch = connect(port)
    ch.sendall(t.hello(1, 1))
    m = bytearray(t.msg(1, t.params(1)))
    m[-1] ^= 0xFF
    main.sendall(bytes(m))
    return [main, ch]


def page_out_of_range(port):
    main, chans = handshake(port)
    pages = (1 << 20) // PAGE  # 256
    chans[0].sendall(t.packet(1, 0, 1, 0, [pages], [], bytes(PAGE)))
    return [main] + chans


def zero_page_out_of_range(port):
    main, chans = handshake(port)
    chans[0].sendall(t.packet(1, 0, 1, 0, [], [1 << 30], b""))
    return [main] + chans


def lying_length(port):
    main, chans = handshake(port)
    chans[0].sendall(t.packet(1, 0, 1, 0, [1, 2], [], bytes(PAGE), payload_len=PAGE))
    return [main] + chans


def block_out_of_range(port):
    main, chans = handshake(port)
    chans[0].sendall(t.packet(1, 0, 1, 5, [1], [], bytes(PAGE)))
    return [main] + chans


def bad_packet_crc(port):
    main, chans = handshake(port)
    pkt = bytearray(t.packet(1, 0, 1, 0, [3], [], os.urandom(PAGE)))
    pkt[-1] ^= 1  # one bit of the payload
    chans[0].sendall(bytes(pkt))
    return [main] + chans


def wrong_seq(port):
    main, chans = handshake(port)
    chans[0].sendall(t.packet(1, 5, 1, 0, [3], [], bytes(PAGE)))
    return [main] + chans


def wrong_channel_id(port):
    main, chans = handshake(port)
    chans[0].sendall(t.packet(2, 0, 1, 0, [3], [], bytes(PAGE)))
    return [main] + chans


def wrong_method(port):
    main, chans = handshake(port)
    chans[0].sendall(t.packet(1, 0, 1, 0, [3], [], bytes(10), method=2))
    return [main] + chans


def truncated_stream(port):
    main, chans = handshake(port)
    pkt = t.packet(1, 0, 1, 0, [3, 4], [], os.urandom(2 * PAGE))
    chans[0].sendall(pkt[:len(pkt) - 100])
    chans[0].close()
    return [main] + chans[1:]


def source_vanishes(port):
    main, chans = handshake(port)
    chans[0].sendall(t.packet(1, 0, 1, 0, [3], [], os.urandom(PAGE)))
    for s in [main] + chans:
        s.close()
    return []


def corrupt_zstd(port):
    main, chans = handshake(port, method=2, level=1)
    junk = b"\x28\xb5\x2f\xfd" + os.urandom(200)  # zstd magic, then noise
    chans[0].sendall(t.packet(1, 0, 1, 0, [3], [], junk, method=2))
    return [main] + chans


def zstd_wrong_page_count(port):
    import zlib  # noqa: F401  (only to keep the import list honest)
    main, chans = handshake(port, method=1, level=1)
    z = __import__("zlib").compressobj(1)
    data = z.compress(os.urandom(PAGE)) + z.flush(__import__("zlib").Z_SYNC_FLUSH)
    # One page of deflate data announced as two pages.
    chans[0].sendall(t.packet(1, 0, 1, 0, [3, 4], [], data, method=1))
    return [main] + chans


def sync_mismatch(port):
    main, chans = handshake(port)
    chans[0].sendall(t.packet(1, 0, 1, 0, [], [], b"", flags=1))           # SYNC pass 1
    chans[1].sendall(t.packet(2, 0, 1, 0, [], [], b"", flags=3))           # FINAL SYNC pass 1
    return [main] + chans


def complete_too_early(port):
    main, chans = handshake(port)
    # COMPLETE for pass 1 while no channel has sent its FINAL sync, then leave.
    main.sendall(t.msg(4, struct.pack("<IQQQQ", 1, 0, 0, 0, 0)))
    for ch in chans:
        ch.close()
    return [main]


def nothing_sent(port):
    main, chans = handshake(port)
    # Pass 1 ends on every channel with no page sent, then a COMPLETE whose
    # digest and counts agree with that: no page of the block arrived.
    chans[0].sendall(t.packet(1, 0, 1, 0, [], [], b"", flags=3))
    chans[1].sendall(t.packet(2, 0, 1, 0, [], [], b"", flags=3))
    main.sendall(t.msg(4, struct.pack("<IQQQQ", 1, 0, 0, 0, 0)))
    time.sleep(1)
    return [main] + chans


def reconnect_answer(port):
    """channel-recovery (PARAMS flags bit 0): channel 1 delivers one packet
    of two raw pages and one zero page, then half of the next, then a
    RECONNECT replaces it.  The receiver drops the cut packet and answers
    on the new connection: pass 1, one packet read whole, 2 + 1 pages.  A
    RECONNECT of another session is refused on the way.  Then the source
    goes, which fails the migration."""
    main, chans = handshake(port, flags=1)
    chans[0].sendall(t.packet(1, 0, 1, 0, [1, 2], [3], os.urandom(2 * PAGE)))
    chans[0].sendall(t.packet(1, 1, 1, 0, [4, 5], [], os.urandom(2 * PAGE))[:5000])
    stranger = connect(port)
    stranger.sendall(t.hello(1, 2, uuid=b"\x77" * 16, flags=1))
    new = connect(port)
    new.sendall(t.hello(1, 2, flags=1))
    got = b""
    while len(got) < 40:
        more = new.recv(40 - len(got))
        if not more:
            break
        got += more
    try:
        ans = t.answer(got)
    except ValueError as e:
        ans = str(e)
    c.check(ans == (1, 1, 2, 1), "reconnect answer: %r, want (1, 1, 2, 1)" % (ans,))
    c.check(stranger.recv(1) == b"", "another session's RECONNECT was not closed")
    for sk in [main, new, stranger] + chans:
        sk.close()
    return []


def silent_hello(port):
    s = connect(port)
    time.sleep(12)
    return [s]


refused("garbage instead of a hello", garbage, "bad hello magic")
refused("truncated hello", truncated_hello, "no complete hello")
refused("wrong magic", wrong_magic, "bad hello magic")
refused("wrong version", wrong_version, "unsupported wire version")
refused("duplicate channel id", duplicate_channel, "duplicate channel id 1", rest_of_session(2))
refused("connection of another session", other_session, "another migration",
        rest_of_session(1))
case("bad PARAMS", bad_params, "page size")
case("control message checksum", bad_message_crc, "checksum")
case("page index out of range", page_out_of_range, "beyond the end of its RAM block")
case("zero page index out of range", zero_page_out_of_range, "beyond the end of its RAM block")
case("lying payload length", lying_length, "does not match its page count")
case("RAM block out of range", block_out_of_range, "block index out of range")
case("packet checksum", bad_packet_crc, "checksum mismatch")
case("sequence gap", wrong_seq, "sequence number")
case("channel id in packet", wrong_channel_id, "channel id differs")
case("method not negotiated", wrong_method, "method differs")
case("truncated stream", truncated_stream, "connection closed")
case("source vanishes", source_vanishes, "connection closed")
case("corrupt zstd payload", corrupt_zstd, "zstd data is corrupt")
case("zlib payload short of its page count", zstd_wrong_page_count, "zlib data is corrupt")
case("SYNC passes disagree", sync_mismatch, "while others are at")
case("COMPLETE before the channels finished", complete_too_early, "connection closed")
case("COMPLETE for an image with no page", nothing_sent, "256 pages never arrived")
refused("silent peer", silent_hello, "no complete hello (timed out)")
case("channel-recovery: the answer to a RECONNECT", reconnect_answer, "connection closed")

# Nothing but bad peers: the destination's --timeout ends the wait.
port = t.free_port()
dest = t.start_dest("tcp:127.0.0.1:%d" % port, "--timeout", "2")
t0 = time.time()
junk = garbage(port)
rc, out, err = t.finish(dest, timeout=30)
junk[0].close()
c.check(rc == 1 and 1.9 < time.time() - t0 < 4 and
        "timeout: the source did not connect within 2 s (1 connections refused)" in err,
        "only bad peers, --timeout 2: exit %s after %.1f s %r" % (rc, time.time() - t0, err))

# A source that stalls mid-message: SIGINT on the destination still ends it.
port = t.free_port()
uri = "tcp:127.0.0.1:%d" % port
dest = t.start_dest(uri)
main = connect(port)
main.sendall(t.hello(0, 1))
ch = connect(port)
ch.sendall(t.hello(1, 1))
main.sendall(t.msg(1, t.params(1))[:10])
time.sleep(0.5)
t0 = time.time()
dest.send_signal(2)
rc, out, err = t.finish(dest, timeout=10)
c.check(rc == 1 and time.time() - t0 < 3, "stalled main channel + SIGINT: %s %r" % (rc, err))
main.close()
ch.close()
c.done()
