// The console proxy reaches QEMU's SPICE over loopback TCP with a per-boot password (vm/spice-endpoint.ts):
// QEMU refuses a client without that password, the password is nowhere a client or another user can read it
// (QEMU's command line, its log, the proxy's clients), and the console still works through the proxy, on TCP.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, statSync } from 'node:fs';
import { SpiceLinkError, SpiceSession } from '../../src/spice/index.ts';
import { nodeEncryptTicket, primarySurface, tcpConnector, wsConnector } from '../../src/spice-node/index.ts';
import { startTestServer, type TestServer } from '../helpers/server.ts';

process.env.ORIEL_SPICE_TCP = '1'; // the default (spice-endpoint.ts); set in case the environment turned it off
import { ensureTinyImage } from '../helpers/images.ts';
import { readSpiceEndpoint } from '../../src/vm/spice-endpoint.ts';

interface SpiceInfo {
  enabled: boolean; port: number; host: string; auth: string; channels: { family: string; host: string }[];
}

describe('the proxy reaches SPICE over TCP with a password', () => {
  let t: TestServer;

  before(async () => {
    await ensureTinyImage();
    t = await startTestServer();
    assert.equal((await t.admin.post('/api/vms', { name: 'pw', image: 'tiny', memoryMiB: 160 })).status, 201);
    assert.equal((await t.admin.post('/api/vms/pw/start')).body.state, 'running');
  });
  after(async () => {
    await t.destroy();
  });

  const paths = () => t.server.ctx.vms.paths(t.server.ctx.vms.get('pw'));

  test('QEMU listens on loopback TCP with ticketing; the password is in a 0600 file, not on its command line', async () => {
    const ep = readSpiceEndpoint(paths());
    assert.ok(ep, 'spice.port and spice.secret are written at start');
    assert.equal(ep.password.length, 32);
    assert.equal(statSync(paths().spiceSecret).mode & 0o777, 0o600);
    const info = (await t.server.ctx.vms.qmp('pw').execute('query-spice')) as SpiceInfo;
    assert.equal(info.enabled, true);
    assert.equal(info.port, ep.port);
    assert.equal(info.host, '127.0.0.1');
    assert.equal(info.auth, 'spice');
    const pid = Number(readFileSync(paths().pidfile, 'utf8'));
    const cmdline = readFileSync(`/proc/${pid}/cmdline`, 'utf8');
    assert.ok(cmdline.includes('password-secret=spicepw'));
    assert.ok(!cmdline.includes(ep.password), 'the password is not on the command line');
    assert.ok(!readFileSync(paths().qemuLog, 'utf8').includes(ep.password), 'nor in the QEMU log');
  });

  test('a client without the password, or with a wrong one, is refused by QEMU; the right one links', async () => {
    const ep = readSpiceEndpoint(paths())!;
    for (const password of ['', 'not-the-password']) {
      await assert.rejects(
        SpiceSession.connect({ connect: tcpConnector('127.0.0.1', ep.port), encryptTicket: nodeEncryptTicket, password }),
        (e: SpiceLinkError) => e instanceof SpiceLinkError && e.reason === 'PERMISSION_DENIED',
      );
    }
    const s = await SpiceSession.connect({
      connect: tcpConnector('127.0.0.1', ep.port), encryptTicket: nodeEncryptTicket, password: ep.password,
    });
    s.close();
  });

  test('the console works through the proxy with no password from the client, and QEMU sees TCP clients', async () => {
    const session = await SpiceSession.connect({
      connect: wsConnector(`${t.url.replace('http', 'ws')}/api/vms/pw/spice`, {
        authorization: `Bearer ${t.adminToken}`,
      }),
      encryptTicket: nodeEncryptTicket,
    });
    try {
      let surface;
      for (let i = 0; i < 100 && !surface; i++) {
        surface = primarySurface(session);
        if (!surface) await new Promise((r) => setTimeout(r, 100));
      }
      assert.ok(surface && surface.width > 0, 'the display channel drew its primary surface');
      const info = (await t.server.ctx.vms.qmp('pw').execute('query-spice')) as SpiceInfo;
      const channels = info.channels;
      assert.ok(channels.length >= 2, `channels: ${JSON.stringify(channels)}`);
      for (const c of channels) assert.deepEqual([c.family, c.host], ['ipv4', '127.0.0.1']);
    } finally {
      session.close();
    }
  });
});
