#!/usr/bin/python3
# spice-gtk's own agent file copy (what remote-viewer does on a drop), for bench/file-drop.ts: opens a SpiceSession
# straight to a VM's SPICE server, waits for the agent, sends one file with the main channel's file_copy_async and
# prints the seconds from the call to spice-vdagent's "done" as JSON. Needs Debian's gir1.2-spiceclientglib-2.0
# and python3-gi. The password comes from the environment (SPICE_PASSWORD), never from the command line.
#   SPICE_PASSWORD=... /usr/bin/python3 bench/spice-gtk-copy.py HOST PORT FILE
import json
import os
import sys
import time

import gi

gi.require_version('SpiceClientGLib', '2.0')
from gi.repository import Gio, GLib, GObject, SpiceClientGLib as Spice  # noqa: E402

# SpiceSession and SpiceChannel have a connect() of their own (to the server): signals go through GObject's.
on = GObject.Object.connect

host, port, path = sys.argv[1], sys.argv[2], sys.argv[3]
loop = GLib.MainLoop()
out = {}


def fail(msg):
    out['error'] = msg
    loop.quit()


def copied(main, res, _data=None):
    try:
        main.file_copy_finish(res)
        out['seconds'] = time.monotonic() - out.pop('t0')
    except GLib.Error as e:
        out['error'] = f'file copy failed: {e.message}'
    loop.quit()


def start_copy(main):
    if 't0' in out or 'seconds' in out:
        return
    # The agent's capabilities come with the agent's connection; file transfer must not be disabled by it.
    out['t0'] = time.monotonic()
    main.file_copy_async([Gio.File.new_for_path(path)], Gio.FileCopyFlags.NONE, None, None, None, copied, None)


def agent_changed(main, _pspec=None):
    if main.get_property('agent-connected'):
        # The agent's capabilities arrive right after it connects; give them a moment on the main loop.
        GLib.timeout_add(500, lambda: (start_copy(main), False)[1])


def channel_new(_session, channel):
    if isinstance(channel, Spice.MainChannel):
        on(channel, 'notify::agent-connected', agent_changed)
        on(channel, 'channel-event', lambda _c, ev: ev in (
            Spice.ChannelEvent.ERROR_CONNECT, Spice.ChannelEvent.ERROR_AUTH, Spice.ChannelEvent.ERROR_IO,
            Spice.ChannelEvent.ERROR_LINK) and fail(f'SPICE main channel: {ev.value_nick}'))
        agent_changed(channel)


session = Spice.Session()
session.set_property('host', host)
session.set_property('port', port)
session.set_property('password', os.environ.get('SPICE_PASSWORD', ''))
on(session, 'channel-new', channel_new)
GLib.timeout_add_seconds(int(os.environ.get('TIMEOUT_S', '900')), lambda: fail('timed out') or False)
if not session.connect():
    fail('spice_session_connect failed')
else:
    loop.run()
session.disconnect()
print(json.dumps(out))
sys.exit(1 if 'error' in out else 0)
