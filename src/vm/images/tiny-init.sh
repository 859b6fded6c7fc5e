#!/bin/sh
# /init of Oriel's tiny guest: the kernel runs it as PID 1 from the initramfs. It sets the machine up, starts the
# command server on the second serial port, prints the ready marker on the first, then hands PID 1 to busybox
# init (which reaps orphans and respawns the interactive shells).
# /etc/oriel-tiny.conf (written by the image builder) sets MODULES and READY_MARKER.
export PATH=/sbin:/bin:/usr/sbin:/usr/bin HOME=/root
# The image holds /bin/busybox and /bin/sh only: make every other applet name a link to it.
/bin/busybox --install -s
. /etc/oriel-tiny.conf

mkdir -p /proc /sys /dev /tmp /run /root /var/log /etc/acpi/PWRF
mount -t proc proc /proc
mount -t sysfs sysfs /sys
# devtmpfs gives every device node the kernel knows (vda, fb0, ttyS1, input/event*): no mdev, no mknod.
mount -t devtmpfs devtmpfs /dev
hostname oriel-tiny

# virtio (disk, agent port), DRM for the display (bochs: -vga std; qxl: -vga qxl; each binds only its own PCI
# device), the ACPI power button and evdev for acpid, the PS/2 mouse and a USB tablet (when the VM has them). PCI probing happens inside modprobe, so /dev/vda and
# /dev/fb0 exist when it returns.
modprobe -a $MODULES || echo "oriel-tiny: some modules failed to load" >/dev/ttyS0

# Network cards (a VM on an Oriel network): each comes up with DHCP, the address printed on both consoles. udhcpc
# tries for ~4 s, then goes on trying in the background (-b) and renews the lease as a daemon.
cat >/etc/udhcpc.script <<'SCRIPT'
#!/bin/sh
case "$1" in
  deconfig) ip addr flush dev "$interface"; ip link set "$interface" up ;;
  bound|renew)
    ip addr flush dev "$interface"
    ip addr add "$ip/$mask" dev "$interface"
    [ -n "$router" ] && ip route replace default via "${router%% *}" dev "$interface"
    { [ -n "$domain" ] && echo "search $domain"; for d in $dns; do echo "nameserver $d"; done; } >/etc/resolv.conf
    [ -n "$hostname" ] && hostname "$hostname"
    echo "oriel-tiny: $interface $ip/$mask" | tee /dev/tty0 >/dev/ttyS0 ;;
esac
exit 0
SCRIPT
chmod 755 /etc/udhcpc.script
ip link set lo up
for n in /sys/class/net/eth*; do
  [ -e "$n" ] || continue
  udhcpc -i "${n##*/}" -s /etc/udhcpc.script -t 4 -T 1 -A 2 -b -S >/dev/null 2>&1
done

# A steady text cursor: a blinking one changes the display twice a second, which makes two pictures taken moments
# apart (a SPICE screenshot, a QMP screendump) differ by the cursor's pixels.
echo 0 >/sys/class/graphics/fbcon/cursor_blink 2>/dev/null

# The kernel's framebuffer console shows this on the display (tty0 is the visible virtual terminal).
printf '\033[2J\033[H\n  Oriel tiny guest\n  kernel %s\n  %s\n\n' "$(uname -r)" "$(cat /sys/class/graphics/fb0/name 2>/dev/null || echo 'no framebuffer')" >/dev/tty0

# QMP system_powerdown presses the ACPI power button; the button driver reports it as KEY_POWER on an evdev
# node, and busybox acpid runs /etc/acpi/PWRF/00000080 for it. acpid opens the event nodes present when it
# starts, so it starts after modprobe. The handler powers off at once: busybox init's orderly poweroff spends 2 s
# in sleeps between SIGTERM and SIGKILL for services this guest does not have; no filesystem is mounted from the
# disk, and sync writes out what was written to /dev/vda.
printf '#!/bin/sh\nsync\nexec poweroff -f\n' >/etc/acpi/PWRF/00000080
chmod 755 /etc/acpi/PWRF/00000080
acpid -l /var/log/acpid.log

# The command server (the host side, with the whole protocol, is src/vm/guest-shell.ts):
#   P <id>                                                  ->  O <id>
#   X <id> <timeout s> <script length> <stdin length>, then the script and stdin, gzip then base64, that many
#   bytes each (stdin length 0: /dev/null)
#       ->  B <id> / stdout (gzip, base64 lines) / S <id> / stderr (same) / E <id> <exit status>
# Base64 lines never contain a space, so no output can be taken for a marker. gzip because the line is slow
# (~130 KB/s: every 16 bytes cost the emulated UART an interrupt) and command output is mostly text.

# Exactly N bytes of the request: dd asks read() for no more than what is missing, so nothing of a next request
# is consumed (ash's read builtin would be as exact, but reads one byte per system call: ~30 KB/s under TCG).
# A request cut short (its host went away) is given up after 60 s, not waited for
# forever with every later request taken for its missing bytes.
take() {
  timeout -s KILL 60 dd bs="$1" count=1 iflag=fullblock 2>/dev/null
}

run_request() {
  d=/tmp/oriel-exec
  rm -rf $d && mkdir -p $d
  take "$3" | base64 -d | gunzip >$d/script
  stdin=/dev/null
  if [ "$4" -gt 0 ]; then
    take "$4" | base64 -d | gunzip >$d/stdin
    stdin=$d/stdin
  fi
  # busybox timeout kills only the command's own process; its leftovers are reparented to init.
  (cd / && exec timeout -s KILL "$2" sh $d/script) <$stdin >$d/out 2>$d/err
  status=$?
  printf 'B %s\n' "$1"
  gzip -c $d/out | base64
  printf 'S %s\n' "$1"
  gzip -c $d/err | base64
  printf 'E %s %s\n' "$1" "$status"
}

number() {
  case "$1" in '' | *[!0-9]*) return 1 ;; esac
}

serve_commands() {
  while :; do
    while read -r op id a b c; do
      case "$op" in
        P) printf 'O %s\n' "$id" ;;
        # A malformed header has no lengths to trust: skip the line.
        X) number "$a" && number "$b" && number "$c" && run_request "$id" "$a" "$b" "$c" ;;
      esac
    done
    sleep 1
  done
}

# Raw mode before anything is read: no echo (the host would read its own requests back), no CR/LF
# translation, no XON/XOFF, no signal characters. The port stays open from here on (the server holds it), so
# bytes the host sends from now on wait in the tty buffer until the server reads them.
exec 3<>/dev/ttyS1
stty raw -echo <&3
serve_commands <&3 >&3 2>/dev/null &
exec 3>&-

echo "$READY_MARKER" >/dev/ttyS0

# busybox init takes over PID 1: interactive shells on the serial console and on the display's first
# virtual terminal (keyboard input through SPICE), respawned when they exit. Ctrl+Alt+Del on the keyboard
# (busybox init disables the kernel's immediate reboot, so it gets SIGINT) leaves a trace instead of a reboot.
cat >/etc/inittab <<'EOF'
ttyS0::respawn:/bin/sh
tty1::respawn:/bin/sh
::ctrlaltdel:/bin/touch /tmp/ctrl-alt-del
::shutdown:/bin/sync
EOF
exec /sbin/init
