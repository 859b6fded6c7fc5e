// The SPICE console proxy with a real tiny guest: a real SPICE session through the WebSocket sees what QMP
// screendump sees, and every unauthenticated, unauthorised or malformed connection is refused.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { tmpdir } from 'node:os';
import { setTimeout as sleep } from 'node:timers/promises';
import WebSocket from 'ws';
import { ChannelType, SpiceSession, type Connector, type Transport } from '../../src/spice/index.ts';
import { nodeEncryptTicket, primarySurface } from '../../src/spice-node/index.ts';
import { ADMIN_PASSWORD, addUser, Client, startTestServer, type TestServer } from '../helpers/server.ts';
import { ensureTinyImage } from '../helpers/images.ts';
import { parsePpm } from '../spice/helpers/qemu.ts';
import { CONSOLE_TAKEN_OVER } from '../../src/api/console-close.ts';

/** A Connector over the proxy: one WebSocket per SPICE channel (their close codes go to `closes`). */
function wsConnector(url: string, headers: Record<string, string> = {}, closes: number[] = []): Connector {
  return () => new Promise<Transport>((resolve, reject) => {
    const ws = new WebSocket(url, { headers });
    ws.binaryType = 'nodebuffer';
    ws.once('error', reject);
    ws.once('open', () => resolve({
      start(h) {
        ws.on('message', (d: Buffer) => h.data(new Uint8Array(d.buffer, d.byteOffset, d.length)));
        ws.on('close', (code) => { closes.push(code); h.closed(); });
        ws.on('error', (e) => h.closed(e));
      },
      write: (b) => ws.send(b),
      close: () => ws.close(),
    }));
  });
}

/** Opens a raw WebSocket and reports how it ended: refused at upgrade (HTTP status) or closed (code). */
function rawWs(
  url: string,
  headers: Record<string, string>,
  send?: Buffer,
): Promise<{ status?: number; code?: number; reason?: string; firstBytes?: Buffer }> {
  return new Promise((resolve) => {
    const ws = new WebSocket(url, { headers, maxPayload: 64 << 20 });
    let firstBytes: Buffer | undefined;
    ws.on('unexpected-response', (_req, res) => resolve({ status: res.statusCode }));
    ws.on('open', () => { if (send) ws.send(send); });
    ws.on('message', (d: Buffer) => { firstBytes ??= d; ws.close(); });
    ws.on('close', (code, reason) => resolve({ code, reason: reason.toString(), firstBytes }));
    ws.on('error', () => undefined);
  });
}

/** A SPICE link message for a main channel (spice/protocol.h), enough for the server to answer. */
function linkMessage(channelType = 1, connectionId = 0, channelId = 0): Buffer {
  const body = Buffer.alloc(18 + 4);
  body.writeUInt32LE(connectionId, 0);
  body.writeUInt8(channelType, 4);
  body.writeUInt8(channelId, 5);
  body.writeUInt32LE(1, 6); // one common caps word
  body.writeUInt32LE(0, 10);
  body.writeUInt32LE(18, 14);
  body.writeUInt32LE(0b1011, 18);
  const hdr = Buffer.alloc(16);
  hdr.write('REDQ', 0, 'latin1');
  hdr.writeUInt32LE(2, 4);
  hdr.writeUInt32LE(2, 8);
  hdr.writeUInt32LE(body.length, 12);
  return Buffer.concat([hdr, body]);
}

