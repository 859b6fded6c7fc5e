// Capture throughput of the checkpoint receiving path, without a guest: synthetic QEMU 7.2 migration streams
// (bench/capture-stream.ts) are written to files, then sent by a child process through a unix socket into the same
// receiver the capture worker runs (parser → page store → seal → manifest), and timed from the first byte to the
// manifest. Beside each, floors measured without the store's code on the same bytes: the socket alone (bytes read
// and dropped), the parser alone (no-op sink), the parser with a plain sha256 per page, and Node's sha256 and
// deflateRaw (level 1) over the stream's data pages, one core each. Then the restore pre-check (every object the
// checkpoint names read and hashed) in objects/s. "store cpu" is the CPU time of the receiving process (all its
// threads) per GB of stream while it stores: unlike MB/s it barely moves with other work on the machine; on n free
// cores the store cannot go faster than n / (cpu s/GB) GB/s.
// Usage: node --import tsx bench/capture-throughput.ts [mixedMiB=2048] [kindMiB=512] [rounds=3] [--pool=N]
//   --pool=N  capture worker threads (default: the store's default; 0 = single-threaded in the receiving thread)
//   --only=text,mixed  only those stream kinds (zero, repeated, text, random, mixed)
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdirSync, readFileSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { deflateRawSync } from 'node:zlib';
import { CheckpointStore, type Manifest } from '../src/checkpoint/page-store/index.ts';
import { MigrationStreamParser, type StreamSink } from '../src/checkpoint/stream/index.ts';
import { scratchRoot } from '../src/config.ts';
import { dirtied, makeGuest, writeGuestStream, type Mix } from './capture-stream.ts';
import { closePool, receiveInto, poolOption, precheck } from './capture-receive.ts';

const args = process.argv.slice(2).filter((a) => !a.startsWith('--'));
const mixedMiB = Number(args[0] ?? 2048);
const kindMiB = Number(args[1] ?? 512);
const rounds = Number(args[2] ?? 3);
const dir = join(scratchRoot(), `capture-bench-${process.pid}`);
mkdirSync(dir, { recursive: true });
const load = () => readFileSync('/proc/loadavg', 'utf8').split(' ').slice(0, 3).join(' ');
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
const MBps = (bytes: number, ms: number) => (bytes / 1e6 / (ms / 1000)).toFixed(0);

/** Sends `file` through a fresh unix socket (a child process writes it) and hands each chunk to `onData`; resolves
 * with the ms from the first byte to `onEnd`'s promise. */
async function overSocket(file: string, onData: (sock: import('node:net').Socket, c: Buffer) => void,
  onEnd: () => Promise<unknown> | unknown): Promise<number> {
  const path = join(dir, 'sock');
  rmSync(path, { force: true });
  let t0 = 0;
  const done = new Promise<number>((resolve, reject) => {
    const srv = createServer((sock) => {
      srv.close();
      sock.on('data', (c: Buffer) => {
        if (!t0) t0 = performance.now();
        try { onData(sock, c); } catch (e) { reject(e); sock.destroy(); }
      });
      sock.on('end', () => {
        void (async () => onEnd())().then(() => resolve(performance.now() - t0), reject);
      });
    });
    srv.listen(path, () => {
      const child = spawn(process.execPath, ['-e',
        'const [f,s]=process.argv.slice(1);require("fs").createReadStream(f,{highWaterMark:1<<20})' +
        '.pipe(require("net").connect(s))', file, path], { stdio: 'inherit' });
      child.on('error', reject);
    });
  });
  return done;
}

const nullSink: StreamSink = { page: () => undefined };
function hashSink(): StreamSink {
  return { page: (_b, _i, d) => { if (d) createHash('sha256').update(d).digest(); } };
}

async function parseOnly(file: string, sink: StreamSink): Promise<number> {
  const p = new MigrationStreamParser(sink);
  return overSocket(file, (_s, c) => p.push(c), () => p.end());
}

/** Node's sha256 and deflateRaw level 1 over the data pages of the stream (parsed first, untimed). */
function cpuFloors(file: string): { sha: number; deflate: number; pages: number } {
  const pages: Buffer[] = [];
  const p = new MigrationStreamParser({ page: (_b, _i, d) => { if (d) pages.push(Buffer.from(d)); } });
  const bytes = readFileSync(file);
  for (let i = 0; i < bytes.length; i += 1 << 20) p.push(bytes.subarray(i, i + (1 << 20)));
  p.end();
  let t = performance.now();
  for (const d of pages) createHash('sha256').update(d).digest();
  const sha = performance.now() - t;
  const distinct = new Map<string, Buffer>();
  for (const d of pages) distinct.set(createHash('sha256').update(d).digest().toString('latin1'), d);
  t = performance.now();
  for (const d of distinct.values()) deflateRawSync(d, { level: 1 });
  return { sha, deflate: performance.now() - t, pages: pages.length };
}

