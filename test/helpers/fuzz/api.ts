// Fuzz inputs for the REST API, generated from the server's own OpenAPI document: for every route and method, a
// body made from the route's schema and then mutated (wrong types, huge strings, deep nesting, __proto__ and
// constructor keys, unicode, path traversal, names shaped like ids), odd path parameters and query strings, odd
// content types, sent anonymously, with a bad token, or as an ordinary user or an admin.
import { request, Agent } from 'node:http';
import fc from 'fast-check';

export interface ApiRoute { method: string; path: string; body?: any; query: { name: string; schema: any }[] }
export type Cred = 'anon' | 'bad' | 'user' | 'admin';
export interface ApiInput {
  kind: string;
  method: string;
  path: string;
  headers: Record<string, string>;
  body?: string;
  cred: Cred;
}

/** Routes that end the caller's own credential: fuzzed with the user's or admin's token, they would sign the fuzzer
 * out mid-run (test/security/sessions.test.ts covers them). */
const ENDS_OWN_CREDENTIAL = new Set(['POST /api/auth/logout']);

/** Every route and method in an OpenAPI document (hidden ones are not in it; add them yourself), but sign-out. */
export function routesOf(doc: any): ApiRoute[] {
  const out: ApiRoute[] = [];
  for (const [path, item] of Object.entries<any>(doc.paths ?? {})) {
    for (const [method, op] of Object.entries<any>(item)) {
      if (ENDS_OWN_CREDENTIAL.has(`${method.toUpperCase()} ${path}`)) continue;
      const params: any[] = op.parameters ?? [];
      out.push({
        method: method.toUpperCase(),
        path,
        body: op.requestBody?.content?.['application/json']?.schema,
        query: params.filter((p) => p.in === 'query').map((p) => ({ name: p.name, schema: p.schema })),
      });
    }
  }
  return out;
}

const deep = (n: number, open: string, close: string) => open.repeat(n) + '1' + close.repeat(n);

/** Values no schema wants. */
export const hostile: fc.Arbitrary<unknown> = fc.oneof(
  fc.constantFrom(null, true, false, 0, -1, 1e308, -0, 2 ** 53 + 1, 1.5, '', [], {}, 'NaN', '1e999', '0x10'),
  fc.string({ unit: 'grapheme', maxLength: 40 }),
  fc.string({ unit: 'binary', maxLength: 40 }),
  fc.constantFrom('../../../../etc/passwd', '..\\..\\windows', '/etc/shadow', '%2e%2e%2f', '\u0000', 'a\u0000b',
    '\u202e\u0644\u200b', '😀'.repeat(100), 'constructor', '__proto__', 'toString', 'hasOwnProperty', 'prototype',
    '00000000-0000-0000-0000-000000000000', 'ffffffff-ffff-ffff-ffff-ffffffffffff', 'oriel_' + 'a'.repeat(43),
    'vm-1', '1', '-1', 'admin', 'root', '*', '%', '?', '#', '/', ' ', '\t\n', '${7*7}', '{{7*7}}', "'; DROP TABLE vms; --"),
  fc.uuid().map(String),
  fc.integer({ min: 1000, max: 900_000 }).map((n) => 'x'.repeat(n)),
  fc.array(fc.constantFrom(1, 'a', null, {}), { maxLength: 2000 }),
  fc.dictionary(fc.constantFrom('__proto__', 'constructor', 'prototype', 'isAdmin', 'role'), fc.constantFrom({ isAdmin: true }, 'admin', null)),
);

