// A short fuzz of a live server (the long one is bench/fuzz-server.ts): a few thousand malformed HTTP requests,
// junk upgrade requests and mutated API bodies from the OpenAPI document, as anonymous, bad token, user and admin.
// The server must answer every one with a 4xx (or a success), never a 5xx, and still serve afterwards. Then the
// findings of the long fuzz, one case each.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { REQUEST_TIMEOUT_MS } from '../../src/server/app.ts';
import { apiInput, routesOf, sendApi, type Cred } from '../helpers/fuzz/api.ts';
import { rawHttpInput, sendRaw, upgradeJunk } from '../helpers/fuzz/raw-http.ts';
import { count, drive, formatCounts, serverErrors, type Counts } from '../helpers/fuzz/run.ts';
import { addUser, startTestServer, type Client, type TestServer } from '../helpers/server.ts';

describe('security: fuzz of a live server', () => {
  let t: TestServer;
  let user: Client;
  let port: number;
  let auth: Record<Cred, Record<string, string>>;
  const counts: Counts = new Map();

  before(async () => {
    t = await startTestServer();
    user = await addUser(t, 'fuzzer');
    port = Number(new URL(t.url).port);
    auth = {
      anon: {}, bad: { authorization: 'Bearer oriel_nope' },
      user: { authorization: `Bearer ${user.token}` }, admin: { authorization: `Bearer ${t.adminToken}` },
    };
  });
  after(() => t.destroy());

  test('4,000 hostile inputs: no 5xx, no hang, and the server still answers', async () => {
    const until = Date.now() + 25_000;
    const raw = await drive(rawHttpInput, { n: 1000, until, concurrency: 24, seed: 1 }, async (i) => {
      count(counts, `raw:${i.kind}`, await sendRaw(port, i));
      return 1;
    });
    const up = await drive(upgradeJunk(['nope'], [t.adminToken, user.token!]), { n: 500, until, concurrency: 24, seed: 2 },
      async (i) => {
        count(counts, 'upgrade-junk', await sendRaw(port, i));
        return 1;
      });
    const routes = routesOf((await t.admin.get('/api/openapi.json')).body);
    assert.ok(routes.length > 30, `routes in the OpenAPI document: ${routes.length}`);
    const api = await drive(apiInput(routes, ['nope']), { n: 2500, until, concurrency: 24, seed: 3 }, async (i) => {
      count(counts, `api:${i.kind}`, await sendApi(port, i, auth, 10_000));
      return 1;
    });
    const summary = formatCounts(counts);
    assert.ok(raw + up + api >= 3000, `only ${raw + up + api} inputs in the time:\n${summary}`);
    assert.deepEqual(serverErrors(counts), [], summary);
    // Every API request got an answer (no 'timeout' or connection error).
    for (const [kind, m] of counts) {
      if (kind.startsWith('api:')) for (const o of m.keys()) assert.match(o, /^\d{3}$/, `${kind}: ${o}\n${summary}`);
    }
    assert.equal((await t.anon.get('/api/health')).status, 200);
    const list = await user.get('/api/vms');
    assert.equal(list.status, 200);
    assert.ok(Array.isArray(list.body));
  });

  test('a POST with no body at all is a request without a body, not a 400 (curl -X POST .../start)', async () => {
    for (const path of ['/api/vms/nope/start', '/api/vms/nope/checkpoints', '/api/vms/nope/checkpoints/verify']) {
      const r = await fetch(t.url + path, { method: 'POST', headers: { authorization: `Bearer ${t.adminToken}` } });
      assert.equal(r.status, 404, `${path}: ${await r.text()}`);
    }
    // A body the route requires is still required.
    const r = await fetch(`${t.url}/api/users`, { method: 'POST', headers: { authorization: `Bearer ${t.adminToken}` } });
    assert.equal(r.status, 400);
  });

  test('a request body sent a byte at a time has a deadline (slowloris on the body)', () => {
    const s = t.server.app.server;
    assert.equal(s.requestTimeout, REQUEST_TIMEOUT_MS);
    assert.ok(s.requestTimeout > 0 && s.requestTimeout <= 60_000);
    assert.ok(s.headersTimeout > 0 && s.headersTimeout <= s.requestTimeout);
  });
});
