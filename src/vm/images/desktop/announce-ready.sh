#!/bin/sh
# Run as root by oriel-desktop-ready.service once the session created /run/oriel/desktop-ready: prints the ready
# marker on the first serial port (the host keeps it in serial.log), with the guest's uptime for boot measurements.
. /etc/oriel/desktop.conf
read -r up _ < /proc/uptime
printf '\r\n%s uptime=%ss\r\n' "$READY_MARKER" "$up" > /dev/ttyS0
