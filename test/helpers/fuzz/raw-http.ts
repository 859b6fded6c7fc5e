// Fuzz inputs for the HTTP layer, written as raw bytes over TCP (no client library to tidy them up): bad request
// lines, huge or odd headers, bad chunked encoding, bad Content-Length, partial (slowloris) requests, and upgrade
// requests with junk. Each input is one connection; its outcome is the status line the server answered with, or
// how the connection ended. Shared by bench/fuzz-server.ts and test/security/fuzz.test.ts.
import { connect } from 'node:net';
import fc from 'fast-check';

export interface RawInput {
  kind: string;
  /** Written in order; a `pauseMs` between chunks makes a slow client. */
  chunks: Buffer[];
  pauseMs?: number;
  /** The client gives up (and closes) after this long: a partial request is not expected to be answered. */
  deadlineMs: number;
}

/** '400', '431', ... (the answered status), or 'closed' (no answer), 'timeout' (still open at the deadline),
 * 'reset'. */
export type RawOutcome = string;

const PATHS = [
  '/', '/api/health', '/api/vms', '/api/vms/x', '/api/auth/login', '/api/users', '/api/openapi.json', '/api/events',
  '/api/vms/x/serial', '/api/vms/x/spice', '/api/operations', '/index.html', '/assets/../../etc/passwd',
  '/api/vms/%2e%2e%2f%2e%2e', '/api/vms/%E0', '//[', '*', 'http://evil/api/vms', '/api/vms/' + 'a'.repeat(5000),
];
const METHODS = ['GET', 'POST', 'PUT', 'PATCH', 'DELETE', 'HEAD', 'OPTIONS', 'TRACE', 'CONNECT', 'PRI', 'get', 'G ET', ''];
const junk = fc.uint8Array({ maxLength: 300 }).map((a) => Buffer.from(a).toString('latin1'));
const token = fc.string({ unit: 'binary-ascii', maxLength: 40 });

const requestLine = fc.oneof(
  fc.tuple(fc.constantFrom(...METHODS), fc.constantFrom(...PATHS), fc.constantFrom('HTTP/1.1', 'HTTP/1.0', 'HTTP/9.9',
    'HTTP/1.1 extra', 'HTTP/', '', 'http/1.1', 'HTTP/1.1\0')).map(([m, p, v]) => `${m} ${p} ${v}`),
  fc.tuple(token, token, token).map(([a, b, c]) => `${a} ${b} ${c}`),
  junk,
  fc.nat(200_000).map((n) => `GET /${'a'.repeat(n)} HTTP/1.1`),
);

const header = fc.oneof(
  fc.tuple(token, token).map(([k, v]) => `${k}: ${v}`),
  fc.constantFrom('NoColon', ': empty-name', ' leading-space: x', 'X-Fold: a\r\n b', 'Host:', 'Host: a\r\nHost: b',
    'Content-Type: application/json; charset=utf-7', 'Expect: 100-continue', 'Connection: keep-alive, Upgrade',
    'Authorization: Bearer', 'Authorization: Bearer oriel_' + 'x'.repeat(100), 'Cookie: oriel_session=%E0%%',
    'Cookie: ' + 'a=b;'.repeat(2000), 'Transfer-Encoding: chunked, identity', 'Transfer-Encoding: gzip'),
  fc.nat(40_000).map((n) => `X-Big: ${'b'.repeat(n)}`),
  junk.map((j) => `X-Junk: ${j}`),
);

const contentLength = fc.constantFrom('-1', 'abc', '1e3', '0x10', '99999999999999999999', '5, 6', ' 10', '10 ', '');

function httpRequest(line: string, headers: string[], body = ''): string {
  return `${line}\r\n${headers.join('\r\n')}${headers.length ? '\r\n' : ''}\r\n${body}`;
}

const base = ['Host: localhost'];
const badRequestLine = fc.tuple(requestLine, fc.array(header, { maxLength: 5 }))
  .map(([l, h]): RawInput => ({ kind: 'bad-request-line', chunks: [Buffer.from(httpRequest(l, [...base, ...h]), 'latin1')], deadlineMs: 1000 }));
const oddHeaders = fc.tuple(fc.constantFrom(...PATHS.slice(0, 8)), fc.array(header, { minLength: 1, maxLength: 120 }))
  .map(([p, h]): RawInput => ({ kind: 'odd-headers', chunks: [Buffer.from(httpRequest(`GET ${p} HTTP/1.1`, [...base, ...h]), 'latin1')], deadlineMs: 1000 }));
const chunkBody = fc.array(fc.oneof(
  fc.constantFrom('zz\r\n', 'ffffffffffffffff\r\n', '-1\r\n', '5;ext="\r\nabc', '0\r\n', '3\r\nabcdef\r\n', '\r\n', '1\n'),
  junk,
), { maxLength: 8 }).map((a) => a.join(''));
const badChunked = fc.tuple(fc.constantFrom('/api/vms', '/api/auth/login', '/api/users', '/api/health'), chunkBody, fc.boolean())
  .map(([p, b, cl]): RawInput => ({
    kind: 'bad-chunked',
    chunks: [Buffer.from(httpRequest(`POST ${p} HTTP/1.1`,
      [...base, 'Content-Type: application/json', 'Transfer-Encoding: chunked', ...(cl ? ['Content-Length: 4'] : [])], b), 'latin1')],
    deadlineMs: 800,
  }));
