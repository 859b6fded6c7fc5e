// The typed client of src/api over real HTTP (a node:http server that records what it gets): paths, query strings,
// bodies and headers as the routes expect them, refusals as ApiError with the server's message, the onError hook,
// and a transport of one's own (how the CLI pins certificates).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { OrielClient } from '../../src/api/client.ts';
import { ApiError, type Transport } from '../../src/api/transport.ts';
import { VM_STATES, vmSchema, vmStateSchema } from '../../src/api/vms.ts';
import { VM_STATES as VM_LAYER_STATES } from '../../src/vm/spec.ts';

interface Seen { method: string; url: string; headers: Record<string, string | string[] | undefined>; body: string }
let server: Server;
let base: string;
const seen: Seen[] = [];

before(async () => {
  server = createServer((req, res) => {
    let body = '';
    req.setEncoding('utf8');
    req.on('data', (c: string) => (body += c));
    req.on('end', () => {
      seen.push({ method: req.method!, url: req.url!, headers: req.headers, body });
      const json = (status: number, v: unknown) => {
        res.writeHead(status, { 'content-type': 'application/json' });
        res.end(JSON.stringify(v));
      };
      if (req.url === '/api/vms/no%20such') return json(404, { error: 'not_found', message: "no VM 'no such'" });
      if (req.url === '/api/vms/plain') return res.writeHead(502).end('bad gateway text');
      if (req.method === 'DELETE') return res.writeHead(204).end();
      json(200, { echo: true });
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});
after(() => server.close());

const last = () => seen[seen.length - 1]!;

test('methods send the paths, query strings, bodies and headers the routes take', async () => {
  const c = new OrielClient({ baseUrl: `${base}/`, authHeaders: () => ({ authorization: 'Bearer t0k' }) });
  await c.vms.log('web 1', { source: 'qemu', lines: 30 });
  assert.equal(last().url, '/api/vms/web%201/log?source=qemu&lines=30');
  assert.equal(last().headers.authorization, 'Bearer t0k');
  await c.vms.act('a', 'stop', { timeoutSec: 5 });
  assert.deepEqual([last().method, last().url, JSON.parse(last().body)], ['POST', '/api/vms/a/stop', { timeoutSec: 5 }]);
  assert.equal(last().headers['content-type'], 'application/json');
  await c.operations.list({ vm: 'a/b', limit: 20 });
  assert.equal(last().url, '/api/operations?vm=a%2Fb&limit=20');
  await c.operations.list();
  assert.equal(last().url, '/api/operations');
  await c.checkpoints.prune('a', { dryRun: true, rules: { keepLast: 2 } });
  assert.deepEqual(JSON.parse(last().body), { dryRun: true, rules: { keepLast: 2 } });
  assert.equal(await c.checkpoints.delete('a', 'c1'), undefined, 'a 204 answers undefined');
  assert.deepEqual([last().method, last().url, last().body], ['DELETE', '/api/vms/a/checkpoints/c1', '']);
  await c.auth.login({ username: 'u', password: 'p' });
  assert.equal(last().headers.authorization, undefined, 'signing in carries no token');
});

test('network and forward methods send the paths and bodies the network routes take', async () => {
  const c = new OrielClient({ baseUrl: base });
  await c.networks.create({ name: 'lab', nat: true });
  assert.deepEqual([last().method, last().url, JSON.parse(last().body)], ['POST', '/api/networks', { name: 'lab', nat: true }]);
  await c.networks.get('a/b');
  assert.equal(last().url, '/api/networks/a%2Fb');
  assert.equal(await c.networks.delete('lab'), undefined);
  assert.deepEqual([last().method, last().url], ['DELETE', '/api/networks/lab']);
  await c.vms.addForward('web 1', { hostPort: 8080, guestPort: 80 });
  assert.deepEqual([last().url, JSON.parse(last().body)], ['/api/vms/web%201/forwards', { hostPort: 8080, guestPort: 80 }]);
  await c.vms.removeForward('web', 'udp', 5353);
  assert.deepEqual([last().method, last().url], ['DELETE', '/api/vms/web/forwards/udp/5353']);
  assert.equal(c.networks.captureUrl('lab', { seconds: 5, frames: undefined }), `${base}/api/networks/lab/capture?seconds=5`);
});

test('a refusal is an ApiError with the status, message and code; onError may replace it', async () => {
  const c = new OrielClient({ baseUrl: base });
  const e = await c.vms.get('no such').catch((x: unknown) => x);
  assert.ok(e instanceof ApiError);
  assert.deepEqual([e.status, e.message, e.code], [404, "no VM 'no such'", 'not_found']);
  const p = await c.vms.get('plain').catch((x: unknown) => x);
  assert.ok(p instanceof ApiError);
  assert.deepEqual([p.status, p.message, p.code], [502, 'bad gateway text', undefined]);

  const calls: string[] = [];
  const mapped = new OrielClient({
    baseUrl: base,
    onError: (x, req) => {
      calls.push(`${req.method} ${req.path} ${req.auth}`);
      throw new Error(`mapped: ${x.message} (HTTP ${x.status})`);
    },
  });
  await assert.rejects(mapped.vms.get('no such'), { message: "mapped: no VM 'no such' (HTTP 404)" });
  assert.deepEqual(calls, ['GET /api/vms/no%20such true']);
});

test('a transport of its own carries every request (the CLI pins certificates this way)', async () => {
  const urls: string[] = [];
  const transport: Transport = async (url, init) => {
    urls.push(`${init.method} ${url}`);
    return { status: 200, text: async () => JSON.stringify([{ name: 'tiny' }]) };
  };
  const c = new OrielClient({ baseUrl: 'https://oriel.example:8470', transport });
  assert.deepEqual(await c.images.list(), [{ name: 'tiny' }]);
  assert.deepEqual(urls, ['GET https://oriel.example:8470/api/images']);
});

test('the VM states are one list: the contract, its schema and the vm layer share it', () => {
  assert.equal(VM_LAYER_STATES, VM_STATES);
  assert.deepEqual(vmStateSchema.options, [...VM_STATES]);
  assert.equal(vmSchema.shape.state, vmStateSchema);
});
