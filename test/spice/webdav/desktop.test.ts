// Shared folders and fast file drops on the desktop guest (one boot, under the guest lock): a folder of this host,
// served by the core's WebDAV server over the SPICE WebDAV channel, is mounted by the guest at ~/Shared (davfs2,
// through the image's oriel-webdavd); the guest lists and reads a host file and writes one that lands here with the
// same sha256; the read-only share refuses the guest's write; a dropped file goes through the WebDAV drop box into
// ~/Downloads (fetched by oriel-webdavd itself) with the same sha256, faster than the agent path's ~7 MiB/s; and
// again once the SPICE client went away and another one came.
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { after, before, test } from 'node:test';
import { openSpiceSession } from '../../../src/spice-node/client.ts';
import { nodeFileSource } from '../../../src/spice-node/files.ts';
import { nodeDavFs } from '../../../src/spice-node/webdav-fs.ts';
import {
  ChannelType, WebdavShare, sendPath, type PortChannel, type SpiceSession,
} from '../../../src/spice/index.ts';
import { startDesktopVm, type DesktopVm } from '../../helpers/desktop.ts';
import { killVmsIn, startTestServer, type TestServer } from '../../helpers/server.ts';

const MiB = 1024 * 1024;
const sha = (b: Uint8Array) => createHash('sha256').update(b).digest('hex');
let t: TestServer;
let vm: DesktopVm;
let dir: string;
let session: SpiceSession;
let share: WebdavShare;

const sh = async (script: string, timeoutMs = 60_000) => {
  const r = await vm.execAsUser(['sh', '-c', script], { timeoutMs });
  return { code: r.exitCode, out: r.stdout.trim(), err: r.stderr.trim() };
};

async function until<T>(what: string, f: () => Promise<T | undefined>, ms: number): Promise<T> {
  const end = Date.now() + ms;
  for (;;) {
    const v = await f();
    if (v !== undefined) return v;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await sleep(500);
  }
}

before(async () => {
  t = await startTestServer();
  dir = mkdtempSync(join(tmpdir(), 'oriel-share-'));
  writeFileSync(join(dir, 'from-host.txt'), 'hello from the host\n');
  vm = await startDesktopVm(t, 'share');
  // Through the server's console proxy, as every client reaches a VM's SPICE server.
  session = await openSpiceSession({
    url: `${t.url.replace('http', 'ws')}/api/vms/share/spice`,
    headers: { authorization: `Bearer ${t.adminToken}` },
    channelTypes: [ChannelType.WEBDAV],
  });
  share = new WebdavShare(await session.whenChannel<PortChannel>(ChannelType.WEBDAV));
  share.setFolder(await nodeDavFs(dir));
});

after(async () => {
  session?.close();
  await killVmsIn(t.config.dataDir);
  await t.destroy();
  rmSync(dir, { recursive: true, force: true });
});

test('the guest mounts the shared folder at ~/Shared, lists, reads and writes it; read-only refuses', async () => {
  await until('the mount of ~/Shared', async () =>
    (await sh('mountpoint -q ~/Shared && echo yes')).out === 'yes' ? true : undefined, 60_000);
  const ls = await sh('ls ~/Shared');
  assert.match(ls.out, /from-host\.txt/);
  assert.equal((await sh('cat ~/Shared/from-host.txt')).out, 'hello from the host');
  const w = await sh('head -c 3000000 /dev/urandom > /tmp/g.bin && cp /tmp/g.bin ~/Shared/from-guest.bin && ' +
    'sync ~/Shared/from-guest.bin; sha256sum /tmp/g.bin', 120_000);
  assert.equal(w.code, 0, w.err);
  const guestSum = w.out.split(' ')[0];
  const hostSum = await until('the guest file on the host', async () => {
    try {
      const b = readFileSync(join(dir, 'from-guest.bin'));
      return b.length === 3_000_000 ? sha(b) : undefined;
    } catch {
      return undefined;
    }
  }, 60_000);
  assert.equal(hostSum, guestSum);
  // Read-only: the guest's write fails and nothing reaches the folder.
  share.setFolder(await nodeDavFs(dir, { readOnly: true }));
  const ro = await sh('echo nope > ~/Shared/ro.txt && sync ~/Shared/ro.txt; sleep 2; echo done', 60_000);
  await sleep(2000);
  assert.throws(() => readFileSync(join(dir, 'ro.txt')), /ENOENT/, `read-only share was written (${ro.out})`);
  share.setFolder(await nodeDavFs(dir));
});

test('a dropped file lands in ~/Downloads through WebDAV with the same sha256', async () => {
  const size = 64 * MiB;
  const data = randomBytes(size);
  const file = join(dir, '..', `${dir.split('/').pop()}-drop.bin`);
  writeFileSync(file, data);
  try {
    await until('the guest polling for drops', async () => (sendPath(share) === 'webdav' ? true : undefined), 30_000);
    const src = await nodeFileSource(file);
    const t0 = performance.now();
    const name = await share.drops.offer(src);
    const s = (performance.now() - t0) / 1000;
    await src.close();
    const sum = (await sh(`sha256sum ~/Downloads/'${name}'`, 120_000)).out.split(' ')[0];
    assert.equal(sum, sha(data));
    console.log(`# WebDAV drop: ${size / MiB} MiB in ${s.toFixed(1)} s (${(size / MiB / s).toFixed(1)} MiB/s)`);
    // The SPICE client goes away and another one comes: the guest's daemon serves the new one.
    session.close();
    session = await openSpiceSession({
      url: `${t.url.replace('http', 'ws')}/api/vms/share/spice`,
      headers: { authorization: `Bearer ${t.adminToken}` },
      channelTypes: [ChannelType.WEBDAV],
    });
    share = new WebdavShare(await session.whenChannel<PortChannel>(ChannelType.WEBDAV));
    await until('the guest polling the new client', async () => (sendPath(share) === 'webdav' ? true : undefined),
      30_000);
    writeFileSync(file, data.subarray(0, 3 * MiB));
    const src2 = await nodeFileSource(file);
    const name2 = await share.drops.offer(src2);
    await src2.close();
    assert.equal((await sh(`sha256sum ~/Downloads/'${name2}'`)).out.split(' ')[0], sha(data.subarray(0, 3 * MiB)));
  } finally {
    rmSync(file, { force: true });
  }
});