/** A value that fits a JSON schema (as far as this simple reader of schemas goes). */
export function fromSchema(s: any, depth = 0): fc.Arbitrary<unknown> {
  if (!s || typeof s !== 'object' || depth > 4) return fc.jsonValue({ maxDepth: 2 });
  if (s.const !== undefined) return fc.constant(s.const);
  if (Array.isArray(s.enum)) return fc.constantFrom(...s.enum);
  const alts = s.anyOf ?? s.oneOf;
  if (Array.isArray(alts) && alts.length) return fc.oneof(...alts.map((a: any) => fromSchema(a, depth + 1)));
  const type = Array.isArray(s.type) ? s.type[0] : s.type;
  switch (type) {
    case 'string':
      return fc.string({ minLength: s.minLength ?? 0, maxLength: Math.min(s.maxLength ?? 30, 64) });
    case 'integer':
      return fc.integer({ min: s.minimum ?? -1000, max: s.maximum ?? 100_000 });
    case 'number':
      return fc.double({ min: s.minimum ?? -1e6, max: s.maximum ?? 1e6, noNaN: true });
    case 'boolean':
      return fc.boolean();
    case 'null':
      return fc.constant(null);
    case 'array':
      return fc.array(fromSchema(s.items, depth + 1), { maxLength: 4 });
    case 'object': {
      const props = Object.entries<any>(s.properties ?? {});
      const rec: Record<string, fc.Arbitrary<unknown>> = {};
      for (const [k, v] of props) rec[k] = fromSchema(v, depth + 1);
      const keys = props.map(([k]) => k);
      return fc.record(rec, { requiredKeys: (s.required ?? []).filter((k: string) => keys.includes(k)) });
    }
    default:
      return fc.jsonValue({ maxDepth: 2 });
  }
}

const KEYS_FOR_FREE_BODIES = ['name', 'image', 'kernel', 'initrd', 'append', 'memoryMiB', 'cpus', 'display', 'accel',
  'disk', 'password', 'role', 'argv', 'timeoutSec', 'ids', 'keep', 'cron'];

/** The body text: valid, mutated in one place, with pollution keys, a hostile value, deep nesting, or not JSON. */
function bodyFor(schema: any): fc.Arbitrary<{ kind: string; text: string }> {
  const valid = schema && !(schema.type === 'object' && !schema.properties && schema.additionalProperties)
    ? fromSchema(schema)
    : fc.dictionary(fc.constantFrom(...KEYS_FOR_FREE_BODIES), fc.oneof(fc.string({ maxLength: 20 }), fc.integer()),
      { maxKeys: 5 });
  const json = (kind: string) => (v: unknown) => ({ kind, text: JSON.stringify(v) ?? 'null' });
  const mutateOne = fc.tuple(valid, hostile, fc.constantFrom(...(Object.keys(schema?.properties ?? {}).length
    ? Object.keys(schema.properties) : KEYS_FOR_FREE_BODIES)))
    .map(([v, h, k]) => ({ ...(typeof v === 'object' && v ? v : {}), [k]: h }));
  const polluted = fc.tuple(valid, fc.constantFrom('__proto__', 'constructor', 'prototype'))
    .map(([v, k]) => {
      const obj = typeof v === 'object' && v ? { ...v } : {};
      return `${JSON.stringify(obj).slice(0, -1)}${Object.keys(obj).length ? ',' : ''}"${k}":{"isAdmin":true,"role":"admin","prototype":{"x":1}}}`;
    });
  return fc.oneof(
    { weight: 2, arbitrary: valid.map(json('json-valid')) },
    { weight: 4, arbitrary: mutateOne.map(json('json-mutated')) },
    { weight: 2, arbitrary: polluted.map((text) => ({ kind: 'json-proto', text })) },
    { weight: 2, arbitrary: hostile.map(json('json-hostile')) },
    {
      weight: 1,
      arbitrary: fc.tuple(fc.integer({ min: 100, max: 200_000 }), fc.constantFrom(['[', ']'], ['{"a":', '}']))
        .map(([n, [o, c]]) => ({ kind: 'json-deep', text: deep(n, o!, c!) })),
    },
    { weight: 1, arbitrary: fc.string({ unit: 'binary', maxLength: 200 }).map((text) => ({ kind: 'not-json', text })) },
  );
}

