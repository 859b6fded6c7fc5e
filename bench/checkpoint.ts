// Checkpoint benchmark on the tiny guest (TCG): pause (QEMU's STOP→RESUME event timestamps), duration, bytes
// written against the full stream and the compressed floor, restore time, and QEMU's own `savevm` pause beside them.
// Usage: node --import tsx bench/checkpoint.ts [memoryMiB=256] [checkpoints=5]
import { deflateRawSync } from 'node:zlib';
import { CheckpointService } from '../src/checkpoint/index.ts';
import type { QmpEvent } from '../src/vm/qmp/index.ts';
import { makeRig, bootTiny } from '../test/checkpoint/helpers.ts';

const mem = Number(process.argv[2] ?? 256);
const count = Number(process.argv[3] ?? 5);
const rig = await makeRig();
const svc = new CheckpointService(rig.vms, { root: CheckpointService.defaultRoot(rig.dataDir), qemuImg: rig.qemuImg });
const ms = (e: QmpEvent) => e.timestamp.seconds * 1000 + e.timestamp.microseconds / 1000;
try {
  await bootTiny(rig, 'b', mem);
  // 32 MiB of random data in RAM, 64 KiB of it rewritten every 100 ms by a background loop.
  await rig.vms.exec('b', ['sh', '-c', 'mkdir -p /mnt && mount -t tmpfs t /mnt && dd if=/dev/urandom of=/mnt/p bs=1M count=32 2>/dev/null; (while :; do dd if=/dev/urandom of=/mnt/p bs=4k count=16 seek=$((RANDOM % 8000)) conv=notrunc 2>/dev/null; sleep 0.1; done) >/dev/null 2>&1 &']);
  const rows: string[] = [];
  let lastId = '';
  for (let i = 1; i <= count; i++) {
    const m = await svc.create('b');
    lastId = m.id;
    // Compressed floor: every non-zero page of this checkpoint deflated alone, no dedup across checkpoints.
    let floor = 0;
    for (const p of svc.store.pages(m)) if (p.data) floor += Math.min(4096, deflateRawSync(p.data, { level: 1 }).length);
    rows.push([i, m.stats.pauseMs, m.stats.durationMs, m.stats.streamBytes, floor, m.stats.newBytes, m.disks[0]?.mode, m.disks[0]?.bytes].join('\t'));
    await new Promise((r) => setTimeout(r, 1000));
  }
  console.log('n\tpause ms\tduration ms\tfull stream B\tcompressed floor B\twritten B\tdisk\tdisk image B');
  for (const r of rows) console.log(r);
  const r = await svc.restore(lastId);
  console.log(`restore of the last checkpoint: ${r.restoreMs} ms (QEMU start to guest running), stream ${r.streamBytes} B`);
  const qmp = rig.vms.qmp('b');
  for (let i = 0; i < 2; i++) {
    const evs: QmpEvent[] = [];
    const off = qmp.onEvent((e) => { if (e.event === 'STOP' || e.event === 'RESUME') evs.push(e); });
    await qmp.execute('human-monitor-command', { 'command-line': `savevm bench${i}` }, { timeoutMs: 120_000 });
    await new Promise((res) => setTimeout(res, 100));
    off();
    const s = evs.find((e) => e.event === 'STOP'), e = evs.find((x) => x.event === 'RESUME');
    console.log(`QEMU savevm pause: ${s && e ? (ms(e) - ms(s)).toFixed(1) : '?'} ms`);
  }
} finally {
  svc.close();
  await rig.destroy();
}
