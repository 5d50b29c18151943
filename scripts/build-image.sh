#!/usr/bin/env bash
# Builds the afsteer OCI image offline with Debian's buildah, FROM scratch, into
# build/afsteer-image.oci.tar (tag localhost/afsteer:<package.json version>; the name is
# package.json's "afsteer.image"): the single executable (/usr/local/bin/afsteer, afsteerd a link
# to it), the shared libraries it, its two native addons (extracted at run time to
# /var/lib/afsteer/native) and libbpf.so.1 (dlopen'ed) load — found with ldd, with the dynamic
# loader — and /usr/bin/ip, which afsteerd runs to find the node's default-route addresses. The
# installer is a subcommand of the executable (`afsteer install`): nothing else is needed.
# buildah uses its own storage under build/buildah (vfs driver), never the machine's.
# Usage (root): bash scripts/build-image.sh   (npm run image); prints the image size.
set -euo pipefail
cd "$(dirname "$0")/.."
say() { printf 'image: %s\n' "$*" >&2; }
die() { printf 'image: %s\n' "$*" >&2; exit 1; }
# A command that fails under set -e says which one it was (a silent exit told CI nothing).
trap 'rc=$?; printf "image: failed (exit %s) at line %s: %s\n" "$rc" "$LINENO" "$BASH_COMMAND" >&2' ERR
command -v buildah >/dev/null || die "no buildah: apt-get install buildah (bash scripts/setup.sh installs it)"
[ "$(id -u)" = 0 ] || die "run as root (buildah with its own vfs storage under build/buildah)"
[ -x dist/afsteer ] || die "no dist/afsteer: npm run build first"
VERSION=$(jq -r .version package.json)
IMAGE="$(jq -r .afsteer.image package.json):$VERSION"
OUT=${AFSTEER_IMAGE_OUT:-$PWD/build/afsteer-image.oci.tar}
STAGE=$PWD/build/image-root
BUILDAH=(buildah --root "$PWD/build/buildah/root" --runroot "$PWD/build/buildah/run" --storage-driver vfs)

# awk reads to the end: an early exit would SIGPIPE ldconfig and, under pipefail, end the script.
libbpf=$(ldconfig -p | awk '$1 == "libbpf.so.1" && /x86-64/ && !found { print $NF; found = 1 }')
[ -n "$libbpf" ] || die "no libbpf.so.1 on this machine: apt-get install libbpf1"
ip_bin=$(command -v ip) || die "no ip (iproute2)"
addons=(node_modules/@koromix/koffi-linux-x64/linux_x64/koffi.node node_modules/netlink/prebuilds/linux-x64/node.napi.node)
for a in "${addons[@]}"; do [ -f "$a" ] || die "native addon $a missing (npm ci)"; done

# The libraries: everything ldd names for each binary that runs or is loaded in the image.
rm -rf "$STAGE"
mkdir -p "$STAGE"/{usr/local/bin,usr/bin,usr/lib/x86_64-linux-gnu,usr/lib64,etc,tmp,var/lib/afsteer,run/afsteer,etc/afsteer,etc/cni/net.d,opt/cni/bin,sys/fs/bpf}
chmod 1777 "$STAGE/tmp"
chmod 700 "$STAGE/var/lib/afsteer"
ln -s usr/lib "$STAGE/lib"
ln -s usr/lib64 "$STAGE/lib64"
ln -s usr/bin "$STAGE/bin"
libs=$(for f in dist/afsteer "$libbpf" "$ip_bin" "${addons[@]}"; do
  ldd "$f" | awk '/=>/ { print $3 } /^[ \t]*\/.*ld-linux/ { print $1 }'   # (mawk: no \s)
done | grep '^/' | sort -u)
[ -n "$libs" ] || die "ldd found no libraries"
for l in $libs $libbpf; do
  real=$(readlink -f "$l")
  case "$l" in /lib/*|/lib64/*) dest=/usr$l ;; *) dest=$l ;; esac
  mkdir -p "$STAGE$(dirname "$dest")"
  cp -L "$real" "$STAGE$dest"
done
[ -e "$STAGE/usr/lib64/ld-linux-x86-64.so.2" ] || die "the dynamic loader was not among ldd's libraries"
printf '/usr/lib/x86_64-linux-gnu\n' >"$STAGE/etc/ld.so.conf"
ldconfig -r "$STAGE"
install -m 755 dist/afsteer "$STAGE/usr/local/bin/afsteer"
ln -s afsteer "$STAGE/usr/local/bin/afsteerd"
install -m 755 "$(readlink -f "$ip_bin")" "$STAGE/usr/bin/ip"
say "staged $(echo "$libs" | wc -w) libraries (ldd of dist/afsteer, $libbpf, $ip_bin, the two addons) + the executable + ip"

ctr=$("${BUILDAH[@]}" from --pull=never scratch)
cleanup() { "${BUILDAH[@]}" rm "$ctr" >/dev/null 2>&1 || true; }
trap cleanup EXIT
"${BUILDAH[@]}" copy "$ctr" "$STAGE" / >/dev/null
"${BUILDAH[@]}" config \
  --env PATH=/usr/local/bin:/usr/bin \
  --cmd '["/usr/local/bin/afsteerd","run","--config","/etc/afsteer/afsteerd.json"]' \
  --label org.opencontainers.image.title=afsteer \
  --label org.opencontainers.image.version="$VERSION" \
  --label org.opencontainers.image.description="afsteer CNI plugin, installer (afsteer install) and afsteerd" \
  --os linux --arch amd64 "$ctr"
"${BUILDAH[@]}" commit --quiet --timestamp 0 --rm "$ctr" "$IMAGE" >/dev/null
trap - EXIT
rm -f "$OUT"
"${BUILDAH[@]}" push --quiet "$IMAGE" "oci-archive:$OUT:$IMAGE"
size=$("${BUILDAH[@]}" images --format '{{.Size}}' "$IMAGE" | awk 'NR == 1')
say "$IMAGE -> $OUT ($(du -m "$OUT" | cut -f1) MiB archive; image $size uncompressed)"
