#!/bin/sh
# The desktop session's programs (openbox --startup, from ~/.xinitrc). Openbox runs this once it manages the
# screen: a window opened beside a window manager that is still starting (~10 s of CPU under TCG) can stay unmapped
# for good.
lib=/usr/local/lib/oriel
xset s off -dpms           # no screen saver or power saving: a blank screen would hide what people and tests look at
xsetroot -solid '#30475e'  # a plain background
spice-vdagent              # the session half of the SPICE agent (clipboard, resize, file transfers); it forks
"$lib/resize-hook" &
xterm &
"$lib/desktop-ready" &
