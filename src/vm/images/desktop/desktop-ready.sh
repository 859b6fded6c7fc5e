#!/bin/sh
# Tells the host that the desktop is usable: once a terminal window (WM_CLASS "xterm" "XTerm") is mapped and
# viewable and the SPICE agent runs (its daemon active, the session's spice-vdagent connected to it), creates
# /run/oriel/desktop-ready (see oriel-desktop-ready.path). So the ready marker means "typing, clipboard and file
# drops will work". Checking the window rather than the process matters: a started xterm is not yet a window
# anybody can see or type into.
xterm_viewable() {
  for id in $(xwininfo -root -tree 2>/dev/null | sed -n 's/^ *\(0x[0-9a-f]*\) .*("xterm" "XTerm").*/\1/p'); do
    xwininfo -id "$id" 2>/dev/null | grep -q 'Map State: IsViewable' && return 0
  done
  return 1
}
agent_running() {
  systemctl is-active --quiet spice-vdagentd.service && pgrep -u "$(id -u)" -x spice-vdagent >/dev/null
}
until xterm_viewable && agent_running; do sleep 0.5; done
: > /run/oriel/desktop-ready
