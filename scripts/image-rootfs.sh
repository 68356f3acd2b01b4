#!/usr/bin/env bash
# Assembles the runtime image's file system from a built `heartbeat` binary: the binary, the
# shared libraries it links (glibc and libgcc only: everything else is static), CA roots, and a
# non-root user. Used by the Dockerfile's build stage and by CI (which builds the binary on the
# machine because no registry is reachable there). Time-zone data is compiled into the binary.
#
#   scripts/image-rootfs.sh BINARY OUTDIR
#
# OUTDIR/fs holds the system files (owned by root); OUTDIR/owned holds /data, which the image
# copies with the runtime user as owner (COPY --chown changes what it copies, not an existing
# destination directory, so /data must not be in fs).
set -euo pipefail
bin=${1:?usage: image-rootfs.sh BINARY OUTDIR}
out=${2:?usage: image-rootfs.sh BINARY OUTDIR}
uid=10001

rm -rf "$out"
owned=$out/owned
out=$out/fs
mkdir -p "$out/usr/local/bin" "$out/etc/ssl/certs" "$out/tmp" "$owned/data"
install -m 0755 "$bin" "$out/usr/local/bin/heartbeat"

# The dynamic loader and every library ldd lists, at the same paths.
ldd "$bin" | awk '/=> \// { print $3 } /^\s*\/.*ld-linux/ { print $1 }' | sort -u | while read -r lib; do
    mkdir -p "$out$(dirname "$lib")"
    cp -L "$lib" "$out$lib"
done
# The loader is also looked up through /lib64 on x86_64.
if [ -e /lib64/ld-linux-x86-64.so.2 ] && [ ! -e "$out/lib64/ld-linux-x86-64.so.2" ]; then
    mkdir -p "$out/lib64"
    cp -L /lib64/ld-linux-x86-64.so.2 "$out/lib64/"
fi

if [ -f /etc/ssl/certs/ca-certificates.crt ]; then
    cp /etc/ssl/certs/ca-certificates.crt "$out/etc/ssl/certs/ca-certificates.crt"
else
    echo "image-rootfs: warning: no /etc/ssl/certs/ca-certificates.crt (install ca-certificates); https checks will fail" >&2
fi

printf 'root:x:0:0:root:/root:/sbin/nologin\nheartbeat:x:%s:%s:heartbeat:/data:/sbin/nologin\n' "$uid" "$uid" > "$out/etc/passwd"
printf 'root:x:0:\nheartbeat:x:%s:\n' "$uid" > "$out/etc/group"
printf 'hosts: files dns\n' > "$out/etc/nsswitch.conf"
chmod 1777 "$out/tmp"
chmod 0755 "$owned/data"
echo "image-rootfs: $(du -sh "$out" | cut -f1) in $out" >&2
