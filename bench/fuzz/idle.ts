// The idle-connection part of bench/fuzz-server.ts: many WebSockets opened and left idle (serial consoles with
// valid tokens, SPICE consoles with valid tickets that never send a link message, bad tickets, upgrade requests
// never finished), and the latency of an ordinary API call measured before and while they are open.
import { connect, type Socket } from 'node:net';
import WebSocket from 'ws';

export interface Idle { summary: string; close(): void }

async function post(base: string, path: string, token: string, body?: unknown): Promise<Record<string, string>> {
  const res = await fetch(base + path, {
    method: 'POST',
    headers: { authorization: `Bearer ${token}`, ...(body ? { 'content-type': 'application/json' } : {}) },
    body: body ? JSON.stringify(body) : undefined,
  });
  return res.json() as Promise<Record<string, string>>;
}

/** p50 and p99 of `n` sequential GET /api/vms, in ms. */
export async function latency(base: string, token: string, n: number): Promise<{ p50: number; p99: number }> {
  const t: number[] = [];
  for (let i = 0; i < n; i++) {
    const s = performance.now();
    const r = await fetch(`${base}/api/vms`, { headers: { authorization: `Bearer ${token}` } });
    await r.arrayBuffer();
    if (r.status !== 200) throw new Error(`GET /api/vms: ${r.status}`);
    t.push(performance.now() - s);
  }
  t.sort((a, b) => a - b);
  return { p50: t[Math.floor(n * 0.5)]!, p99: t[Math.min(n - 1, Math.floor(n * 0.99))]! };
}

function openWs(url: string, headers: Record<string, string>): Promise<{ ws: WebSocket; result: string }> {
  return new Promise((resolve) => {
    const ws = new WebSocket(url, { headers });
    ws.on('unexpected-response', (_q, res) => {
      resolve({ ws, result: String(res.statusCode) });
      res.resume();
      ws.terminate();
    });
    ws.on('open', () => resolve({ ws, result: 'open' }));
    ws.on('error', () => resolve({ ws, result: 'error' }));
  });
}

/** Admins for the idle consoles (a user may hold 64 consoles), signed in before the fuzz (which trips the sign-in
 * throttle of this address). */
export async function idleAdmins(base: string, admin: string, n = 8): Promise<string[]> {
  const tokens: string[] = [];
  for (let i = 0; i < n; i++) {
    await post(base, '/api/users', admin, { name: `idle${i}`, password: `idle${i}-password`, role: 'admin' });
    const l = await fetch(`${base}/api/auth/login`, {
      method: 'POST', headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ username: `idle${i}`, password: `idle${i}-password`, tokenName: 'idle' }),
    });
    const body = (await l.json()) as { token?: string };
    if (!body.token) throw new Error(`sign-in of idle${i}: ${JSON.stringify(body)}`);
    tokens.push(body.token);
  }
  return tokens;
}

export async function idleSockets(
  port: number, base: string, admin: string, tokens: string[], vm: string | undefined, n: number,
): Promise<Idle> {
  const wsBase = base.replace('http', 'ws');
  const tally = new Map<string, number>();
  const add = (k: string) => tally.set(k, (tally.get(k) ?? 0) + 1);
  const sockets: WebSocket[] = [];
  const raws: Socket[] = [];
  let valid = 0;
  let spice = 0;
  if (vm) {
    valid = Math.round(n / 2);
    spice = 60;
    const opened = await Promise.all(Array.from({ length: valid }, (_x, i) =>
      openWs(`${wsBase}/api/vms/${vm}/serial`, { authorization: `Bearer ${tokens[i % 8]}` })));
    for (const o of opened) { sockets.push(o.ws); add(`serial token: ${o.result}`); }
    for (let i = 0; i < spice; i++) {
      const t = await post(base, `/api/vms/${vm}/console-ticket`, admin);
      const o = await openWs(`${wsBase}${t.path}`, {});
      sockets.push(o.ws);
      add(`spice ticket: ${o.result}`);
    }
  }
  const bad = Math.round((n - valid - spice) * 0.45);
  const badOpened = await Promise.all(Array.from({ length: bad }, (_x, i) =>
    openWs(`${wsBase}/api/vms/${vm ?? 'nope'}/spice?ticket=bogus${i}`, {})));
  for (const o of badOpened) { sockets.push(o.ws); add(`bad ticket: ${o.result}`); }
  const partial = n - valid - spice - bad;
  for (let i = 0; i < partial; i++) {
    const s = connect(port, '127.0.0.1');
    s.on('error', () => undefined);
    s.write(`GET /api/vms/${vm ?? 'nope'}/serial HTTP/1.1\r\nHost: localhost\r\nUpgrade: websocket\r\n`);
    raws.push(s);
  }
  add(`unfinished upgrade: ${partial} sent`);
  await new Promise((r) => setTimeout(r, 500));
  const stillOpen = () =>
    sockets.filter((w) => w.readyState === WebSocket.OPEN).length + raws.filter((s) => !s.destroyed).length;
  return {
    get summary() {
      return `${[...tally].map(([k, v]) => `${k} x${v}`).join(', ')}; open now ${stillOpen()}`;
    },
    close() {
      for (const w of sockets) w.terminate();
      for (const s of raws) s.destroy();
    },
  };
}
