// Fuzz of a live Oriel server. The server runs in a child process (bench/fuzz/child.ts) on a fresh data directory;
// this process signs in an admin and an ordinary user and throws inputs at it:
//   raw HTTP        malformed requests over TCP: request lines, headers, chunked encoding, Content-Length, slowloris
//   upgrade         WebSocket upgrade requests with junk (paths, keys, versions, credentials, tickets)
//   ws frames       junk frames after a real upgrade to the serial and SPICE consoles (token, ticket, bad ticket)
//   api             bodies generated from /api/openapi.json and mutated, on every route and method, as anonymous,
//                   bad token, user and admin
// then checks the server: alive, /api/health, an ordinary call, RSS (before, after, peak), and the status codes per
// kind (no 5xx but the documented ones). Last, 1,000 idle WebSockets (valid serial consoles, bad tickets, upgrades
// never finished) and GET /api/vms latency before and while they are open.
// WebSockets that get past the upgrade need a running VM: the tiny guest is booted (run under the guest lock:
//   flock /tmp/oriel-guest.lock node --import tsx bench/fuzz-server.ts [--inputs N] [--seconds S] [--no-guest])
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import fc from 'fast-check';
import { defaultConfig } from '../src/config.ts';
import { buildTinyImage } from '../src/vm/images/tiny.ts';
import { killVmsIn } from '../test/helpers/server.ts';
import { rawHttpInput, sendRaw, upgradeJunk } from '../test/helpers/fuzz/raw-http.ts';
import { sendFrames, wsFrame } from '../test/helpers/fuzz/ws-frames.ts';
import { apiInput, routesOf, sendApi, type Cred } from '../test/helpers/fuzz/api.ts';
import { count, drive, formatCounts, serverErrors, type Counts } from '../test/helpers/fuzz/run.ts';
import { idleAdmins, idleSockets, latency, type Idle } from './fuzz/idle.ts';

const arg = (name: string, dflt: number) => {
  const i = process.argv.indexOf(name);
  return i >= 0 ? Number(process.argv[i + 1]) : dflt;
};
const INPUTS = arg('--inputs', 100_000);
const SECONDS = arg('--seconds', 300);
const GUEST = !process.argv.includes('--no-guest');
const SEED = arg('--seed', 42);
const PASSWORD = 'fuzz-admin-password';

const dataDir = mkdtempSync(join(tmpdir(), 'ofz-'));
const child = spawn(process.execPath, ['--import', 'tsx', 'bench/fuzz/child.ts', dataDir, PASSWORD], {
  stdio: ['ignore', 'pipe', 'inherit'],
});
let exit: string | undefined;
child.on('exit', (code, sig) => { exit = `exited code=${code} signal=${sig}`; });
let logText = '';
const port = await new Promise<number>((resolve, reject) => {
  child.stdout!.on('data', (d: Buffer) => {
    logText += d.toString();
    const m = /READY (\d+)/.exec(logText);
    if (m) resolve(Number(m[1]));
  });
  child.once('exit', () => reject(new Error(`server did not start:\n${logText}`)));
});

// ---- memory of the server process ----
const mem = () => {
  const s = readFileSync(`/proc/${child.pid}/status`, 'utf8');
  const kb = (k: string) => Number(new RegExp(`${k}:\\s+(\\d+)`).exec(s)?.[1] ?? 0);
  return { rss: kb('VmRSS') / 1024, hwm: kb('VmHWM') / 1024 };
};
let peak = 0;
const sampler = setInterval(() => { try { peak = Math.max(peak, mem().rss); } catch { /* gone */ } }, 250);

