#!/bin/sh
# Runs chrooted in the Debian tree once the desktop's packages are installed: the desktop user and session, the
# readiness signal, the units masked for a quicker boot, and cleanup. Environment: READY_MARKER.
set -eu
lib=/usr/local/lib/oriel
home=/home/user

# The desktop user. No password: the session starts by automatic login on tty1, and nothing else logs in as them.
useradd --create-home --shell /bin/bash --uid 1000 --user-group user
# The sound card's devices (logind's seat ACLs cover the session, the group also commands run outside it).
usermod -aG audio user

mkdir -p /etc/systemd/system/getty@tty1.service.d
cat > /etc/systemd/system/getty@tty1.service.d/autologin.conf <<'CONF'
[Service]
ExecStart=
ExecStart=-/sbin/agetty --autologin user --noclear %I $TERM
CONF

# The login shell on tty1 starts X (rootless: logind hands it the devices of the seat); leaving the session returns
# to that shell rather than starting X again in a loop.
cat >> "$home/.profile" <<'CONF'

# Oriel: the automatic login on tty1 starts the desktop session (X and openbox).
if [ -z "${DISPLAY:-}" ] && [ "$(tty)" = /dev/tty1 ]; then
  startx -- -keeptty > "$HOME/.xsession-errors" 2>&1
fi
CONF
cat > "$home/.xinitrc" <<'CONF'
#!/bin/sh
exec openbox --startup /usr/local/lib/oriel/session-startup
CONF
# spice-vdagent refuses every file transfer when the user has no download folder.
mkdir -p "$home/.config" "$home/Downloads"
echo 'XDG_DOWNLOAD_DIR="$HOME/Downloads"' > "$home/.config/user-dirs.dirs"
chown -R user:user "$home"

# Xorg would pick the generic modesetting driver; the qxl driver is the one that speaks QXL's 2D commands to
# spice-server (draw operations rather than dirty bitmaps).
mkdir -p /etc/X11/xorg.conf.d
cat > /etc/X11/xorg.conf.d/10-oriel-qxl.conf <<'CONF'
Section "Device"
    Identifier "qxl"
    Driver "qxl"
EndSection
CONF

# Readiness: the session (desktop-ready, as the user) creates /run/oriel/desktop-ready once its terminal window is
# viewable; this path unit then runs announce-ready as root, which prints the marker on ttyS0 for the host.
mkdir -p /etc/oriel
printf 'READY_MARKER=%s\n' "$READY_MARKER" > /etc/oriel/desktop.conf
echo 'd /run/oriel 0755 user user -' > /etc/tmpfiles.d/oriel.conf
cat > /etc/systemd/system/oriel-desktop-ready.path <<'CONF'
[Unit]
Description=Oriel: wait for the desktop session to be usable

[Path]
PathExists=/run/oriel/desktop-ready

[Install]
WantedBy=multi-user.target
CONF
cat > /etc/systemd/system/oriel-desktop-ready.service <<'CONF'
[Unit]
Description=Oriel: tell the host that the desktop is usable

[Service]
Type=oneshot
# Stays active: the path unit would otherwise start it again and again while the file exists.
RemainAfterExit=yes
ExecStart=/usr/local/lib/oriel/announce-ready
CONF
systemctl enable oriel-desktop-ready.path

# The SPICE agent daemon and Oriel's WebDAV daemon serve virtio-serial ports. Debian starts spice-vdagentd from a
# udev rule that matches only "add" events with the port's /dev/virtio-ports/ link already known; but a port's name
# may reach the guest after the port itself (the link then comes with a later "change" event), and the daemon did not
# start on such a boot. Path units wait for the links themselves, whatever the order of udev events. spice-vdagentd
# is socket-activated: its socket starts once the port is there, the daemon when the session's spice-vdagent
# connects to it.
cat > /etc/systemd/system/oriel-spice-vdagentd.path <<'CONF'
[Unit]
Description=Oriel: start the SPICE agent's socket once its virtio-serial port is there

[Path]
PathExists=/dev/virtio-ports/com.redhat.spice.0
Unit=spice-vdagentd.socket

