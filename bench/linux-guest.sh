#!/bin/sh
# SPDX-License-Identifier: MIT
# bench/linux-guest.sh OUTDIR [LIB_MB]
#
# A real Linux guest for bench/qemu-vm.py --guest linux, made from Debian
# packages only (installed when missing: linux-image-amd64, busybox-static,
# cpio): Debian's own kernel (/boot/vmlinuz-*, the newest) and an
# initramfs holding busybox, a small /init, the workload
# (bench/linux-guest-load.c, built here with gcc -static) and real files of
# this host: all of /usr/share/doc and the first LIB_MB MiB (default 160)
# of /usr/lib/x86_64-linux-gnu, with their directories.
#
# The guest (1 GiB): the kernel unpacks the files into its rootfs (page
# cache), /init copies /usr/share/doc into a tmpfs (more page cache), then
# starts the workload: a heap of lmheap MiB filled from the libraries, whose
# first lmhot MiB it rewrites at lmrate MiB/s, printing a line a second on
# the serial console (ttyS0).  lmheap, lmhot and lmrate come from the
# kernel command line (the kernel hands unknown NAME=VALUE words to /init as
# environment variables); OUTDIR/cmdline holds the default one.
#
# Writes OUTDIR/vmlinuz, OUTDIR/initrd.cpio (not compressed: the kernel
# under TCG would take longer to gunzip it than QEMU takes to load it) and
# OUTDIR/cmdline.
set -eu

[ $# -ge 1 ] || { echo "usage: $0 OUTDIR [LIB_MB]" >&2; exit 2; }
out=$(mkdir -p "$1" && cd "$1" && pwd)
lib_mb=${2:-160}
here=$(cd "$(dirname "$0")" && pwd)

missing=
for p in linux-image-amd64 busybox-static cpio; do
	dpkg -s $p >/dev/null 2>&1 || missing="$missing $p"
done
if [ -n "$missing" ]; then
	echo "linux-guest.sh: installing Debian packages:$missing" >&2
	DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $missing >&2
fi

kernel=$(ls /boot/vmlinuz-* | sort -V | tail -n 1)
stage=$(mktemp -d)
trap 'rm -rf "$stage"' EXIT

# The small part: busybox, /init, the workload.
mkdir -p "$stage/bin" "$stage/proc" "$stage/sys" "$stage/dev" "$stage/mnt/t" "$stage/tmp"
cp /bin/busybox "$stage/bin/busybox"
gcc -static -O2 -Wall -Wextra -o "$stage/bin/lmguest-load" "$here/linux-guest-load.c"
cat >"$stage/init" <<'EOF'
#!/bin/busybox sh
/bin/busybox --install -s /bin
mount -t proc proc /proc
mount -t sysfs sys /sys
mount -t devtmpfs dev /dev
mount -t tmpfs -o size=512m tmpfs /mnt/t
echo "lmguest copying /usr/share/doc to a tmpfs"
cp -a /usr/share/doc /mnt/t/
echo "lmguest $(du -sm /mnt/t | cut -f1) MiB in the tmpfs"
lmguest-load "${lmheap:-256}" "${lmhot:-64}" "${lmrate:-32}" /usr/lib/x86_64-linux-gnu &
# What the guest's memory holds once the heap is full.
sleep 20
grep -E '^(MemTotal|MemFree|Cached|Shmem|AnonPages):' /proc/meminfo | tr -s ' ' | sed 's/^/lmguest /'
# PID 1 must never exit.
while :; do sleep 3600; done
EOF
chmod +x "$stage/init"
(cd "$stage" && find . | cpio -o -H newc --quiet) >"$out/initrd.cpio.tmp"

# The real files, each with its directories (the kernel's unpacker does
# not create a missing parent), appended as a second archive.
cd /
find usr/share/doc usr/lib/x86_64-linux-gnu -type f -printf '%s %p\n' | sort -k2 |
	awk -v lib=$((lib_mb << 20)) '
	{
		size = $1; path = substr($0, length($1) + 2)
		if (path ~ /^usr\/lib\//) { if (libs + size > lib) next; libs += size }
		n = split(path, part, "/"); dir = ""
		for (i = 1; i < n; i++) {
			dir = dir (i > 1 ? "/" : "") part[i]
			if (!(dir in seen)) { seen[dir] = 1; print dir }
		}
		print path
	}' | cpio -o -H newc --quiet >>"$out/initrd.cpio.tmp"
mv "$out/initrd.cpio.tmp" "$out/initrd.cpio"
cp "$kernel" "$out/vmlinuz"
echo "console=ttyS0 quiet panic=-1 lmheap=256 lmhot=64 lmrate=32" >"$out/cmdline"
echo "linux-guest.sh: $out: $(basename "$kernel"), initrd $(($(stat -c %s "$out/initrd.cpio") >> 20)) MiB" >&2
