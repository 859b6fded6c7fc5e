#!/bin/bash
# Applies the monitors the SPICE client asks for. With qxl (revision 4, QEMU's default) spice-server hands the
# client's monitor configuration to the guest's qxl kernel driver, which connects an output per monitor (the VM's
# qxl-vga has two), makes the asked size its preferred mode, its place the "suggested X/Y" properties, and signals a
# hotplug; a full desktop environment would then switch to them, openbox does not. So: after each burst of RandR
# events on the root window, put every connected output at its preferred mode and suggested place, and turn off the
# disconnected ones still showing (a no-op, and no new event, when all already are).
layout() {
  xrandr --prop | awk '
    /^[^ \t]/ {
      out = ""
      if ($2 == "connected") { out = $1; outs[n++] = $1; x[$1] = 0; y[$1] = 0 }
      else if ($2 == "disconnected" && $3 ~ /^[0-9]+x[0-9]+\+/) off[m++] = $1
      next
    }
    out != "" && $1 == "suggested" && $2 == "X:" { x[out] = $3 }
    out != "" && $1 == "suggested" && $2 == "Y:" { y[out] = $3 }
    END {
      for (i = 0; i < n; i++) printf "--output %s --auto --pos %dx%d ", outs[i], x[outs[i]], y[outs[i]]
      for (i = 0; i < m; i++) printf "--output %s --off ", off[i]
    }'
}
stdbuf -oL xev -root -event randr | while IFS= read -r line; do
  case $line in RR*) ;; *) continue ;; esac
  while IFS= read -r -t 0.3 line; do :; done  # the rest of this burst
  # shellcheck disable=SC2046 # the layout is words: options and output names
  xrandr $(layout)
done
