// Where a checkpoint's pause goes (TCG, tiny guest, default 2 GiB with 512 MiB of data (DATA_MIB), a guest loop
// rewriting RAM at `rate` MiB/s): QEMU's background snapshot alone, after `stop`, after `stop` + an incremental
// backup `transaction`, and Oriel's background checkpoint, round by round; per run QEMU's STOP → RESUME, the time of
// each QMP reply, query-migrate's setup-time (populate + set-up) and the guest RAM's THP share. --strace: the last
// round runs under `strace -f -tt -T` of QEMU (files in /tmp/anat; the populate loop is the silent gap between the
// migration thread's creation and its first mprotect, the write-protection walk is the first UFFDIO_WRITEPROTECT).
// Findings: src/checkpoint/README.md, "Where the background pause goes".
// Usage: node --import tsx bench/pause-anatomy.ts [memoryMiB=2048] [rounds=3] [rate=16] [--strace]
import { execFileSync, spawn } from 'node:child_process';
import { mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { createServer } from 'node:net';
import { pauseFromEvents, waitMigration } from '../src/checkpoint/migration.ts';
import { CheckpointService } from '../src/checkpoint/index.ts';
import { DISK_NODE } from '../src/vm/qemu-args.ts';
import type { QmpEvent } from '../src/vm/qmp/index.ts';
import { makeRig, bootTiny } from '../test/checkpoint/helpers.ts';

const args = process.argv.slice(2).filter((a) => !a.startsWith('--'));
const mem = Number(args[0] ?? 2048), rounds = Number(args[1] ?? 3), rate = Number(args[2] ?? 16);
const doStrace = process.argv.includes('--strace');
const dataMiB = Number(process.env.DATA_MIB ?? 512), SRC = 64;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const rig = await makeRig();
const svc = new CheckpointService(rig.vms, { root: CheckpointService.defaultRoot(rig.dataDir), qemuImg: rig.qemuImg });
const sh = async (cmd: string) => {
  const r = await rig.vms.exec('b', ['sh', '-c', cmd], 600_000);
  if (r.exitCode !== 0) throw new Error(`guest: ${cmd}: ${r.stderr}`);
  return r.stdout.trim();
};
const smaps = (pid: number) => {
  const t = readFileSync(`/proc/${pid}/smaps_rollup`, 'utf8');
  const g = (k: string) => Number(t.match(new RegExp(`^${k}:\\s+(\\d+)`, 'm'))?.[1] ?? 0) >> 10;
  return `Rss ${g('Rss')} MiB, AnonHuge ${g('AnonHugePages')} MiB`;
};

try {
  await bootTiny(rig, 'b', mem);
  await sh(`mkdir -p /mnt && mount -t tmpfs -o size=${dataMiB + SRC + 64}m t /mnt && ` +
    `dd if=/dev/urandom of=/mnt/src bs=1M count=${SRC} 2>/dev/null`);
  for (let at = 0; at < dataMiB; at += 32) {
    await sh(`dd if=/mnt/src of=/mnt/p bs=1M count=32 seek=${at} iflag=skip_bytes skip=$((${at} * 4099 + 17)) ` +
      'conv=notrunc 2>/dev/null');
  }
  if (rate > 0) {
    const chunk = Math.max(1, Math.round(rate / 8));
    const cs = 'read up _ < /proc/uptime; t=${up%.*}${up#*.}';
    await sh(`(${cs}; t0=$t; n=0; while :; do ${cs}; if [ $n -lt $(( (t - t0) * ${rate} / 100 )) ]; then ` +
      `dd if=/mnt/src of=/mnt/p bs=1M count=${chunk} seek=$((RANDOM % ${dataMiB - chunk})) iflag=skip_bytes ` +
      `skip=$(( (RANDOM * 32768 + RANDOM) % ${(SRC - chunk) * 2 ** 20} )) conv=notrunc 2>/dev/null; ` +
      `n=$((n + ${chunk})); else sleep 0.05; fi; done) >/dev/null 2>&1 &`);
  }
  const pid = rig.vms.get('b').pid!;
  console.log(`fresh: ${smaps(pid)}`);
  await svc.create('b', { pauseMode: 'background' });
  console.log(`after 1st checkpoint: ${smaps(pid)}`);
  const qmp = rig.vms.qmp('b');
  const sock = join(rig.dataDir, 'sink.sock');
  const sink = createServer((s) => s.resume());
  await new Promise<void>((r) => sink.listen(sock, r));
  await qmp.execute('block-dirty-bitmap-add', { node: DISK_NODE, name: 'anat' });
  const size = (await qmp.execute('query-block')).find((b) => b.inserted?.['node-name'] === DISK_NODE)!
    .inserted!.image['virtual-size'];
  let n = 0;
  const caps = async (on: boolean) => qmp.execute('migrate-set-capabilities', {
    capabilities: [{ capability: 'background-snapshot', state: on }, { capability: 'events', state: true }] });
  await caps(true);

  type Step = { name: string; cmd: string; args?: object };
  async function variant(label: string, steps: () => Promise<Step[]>, trace = false): Promise<void> {
    const pre = await steps();
    const evs: QmpEvent[] = [];
    const off = qmp.onEvent((e) => { if (['STOP', 'RESUME'].includes(e.event)) evs.push(e); });
    let st: ReturnType<typeof spawn> | undefined;
    const out = `/tmp/anat/strace-${++n}.txt`;
    if (trace) {
      mkdirSync('/tmp/anat', { recursive: true });
      st = spawn('strace', ['-f', '-tt', '-T', '-o', out, '-e',
        'trace=ioctl,fdatasync,fsync,connect,clone3,clone,sendmsg,write,writev,pwritev,pwrite64,madvise,mprotect',
        '-p', String(pid)], { stdio: 'ignore' });
      await sleep(1500);
    }
    const t0 = performance.now();
    const times = await Promise.all(pre.map(async (s) => {
      await qmp.execute(s.cmd, s.args as Record<string, unknown>);
      return `${s.name} ${(performance.now() - t0).toFixed(1)}`;
    }));
    const info = await waitMigration(qmp, 300_000);
    const pause = await pauseFromEvents(evs);
    off();
    if (st) { await sleep(300); st.kill('SIGINT'); await new Promise((r) => st!.once('exit', r)); }
    const stop = evs.find((e) => e.event === 'STOP');
    console.log(`${label}: pause ${pause} ms | replies at ${times.join(', ')} ms | ${info.status} downtime ` +
      `${info.downtime} setup ${(info as { 'setup-time'?: number })['setup-time']} | ${smaps(pid)}` +
      (trace ? ` | strace ${out} STOP at ${stop?.timestamp.seconds}.${stop?.timestamp.microseconds}` : ''));
    for (const j of await qmp.execute<{ id: string; status: string }[]>('query-jobs')) {
      while ((await qmp.execute<{ id: string; status: string }[]>('query-jobs')).find((x) => x.id === j.id)?.status
        !== 'concluded') await sleep(20);
      await qmp.execute('job-dismiss', { id: j.id });
    }
    await sleep(2000);
  }
  const uri = `unix:${sock}`;
  const backup = async (): Promise<Step> => {
    const k = ++n, file = join(rig.dataDir, `anat-${k}.qcow2`), node = `anat-t${k}`;
    execFileSync(rig.qemuImg, ['create', '-q', '-f', 'qcow2', file, String(size)]);
    await qmp.execute('blockdev-add', { driver: 'qcow2', 'node-name': node, file: { driver: 'file', filename: file },
      backing: null });
    return { name: 'transaction', cmd: 'transaction', args: { actions: [{ type: 'blockdev-backup', data: {
      device: DISK_NODE, target: node, 'job-id': `anat-j${k}`, sync: 'incremental', bitmap: 'anat',
      'auto-finalize': true, 'auto-dismiss': false } }] } };
  };

  for (let i = 0; i < rounds; i++) {
    const tr = doStrace && i === rounds - 1;
    await variant('plain background', async () => [{ name: 'migrate', cmd: 'migrate', args: { uri } }], tr);
    await variant('stop + migrate', async () => [{ name: 'stop', cmd: 'stop' },
      { name: 'migrate', cmd: 'migrate', args: { uri } }], tr);
    await variant('stop + backup + migrate', async () => [{ name: 'stop', cmd: 'stop' }, await backup(),
      { name: 'migrate', cmd: 'migrate', args: { uri } }], tr);
    const m = await svc.create('b', { pauseMode: 'background' });
    console.log(`Oriel background: pause ${m.stats.pauseMs} ms | ${smaps(pid)}`);
    await caps(true);
    await sleep(2000);
  }
  sink.close();
} finally {
  svc.close();
  await rig.destroy();
}
