// Fast file drops on the desktop guest (TCG): one file into ~/Downloads through the agent (spice-vdagent) and
// through the WebDAV drop box (spice-webdavd, the image's shared-folder loop fetching with curl), sha256 checked in
// the guest both times; prints both rates and their ratio. Run alone, under the guest lock:
//   flock /tmp/oriel-guest.lock node --import tsx bench/file-drop.ts [MiB=200]
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { nodeFileSource, openSpiceSession } from '../src/spice-node/index.ts';
import { ChannelType, WebdavShare, sendPath, type PortChannel } from '../src/spice/index.ts';
import { startDesktopVm } from '../test/helpers/desktop.ts';
import { killVmsIn, startTestServer } from '../test/helpers/server.ts';
import { writeRandom } from './random-file.ts';

const MiB = 2 ** 20;
const size = Number(process.argv[2] ?? 200) * MiB;
const ts = await startTestServer();
const dir = mkdtempSync(join(tmpdir(), 'obench-'));
try {
  const vm = await startDesktopVm(ts, 'bench');
  const file = join(dir, 'payload.bin');
  const hash = await writeRandom(file, size);
  // Through the server's console proxy, as every client reaches a VM.
  const session = await openSpiceSession({
    url: `${ts.url.replace('http', 'ws')}/api/vms/bench/spice`,
    headers: { authorization: `Bearer ${ts.adminToken}` },
    channelTypes: [ChannelType.WEBDAV],
  });
  const rates: Record<string, number> = {};
  try {
    const share = new WebdavShare(await session.whenChannel<PortChannel>(ChannelType.WEBDAV));
    await session.agent.whenReady(60_000);
    for (let i = 0; i < 600 && sendPath(share) !== 'webdav'; i++) await sleep(100);
    if (sendPath(share) !== 'webdav') throw new Error('the guest does not fetch drops over WebDAV');
    for (const via of ['agent', 'webdav'] as const) {
      const src = await nodeFileSource(file);
      const t0 = performance.now();
      const name = via === 'webdav' ? await share.drops.offer(src) : (await session.agent.files.send(src), src.name);
      const s = (performance.now() - t0) / 1000;
      await src.close();
      const path = `/home/user/Downloads/${name}`;
      const sum = (await vm.exec(['sha256sum', path], { timeoutMs: 300_000 })).stdout.split(' ')[0];
      if (sum !== hash) throw new Error(`sha256 differs in the guest after the ${via} transfer`);
      await vm.exec(['rm', '-f', path]);
      rates[via] = size / MiB / s;
      console.log(`${via}: ${(size / MiB).toFixed(0)} MiB in ${s.toFixed(1)} s = ${rates[via]!.toFixed(1)} MiB/s`);
    }
  } finally {
    session.close();
  }
  console.log(`WebDAV / agent: ${(rates.webdav! / rates.agent!).toFixed(1)}x (sha256 equal both times)`);
} finally {
  await killVmsIn(ts.config.dataDir);
  await ts.destroy();
  rmSync(dir, { recursive: true, force: true });
}
