#!/bin/sh
# The desktop session's programs (openbox --startup, from ~/.xinitrc). Openbox runs this once it manages the
# screen: a window opened beside a window manager that is still starting (~10 s of CPU under TCG) can stay unmapped
# for good.
lib=/usr/local/lib/oriel
xset s off -dpms           # no screen saver or power saving: a blank screen would hide what people and tests look at
xsetroot -solid '#30475e'  # a plain background
# The session half of the SPICE agent (clipboard, resize, file transfers). It gives up after about a minute without
# its daemon (spice-vdagentd), so it is started again for as long as the X session lives.
(while xset q >/dev/null 2>&1; do spice-vdagent -x; sleep 1; done) &
"$lib/resize-hook" &
xterm &
"$lib/desktop-ready" &
