// OpenCL remoting benchmark (issue #16), one run, by hand (not in the suite): oriel-cl-bench (src/remoting/guest/
// bench.c) in a tiny-opencl guest with --opencl, and the same program on the host against its OpenCL directly.
//   per call: µs per enqueue of an empty kernel (the round trip through the port and the helper)
//   host→device: MB/s writing a buffer of 1 MiB … MAX, the copy path (clEnqueueWriteBuffer of an ordinary buffer:
//     through virtio-serial when remoted) and zero copy (map, memcpy, unmap of a CL_MEM_ALLOC_HOST_PTR buffer: in
//     the ivshmem window when remoted)
//   matmul: 1024×1024, the kernel alone and with its buffers written and the result read (zero copy)
// A third column runs the host binary through the guest ICD against an in-process helper session (a unix socket for
// the port, a file for the window): remoting's own cost, without the emulated CPU (the guest runs under TCG here).
// The guest gets a window of MAX MiB (a power of two, ≤ 2048) and RAM for its MAX MiB source buffer.
// Usage: node --import tsx bench/opencl.ts [MAX MiB=1024] [largest copy-path MiB=64]
import { execFile } from 'node:child_process';
import { closeSync, ftruncateSync, mkdtempSync, openSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { ensureTinyOpenclImage } from '../test/helpers/images.ts';
import { startTestServer } from '../test/helpers/server.ts';
import { FrameSplitter } from '../src/remoting/protocol.ts';
import { Session } from '../src/remoting/session.ts';
import { Window } from '../src/remoting/window.ts';

const run = promisify(execFile);
const MAX = Number(process.argv[2] ?? 1024);
const MAX_COPY = Number(process.argv[3] ?? 64);
if (!(MAX >= 1 && MAX <= 2048 && (MAX & (MAX - 1)) === 0)) throw new Error('MAX MiB: a power of two, 1 … 2048');

interface Figures { nullUs: number; bw: Map<string, number>; matmul: [number, number] }

function parse(out: string): Figures {
  const f: Figures = { nullUs: NaN, bw: new Map(), matmul: [NaN, NaN] };
  for (const line of out.split('\n')) {
    const w = line.trim().split(/\s+/);
    if (w[0] === 'null') f.nullUs = Number(w[1]);
    if (w[0] === 'bw') f.bw.set(`${w[1]} ${w[2]}`, Number(w[3]));
    if (w[0] === 'matmul') f.matmul = [Number(w[1]), Number(w[2])];
    if (w[0] === 'error') throw new Error(`oriel-cl-bench: ${line}`);
  }
  return f;
}

const build = mkdtempSync(join(tmpdir(), 'oriel-clbench-'));

/** oriel-cl-bench on the host through the guest ICD and a helper session served here. */
async function remotedOnHost(): Promise<string> {
  const file = join('/dev/shm', `oriel-clbench-${process.pid}`); // shmem, as a VM's window
  const fd = openSync(file, 'w', 0o600);
  ftruncateSync(fd, MAX * 2 ** 20);
  closeSync(fd);
  const win = Window.open(file);
  const session = new Session(undefined, win);
  const sock = join(build, 'port.sock');
  const server = createServer((c) => {
    const split = new FrameSplitter();
    c.on('data', (d) => {
      for (const body of split.push(d)) c.write(session.handle(body));
    });
  }).listen(sock);
  try {
    const env = { ...process.env, OCL_ICD_VENDORS: join(build, 'liboriel-opencl.so'),
      ORIEL_OPENCL_PORT: `unix:${sock}`, ORIEL_OPENCL_WINDOW: file };
    return (await run(join(build, 'oriel-cl-bench'), [String(MAX), String(MAX)], { env, maxBuffer: 1 << 20 })).stdout;
  } finally {
    server.close();
    session.close();
    win.close();
    rmSync(file, { force: true });
  }
}
try {
  await run('sh', [join(import.meta.dirname, '../src/remoting/guest/build.sh'), build],
    { env: { ...process.env, NODE: process.execPath } });
  console.error('host: oriel-cl-bench …');
  const host = parse((await run(join(build, 'oriel-cl-bench'), [String(MAX), String(MAX)],
    { maxBuffer: 1 << 20 })).stdout);
  console.error('host, remoted through a helper session (no VM): oriel-cl-bench …');
  const local = parse(await remotedOnHost());
  await ensureTinyOpenclImage();
  const t = await startTestServer();
  let guest: Figures;
  try {
    const memoryMiB = Math.max(256, MAX + 384);
    const c = await t.admin.post('/api/vms',
      { name: 'clbench', image: 'tiny-opencl', memoryMiB, opencl: true, openclWindowMiB: Math.max(16, MAX) });
    if (c.status !== 201) throw new Error(JSON.stringify(c.body));
    const s = await t.admin.post('/api/vms/clbench/start');
    if (s.body.state !== 'running') throw new Error(JSON.stringify(s.body));
    console.error(`guest (TCG, ${memoryMiB} MiB RAM, ${MAX} MiB window): oriel-cl-bench …`);
    const r = await t.admin.post('/api/vms/clbench/exec',
      { argv: ['oriel-cl-bench', String(MAX), String(MAX_COPY)], timeoutSec: 3600 });
    if (r.body.exitCode !== 0) throw new Error(JSON.stringify(r.body));
    guest = parse(r.body.stdout);
  } finally {
    await t.destroy();
  }

  const fmt = (v: number | undefined, d = 0) => (v === undefined || Number.isNaN(v) ? '—' : v.toFixed(d));
  const rows: string[][] = [['', 'guest (remoted)', 'host (remoted)', 'host (direct)', 'guest / host']];
  const pct = (g?: number, h?: number) => (g && h ? `${((100 * g) / h).toFixed(0)} %` : '—');
  rows.push(['null kernel, µs per call', fmt(guest.nullUs, 1), fmt(local.nullUs, 1), fmt(host.nullUs, 1), '']);
  for (let mib = 1; mib <= MAX; mib = mib * 4 > MAX && mib < MAX ? MAX : mib * 4) {
    for (const kind of ['copy', 'zc'] as const) {
      const g = guest.bw.get(`${kind} ${mib}`);
      const h = host.bw.get(`${kind} ${mib}`);
      const label = `${mib} MiB ${kind === 'copy' ? 'copy path' : 'zero copy'}, MB/s`;
      rows.push([label, fmt(g), fmt(local.bw.get(`${kind} ${mib}`)), fmt(h), pct(g, h)]);
    }
  }
  for (const [i, what] of [[0, 'kernel'], [1, 'with buffers']] as const) {
    rows.push([`matmul 1024² ${what}, s`, fmt(guest.matmul[i], 3), fmt(local.matmul[i], 3), fmt(host.matmul[i], 3),
      pct(host.matmul[i], guest.matmul[i])]);
  }
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => r[i]!.length)));
  for (const r of rows) console.log(r.map((c, i) => (i ? c.padStart(widths[i]!) : c.padEnd(widths[i]!))).join('  '));
  console.log(`(copy path measured up to ${MAX_COPY} MiB in the guest; matmul "guest / host" is speed, host time / guest)`);
} finally {
  rmSync(build, { recursive: true, force: true });
}
