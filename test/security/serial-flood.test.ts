// A hostile guest flooding its serial console must not fill the host disk: serial.log is capped (a small cap here,
// 8 MiB by default), the part before the cap is in serial.log.1, and the latest output is still what
// `GET /api/vms/{vm}/log` (`oriel vm log`) and a joining web serial viewer show.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, statSync } from 'node:fs';
import WebSocket from 'ws';
import { ensureTinyImage } from '../helpers/images.ts';
import { startTestServer, type TestServer } from '../helpers/server.ts';

const CAP = 64 * 1024;
const FLOOD = 6_000_000;
/** What the guest may write between two checks of the cap (every 500 ms) beyond the cap, with room to spare. */
const SLACK = 2 << 20;

const size = (p: string) => (existsSync(p) ? statSync(p).size : 0);

describe('security: a guest flooding its serial console', () => {
  let t: TestServer;

  before(async () => {
    await ensureTinyImage();
    t = await startTestServer({ serialLogMaxBytes: CAP });
    assert.equal((await t.admin.post('/api/vms', { name: 'flood', image: 'tiny', memoryMiB: 128 })).status, 201);
    assert.equal((await t.admin.post('/api/vms/flood/start')).body.state, 'running');
    assert.equal((await t.admin.post('/api/vms/flood/exec', { argv: ['true'], timeoutSec: 90 })).status, 200);
  });
  after(() => t.destroy());

  test('serial.log stays under its cap while the guest writes megabytes, and the latest output is readable', async () => {
    const p = t.server.ctx.vms.paths(t.server.ctx.vms.get('flood'));
    let largest = 0;
    let largestBoth = 0;
    const watch = setInterval(() => {
      largest = Math.max(largest, size(p.serialLog));
      largestBoth = Math.max(largestBoth, size(p.serialLog) + size(p.serialLogPrev));
    }, 20);
    const started = Date.now();
    const r = await t.admin.post('/api/vms/flood/exec', {
      argv: ['sh', '-c', `yes 0123456789abcdef | head -c ${FLOOD} > /dev/ttyS0; echo FLOOD-END-MARK > /dev/ttyS0`],
      timeoutSec: 240,
    });
    const seconds = (Date.now() - started) / 1000;
    await new Promise((res) => setTimeout(res, 1200)); // one more check of the cap
    clearInterval(watch);
    assert.equal(r.status, 200, JSON.stringify(r.body));
    assert.equal(r.body.exitCode, 0, JSON.stringify(r.body));
    const rate = FLOOD / seconds;
    console.log(`guest wrote ${FLOOD} bytes in ${seconds.toFixed(1)} s; serial.log at most ${largest} bytes, ` +
      `with serial.log.1 ${largestBoth}`);
    assert.ok(existsSync(p.serialLogPrev), 'rotated at least once');
    assert.ok(largest <= CAP + Math.max(SLACK, rate), `serial.log reached ${largest} bytes`);
    assert.ok(largestBoth < FLOOD / 2, `serial.log and serial.log.1 reached ${largestBoth} of ${FLOOD} bytes`);
    assert.ok(size(p.serialLog) + size(p.serialLogPrev) <= 2 * CAP + 2 * SLACK);

    // `oriel vm log` (this route) shows the latest output.
    const log = await t.admin.get('/api/vms/flood/log?lines=3');
    assert.equal(log.status, 200);
    assert.match(log.body.text, /FLOOD-END-MARK/);
    assert.match(log.body.text, /0123456789abcdef/);

    // A web serial viewer that joins now is shown the latest output first.
    const first = await new Promise<string>((resolve, reject) => {
      const ws = new WebSocket(`${t.url.replace('http', 'ws')}/api/vms/flood/serial`, {
        headers: { authorization: `Bearer ${t.adminToken}` },
      });
      ws.once('message', (d: Buffer) => { resolve(d.toString()); ws.close(); });
      ws.once('error', reject);
    });
    assert.match(first, /FLOOD-END-MARK/);
    assert.ok(first.length <= 16 * 1024);
  });

  test('a new boot starts a new serial.log, without the old rotated one', async () => {
    assert.equal((await t.admin.post('/api/vms/flood/force-stop')).status, 200);
    const p = t.server.ctx.vms.paths(t.server.ctx.vms.get('flood'));
    assert.ok(existsSync(p.serialLogPrev));
    assert.equal((await t.admin.post('/api/vms/flood/start')).body.state, 'running');
    assert.equal(existsSync(p.serialLogPrev), false);
    const log = await t.admin.get('/api/vms/flood/log?lines=10000');
    assert.doesNotMatch(log.body.text, /FLOOD-END-MARK/);
  });
});
