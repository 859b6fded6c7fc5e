#!/usr/bin/env bash
# Installs what Oriel needs from the system and from npm. Idempotent and quick when nothing changed:
# `npm start` and `npm test` run it first, so a fresh Debian machine with Node needs nothing else.
set -euo pipefail
cd "$(dirname "$0")/.."

# Debian packages: QEMU with SPICE built in, qemu-img, the tools the guest image builder uses, and Debian's
# Chromium for the browser tests (playwright-core drives it; no browser is ever downloaded), spice-client-gtk for
# spicy-screenshot, the reference client the SPICE tests compare with. xz-utils unpacks the
# guest kernel. (Guest kernels and busybox are not installed: the image builder downloads
# their .deb files into its cache.) openssl makes the self-signed TLS certificate of a server listening beyond
# loopback without one (and the test certificates). spice-html5 and websockify are the browser peer that
# bench/display-browser.ts measures the web console against. passt is the way out of networks created with --nat.
# ovmf is the UEFI firmware of `--firmware uefi` VMs; xorriso, isolinux, syslinux-common, grub-efi-amd64-bin (with
# grub-common's grub-mkstandalone) and mtools build the bootable test ISO (BIOS and UEFI) of the media tests
# (test/helpers/iso.ts). OpenCL remoting (src/remoting): PoCL is the host's CPU OpenCL device behind the ICD loader,
# clinfo shows it, and the headers let the image builder compile the guest ICD (src/remoting/guest); bubblewrap
# confines each VM's helper (src/remoting/sandbox.ts). The GStreamer plugins are spice-server's video stream encoders
# (it loads them at run time; without them it streams MJPEG only): videoconvert from -base, vp8enc/vp9enc from -good,
# x264enc from -ugly. gir1.2-spiceclientglib-2.0 and python3-gi run spice-gtk's own agent file copy in
# bench/file-drop.ts (bench/spice-gtk-copy.py). xvfb, xauth and virt-viewer run spicy and remote-viewer on a
# virtual X screen for bench/display-fps.ts. gcc and libc6-dev compile the desktop image's WebDAV daemon
# (src/vm/images/webdavd, statically linked).
need_pkgs=(qemu-system-x86 qemu-utils xz-utils chromium spice-client-gtk spice-html5 websockify debootstrap e2fsprogs openssl
  passt ovmf xorriso isolinux syslinux-common grub-efi-amd64-bin grub-common mtools
  gstreamer1.0-plugins-base gstreamer1.0-plugins-good gstreamer1.0-plugins-ugly
  pocl-opencl-icd clinfo ocl-icd-libopencl1 ocl-icd-opencl-dev opencl-c-headers bubblewrap
  gir1.2-spiceclientglib-2.0 python3-gi xvfb xauth virt-viewer gcc libc6-dev ${ORIEL_EXTRA_PKGS:-})
missing=()
for p in "${need_pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "bootstrap: installing Debian packages: ${missing[*]}" >&2
  SUDO=""
  if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
  export DEBIAN_FRONTEND=noninteractive
  $SUDO apt-get update -qq
  $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# npm dependencies, reinstalled only when package-lock.json changed since the last install.
stamp=node_modules/.oriel-lock-stamp
want=$(sha256sum package-lock.json 2>/dev/null | cut -d' ' -f1 || echo none)
if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ]; then
  echo "bootstrap: installing npm dependencies" >&2
  if [ -f package-lock.json ]; then npm ci --no-audit --no-fund --loglevel=error; else npm install --no-audit --no-fund --loglevel=error; fi
  sha256sum package-lock.json | cut -d' ' -f1 > "$stamp"
fi

# The web UI (src/web, built by Vite into dist/web), rebuilt only when its sources or the dependencies changed.
if [ -f src/web/index.html ]; then
  web_hash=$( (find src/web src/spice src/spice-web src/api vite.config.ts -type f -print0 | sort -z | xargs -0 sha256sum; sha256sum package-lock.json) | sha256sum | cut -d' ' -f1)
  if [ ! -f dist/web/.oriel-build-stamp ] || [ "$(cat dist/web/.oriel-build-stamp)" != "$web_hash" ]; then
    echo "bootstrap: building the web UI" >&2
    npx vite build --logLevel warn
    echo "$web_hash" > dist/web/.oriel-build-stamp
  fi
fi

# The compiled `oriel` command (dist/node, run by bin/oriel.js when current), rebuilt only when its sources changed
# (scripts/build-node.js compares its own stamp; a failed build leaves bin/oriel.js on the sources through tsx).
node scripts/build-node.js || echo "bootstrap: the compiled oriel command was not built; it runs from the sources" >&2
