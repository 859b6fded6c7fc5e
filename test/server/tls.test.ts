// Transport security: https with a given certificate (HSTS, Secure cookie), plain http on loopback without one,
// a self-signed certificate made when listening beyond loopback (its fingerprint printed and served), the CLI's
// trust (--ca, --fingerprint, the pin `oriel login` saves, a clear refusal otherwise), and X-Forwarded-* believed
// only from a configured proxy.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { connect, type PeerCertificate } from 'node:tls';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import WebSocket from 'ws';
import { configProblems, defaultConfig } from '../../src/config.ts';
import { ADMIN_PASSWORD, startTestServer, type TestServer } from '../helpers/server.ts';
import {
  httpsReq, makeTestCerts, runCli, startHttpsServer, type HttpsServer, type TestCerts,
} from '../helpers/tls.ts';

const ROOT = resolve(import.meta.dirname, '../..');

describe('TLS', () => {
  let certs: TestCerts;
  let s: HttpsServer;
  let plain: TestServer;
  const scratch = mkdtempSync(join(tmpdir(), 'oriel-tls-cli-'));

  before(async () => {
    certs = makeTestCerts();
    s = await startHttpsServer(certs);
    plain = await startTestServer();
  });
  after(async () => {
    await s?.destroy();
    await plain?.destroy();
    rmSync(certs.dir, { recursive: true, force: true });
    rmSync(scratch, { recursive: true, force: true });
  });

  test('configuration: unreadable files, a key of another certificate, bad proxy lists are named', () => {
    const env = (e: Record<string, string>) => configProblems(defaultConfig(e)).join('\n');
    assert.equal(env({ ORIEL_TLS_CERT: certs.certFile, ORIEL_TLS_KEY: certs.keyFile }), '');
    assert.match(env({ ORIEL_TLS_CERT: '/nonexistent/c.pem', ORIEL_TLS_KEY: certs.keyFile }),
      /cannot read the TLS certificate .*\/nonexistent\/c.pem: ENOENT/);
    assert.match(env({ ORIEL_TLS_CERT: certs.certFile, ORIEL_TLS_KEY: certs.otherKeyFile }),
      /the TLS key .*other.key does not belong to the certificate/);
    assert.match(env({ ORIEL_TLS_CERT: certs.certFile }), /go together: give both/);
    assert.match(env({ ORIEL_TLS_CERT: certs.keyFile, ORIEL_TLS_KEY: certs.keyFile }), /is not a PEM certificate/);
    assert.match(env({ ORIEL_TLS: 'maybe' }), /ORIEL_TLS must be auto or off/);
    assert.equal(env({ ORIEL_TRUST_PROXY: '10.0.0.1, 192.168.0.0/16,::1,fd00::/8' }), '');
    assert.match(env({ ORIEL_TRUST_PROXY: '10.0.0.0/33' }), /not '10.0.0.0\/33'/);
    assert.match(env({ ORIEL_TRUST_PROXY: 'proxy.local' }), /IP addresses or CIDRs .* not 'proxy.local'/);
  });

  test('over https: HSTS on responses and a Secure session cookie; over loopback http: neither', async () => {
    const health = await httpsReq(`${s.url}/api/health`, certs.ca);
    assert.equal(health.status, 200);
    assert.match(String(health.headers['strict-transport-security']), /^max-age=\d{7,}/);
    const login = await httpsReq(`${s.url}/api/auth/login`, certs.ca, 'POST', { username: 'admin', password: ADMIN_PASSWORD });
    assert.equal(login.status, 200);
    assert.match(String(login.headers['set-cookie']), /oriel_session=.*; Secure/);
    assert.match(String(login.headers['strict-transport-security']), /max-age/);

    assert.match(plain.url, /^http:\/\/127\.0\.0\.1:/);
    const h = await plain.anon.get('/api/health');
    assert.equal(h.headers.get('strict-transport-security'), null);
    const l = await plain.anon.post('/api/auth/login', { username: 'admin', password: ADMIN_PASSWORD });
    assert.equal(l.status, 200);
    assert.doesNotMatch(l.headers.get('set-cookie')!, /Secure/i);
  });

  test('CLI over https: login + vm list with --ca, with --fingerprint, then with the saved pin alone', async () => {
    const env = { XDG_CONFIG_HOME: join(scratch, 'ca'), ORIEL_URL: s.url };
    const login = await runCli(['--ca', certs.caFile, 'login', '--password-stdin'], env, `${ADMIN_PASSWORD}\n`);
    assert.equal(login.code, 0, login.stderr);
    assert.match(login.stdout, /signed in to https:\/\/127\.0\.0\.1:\d+ as admin/);
    const list = await runCli(['--ca', certs.caFile, 'vm', 'list'], env);
    assert.equal(list.code, 0, list.stderr);
    assert.match(list.stdout, /no VMs yet/);
    // The CA was saved with the token: no flag needed now.
    assert.equal((await runCli(['vm', 'list'], env)).code, 0);

    const penv = { XDG_CONFIG_HOME: join(scratch, 'pin'), ORIEL_URL: s.url };
    const fp = certs.fingerprint.replace(/:/g, '').toLowerCase(); // any spelling of the same fingerprint
    const pinned = await runCli(['--fingerprint', fp, 'login', '--password-stdin'], penv, `${ADMIN_PASSWORD}\n`);
    assert.equal(pinned.code, 0, pinned.stderr);
    const saved = JSON.parse(readFileSync(join(scratch, 'pin/oriel/credentials.json'), 'utf8'));
    assert.equal(saved[s.url].fingerprint, certs.fingerprint);
    assert.equal(statSync(join(scratch, 'pin/oriel/credentials.json')).mode & 0o777, 0o600);
    const later = await runCli(['vm', 'list'], penv);
    assert.equal(later.code, 0, later.stderr);
    assert.match(later.stdout, /no VMs yet/);
  });

  test('CLI: a wrong pin and an unknown CA are refused, naming the fingerprint and how to pin it', async () => {
    const env = { XDG_CONFIG_HOME: join(scratch, 'none'), ORIEL_URL: s.url };
    const untrusted = await runCli(['login', '--password-stdin'], env, `${ADMIN_PASSWORD}\n`);
    assert.notEqual(untrusted.code, 0);
    assert.match(untrusted.stderr, /self-signed or from an unknown CA/);
    assert.ok(untrusted.stderr.includes(`oriel login --server ${s.url} --fingerprint ${certs.fingerprint}`), untrusted.stderr);
    assert.match(untrusted.stderr, /--ca FILE/);
    // A pin given for a plain http URL is refused, not ignored: the token would cross in clear.
    const plain = await runCli(['--server', 'http://127.0.0.1:9', '--fingerprint', certs.fingerprint, 'vm', 'list'], env);
    assert.notEqual(plain.code, 0);
    assert.match(plain.stderr, /apply to https:\/\/ servers: http:\/\/127\.0\.0\.1:9 is plain http/);

    const wrong = certs.fingerprint.replace(/^../, certs.fingerprint.startsWith('AA') ? 'BB' : 'AA');
    const refused = await runCli(['--fingerprint', wrong, 'vm', 'list'], env);
    assert.notEqual(refused.code, 0);
    assert.ok(refused.stderr.includes(`but the pinned fingerprint is\n  ${wrong}`), refused.stderr);
    assert.ok(refused.stderr.includes(certs.fingerprint), refused.stderr);
    assert.match(refused.stderr, /intercepting/);
    const bad = await runCli(['--fingerprint', 'abc', 'vm', 'list'], env);
    assert.match(bad.stderr, /--fingerprint .* takes a SHA-256 fingerprint/);

    // The old credentials.json form (url → token string) still reads.
    const old = join(scratch, 'old');
    const token = (await httpsReq(`${s.url}/api/auth/login`, certs.ca, 'POST',
      { username: 'admin', password: ADMIN_PASSWORD, tokenName: 'old' })).body.token as string;
    mkdirSync(join(old, 'oriel'), { recursive: true });
    writeFileSync(join(old, 'oriel/credentials.json'), JSON.stringify({ [s.url]: token }));
    const r = await runCli(['--ca', certs.caFile, 'vm', 'list'], { XDG_CONFIG_HOME: old, ORIEL_URL: s.url });
    assert.equal(r.code, 0, r.stderr);
  });

  test('beyond loopback without a certificate: a self-signed one, printed fingerprint = served, reused', async () => {
    const dataDir = mkdtempSync(join(tmpdir(), 'ot-'));
    const serveOnce = () => new Promise<{ port: number; fingerprint: string; served: PeerCertificate }>((res, rej) => {
      const child = spawn(process.execPath, ['bin/oriel.js', 'serve', '--host', '0.0.0.0', '--port', '0',
        '--data-dir', dataDir], { cwd: ROOT, env: { ...process.env, ORIEL_ADMIN_PASSWORD: ADMIN_PASSWORD, ORIEL_LOG_LEVEL: 'warn' } });
      let out = '';
      let seen = false;
      const timer = setTimeout(() => { child.kill('SIGKILL'); rej(new Error(`no banner: ${out}`)); }, 30_000);
      child.stdout.on('data', (d: Buffer) => {
        out += d.toString();
        const url = /Oriel is running at (https?):\/\/0\.0\.0\.0:(\d+)/.exec(out);
        const fp = /SHA-256 fingerprint: ([0-9A-F:]{95})\n/.exec(out);
        if (seen || !url || !fp || !out.includes('sign in from a shell')) return;
        seen = true;
        clearTimeout(timer);
        assert.equal(url[1], 'https');
        assert.ok(out.includes(`--fingerprint ${fp[1]}`), out);
        const port = Number(url[2]);
        let settled = false;
        const sock = connect({ host: '127.0.0.1', port, rejectUnauthorized: false }, () => {
          settled = true;
          const served = sock.getPeerCertificate();
          sock.on('error', () => undefined);
          sock.destroy();
          child.once('exit', () => res({ port, fingerprint: fp[1]!, served }));
          child.kill('SIGTERM');
        });
        sock.once('error', (e) => {
          if (settled) return;
          child.kill('SIGKILL');
          rej(new Error(`${e.message}; the server said: ${out}`));
        });
      });
    });
    try {
      const first = await serveOnce();
      assert.equal(first.served.fingerprint256, first.fingerprint, 'the printed fingerprint is the served one');
      assert.match(first.served.subjectaltname ?? '', /IP Address:127\.0\.0\.1/);
      assert.match(first.served.subjectaltname ?? '', /DNS:localhost/);
      assert.equal(statSync(join(dataDir, 'tls/key.pem')).mode & 0o777, 0o600);
      const second = await serveOnce();
      assert.equal(second.fingerprint, first.fingerprint, 'the certificate is kept across starts');
    } finally {
      rmSync(dataDir, { recursive: true, force: true });
    }
  });
});

