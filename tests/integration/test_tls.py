#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""TLS on every connection (tls-creds), with credentials made here by psktool
and certtool (Debian's gnutls-bin; skipped without it).  Good credentials
migrate and verify; every refusal - a wrong key, an unknown identity, TLS on
one side only, a certificate from another CA or for another name, a missing
client certificate, a client not in tls-authz - fails the source within
seconds with a clear message and exit 1, while the destination logs the
refused peer and why, and waits on for the right source, which then migrates
to it.  Strangers during a TLS migration (plaintext, another session) do not
disturb it."""
import os
import shutil
import socket
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import lmtest as t  # noqa: E402

c = t.Checker("tls")
if not shutil.which("psktool") or not shutil.which("certtool"):
    print("skip: psktool and certtool (Debian package gnutls-bin) are not installed")
    sys.exit(77)
d = t.tmpdir()
MEM = "8M"


def mkdir(name):
    p = os.path.join(d, name)
    os.makedirs(p, exist_ok=True)
    return p


def psk_dir(name, *identities):
    """DIR/keys.psk with a fresh random key for each identity."""
    p = mkdir(name)
    for ident in identities:
        subprocess.run(["psktool", "-u", ident, "-p", os.path.join(p, "keys.psk")],
                       check=True, capture_output=True)
    return p


def certtool(*args):
    subprocess.run(["certtool"] + list(args), check=True, capture_output=True)


def signed(ca, out_dir, who, template):
    """out_dir/WHO-cert.pem and WHO-key.pem, signed by the CA in ca (None:
    self-signed, which makes ca-cert.pem and ca-key.pem)."""
    key = os.path.join(out_dir, who + "-key.pem")
    cert = os.path.join(out_dir, who + "-cert.pem")
    tmpl = os.path.join(out_dir, who + ".info")
    with open(tmpl, "w") as f:
        f.write(template + "expiration_days = 30\n")
    certtool("--generate-privkey", "--key-type=ecdsa", "--outfile", key)
    if ca is None:
        certtool("--generate-self-signed", "--load-privkey", key, "--template", tmpl,
                 "--outfile", cert)
    else:
        certtool("--generate-certificate", "--load-ca-certificate",
                 os.path.join(ca, "ca-cert.pem"), "--load-ca-privkey",
                 os.path.join(ca, "ca-key.pem"), "--load-privkey", key, "--template", tmpl,
                 "--outfile", cert)


SERVER = "tls_www_server\nsigning_key\nencryption_key\n"
CLIENT = "organization = livemig test\ntls_www_client\nsigning_key\nencryption_key\n"


def x509_dir(name, ca, ca_cert_from=None, server=None, client=None):
    """A QEMU x509 directory: ca-cert.pem (of ca_cert_from, default ca), a
    server certificate for the names in server, a client certificate with
    common name client."""
    p = mkdir(name)
    shutil.copy(os.path.join(ca_cert_from or ca, "ca-cert.pem"), p)
    if server:
        names = "".join("dns_name = %s\n" % n if not n[0].isdigit() else "ip_address = %s\n" % n
                        for n in server)
        signed(ca, p, "server", "cn = %s\n%s%s" % (server[0], names, SERVER))
    if client:
        signed(ca, p, "client", "cn = %s\n%s" % (client, CLIENT))
    return p


def creds(kind, path):
    return ["--set", "tls-creds=%s:%s" % (kind, path)]


def migrate(uri, dest, *args, name, dj=None, host_uri=None):
    """Runs the right source against a waiting destination: both exit 0,
    the digest matches.  Returns the source's JSON (or None)."""
    sj = os.path.join(d, "s.json")
    rc, out, err = t.run_source(host_uri or uri, "--mem", MEM, "--fill", "random",
                                "--json", sj, *args)
    drc, dout, derr = t.finish(dest)
    ok = (c.check(rc == 0 and drc == 0, "%s: exit %s/%s\n%s\n%s" % (name, rc, drc, err, derr))
          and c.check(t.load_json(sj)["verify"]["match"] is True, name + ": digest"))
    return (t.load_json(sj), derr) if ok else (None, derr)


def refused(name, dest_args, bad_args, source_says, dest_logs, good_args, bad_uri=None,
            good_uri=None):
    """A source with bad_args fails fast (exit 1, source_says in its
    error); the destination logs dest_logs, waits on, and a source with
    good_args then migrates to it."""
    port = t.free_port()
    uri = "tcp:127.0.0.1:%d" % port
    dj = os.path.join(d, "d.json")
    dest = t.start_dest(uri, *dest_args, json_path=dj)
    t0 = time.time()
    rc, out, err = t.run_source(bad_uri % port if bad_uri else uri, "--mem", MEM,
                                "--fill", "random", *bad_args, timeout=60)
    dt = time.time() - t0
    time.sleep(0.3)
    waiting = dest.poll() is None
    sj, derr = migrate(uri, dest, *good_args, name=name,
                       host_uri=good_uri % port if good_uri else None)
    lines = [x for x in err.splitlines() if "migration failed" in x]
    if (c.check(rc == 1 and dt < 5, "%s: the bad source: exit %s after %.1f s\n%s"
                % (name, rc, dt, err))
            and c.check(lines and source_says in lines[-1],
                        "%s: the bad source says %r, want %r" % (name, err, source_says))
            and c.check(waiting, name + ": the destination did not wait on")
            and c.check(sj is not None, name + ": the right source did not migrate")
            and c.check("refused a connection: " in derr and dest_logs in derr,
                        "%s: destination log %r, want %r" % (name, derr, dest_logs))
            and c.check(t.load_json(dj)["refused-connections"] >= 1,
                        name + ": refused connections not counted")):
        print("ok: %s: source exit 1 in %.1f s: %s" % (name, dt, lines[-1].split(": ", 1)[1]))
        print("    destination: %s" % [x for x in derr.splitlines() if "refused" in x][0])
    return derr


# ---- PSK ------------------------------------------------------------------------
psk = psk_dir("psk", "qemu")
other = psk_dir("psk-other", "qemu", "other")  # another key for qemu

# Matching keys: 2 channels of zstd, and the statistics say which TLS ran.
port = t.free_port()
uri = "tcp:127.0.0.1:%d" % port
dj = os.path.join(d, "d.json")
dest = t.start_dest(uri, *creds("psk", psk), json_path=dj)
s, derr = migrate(uri, dest, *creds("psk", psk), "--set", "multifd-compression=zstd",
                  name="psk")
if s and c.check(s["tls"] and s["tls"]["protocol"].startswith("TLS1.")
                 and "PSK" in s["tls"]["key-exchange"]
                 and s["tls"]["records"] in ("userspace", "kernel")
                 and t.load_json(dj)["tls"] == s["tls"], "psk: JSON tls %r" % s["tls"]):
    print("ok: psk: migrated and verified over %s" % s["tls"])

# A COMMIT lost on the main channel goes again on a resolving connection,
# which runs its own TLS handshake.
port = t.free_port()
uri = "tcp:127.0.0.1:%d" % port
nt = ["--set", "net-timeout=2"]
dest = t.start_dest(uri, *(creds("psk", psk) + nt))
s, derr = migrate(uri, dest, *(creds("psk", psk) + nt), "--set", "x-lose-commit=once",
                  name="psk: COMMIT resolved")
if s and c.check("answered that the image is taken over" in derr,
                  "COMMIT resolved over TLS: %r" % derr):
    print("ok: psk: a lost COMMIT resolved on a TLS connection")

# Over a unix socket too (no host name needed for PSK), with the summary line.
sock = os.path.join(d, "tls.sock")
dest = t.start_dest("unix:" + sock, *creds("psk", psk))
rc, out, err = t.run_source("unix:" + sock, "--mem", MEM, *creds("psk", psk))
drc, dout, derr = t.finish(dest)
if c.check(rc == 0 and drc == 0 and "  tls       TLS1." in out and "  tls       TLS1." in dout,
           "psk over unix: %s/%s\n%s%s\n%s" % (rc, drc, out, err, derr)):
    print("ok: psk over unix: " + [x for x in out.splitlines() if "tls" in x][0].strip())

refused("psk: wrong key", creds("psk", psk), creds("psk", other),
        "its keys.psk has another key for our tls-psk-identity",
        "the key of PSK identity 'qemu' differs from keys.psk's", creds("psk", psk))
refused("psk: unknown identity", creds("psk", psk),
        creds("psk", other) + ["--set", "tls-psk-identity=other"],
        "its keys.psk lacks our tls-psk-identity",
        "unknown PSK identity 'other' (not in keys.psk)", creds("psk", psk))
refused("TLS on the source only", [], creds("psk", psk),
        "the destination closed the connection in the TLS handshake",
        "a TLS handshake, and tls-creds is not set here", [])
derr = refused("TLS on the destination only", creds("psk", psk), [],
               "the destination uses TLS and this side does not",
               "the source does not use TLS", creds("psk", psk))
c.check(derr.count("the source does not use TLS") == 3,
        "TLS on the destination only: every connection of the plain source refused once")

# Bad credentials: a usage error before anything connects (exit 2).
for args, what in ((creds("psk", os.path.join(d, "nowhere")), "keys.psk"),
                   (creds("psk", psk) + ["--set", "tls-psk-identity=nobody"],
                    "no identity 'nobody'"),
                   (["--set", "tls-creds=pks:" + psk], "expected psk:DIR or x509:DIR")):
    rc, out, err = t.run_source("tcp:127.0.0.1:1", "--mem", MEM, *args)
    c.check(rc == 2 and what in err, "bad credentials %s: exit %s %r" % (args, rc, err))
rc, out, err = t.run_source("unix:" + sock, "--mem", MEM, *creds("x509", psk))
c.check(rc == 2 and "set tls-hostname" in err, "x509 over unix without a name: %s %r" % (rc, err))
# tcp::PORT (the loopback) names no host either.
rc, out, err = t.run_source("tcp::%d" % t.free_port(), "--mem", MEM, *creds("x509", psk))
c.check(rc == 2 and "set tls-hostname" in err, "x509 to tcp::PORT: %s %r" % (rc, err))
bad = psk_dir("psk-bad")
with open(os.path.join(bad, "keys.psk"), "w") as f:
    f.write("qemu:not-hex\n")
r = subprocess.run([t.LIVEMIG, "dest", "--listen", "tcp:127.0.0.1:%d" % t.free_port()]
                   + creds("psk", bad), capture_output=True, text=True, timeout=30)
c.check(r.returncode == 2 and "expected identity:hexkey" in r.stderr,
        "dest with a malformed keys.psk: %s %r" % (r.returncode, r.stderr))
# A tls-authz that would refuse every client is refused at the start.
nobody = os.path.join(d, "authz-nobody")
with open(nobody, "w") as f:
    f.write("# only a comment\n\n")
empty = os.path.join(d, "authz-empty")
open(empty, "w").close()
for path, what in ((d, "tls-authz %s: a directory" % d),
                   (empty, "tls-authz %s lists no identity: nobody could connect" % empty),
                   (nobody, "tls-authz %s lists no identity" % nobody)):
    r = subprocess.run([t.LIVEMIG, "dest", "--listen", "tcp:127.0.0.1:%d" % t.free_port(),
                        "--set", "tls-authz=" + path] + creds("psk", psk),
                       capture_output=True, text=True, timeout=30)
    c.check(r.returncode == 2 and what in r.stderr,
            "dest with tls-authz=%s: %s %r" % (path, r.returncode, r.stderr))

# ---- x509 -----------------------------------------------------------------------
ca = mkdir("ca")
signed(None, ca, "ca", "cn = livemig test CA\nca\ncert_signing_key\n")
ca2 = mkdir("ca2")
signed(None, ca2, "ca", "cn = another CA\nca\ncert_signing_key\n")
x_dst = x509_dir("x-dst", ca, server=["localhost", "127.0.0.1"])
x_dst_named = x509_dir("x-dst-named", ca, server=["migration.example"])
x_src = x509_dir("x-src", ca, client="livemig-source")
x_src_ca2 = x509_dir("x-src-ca2", ca, ca_cert_from=ca2, client="livemig-source")
x_src_nocert = x509_dir("x-src-nocert", ca)
x_intruder = x509_dir("x-intruder", ca, client="intruder")

# Good CA and host name (the URI's).
port = t.free_port()
uri = "tcp:127.0.0.1:%d" % port
dest = t.start_dest(uri, *creds("x509", x_dst))
s, derr = migrate(uri, dest, *creds("x509", x_src), name="x509",
                  host_uri="tcp:localhost:%d" % port)
if s and c.check(s["tls"]["protocol"].startswith("TLS1."), "x509: JSON tls %r" % s["tls"]):
    print("ok: x509: migrated and verified to tcp:localhost over %s" % s["tls"])

# An address in the URI: checked against the certificate's IP addresses
# (ip_address), never against its DNS names or common name (GnuTLS >= 3.6);
# "wrong host name" below is the same address against a certificate that
# only names migration.example.
port = t.free_port()
uri = "tcp:127.0.0.1:%d" % port
dest = t.start_dest(uri, *creds("x509", x_dst))
s, derr = migrate(uri, dest, *creds("x509", x_src), name="x509 to an address")
if s:
    print("ok: x509: migrated and verified to tcp:127.0.0.1 (the certificate's ip_address)")
x_dst_cn_ip = x509_dir("x-dst-cn-ip", ca)
signed(ca, x_dst_cn_ip, "server", "cn = 127.0.0.1\ndns_name = ip.example\n" + SERVER)
refused("x509: an address only in the common name", creds("x509", x_dst_cn_ip),
        creds("x509", x_src), "does not match", "the source refused us",
        creds("x509", x_src) + ["--set", "tls-hostname=ip.example"])

refused("x509: server certificate of another CA", creds("x509", x_dst),
        creds("x509", x_src_ca2), "the destination's certificate is refused",
        "the source refused us", creds("x509", x_src))
refused("x509: wrong host name", creds("x509", x_dst_named), creds("x509", x_src),
        "does not match", "the source refused us",
        creds("x509", x_src) + ["--set", "tls-hostname=migration.example"])
refused("x509: client certificate required and missing", creds("x509", x_dst),
        creds("x509", x_src_nocert), "the destination refused our credentials",
        "identity is refused", creds("x509", x_src))
# tls-authz: the distinguished names the destination admits.
authz = os.path.join(d, "authz")
with open(authz, "w") as f:
    f.write("# the source host\nCN=livemig-source,O=livemig test\n")
refused("x509: client not in tls-authz", creds("x509", x_dst) + ["--set", "tls-authz=" + authz],
        creds("x509", x_intruder), "the destination refused our credentials (alert: Access "
        "was denied)", "'CN=intruder,O=livemig test' is not in tls-authz", creds("x509", x_src))

# ---- strangers during a TLS migration ---------------------------------------------
# channel-recovery on, so that an acceptor takes connections during the
# passes: a plaintext hello, a livemig source of another session with the
# right key, and (as root, with ss -K) a reset of a multifd connection, which
# a new TLS connection replaces.
port = t.free_port()
uri = "tcp:127.0.0.1:%d" % port
sd, dd, sj, dj = (os.path.join(d, n) for n in ("src.bin", "dst.bin", "s.json", "d.json"))
dest = t.start_dest(uri, *creds("psk", psk), dump=dd, json_path=dj)
src = subprocess.Popen([t.LIVEMIG, "source", "--connect", uri, "--no-progress", "--mem", "32M",
                        "--fill", "random", "--set", "max-bandwidth=10M",
                        "--cap", "channel-recovery=on", "--dump", sd, "--json", sj]
                       + creds("psk", psk), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                       text=True)
time.sleep(1.0)
plain = socket.create_connection(("127.0.0.1", port))
plain.sendall(t.hello(1, 2, flags=1))
stranger = subprocess.run([t.LIVEMIG, "source", "--connect", uri, "--no-progress", "--mem", "4M",
                           "--set", "net-timeout=3"] + creds("psk", psk),
                          capture_output=True, text=True, timeout=60)
reset = os.geteuid() == 0 and not subprocess.run(["ss", "-K", "dport", "= :1"],
                                                  capture_output=True).returncode
if reset:
    out = subprocess.run(["ss", "-Htni", "state", "established", "( sport = :%d )" % port],
                         capture_output=True, text=True).stdout.splitlines()
    busiest = max(((int(a.split()[-1].rsplit(":", 1)[1]),
                    int(([w.split(":")[1] for w in i.split() if w.startswith("bytes_received:")]
                         or ["0"])[0])) for a, i in zip(out[0::2], out[1::2])),
                  key=lambda x: x[1])
    subprocess.run(["ss", "-K", "-tn", "state", "established",
                    "( sport = :%d and dport = :%d )" % (port, busiest[0])], capture_output=True)
else:
    print("note: no reset (needs root and ss -K)")
running = src.poll() is None
rc, out, err = t.finish(src, timeout=60)
drc, dout, derr = t.finish(dest, timeout=30)
plain.close()
name = "strangers during a TLS migration"
if (c.check(running, name + ": the migration ended before the strangers came")
        and c.check(rc == 0 and drc == 0, "%s: exit %s/%s\n%s\n%s" % (name, rc, drc, err, derr))
        and c.check(t.load_json(sj)["verify"]["match"] is True and t.same_files(sd, dd),
                    name + ": the image differs")
        and c.check(stranger.returncode == 1, "%s: the stranger source: %s %r"
                    % (name, stranger.returncode, stranger.stderr))
        and c.check(derr.count("a connection during the migration") >= 2
                    and "does not use TLS" in derr,
                    "%s: strangers not refused (or not logged)\n%s" % (name, derr))
        and c.check(t.load_json(dj)["refused-connections"] >= 2, name + ": not counted")
        and c.check(not reset or t.load_json(sj)["channel-recoveries"] >= 1,
                    "%s: no recovery after the reset\n%s\n%s" % (name, err, derr))):
    print("ok: %s: identical, %d refused, %d recoveries" % (
        name, t.load_json(dj)["refused-connections"], t.load_json(sj)["channel-recoveries"]))
c.done()