/** Path parameters: hostile strings, or (for routes that cannot start a guest or delete anything) a real name. */
function pathFor(template: string, realNames: string[], method: string): fc.Arbitrary<string> {
  const holes = template.match(/\{[^}]+\}/g) ?? [];
  const harmless = method === 'GET' || !/\/(start|resume|reset|restore|build)$|^\/api\/vms\/\{vm\}$|\/users\//.test(template);
  const seg = fc.oneof(
    { weight: 4, arbitrary: hostile.map((h) => encodeURIComponent(typeof h === 'string' ? h.slice(0, 3000) : JSON.stringify(h) ?? '')) },
    { weight: 1, arbitrary: fc.constantFrom('..', '.', '%2e%2e', '%2F', '%E0%A4%A', '%00', 'a/b', 'a?b=c', '%', '~') },
    { weight: harmless ? 2 : 0, arbitrary: fc.constantFrom(...realNames) },
  );
  return fc.array(seg, { minLength: holes.length, maxLength: holes.length })
    .map((vals) => holes.reduce((p, h, i) => p.replace(h, vals[i]!), template));
}

function queryFor(q: ApiRoute['query']): fc.Arbitrary<string> {
  if (!q.length) return fc.oneof(fc.constant(''), fc.constant('?__proto__[x]=1&constructor=1'));
  return fc.array(fc.tuple(fc.constantFrom(...q), fc.oneof(fromSchema(q[0]!.schema), hostile)), { maxLength: 4 })
    .map((pairs) => (pairs.length ? '?' : '') + pairs.map(([p, v]) =>
      `${encodeURIComponent(p.name)}=${encodeURIComponent(typeof v === 'string' ? v.slice(0, 2000) : JSON.stringify(v) ?? '')}`).join('&'));
}

export function apiInput(routes: ApiRoute[], realNames: string[]): fc.Arbitrary<ApiInput> {
  const cred = fc.constantFrom<Cred>('anon', 'bad', 'user', 'user', 'admin', 'admin');
  const contentType = fc.oneof(
    { weight: 8, arbitrary: fc.constant('application/json') },
    { weight: 1, arbitrary: fc.constantFrom('text/plain', 'application/x-www-form-urlencoded', 'multipart/form-data; boundary=x',
      'application/json; charset=latin1', 'application/json; charset=utf-16', 'application/octet-stream', 'APPLICATION/JSON', '') },
  );
  return fc.oneof(...routes.map((r) => fc.tuple(pathFor(r.path, realNames, r.method), queryFor(r.query),
    bodyFor(r.body), contentType, cred, fc.boolean())
    .map(([path, query, body, ct, c, withBody]): ApiInput => {
      const send = r.body !== undefined || (withBody && r.method !== 'GET' && r.method !== 'HEAD');
      return {
        kind: send ? body.kind : 'no-body',
        method: r.method,
        path: path + query,
        headers: send && ct ? { 'content-type': ct } : {},
        body: send ? body.text : undefined,
        cred: c,
      };
    })));
}

const agent = new Agent({ keepAlive: true, maxSockets: 64 });

/** Sends one request; resolves with its status ('timeout' or 'error:<code>' when there is none). */
export function sendApi(
  port: number, input: ApiInput, auth: Record<Cred, Record<string, string>>, timeoutMs = 15_000,
): Promise<string> {
  return new Promise((resolve) => {
    let done = false;
    const finish = (s: string) => { if (!done) { done = true; resolve(s); } };
    const req = request({
      host: '127.0.0.1', port, method: input.method, path: input.path, agent,
      headers: { ...input.headers, ...auth[input.cred], ...(input.body !== undefined ? { 'content-length': Buffer.byteLength(input.body) } : {}) },
    }, (res) => {
      const status = String(res.statusCode);
      if (String(res.headers['content-type']).startsWith('text/event-stream')) {
        res.destroy();
        return finish(status);
      }
      res.resume();
      res.on('end', () => finish(status));
      res.on('error', () => finish(status));
    });
    req.setTimeout(timeoutMs, () => { req.destroy(); finish('timeout'); });
    req.on('error', (e: NodeJS.ErrnoException) => finish(`error:${e.code ?? e.message}`));
    req.end(input.body);
  });
}