interface Case { name: string; file: string; bytes: number; parentOf?: string }
const cases: Case[] = [];
async function addCase(name: string, memMiB: number, mix: Mix, incremental?: number): Promise<void> {
  const g = makeGuest(memMiB, mix);
  const file = join(dir, `${name}.stream`);
  const bytes = await writeGuestStream(g, file);
  cases.push({ name, file, bytes });
  if (incremental !== undefined) {
    const f2 = join(dir, `${name}-incr.stream`);
    const b2 = await writeGuestStream(dirtied(g, incremental), f2);
    cases.push({ name: `${name} incremental (${incremental * 100}% changed)`, file: f2, bytes: b2, parentOf: name });
  }
}

console.log(`generating streams in ${dir} (load ${load()})`);
const only = process.argv.find((a) => a.startsWith('--only='))?.split('=')[1];
const want = (k: string) => !only || only.split(',').includes(k);
if (want('zero')) await addCase('zero', kindMiB, { zero: 1 });
if (want('repeated')) await addCase('repeated', kindMiB, { repeated: 1 });
if (want('text')) await addCase('text', kindMiB, { text: 1 });
if (want('random')) await addCase('random', kindMiB, { random: 1 });
if (want('mixed')) await addCase('mixed', mixedMiB, { zero: 45, repeated: 10, text: 30, random: 15 }, 0.05);

console.log(`pool: ${poolOption() ?? 'default'}; rounds ${rounds}; medians\n`);
const head = '| stream | MB | socket floor MB/s | parse MB/s | parse+sha256 MB/s | **store MB/s** | store cpu s/GB | seal ms | ' +
  'sha256 1 core MB/s | deflate 1 core MB/s | load |';
console.log(head);
console.log('|---|---|---|---|---|---|---|---|---|---|---|');
const manifests = new Map<string, Manifest>();
const precheckRows: string[] = [];
for (const c of cases) {
  const sock: number[] = [], parse: number[] = [], hashed: number[] = [], stored: number[] = [], seal: number[] = [];
  const cpu: number[] = [];
  for (let r = 0; r < rounds; r++) {
    sock.push(await overSocket(c.file, () => undefined, () => undefined));
    parse.push(await parseOnly(c.file, nullSink));
    hashed.push(await parseOnly(c.file, hashSink()));
    // A fresh store per round; an incremental case first stores its parent (untimed).
    const root = join(dir, `store-${r}`);
    rmSync(root, { recursive: true, force: true });
    const store = new CheckpointStore(root);
    try {
      let parent: Manifest | undefined;
      if (c.parentOf) {
        const pc = cases.find((x) => x.name === c.parentOf)!;
        parent = (await overSocketReceive(pc.file, store, undefined, `p${r}`)).m;
      }
      const got = await overSocketReceive(c.file, store, parent, `c${r}`);
      stored.push(got.ms);
      cpu.push(got.cpuMs);
      seal.push(got.sealMs);
      if (r === rounds - 1 && c.name.startsWith('mixed')) {
        manifests.set(c.name, got.m);
        const pc: string[] = [];
        for (let k = 0; k < rounds; k++) {
          const t = performance.now();
          const n = await precheck(store, got.m);
          pc.push(`${n}:${performance.now() - t}`);
        }
        const ms = median(pc.map((x) => Number(x.split(':')[1])));
        const n = Number(pc[0]!.split(':')[0]);
        precheckRows.push(`| ${c.name} | ${n} | ${ms.toFixed(0)} | ${((n / ms) * 1000).toFixed(0)} |`);
      }
    } finally {
      store.close();
      rmSync(root, { recursive: true, force: true });
    }
  }
  const f = cpuFloors(c.file);
  const dataBytes = f.pages * 4096;
  console.log(
    `| ${c.name} | ${(c.bytes / 1e6).toFixed(0)} | ${MBps(c.bytes, median(sock))} | ${MBps(c.bytes, median(parse))} | ` +
      `${MBps(c.bytes, median(hashed))} | **${MBps(c.bytes, median(stored))}** | ` +
      `${(median(cpu) / 1000 / (c.bytes / 1e9)).toFixed(2)} | ${median(seal).toFixed(0)} | ` +
      `${MBps(dataBytes, f.sha)} | ${f.deflate ? MBps(dataBytes, f.deflate) : '-'} | ${load()} |`,
  );
}
console.log('\nrestore pre-check (every object the checkpoint names read, inflated and hashed; warm page cache)\n');
console.log('| checkpoint | objects | ms | objects/s |\n|---|---|---|---|');
for (const r of precheckRows) console.log(r);
rmSync(dir, { recursive: true, force: true });
await closePool();

async function overSocketReceive(file: string, store: CheckpointStore, parent: Manifest | undefined, id: string) {
  const recv = await receiveInto(store, parent, id);
  const u = process.cpuUsage();
  const ms = await overSocket(file, (s, c) => recv.push(s, c), () => recv.end());
  const used = process.cpuUsage(u);
  return { ms, sealMs: recv.sealMs(), m: recv.manifest(), cpuMs: (used.user + used.system) / 1000 };
}
