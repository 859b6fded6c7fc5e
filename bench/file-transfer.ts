// File transfer benchmark on the desktop guest (TCG): MiB/s of a file sent through the SPICE agent (spice-vdagent
// writes it to ~/Downloads), beside the raw throughput of the same socket path (bytes through a SPICE port channel
// into the guest's virtio-serial port, read by dd, no agent), each both directly on QEMU's unix socket and through
// Oriel's console WebSocket proxy — in one run.
// Usage: node --import tsx bench/file-transfer.ts [MiB=200]
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { nodeFileSource, openSpiceSession } from '../src/spice-node/index.ts';
import type { HeadlessOptions } from '../src/spice-node/client.ts';
import { readSpiceEndpoint } from '../src/vm/spice-endpoint.ts';
import { ChannelType, PortChannel, nextEvent } from '../src/spice/index.ts';
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
  const vmRecord = ts.server.ctx.vms.get('bench');
  const ep = readSpiceEndpoint(ts.server.ctx.vms.paths(vmRecord));
  if (!ep) throw new Error('the VM has no SPICE TCP endpoint');
  const targets: [string, HeadlessOptions][] = [
    ['QEMU SPICE port (TCP)', { host: '127.0.0.1', port: ep.port, password: ep.password }],
    [
      'Oriel WebSocket proxy',
      {
        url: `${ts.url.replace('http', 'ws')}/api/vms/bench/spice`,
        headers: { authorization: `Bearer ${ts.adminToken}` },
      },
    ],
  ];
  const rows: string[][] = [];
  // The agent path: spice-vdagentd → spice-vdagent → ~/Downloads.
  for (const [label, target] of targets) {
    const session = await openSpiceSession(target);
    try {
      await session.agent.whenReady(60_000);
      const src = await nodeFileSource(file);
      const t0 = performance.now();
      await session.agent.files.send(src);
      const s = (performance.now() - t0) / 1000;
      await src.close();
      const sum = (
        await vm.exec(['sha256sum', '/home/user/Downloads/payload.bin'], { timeoutMs: 120_000 })
      ).stdout.split(' ')[0];
      if (sum !== hash) throw new Error(`sha256 differs in the guest after the ${label} transfer`);
      await vm.exec(['rm', '-f', '/home/user/Downloads/payload.bin']);
      rows.push([`agent file transfer, ${label}`, (size / MiB).toFixed(0), s.toFixed(1), (size / MiB / s).toFixed(2)]);
    } finally {
      session.close();
    }
  }
  // The raw path: the WebDAV port channel into /dev/virtio-ports, read by dd (oriel-webdavd stopped to free the port).
  await vm.exec(['systemctl', 'stop', 'oriel-webdavd.service']);
  for (const [label, target] of targets) {
    const session = await openSpiceSession({ ...target, channelTypes: [ChannelType.WEBDAV] });
    try {
      const port = await session.whenChannel<PortChannel>(ChannelType.WEBDAV);
      const count = size / MiB;
      const reading = vm.exec(
        [
          'sh',
          '-c',
          `dd if=/dev/virtio-ports/org.spice-space.webdav.0 of=/dev/null bs=1M count=${count} iflag=fullblock 2>&1`,
        ],
        { timeoutMs: 600_000 },
      );
      if (!port.opened) await Promise.race([nextEvent(port.onOpened, (o) => o), sleep(20_000)]);
      if (!port.opened) throw new Error('the guest did not open the port');
      const t0 = performance.now();
      const block = randomBytes(MiB);
      for (let i = 0; i < count; i++) {
        port.write(block);
        if (i % 8 === 7) await sleep(0);
      }
      const r = await reading;
      const s = (performance.now() - t0) / 1000;
      if (!r.stdout.includes(`${count}+0 records in`)) throw new Error(`dd in the guest: ${r.stdout}`);
      rows.push([`raw port channel, ${label}`, String(count), s.toFixed(1), (count / s).toFixed(2)]);
    } finally {
      session.close();
    }
  }
  console.log(
    `desktop guest booted in ${(vm.bootMs / 1000).toFixed(0)} s; load average ${(await import('node:os'))
      .loadavg()
      .map((l) => l.toFixed(2))
      .join(' ')}`,
  );
  console.log('| path | MiB | s | MiB/s |\n|---|---|---|---|');
  for (const r of rows) console.log(`| ${r.join(' | ')} |`);
} finally {
  await killVmsIn(ts.config.dataDir);
  await ts.destroy();
  rmSync(dir, { recursive: true, force: true });
}

