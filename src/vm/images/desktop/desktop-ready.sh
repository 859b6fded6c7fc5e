#!/bin/sh
# Tells the host that the desktop is usable: once a terminal window (WM_CLASS "xterm" "XTerm") is mapped and
# viewable, creates /run/oriel/desktop-ready (see oriel-desktop-ready.path). Checking the window rather than the
# process matters: a started xterm is not yet a window anybody can see or type into.
while :; do
  for id in $(xwininfo -root -tree 2>/dev/null | sed -n 's/^ *\(0x[0-9a-f]*\) .*("xterm" "XTerm").*/\1/p'); do
    if xwininfo -id "$id" 2>/dev/null | grep -q 'Map State: IsViewable'; then
      : > /run/oriel/desktop-ready
      exit 0
    fi
  done
  sleep 0.5
done
