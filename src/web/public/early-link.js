// A console page's first SPICE bytes leave before the app's script has arrived: the main channel's WebSocket
// opens here and sends its link message (the bytes of src/spice/link.ts encodeLinkMess for the main channel,
// checked by test/web/early-link.test.ts), and three more for the other channels; console/transport.ts takes the
// sockets over. It also asks for the VM's screen (spice-web/screen-preview.ts) and the app's first GETs.
// index.html names it as a script file; the server inlines it into the page it serves (no request to wait for),
// with the Content-Security-Policy allowing exactly this script by its hash (src/server/web.ts).
/* global window, location, URLSearchParams, WebSocket, performance, fetch, createImageBitmap, AbortController */
(function () {
  const m = /^\/vms\/([^/]+)(\/console)?$/.exec(location.pathname);
  const tab = new URLSearchParams(location.search).get('tab');
  if (!m || (!m[2] && tab && tab !== 'console') || typeof WebSocket !== 'function') return;
  let name;
  try { name = encodeURIComponent(decodeURIComponent(m[1])); } catch { return; }
  const url = (location.protocol === 'https:' ? 'wss://' : 'ws://') + location.host + '/api/vms/' + name + '/spice';
  const link = new Uint8Array([
    82,69,68,81,2,0,0,0,2,0,0,0,26,0,0,0,0,0,0,0,1,0,1,0,0,0,1,0,0,0,18,0,0,0,11,0,0,0,6,0,0,0,
  ]);
  const mark = (n) => window.performance && performance.mark && performance.mark('oriel:' + n);
  mark('early-link');
  const ws = new WebSocket(url);
  ws.binaryType = 'arraybuffer';
  const early = { url: url, ws: ws, link: link, data: [], closed: null, spares: [] };
  ws.onopen = function () { mark('main-open'); ws.send(link); };
  ws.onmessage = function (e) { early.data.push(e.data); };
  ws.onclose = function (e) { early.closed = e; };
  // And the sockets of the channels that follow (display, inputs, cursor): linked once the main channel is.
  for (let i = 0; i < 3; i++) {
    const spare = new WebSocket(url);
    spare.binaryType = 'arraybuffer';
    early.spares.push(spare);
  }
  window.orielEarlyLink = early;
  // And the VM's screen as the server has it, shown until SPICE draws (spice-web/screen-preview.ts).
  // Decoded here, off the main thread, while the app's script loads; abandoned if SPICE draws first (a slow link).
  const ac = typeof AbortController === 'function' ? new AbortController() : null;
  const picture = fetch('/api/vms/' + name + '/console/screen', { credentials: 'same-origin', signal: ac && ac.signal })
    .then(function (r) { mark('picture-in'); return r.ok ? r.blob() : null; })
    .then(function (b) {
      return b && createImageBitmap(b, { colorSpaceConversion: 'none', premultiplyAlpha: 'none' });
    })
    .catch(function () { return null; });
  // And the app's first questions (who is signed in, the VM's record), taken by web/lib/api.ts when it asks them.
  const gets = {};
  for (const path of ['/api/auth/me', '/api/vms/' + name]) {
    gets[path] = fetch(path, { credentials: 'same-origin' });
    gets[path].catch(function () { return null; }); // the app sees the failure when it takes the answer
  }
  window.orielEarlyGets = gets;
  window.orielEarlyScreen = {
    path: '/api/vms/' + name + '/spice', picture: picture, abort: function () { if (ac) ac.abort(); },
  };
})();
