#!/usr/bin/env bash
# Stages the image's root filesystem from this machine (make image; no base image download):
# the Bun executable and the native forwarder side by side (the agent installs the forwarder
# as the plugin when it finds it beside itself), nft, and the shared libraries both link, at
# the paths the dynamic loader resolves them to.
set -euo pipefail
out=${1:?usage: stage-rootfs.sh OUTDIR}
cd "$(dirname "$0")/../.."
bins=(dist/mncni dist/mncni-forward)
for f in "${bins[@]}" /usr/sbin/nft; do [ -x "$f" ] || { echo "stage-rootfs: cannot stage \"$f\": missing (make build; apt-get install nftables)" >&2; exit 1; }; done
if ldd dist/mncni-forward >/dev/null 2>&1; then echo "stage-rootfs: cannot stage \"dist/mncni-forward\": not static" >&2; exit 1; fi

rm -rf "$out"
mkdir -p "$out/usr/local/bin" "$out/usr/sbin" "$out/tmp" "$out/run" "$out/var" "$out/etc"
install -m 0755 dist/mncni dist/mncni-forward "$out/usr/local/bin/"
install -m 0755 /usr/sbin/nft "$out/usr/sbin/"

# "libc.so.6 => /lib/x86_64-linux-gnu/libc.so.6 (0x...)" and "/lib64/ld-linux-x86-64.so.2 (0x...)"
libs=$( { ldd dist/mncni; ldd /usr/sbin/nft; } | awk '$2 == "=>" && $3 ~ /^\// { print $3 } $1 ~ /^\// { print $1 }' | sort -u)
for lib in $libs; do
  mkdir -p "$out$(dirname "$lib")"
  cp -L "$lib" "$out$lib"
done

chmod 1777 "$out/tmp"
# Runtimes name pod namespaces /var/run/netns/...; the DaemonSet mounts the host's /run/netns.
ln -s ../run "$out/var/run"
# glibc (2.34+) has files and dns lookups built in; this only makes the order explicit.
printf 'hosts: files dns\n' > "$out/etc/nsswitch.conf"
echo "$libs" | sed 's/^/  /' > "$out/../libraries.txt"