// ---- accounts ----
const base = `http://127.0.0.1:${port}`;
async function call(method: string, path: string, token?: string, body?: unknown) {
  const res = await fetch(base + path, {
    method,
    headers: { ...(token ? { authorization: `Bearer ${token}` } : {}), ...(body ? { 'content-type': 'application/json' } : {}) },
    body: body ? JSON.stringify(body) : undefined,
  });
  const text = await res.text();
  let json: any; // eslint-disable-line @typescript-eslint/no-explicit-any -- untyped JSON replies
  try { json = JSON.parse(text); } catch { json = text; }
  return { status: res.status, body: json };
}
const login = async (username: string, password: string) => {
  const r = await call('POST', '/api/auth/login', undefined, { username, password, tokenName: 'fuzz' });
  if (r.status !== 200) throw new Error(`login ${username}: ${r.status} ${JSON.stringify(r.body)}`);
  return r.body.token as string;
};
const admin = await login('admin', PASSWORD);
await call('POST', '/api/users', admin, { name: 'fuzzuser', password: 'fuzzuser-password', role: 'user' });
const user = await login('fuzzuser', 'fuzzuser-password');
const auth: Record<Cred, Record<string, string>> = {
  anon: {}, bad: { authorization: 'Bearer oriel_not-a-real-token' },
  user: { authorization: `Bearer ${user}` }, admin: { authorization: `Bearer ${admin}` },
};

const realNames = ['fzu'];
let guestVm: string | undefined;
if (GUEST) {
  await buildTinyImage({ cacheDir: defaultConfig().cacheDir });
  for (const [name, token] of [['fzu', user], ['fzg', admin]] as const) {
    const r = await call('POST', '/api/vms', token, { name, image: 'tiny', memoryMiB: 128 });
    if (r.status !== 201) throw new Error(`create ${name}: ${JSON.stringify(r.body)}`);
  }
  const s = await call('POST', '/api/vms/fzg/start', admin, {});
  if (s.body.state !== 'running') throw new Error(`start: ${JSON.stringify(s.body)}`);
  await call('POST', '/api/vms/fzg/exec', admin, { argv: ['true'], timeoutSec: 120 });
  guestVm = 'fzg';
}
const idleTokens = guestVm ? await idleAdmins(base, admin) : [];
const before = mem();

// ---- the fuzz ----
const counts: Counts = new Map();
const started = Date.now();
const deadline = started + SECONDS * 1000;
const share = (f: number) => Math.round(INPUTS * f);
const phaseEnd = (f: number) => Math.min(deadline, Date.now() + SECONDS * 1000 * f);
const sent: Record<string, number> = {};
const serverErrorSamples: string[] = [];

sent['raw HTTP'] = await drive(rawHttpInput, { n: share(0.2), until: phaseEnd(0.25), concurrency: 48, seed: SEED }, async (i) => {
  count(counts, `raw:${i.kind}`, await sendRaw(port, i));
  return 1;
});
sent.upgrade = await drive(upgradeJunk(['fzg', 'fzu', 'nope'], [admin, user]),
  { n: share(0.1), until: phaseEnd(0.1), concurrency: 32, seed: SEED + 1 }, async (i) => {
    count(counts, 'upgrade-junk', await sendRaw(port, i));
    return 1;
  });
if (guestVm) {
  const credsFor = async (k: number): Promise<{ kind: string; path: string; headers: string[] }> => {
    if (k % 4 === 0) return { kind: 'ws:serial-token', path: `/api/vms/${guestVm}/serial`, headers: [`Authorization: Bearer ${admin}`] };
    if (k % 4 === 1) return { kind: 'ws:serial-no-auth', path: `/api/vms/${guestVm}/serial`, headers: [] };
    if (k % 4 === 2) {
      const t = await call('POST', `/api/vms/${guestVm}/console-ticket`, admin, {});
      return { kind: 'ws:spice-ticket', path: t.body.path, headers: [] };
    }
    return { kind: 'ws:spice-bad-ticket', path: `/api/vms/${guestVm}/spice?ticket=bogus`, headers: [] };
  };
  let k = 0;
  sent['ws frames'] = await drive(fc.array(wsFrame, { minLength: 1, maxLength: 40 }),
    { n: share(0.1), until: phaseEnd(0.15), concurrency: 16, seed: SEED + 2 }, async (frames) => {
      const c = await credsFor(k++);
      const r = await sendFrames(port, c.path, c.headers, frames, 1000);
      count(counts, c.kind, r.outcome);
      return Math.max(1, r.sent);
    });
}
const doc = (await call('GET', '/api/openapi.json', admin)).body;
const routes = routesOf(doc);
sent.api = await drive(apiInput(routes, realNames), { n: INPUTS - Object.values(sent).reduce((a, b) => a + b, 0),
  until: deadline, concurrency: 32, seed: SEED + 3 }, async (i) => {
  const s = await sendApi(port, i, auth);
  count(counts, `api:${i.kind}`, s);
  if (/^5/.test(s) && serverErrorSamples.length < 20) {
    serverErrorSamples.push(`${s} ${i.cred} ${i.method} ${i.path.slice(0, 120)} ${String(i.headers['content-type'])} ${String(i.body).slice(0, 200)}`);
  }
  return 1;
});
const fuzzSeconds = (Date.now() - started) / 1000;

