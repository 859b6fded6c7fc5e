#!/bin/sh
# Runs chrooted in the new Debian tree after debootstrap, before the desktop's packages are installed: the settings
# that must be in place when those packages install. Arguments: the kernel modules the initramfs must hold.
set -eu

# No daemon may start inside the chroot (invoke-rc.d asks this script; 101 = action forbidden). configure.sh removes it.
printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d
chmod 755 /usr/sbin/policy-rc.d

# Documentation, manuals and translations are of no use in this guest; leaving them out makes it smaller and
# quicker to unpack. Copyright files stay.
cat > /etc/dpkg/dpkg.cfg.d/oriel-nodoc <<'CONF'
path-exclude=/usr/share/doc/*
path-include=/usr/share/doc/*/copyright
path-exclude=/usr/share/man/*
path-exclude=/usr/share/info/*
path-exclude=/usr/share/locale/*
path-include=/usr/share/locale/locale.alias
path-exclude=/usr/share/lintian/*
CONF

cat > /etc/apt/apt.conf.d/90oriel <<'CONF'
APT::Install-Recommends "false";
APT::Install-Suggests "false";
Acquire::Languages "none";
Dpkg::Use-Pty "false";
CONF

# The kernel is booted directly (-kernel/-initrd); its initramfs only has to find an ext4 root on virtio-blk.
# MODULES=list takes the listed modules (and what they need) instead of most of the kernel's drivers: a smaller
# initramfs, made in seconds. modules.d is read by mkinitramfs and is not a conffile of initramfs-tools.
mkdir -p /etc/initramfs-tools/conf.d /usr/share/initramfs-tools/modules.d
echo 'MODULES=list' > /etc/initramfs-tools/conf.d/oriel
printf '%s\n' "$@" > /usr/share/initramfs-tools/modules.d/oriel

echo oriel-desktop > /etc/hostname
printf '127.0.0.1\tlocalhost\n127.0.1.1\toriel-desktop\n::1\tlocalhost ip6-localhost ip6-loopback\n' > /etc/hosts
# The root file system is the whole disk (no partition table): /dev/vda, mounted read-write by the kernel.
printf '/dev/vda\t/\text4\tdefaults,noatime\t0\t1\n' > /etc/fstab
