#!/usr/bin/env bash
# A Blender with a window for ./scripts/test_gui.sh on a Debian 12 machine, whose own Blender
# (3.4) is older than the manifest allows: Debian 13's Blender 4.3 in a chroot. Needs root and
# Debian's package mirror. Prints the path of a `blender` wrapper that runs it with this
# repository and the .venv's Python visible at their own paths (the add-on starts its local
# backend with that interpreter). Debian packages numpy apart from Blender, so it comes too, and
# ImageMagick takes the screenshots.
# Usage: BLENDER=$(./scripts/gui_blender_chroot.sh) ./scripts/test_gui.sh
set -euo pipefail
cd "$(dirname "$0")/.."
root=${DIFFUSION3D_CHROOT:-/var/tmp/diffusion3d-blender}
if ! [ -x "$root/usr/bin/blender" ]; then
  command -v debootstrap >/dev/null || { apt-get update -qq && apt-get install -y -qq debootstrap >&2; }
  debootstrap --variant=minbase trixie "$root" http://deb.debian.org/debian >&2
  mountpoint -q "$root/proc" || mount --bind /proc "$root/proc"
  chroot "$root" bash -c 'DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
    blender python3-numpy libgl1-mesa-dri imagemagick' >&2
fi

# The paths the GUI session needs, at the same place inside: the repository and the interpreter
# behind .venv (a venv's python is a link to it).
base_python=$(.venv/bin/python -c 'import sys; print(sys.base_prefix)')
for path in /proc /dev /sys "$PWD" "$base_python"; do
  mkdir -p "$root$path"
  mountpoint -q "$root$path" || mount --bind "$path" "$root$path"
done
cp /etc/resolv.conf "$root/etc/resolv.conf" 2>/dev/null || true

wrapper="$root/blender-wrapper"
cat > "$wrapper" <<EOF
#!/usr/bin/env bash
# Runs the chroot's Blender in the caller's folder; the environment (DISPLAY included) passes through.
exec chroot "$root" bash -c 'cd "\$0" && exec blender "\$@"' "\$PWD" "\$@"
EOF
chmod +x "$wrapper"
echo "$wrapper"
