// Fast file drops on the desktop guest (TCG): one file into ~/Downloads through Oriel's agent path (spice-vdagent),
// through Oriel's WebDAV drop box (the image's oriel-webdavd fetching it over the port itself), and through
// spice-gtk's own agent copy (bench/spice-gtk-copy.py: what remote-viewer does on a drop, straight on QEMU's SPICE
// port), sha256 checked in the guest each time; prints the three rates and WebDAV / spice-gtk. One SPICE client at a
// time: Oriel's session is closed before spice-gtk's connects. Needs gir1.2-spiceclientglib-2.0 and python3-gi.
// Run alone, under the guest lock:
//   flock /tmp/oriel-guest.lock node --import tsx bench/file-drop.ts [MiB=200]
// 200 MiB here (2 cores shared with other work, load 1-2): with oriel-webdavd, medians of 3 runs, WebDAV 37.8 MiB/s
// (35.0-41.3), Oriel agent 5.4, spice-gtk agent 6.7: 5.8x spice-gtk's (5.3-6.0). Before it, on the same day, with
// Debian's spice-webdavd and a curl loop: WebDAV 16.7, agent 6.0, spice-gtk 7.9 (2.1x). spice-gtk's own rate varies
// from 6.5 to 9.8 MiB/s between runs and days.
import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { nodeFileSource, openSpiceSession } from '../src/spice-node/index.ts';
import { ChannelType, WebdavShare, sendPath, type PortChannel } from '../src/spice/index.ts';
import { readSpiceEndpoint } from '../src/vm/spice-endpoint.ts';
import { startDesktopVm } from '../test/helpers/desktop.ts';
import { killVmsIn, startTestServer } from '../test/helpers/server.ts';
import { qemuCpu } from './qemu-cpu.ts';
import { writeRandom } from './random-file.ts';

const MiB = 2 ** 20;

/** spice-gtk's agent copy of FILE to the VM's SPICE port; resolves with its seconds (call to the agent's "done"). */
function spiceGtkCopy(port: number, password: string, file: string): Promise<number> {
  const script = new URL('./spice-gtk-copy.py', import.meta.url).pathname;
  return new Promise((resolve, reject) => {
    const env = { ...process.env, SPICE_PASSWORD: password };
    execFile('/usr/bin/python3', [script, '127.0.0.1', String(port), file], { env, timeout: 900_000 }, (err, out) => {
      let res: { seconds?: number; error?: string } = {};
      try {
        res = JSON.parse(out.trim().split('\n').pop() ?? '{}') as typeof res;
      } catch {
        /* reported below */
      }
      if (typeof res.seconds === 'number') resolve(res.seconds);
      else reject(new Error(`spice-gtk copy failed: ${res.error ?? err?.message ?? out}`));
    });
  });
}

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
  const paths = ts.server.ctx.vms.paths(ts.server.ctx.vms.get('bench'));
  const pid = Number(readFileSync(paths.pidfile, 'utf8'));
  const check = async (via: string, name: string, s: number, cpu: string): Promise<void> => {
    const path = `/home/user/Downloads/${name}`;
    const sum = (await vm.exec(['sha256sum', path], { timeoutMs: 300_000 })).stdout.split(' ')[0];
    if (sum !== hash) throw new Error(`sha256 differs in the guest after the ${via} transfer`);
    await vm.exec(['rm', '-f', path]);
    rates[via] = size / MiB / s;
    console.log(`${via.padEnd(16)} ${(size / MiB).toFixed(0)} MiB in ${s.toFixed(1).padStart(6)} s = ` +
      `${rates[via]!.toFixed(1).padStart(6)} MiB/s   (${cpu})`);
  };
  try {
    const share = new WebdavShare(await session.whenChannel<PortChannel>(ChannelType.WEBDAV));
    await session.agent.whenReady(60_000);
    for (let i = 0; i < 600 && sendPath(share) !== 'webdav'; i++) await sleep(100);
    if (sendPath(share) !== 'webdav') throw new Error('the guest does not fetch drops over WebDAV');
    for (const via of ['Oriel agent', 'Oriel WebDAV'] as const) {
      const src = await nodeFileSource(file);
      const cpu = qemuCpu(pid);
      const t0 = performance.now();
      const name = via === 'Oriel WebDAV' ? await share.drops.offer(src) : (await session.agent.files.send(src), src.name);
      const s = (performance.now() - t0) / 1000;
      const used = cpu();
      await src.close();
      await check(via, name, s, used);
    }
  } finally {
    session.close();
  }
  // spice-gtk alone on the SPICE server: wait until the proxy has let go of its connection.
  const ep = readSpiceEndpoint(paths);
  if (!ep) throw new Error('the VM has no SPICE TCP endpoint');
  await sleep(2000);
  const cpu = qemuCpu(pid);
  const gtkSeconds = await spiceGtkCopy(ep.port, ep.password, file);
  await check('spice-gtk agent', 'payload.bin', gtkSeconds, cpu());
  const ratio = (a: string, b: string): string => `${a} / ${b}: ${(rates[a]! / rates[b]!).toFixed(1)}x`;
  console.log(`${ratio('Oriel WebDAV', 'spice-gtk agent')}, ${ratio('Oriel WebDAV', 'Oriel agent')}, ` +
    `${ratio('Oriel agent', 'spice-gtk agent')} (sha256 equal each time)`);
} finally {
  await killVmsIn(ts.config.dataDir);
  await ts.destroy();
  rmSync(dir, { recursive: true, force: true });
}
