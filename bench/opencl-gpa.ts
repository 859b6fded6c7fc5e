// Issue #16: zero copy of *ordinary* guest buffers by their guest-physical pages, measured against the ivshmem
// window Oriel uses (src/remoting/window.ts). One run, by hand (not in the suite; a TCG guest: take the guest lock):
//   flock /tmp/oriel-guest.lock node --import tsx bench/opencl-gpa.ts [MAX MiB=1024]
// A tiny-opencl guest whose RAM is a shared memfd (QEMU through a wrapper that adds `-machine memory-backend=…
// -object memory-backend-memfd,share=on`: Oriel's own VMs have private RAM) runs bench/opencl-gpa.c (built here
// with gcc, sent through `exec`): for buffers of 1, 16, 256 MiB … MAX, in three layouts (thp: huge pages; 4k: small
// pages of a fresh guest; scattered: small pages after the guest's free memory was fragmented), it pins the buffer,
// reads its page-frame numbers from /proc/self/pagemap and merges them into contiguous runs. The host then opens
// the VM's RAM through /proc/<qemu>/fd and, for those runs,
//   remap: maps each run MAP_FIXED into one reserved range (a contiguous host view), touches it, unmaps it;
//   gather: copies each run into a host buffer;
// and checks both views hold the guest's bytes. The ivshmem window costs nothing per call (the helper adds an offset
// to its one mapping, after a bounds check); its limits are in docs/opencl-zero-copy.md.
import { execFileSync } from 'node:child_process';
import { chmodSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { defaultConfig } from '../src/config.ts';
import { vmPaths } from '../src/vm/paths.ts';
import { ensureTinyOpenclImage } from '../test/helpers/images.ts';
import { startTestServer } from '../test/helpers/server.ts';
import { GuestRam, gather, median, parseRuns, remap, type GatherTimes, type RemapTimes } from './opencl-gpa-host.ts';

const MAX = Number(process.argv[2] ?? 1024);
if (!(MAX >= 1 && MAX <= 1024)) throw new Error('MAX MiB: 1 … 1024');
const SIZES = [1, 16, 256, 1024].filter((m) => m <= MAX);
const MEMORY_MIB = 2 * MAX + 512; // the buffer and its copy (COPY_US), the guest's own; q35 keeps it below 2.75 GiB
const VM = 'gpa';

interface Row {
  layout: string; mib: number; pages: number; runs: number;
  pinUs: number; readUs: number; mergeUs: number; copyUs: number;
  remap: RemapTimes; gather: GatherTimes;
}

const scratch = mkdtempSync(join(tmpdir(), 'oriel-gpa-'));
const rows: Row[] = [];
let guestInfo = '';
try {
  execFileSync('gcc', ['-O2', '-Wall', '-Wextra', '-Werror', '-o', join(scratch, 'prog'),
    join(import.meta.dirname, 'opencl-gpa.c')]);
  const prog = readFileSync(join(scratch, 'prog')).toString('base64');
  // QEMU with this VM's RAM as a shared memfd: what a helper mapping guest pages would need.
  const wrapper = join(scratch, 'qemu');
  writeFileSync(wrapper, `#!/bin/sh\ncase "$*" in *process=oriel-${VM},*|*process=oriel-${VM}\\ *) exec `
    + `${defaultConfig().qemuBinary} "$@" -machine memory-backend=gpa-ram `
    + `-object memory-backend-memfd,id=gpa-ram,size=${MEMORY_MIB}M,share=on ;; esac\n`
    + `exec ${defaultConfig().qemuBinary} "$@"\n`);
  chmodSync(wrapper, 0o755);
  await ensureTinyOpenclImage();
  const t = await startTestServer({ qemuBinary: wrapper });
  let ram: GuestRam | undefined;
  try {
    const c = await t.admin.post('/api/vms', { name: VM, image: 'tiny-opencl', memoryMiB: MEMORY_MIB });
    if (c.status !== 201) throw new Error(JSON.stringify(c.body));
    const s = await t.admin.post(`/api/vms/${VM}/start`);
    if (s.body.state !== 'running') throw new Error(JSON.stringify(s.body));
    const sh = async (script: string, timeoutSec = 600): Promise<string> => {
      const r = await t.admin.post(`/api/vms/${VM}/exec`, { argv: ['sh', '-c', script], timeoutSec });
      if (r.status !== 200 || r.body.exitCode !== 0) throw new Error(`guest: ${script.slice(0, 80)}: ${JSON.stringify(r.body)}`);
      return r.body.stdout as string;
    };
    guestInfo = await sh(`mkdir -p /tmp/gpa && echo '${prog}' | base64 -d >/tmp/gpa/prog && chmod +x /tmp/gpa/prog`
      + ' && echo "kernel $(uname -r), THP $(cat /sys/kernel/mm/transparent_hugepage/enabled)"'
      // The tiny guest boots with THP off; madvise lets the thp layout ask for huge pages and the others not.
      + ' && echo madvise >/sys/kernel/mm/transparent_hugepage/enabled'
      + ` && (/tmp/gpa/prog /tmp/gpa ${SIZES.join(' ')} </dev/null >/tmp/gpa/log 2>&1 & echo $! >/tmp/gpa/pid)`);
    const pid = Number(readFileSync(vmPaths(t.config.dataDir, c.body.id).pidfile, 'utf8'));
    ram = GuestRam.open(pid, BigInt(MEMORY_MIB) << 20n);
    for (;;) {
      const out = await sh('cat /tmp/gpa/results 2>/dev/null; cat /tmp/gpa/log');
      if (/^error/m.test(out)) throw new Error(`guest: ${out}`);
      const results = out.split('\n').filter((l) => l.startsWith('gpa '));
      if (results.length === rows.length) {
        if (/^end$/m.test(out)) break;
        await sleep(1000);
        continue;
      }
      const [, layout, mib, pages, runs, pinUs, readUs, mergeUs, seed, copyUs] = results[rows.length]!.split(' ');
      const file = `/tmp/gpa/runs-${layout}-${mib}`;
      const list = parseRuns(await sh(`cat ${file} && rm ${file}`));
      const total = list.reduce((n, r) => n + r.pages, 0n);
      if (list.length !== Number(runs) || total !== BigInt(pages!)) throw new Error(`${file}: runs do not add up`);
      const bytes = BigInt(mib!) << 20n;
      const n = Number(mib) <= 16 ? 7 : 3;
      console.error(`${layout} ${mib} MiB: ${runs} runs; remapping and gathering on the host …`);
      const rm = median(n, () => remap(ram!, list, bytes, BigInt(seed!), true), (x) => x.mapUs + x.touchUs);
      const ga = median(n, () => gather(ram!, list, bytes, BigInt(seed!)), (x) => x.copyUs);
      rows.push({ layout: layout!, mib: Number(mib), pages: Number(pages), runs: Number(runs), pinUs: Number(pinUs),
        readUs: Number(readUs), mergeUs: Number(mergeUs), copyUs: Number(copyUs), remap: rm, gather: ga });
      await sh('kill -USR1 $(cat /tmp/gpa/pid)');
    }
  } finally {
    ram?.close();
    await t.destroy();
  }
} finally {
  rmSync(scratch, { recursive: true, force: true });
}

const ms = (us: number) => (us >= 100_000 ? (us / 1000).toFixed(0) : us >= 1000 ? (us / 1000).toFixed(1)
  : (us / 1000).toFixed(2));
const gbs = (mib: number, us: number) => ((mib * 2 ** 20) / us / 1000).toFixed(1);
const table: string[][] = [[
  'buffer', 'layout', 'pages', 'runs', 'list KiB',
  'g: pin', 'g: pagemap', 'g: merge', 'g: memcpy',
  'h: mmap runs', 'h: 1st touch', 'h: mmap+POPULATE', 'h: munmap', 'h: remap/call', 'h: gather (GB/s)', 'checked',
]];
for (const r of rows) {
  table.push([
    `${r.mib} MiB`, r.layout, String(r.pages), String(r.runs), (r.runs * 16 / 1024).toFixed(r.runs < 64 ? 2 : 0),
    ms(r.pinUs), ms(r.readUs), ms(r.mergeUs), r.copyUs ? ms(r.copyUs) : '—',
    ms(r.remap.mapUs), ms(r.remap.touchUs), ms(r.remap.populateUs), ms(r.remap.unmapUs),
    ms(r.remap.populateUs + r.remap.unmapUs),
    `${ms(r.gather.copyUs)} (${gbs(r.mib, r.gather.copyUs)})`, r.remap.ok && r.gather.ok ? 'yes' : 'NO',
  ]);
}
const widths = table[0]!.map((_, i) => Math.max(...table.map((r) => r[i]!.length)));
console.log(`guest: tiny-opencl under TCG, ${MEMORY_MIB} MiB RAM (shared memfd); ${guestInfo.trim()} (set to madvise)`);
for (const r of table) console.log(r.map((c, i) => (i < 2 ? c.padEnd(widths[i]!) : c.padStart(widths[i]!))).join('  '));
console.log('times in ms; g: in the guest (per buffer: mlock, pread of /proc/self/pagemap, merging into runs; '
  + 'memcpy: one copy of the buffer, what the window path costs an ordinary buffer); h: on the host (koffi → libc; '
  + 'median of 3–7), per call: map each run MAP_FIXED into a reserved range, first touch (a read a page), the '
  + 'same map with MAP_POPULATE instead, munmap (remap/call: POPULATE + munmap); or gather: memcpy each run into a host buffer. list: the page list '
  + 'sent to the host (16 B a run). The ivshmem window: 0 per call (base + offset after a bounds check).');
if (rows.some((r) => !r.remap.ok || !r.gather.ok)) process.exitCode = 1;