describe('SPICE console proxy', () => {
  let t: TestServer;
  let wsBase: string;
  const dump = join(tmpdir(), `oriel-proxy-${process.pid}.ppm`);

  before(async () => {
    await ensureTinyImage();
    t = await startTestServer();
    wsBase = t.url.replace('http', 'ws');
    assert.equal((await t.admin.post('/api/vms', { name: 'con', image: 'tiny', memoryMiB: 160 })).status, 201);
    assert.equal((await t.admin.post('/api/vms/con/start')).body.state, 'running');
    await t.admin.post('/api/vms/con/exec', { argv: ['true'], timeoutSec: 60 }); // booted to its shell
  });
  after(async () => {
    rmSync(dump, { force: true });
    await t.destroy();
  });

  async function sessionMatchesScreendump(session: SpiceSession): Promise<number> {
    let differing = -1;
    for (let i = 0; i < 40; i++) {
      await t.server.ctx.vms.qmp('con').execute('screendump', { filename: dump, format: 'ppm' });
      const ppm = parsePpm(readFileSync(dump));
      const s = primarySurface(session);
      if (s && s.width === ppm.width && s.height === ppm.height) {
        differing = 0;
        for (let p = 0, q = 0; p < ppm.rgb.length; p += 3, q += 4) {
          if (ppm.rgb[p] !== s.data[q] || ppm.rgb[p + 1] !== s.data[q + 1] || ppm.rgb[p + 2] !== s.data[q + 2])
            differing++;
        }
        if (differing === 0) return 0;
      }
      await sleep(250);
    }
    return differing;
  }

  test('a SPICE session through the proxy (API token) shows exactly what QMP screendump shows', async () => {
    const session = await SpiceSession.connect({
      connect: wsConnector(`${wsBase}/api/vms/con/spice`, { authorization: `Bearer ${t.adminToken}` }),
      encryptTicket: nodeEncryptTicket,
    });
    try {
      assert.equal(await sessionMatchesScreendump(session), 0);
      // Draw something new in the guest: the console follows.
      await t.admin.post('/api/vms/con/exec', { argv: ['sh', '-c', 'head -c 300000 /dev/urandom > /dev/fb0'] });
      assert.equal(await sessionMatchesScreendump(session), 0);
    } finally {
      session.close();
    }
  });

  test('a new console takes over: the previous one is closed (4409) before QEMU sees the new one; QEMU lives', async () => {
    // One SPICE client per VM: the proxy lets the previous session go before it dials (server/console/takeover.ts),
    // which keeps spice-server out of its replace-while-linking path (a crash seen in QEMU 7.2).
    const open = async (closes: number[]) => {
      const s = await SpiceSession.connect({
        connect: wsConnector(`${wsBase}/api/vms/con/spice`, { authorization: `Bearer ${t.adminToken}` }, closes),
        encryptTicket: nodeEncryptTicket,
      });
      for (let i = 0; i < 100 && !primarySurface(s); i++) await sleep(50);
      assert.ok(primarySurface(s), 'the new console shows the screen');
      return s;
    };
    let closes: number[] = [];
    let prev = await open(closes);
    for (let i = 0; i < 5; i++) {
      const before = closes;
      closes = [];
      const next = await open(closes);
      for (let k = 0; k < 50 && before.length === 0; k++) await sleep(20);
      assert.ok(before.length > 0 && before.every((c) => c === 4409), `previous console closed with 4409: ${before}`);
      const spice = (await t.server.ctx.vms.qmp('con').execute('query-spice')) as { channels: unknown[] };
      assert.ok(spice.channels.length > 0, 'QEMU serves the new console');
      prev.close();
      prev = next;
    }
    assert.equal(await sessionMatchesScreendump(prev), 0);
    prev.close();
    assert.equal(t.server.ctx.vms.get('con').state, 'running');
  });

  test("a replaced session's late channel is refused (4409) before QEMU; the current session's channels link", async () => {
    // A page left while its channels linked must not reach spice-server beside the next client (takeover.ts).
    const url = `${wsBase}/api/vms/con/spice`;
    const auth = { authorization: `Bearer ${t.adminToken}` };
    const connect = () => SpiceSession.connect({
      connect: wsConnector(url, auth), encryptTicket: nodeEncryptTicket,
      channelTypes: [ChannelType.DISPLAY, ChannelType.INPUTS],
    });
    const old = await connect();
    const oldId = old.main.init!.sessionId;
    const t0 = Date.now();
    const cur = await connect();
    try {
      assert.ok(Date.now() - t0 < 2500, `the hand-over took ${Date.now() - t0} ms`);
      // Its own display channel linked first (connect resolves with the main channel): the one asked twice below is
      // then the second, whatever the timing.
      await cur.whenChannel(ChannelType.DISPLAY);
      const stale = await rawWs(url, auth, linkMessage(2, oldId));
      assert.equal(stale.code, CONSOLE_TAKEN_OVER, `a late display channel of the replaced session: ${stale.reason}`);
      const fresh = await rawWs(url, auth, linkMessage(4, cur.main.init!.sessionId)); // cursor: not opened by cur
      assert.equal(fresh.firstBytes?.subarray(0, 4).toString('latin1'), 'REDQ', 'the current session links');
      // A second display:0 in one session is refused before QEMU (spice-server's worker crashed on one).
      const twice = await rawWs(url, auth, linkMessage(2, cur.main.init!.sessionId));
      assert.equal(twice.code, 1008, `a second display:0: ${twice.reason}`);
    } finally {
      old.close();
      cur.close();
    }
  });

  test('the session cookie works from the same origin only', async () => {
    const login = await t.anon.post('/api/auth/login', { username: 'admin', password: ADMIN_PASSWORD });
    const cookie = login.headers.get('set-cookie')!.split(';')[0]!;
    const host = new URL(t.url).host;
    const ok = await rawWs(`${wsBase}/api/vms/con/spice`, { cookie, origin: `http://${host}` }, linkMessage());
    assert.equal(ok.firstBytes?.subarray(0, 4).toString('latin1'), 'REDQ', 'the SPICE server answered the link');
    const evil = await rawWs(`${wsBase}/api/vms/con/spice`, { cookie, origin: 'http://evil.example' });
    assert.equal(evil.status, 403);
  });

  test('no credentials, a bad token, another user, an unknown or stopped VM: refused before QEMU', async () => {
    assert.equal((await rawWs(`${wsBase}/api/vms/con/spice`, {})).status, 401);
    assert.equal(
      (await rawWs(`${wsBase}/api/vms/con/spice`, { authorization: 'Bearer oriel_000000000000_' + 'A'.repeat(43) }))
        .status,
      401,
    );
    const mallory = await addUser(t, 'mallory');
    assert.equal(
      (await rawWs(`${wsBase}/api/vms/con/spice`, { authorization: `Bearer ${mallory.token}` })).status,
      403,
    );
    assert.equal(
      (await rawWs(`${wsBase}/api/vms/nope/spice`, { authorization: `Bearer ${t.adminToken}` })).status,
      404,
    );
    assert.equal((await rawWs(`${wsBase}/api/elsewhere`, { authorization: `Bearer ${t.adminToken}` })).status, 404);
    assert.equal((await t.admin.post('/api/vms', { name: 'off', image: 'tiny' })).status, 201);
    assert.equal((await rawWs(`${wsBase}/api/vms/off/spice`, { authorization: `Bearer ${t.adminToken}` })).status, 409);
  });

  test('bytes that are not SPICE, text frames and oversized frames close that console only', async () => {
    const auth = { authorization: `Bearer ${t.adminToken}` };
    const junk = await rawWs(`${wsBase}/api/vms/con/spice`, auth, Buffer.from('GET / HTTP/1.1\r\n\r\n'));
    assert.equal(junk.code, 1008);
    const big = await rawWs(`${wsBase}/api/vms/con/spice`, auth, Buffer.alloc(2 << 20));
    assert.equal(big.code, 1009);
    // The VM and other consoles are unaffected.
    const session = await SpiceSession.connect({
      connect: wsConnector(`${wsBase}/api/vms/con/spice`, auth),
      encryptTicket: nodeEncryptTicket,
    });
    assert.equal(await sessionMatchesScreendump(session), 0);
    session.close();
  });

  test('a console ticket opens one whole session, once', async () => {
    const r = await t.admin.post('/api/vms/con/console-ticket');
    assert.equal(r.status, 201);
    const url = `${wsBase}${r.body.path}`;
    const session = await SpiceSession.connect({ connect: wsConnector(url), encryptTicket: nodeEncryptTicket });
    try {
      assert.equal(await sessionMatchesScreendump(session), 0, 'display channel admitted on the same ticket');
      const again = await rawWs(url, {}, linkMessage());
      assert.equal(again.code, 4401, 'a used ticket does not start a second session');
      const foreign = await rawWs(url, {}, linkMessage(2, 12345));
      assert.equal(foreign.code, 4401, 'a channel of another session is refused');
    } finally {
      session.close();
    }
    // A ticket nobody issued is refused at the upgrade: no WebSocket at all.
    assert.equal((await rawWs(`${wsBase}/api/vms/con/spice?ticket=made-up`, {}, linkMessage())).status, 401);
    const c = new Client(() => t.url);
    assert.equal((await c.post('/api/vms/con/console-ticket')).status, 401);
  });
});