[Install]
WantedBy=paths.target
CONF
# oriel-webdavd (in place of Debian's spice-webdavd, not installed): relays TCP connections to 127.0.0.1:9843 to the
# SPICE client's WebDAV server over the port (the same mux as spice-webdavd's), and fetches the files the client
# drops into ~/Downloads itself, as the desktop user (uid 1000). It waits for a SPICE client and outlives one.
cat > /etc/systemd/system/oriel-webdavd.service <<'CONF'
[Unit]
Description=Oriel: the SPICE WebDAV port (shared folders, file drops into ~/Downloads)

[Service]
ExecStart=/usr/local/sbin/oriel-webdavd -u 1000:1000
Restart=always
RestartSec=1
CONF
cat > /etc/systemd/system/oriel-webdavd.path <<'CONF'
[Unit]
Description=Oriel: start oriel-webdavd once the WebDAV virtio-serial port is there

[Path]
PathExists=/dev/virtio-ports/org.spice-space.webdav.0
Unit=oriel-webdavd.service

[Install]
WantedBy=paths.target
CONF
systemctl enable oriel-spice-vdagentd.path oriel-webdavd.path

# Shared folders (shared-folder): a loop beside oriel-webdavd that mounts the folder a SPICE client shares at
# ~/Shared (davfs2, through 127.0.0.1:9843). davfs2 asks for no credentials (the client has none) and uploads a
# written file when it is closed, not 10 s later.
cat > /etc/systemd/system/oriel-shared-folder.service <<'CONF'
[Unit]
Description=Oriel: mount the SPICE client's shared folder at ~/Shared

[Service]
ExecStart=/usr/local/lib/oriel/shared-folder
Restart=always
RestartSec=2
CONF
cat > /etc/systemd/system/oriel-shared-folder.path <<'CONF'
[Unit]
Description=Oriel: start the shared-folder loop once the WebDAV virtio-serial port is there

[Path]
PathExists=/dev/virtio-ports/org.spice-space.webdav.0
Unit=oriel-shared-folder.service

[Install]
WantedBy=paths.target
CONF
systemctl enable oriel-shared-folder.path
printf '\n# Oriel: the SPICE client asks for no credentials; upload on close.\nask_auth 0\ndelay_upload 0\n' \
  >> /etc/davfs2/davfs2.conf

# The network: a VM on an Oriel network has a virtio-net card per network. ifupdown brings each one up by DHCP when
# udev sees it (allow-hotplug, as the Debian installer configures a wired card), whatever its name: the mapping sends
# every en* card to one stanza. A VM with no card boots as before (nothing waits for a network).
mkdir -p /etc/network/interfaces.d
cat > /etc/network/interfaces.d/oriel-wired <<'CONF'
# Oriel: every wired card takes its address by DHCP when it appears.
allow-hotplug /en*=wired
mapping en*
    script /usr/local/lib/oriel/network-map
iface wired inet dhcp
CONF
grep -qs '^source /etc/network/interfaces.d/' /etc/network/interfaces ||
  printf 'source /etc/network/interfaces.d/*\n' >> /etc/network/interfaces

# Periodic jobs and waits that only slow a short-lived guest down.
systemctl mask apt-daily.timer apt-daily-upgrade.timer fstrim.timer e2scrub_all.timer e2scrub_reap.service \
  man-db.timer systemd-networkd-wait-online.service

chmod 755 "$lib"/*

echo 'LANG=C.UTF-8' > /etc/default/locale

# Font caches that stay valid in the guest. fontconfig takes its cache of a font folder as valid only if the folder's
# time matches to the nanosecond, and mkfs.ext4 -d keeps whole seconds only: so round the folders' times first, then
# cache. A stale cache made every session rescan the fonts (openbox then spent ~30-60 s of CPU starting under TCG).
find -L /usr/share/fonts /usr/local/share/fonts -type d 2>/dev/null | while IFS= read -r d; do
  touch -c -m -d "@$(stat -c %Y "$d")" "$d"
done
fc-cache --system-only --force

# Every VM made from this image gets its own machine id at first boot.
: > /etc/machine-id
rm -f /var/lib/dbus/machine-id
rm -f /usr/sbin/policy-rc.d
rm -rf /var/lib/apt/lists/* /var/cache/apt/*.bin /tmp/* /var/tmp/*