describe('X-Forwarded-* from a reverse proxy', () => {
  for (const trusted of [false, true]) {
    test(trusted ? 'honoured from a trusted proxy (--trust-proxy 127.0.0.1)' : 'ignored by default', async () => {
      const t = await startTestServer(trusted ? { trustProxy: ['127.0.0.1'] } : {});
      try {
        await t.admin.post('/api/users', { name: 'alice', password: 'alice-password', role: 'user' });
        // Six failed sign-ins, each "from" another address: one address by default (the sixth waits: 429), six
        // addresses when the proxy is believed (each pair has failures to spare: 401).
        const codes: number[] = [];
        for (let i = 1; i <= 6; i++) {
          const r = await t.anon.req('POST', '/api/auth/login', { username: 'admin', password: 'wrong-password' },
            { 'x-forwarded-for': `203.0.113.${i}` });
          codes.push(r.status);
        }
        assert.deepEqual(codes, [401, 401, 401, 401, 401, trusted ? 401 : 429]);

        // The browser's Origin names the public host; the proxy forwards it as X-Forwarded-Host (and says https).
        const login = await t.anon.req('POST', '/api/auth/login', { username: 'alice', password: 'alice-password' },
          { 'x-forwarded-proto': 'https', 'x-forwarded-for': '198.51.100.7' });
        assert.equal(login.status, 200);
        const setCookie = login.headers.get('set-cookie')!;
        assert.equal(/; Secure/.test(setCookie), trusted, setCookie);
        const cookie = setCookie.split(';')[0]!;
        const viaProxy = { cookie, origin: 'https://oriel.example', 'x-forwarded-host': 'oriel.example' };
        const post = await t.anon.req('POST', '/api/tokens', { name: 'x' }, viaProxy);
        assert.equal(post.status, trusted ? 201 : 403);
        assert.equal(
          (await t.anon.req('POST', '/api/tokens', { name: 'x' }, { ...viaProxy, origin: 'https://evil.example' })).status,
          403,
        );
        // The console WebSocket's origin check the same way: past it (the VM does not exist: 404) only when trusted.
        const upgrade = (origin: string) => new Promise<number>((resolve) => {
          const ws = new WebSocket(`${t.url.replace('http', 'ws')}/api/vms/nothing/serial`,
            { headers: { ...viaProxy, origin } });
          ws.on('unexpected-response', (_req, res) => resolve(res.statusCode ?? 0));
          ws.on('open', () => { ws.close(); resolve(101); });
          ws.on('error', () => undefined);
        });
        assert.equal(await upgrade('https://oriel.example'), trusted ? 404 : 403);
        assert.equal(await upgrade('https://evil.example'), 403);
      } finally {
        await t.destroy();
      }
    });
  }
});