// ---- after the fuzz ----
const alive = exit === undefined;
const health = alive ? await call('GET', '/api/health').catch((e: Error) => ({ status: e.message, body: '' })) : undefined;
const list = alive ? await call('GET', '/api/vms', user).catch((e: Error) => ({ status: e.message, body: '' })) : undefined;
const after = alive ? mem() : undefined;

// ---- idle WebSockets ----
let idle: Idle | undefined;
let idleSummary = '-';
let latBefore: { p50: number; p99: number } | undefined;
let latDuring: { p50: number; p99: number } | undefined;
if (alive) {
  latBefore = await latency(base, admin, 300);
  idle = await idleSockets(port, base, admin, idleTokens, guestVm, 1000);
  latDuring = await latency(base, admin, 300);
  idleSummary = idle.summary;
  idle.close();
}
const afterIdle = exit === undefined ? mem() : undefined;

clearInterval(sampler);
// ---- report ----
const total = Object.values(sent).reduce((a, b) => a + b, 0);
const errors = serverErrors(counts);
const unhandled = logText.split('\n').filter((l) => l.includes('"level":50') || l.includes('"level":60'));
const rows: [string, string][] = [
  ['inputs sent', `${total} in ${fuzzSeconds.toFixed(0)} s (${Object.entries(sent).map(([k, v]) => `${k} ${v}`).join(', ')})`],
  ['server process', exit ?? 'alive'],
  ['GET /api/health', String(health?.status ?? '-')],
  ['GET /api/vms (user)', `${list?.status ?? '-'} ${Array.isArray(list?.body) ? `${list.body.length} VM(s)` : ''}`],
  ['RSS before / after / after idle', `${before.rss.toFixed(0)} / ${after?.rss.toFixed(0) ?? '-'} / ${afterIdle?.rss.toFixed(0) ?? '-'} MiB`],
  ['RSS peak (sampled / VmHWM)', `${peak.toFixed(0)} / ${(afterIdle ?? after)?.hwm.toFixed(0) ?? '-'} MiB`],
  ['5xx responses', errors.length ? errors.join('; ') : 'none'],
  ['errors in server log', String(unhandled.length)],
  ['idle sockets', idleSummary],
  ['GET /api/vms p50 / p99 before', latBefore ? `${latBefore.p50.toFixed(1)} / ${latBefore.p99.toFixed(1)} ms` : '-'],
  ['GET /api/vms p50 / p99 with idle', latDuring ? `${latDuring.p50.toFixed(1)} / ${latDuring.p99.toFixed(1)} ms` : '-'],
];
console.log('\nOutcomes per kind (status code, or how the connection ended):');
console.log(formatCounts(counts));
if (serverErrorSamples.length) console.log(`\n5xx samples:\n  ${serverErrorSamples.join('\n  ')}`);
if (unhandled.length) console.log(`\nserver log errors (first 5):\n  ${unhandled.slice(0, 5).join('\n  ').slice(0, 4000)}`);
const w = Math.max(...rows.map(([k]) => k.length));
console.log(`\n| ${'figure'.padEnd(w)} | value |\n|${'-'.repeat(w + 2)}|-------|`);
for (const [k, v] of rows) console.log(`| ${k.padEnd(w)} | ${v} |`);
writeFileSync(join(tmpdir(), 'oriel-fuzz-server.log'), logText);

if (exit === undefined) {
  child.kill('SIGTERM');
  await new Promise((r) => { child.once('exit', r); setTimeout(r, 15_000); });
}
killVmsIn(dataDir);
rmSync(dataDir, { recursive: true, force: true });
const ok = alive && health?.status === 200 && list?.status === 200 && errors.length === 0;
process.exit(ok ? 0 : 1);