const badLength = fc.tuple(fc.constantFrom('/api/vms', '/api/auth/login', '/api/users'), contentLength, fc.string({ maxLength: 50 }), fc.boolean())
  .map(([p, cl, body, twice]): RawInput => ({
    kind: 'bad-content-length',
    chunks: [Buffer.from(httpRequest(`POST ${p} HTTP/1.1`,
      [...base, 'Content-Type: application/json', `Content-Length: ${cl}`, ...(twice ? ['Content-Length: 3'] : [])], body))],
    deadlineMs: 800,
  }));
const shortBody = fc.tuple(fc.constantFrom('/api/vms', '/api/auth/login'), fc.integer({ min: 10, max: 5_000_000 }))
  .map(([p, n]): RawInput => ({
    kind: 'slowloris',
    chunks: [Buffer.from(httpRequest(`POST ${p} HTTP/1.1`, [...base, 'Content-Type: application/json', `Content-Length: ${n}`], '{"a":'))],
    deadlineMs: 300,
  }));
const partial = fc.tuple(fc.constantFrom('GET /api/vms HTTP/1.1\r\nHost: x\r\n', 'GET /api/he', 'POST /api/auth/login HTTP/1.1\r\nContent-Le',
  'GET /api/vms/x/serial HTTP/1.1\r\nUpgrade: websocket\r\n'), fc.integer({ min: 1, max: 6 }))
  .map(([s, n]): RawInput => ({
    kind: 'slowloris',
    chunks: [...Buffer.from(s)].reduce<Buffer[]>((acc, _b, i, all) => {
      if (i % Math.ceil(all.length / n) === 0) acc.push(Buffer.from(s.slice(i, i + Math.ceil(all.length / n))));
      return acc;
    }, []),
    pauseMs: 40,
    deadlineMs: 300,
  }));

/** A WebSocket upgrade request with junk in it: path, key, version, credentials, extensions, trailing bytes. */
export function upgradeJunk(vmNames: string[], goodAuth: string[]): fc.Arbitrary<RawInput> {
  const kinds = fc.constantFrom('spice', 'serial', 'events', 'constructor', '__proto__', 'SERIAL', '', 'spice/x');
  const vm = fc.oneof(fc.constantFrom(...vmNames, '%E0', '..', '%2e%2e', 'constructor', '00000000-0000-0000-0000-000000000000'), token);
  const auth = fc.oneof(
    fc.constant(''),
    fc.constantFrom(...goodAuth.map((a) => `Authorization: Bearer ${a}`)),
    fc.constantFrom('Authorization: Bearer oriel_bad', 'Authorization: Basic YTpi', 'Cookie: oriel_session=bogus'),
    token.map((t) => `Authorization: ${t}`),
  );
  const query = fc.oneof(fc.constant(''), token.map((t) => `?ticket=${encodeURIComponent(t)}`), fc.constant('?ticket=&ticket=x'));
  const key = fc.oneof(fc.constant('dGhlIHNhbXBsZSBub25jZQ=='), token, fc.constant(''));
  const version = fc.constantFrom('13', '8', '0', 'x', '', '13, 8');
  const extra = fc.array(header, { maxLength: 3 });
  const trailing = fc.oneof(fc.constant(''), junk);
  const origin = fc.constantFrom('', 'Origin: http://evil.example', 'Origin: null', 'Origin: %%%');
  return fc.tuple(vm, kinds, query, auth, key, version, extra, trailing, origin)
    .map(([v, k, q, a, kk, ver, ex, tr, o]): RawInput => ({
      kind: 'upgrade-junk',
      chunks: [Buffer.from(httpRequest(`GET /api/vms/${v}/${k}${q} HTTP/1.1`, [
        ...base, 'Upgrade: websocket', 'Connection: Upgrade', `Sec-WebSocket-Key: ${kk}`, `Sec-WebSocket-Version: ${ver}`,
        ...(a ? [a] : []), ...(o ? [o] : []), ...ex,
      ], tr), 'latin1')],
      deadlineMs: 800,
    }));
}

export const rawHttpInput: fc.Arbitrary<RawInput> =
  fc.oneof(badRequestLine, oddHeaders, badChunked, badLength, shortBody, partial);

/** Sends one raw input on a fresh connection and reports the outcome. */
export function sendRaw(port: number, input: RawInput): Promise<RawOutcome> {
  return new Promise((resolve) => {
    const sock = connect(port, '127.0.0.1');
    let got = Buffer.alloc(0);
    let done = false;
    const finish = (o: RawOutcome) => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      sock.destroy();
      resolve(o);
    };
    const status = () => /^HTTP\/1\.[01] (\d{3})/.exec(got.subarray(0, 20).toString('latin1'))?.[1];
    const timer = setTimeout(() => finish(status() ?? 'timeout'), input.deadlineMs);
    sock.on('data', (d: Buffer) => {
      if (got.length < 64) got = Buffer.concat([got, d]);
      const s = status();
      if (s) finish(s);
    });
    sock.on('error', () => finish(status() ?? 'reset'));
    sock.on('close', () => finish(status() ?? 'closed'));
    sock.on('connect', async () => {
      for (const [i, c] of input.chunks.entries()) {
        if (done) return;
        if (i > 0 && input.pauseMs) await new Promise((r) => setTimeout(r, input.pauseMs));
        if (!sock.destroyed) sock.write(c);
      }
    });
  });
}
