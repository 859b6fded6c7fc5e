// How the CLI trusts an https/wss Oriel server: the system's CAs, a CA or certificate file (--ca, ORIEL_CA), or a
// pinned SHA-256 fingerprint of the server's certificate (--fingerprint, ORIEL_FINGERPRINT; `oriel login` saves
// it), checked like ssh's known_hosts. Every connection (API requests, event streams, console WebSockets) is made
// by `secureConnector`, which hands the socket on only once the certificate passed, before a byte is sent.
import { readFileSync } from 'node:fs';
import type { Socket } from 'node:net';
import { isIP } from 'node:net';
import type { TLSSocket } from 'node:tls';

export interface Trust {
  /** A CA (or the server's own certificate) in PEM, and the file it came from. */
  ca?: { pem: Buffer; file: string };
  /** The pinned SHA-256 fingerprint, normalised to colon-separated upper-case hex. */
  fingerprint?: string;
}

/** The server's certificate was not accepted; `fingerprint` is the one it presented, for the user to check. */
export class UntrustedServerError extends Error {
  override readonly name = 'UntrustedServerError';
  constructor(
    readonly fingerprint: string,
    readonly pinned: string | undefined,
    readonly reason: string,
  ) {
    super(pinned ? `certificate fingerprint ${fingerprint} is not the pinned ${pinned}` : `untrusted certificate (${reason})`);
  }
}

/** Accepts AA:BB:…, aabb…, or with a sha256:/SHA256= prefix; returns AA:BB:… or undefined when not 32 bytes of hex. */
export function normalizeFingerprint(s: string): string | undefined {
  const hex = s.trim().replace(/^sha-?256[:=]\s*/i, '').replace(/[:\s]/g, '').toUpperCase();
  if (!/^[0-9A-F]{64}$/.test(hex)) return undefined;
  return hex.match(/../g)!.join(':');
}

export function readCa(file: string): Trust['ca'] {
  try {
    return { pem: readFileSync(file), file };
  } catch (e) {
    throw new Error(`cannot read the CA file ${file} (--ca, ORIEL_CA): ${(e as NodeJS.ErrnoException).code ?? e}`);
  }
}

type Callback = (err: Error | null, socket?: Socket) => void;

/**
 * A createConnection for http(s).request and ws: a TLS socket whose certificate is checked against `trust` when
 * the handshake ends; only then is it given to the caller (nothing is written to an unchecked server).
 */
export function secureConnector(trust: Trust) {
  return (options: { host?: string | null; hostname?: string | null; port?: number | string | null }, cb: Callback) => {
    const host = (options.hostname || options.host || 'localhost').replace(/^\[|\]$/g, '');
    // node:tls is loaded on the first https connection, not with the command line.
    const socket: TLSSocket = process.getBuiltinModule('node:tls').connect({
      host,
      port: Number(options.port) || 443,
      ...(isIP(host) ? {} : { servername: host }),
      ...(trust.ca ? { ca: trust.ca.pem } : {}),
      // Checked below, by fingerprint or by the verification result, so that the error can name the fingerprint.
      rejectUnauthorized: false,
    });
    let done = false;
    const finish = (err: Error | null) => {
      if (done) return;
      done = true;
      if (err) {
        socket.destroy();
        cb(err);
      } else cb(null, socket);
    };
    socket.once('error', (e) => finish(e));
    socket.once('secureConnect', () => {
      const fp = socket.getPeerCertificate().fingerprint256 ?? '';
      if (trust.fingerprint) {
        finish(fp === trust.fingerprint ? null : new UntrustedServerError(fp, trust.fingerprint, 'fingerprint mismatch'));
      } else if (!socket.authorized) {
        finish(new UntrustedServerError(fp, undefined, String(socket.authorizationError ?? 'not verified')));
      } else finish(null);
    });
    return undefined;
  };
}

/** What to tell the user when a server's certificate is refused (like ssh: the fingerprint, and how to pin it). */
export function untrustedMessage(url: string, e: UntrustedServerError): string {
  if (e.pinned)
    return [
      `the server at ${url} presented a certificate with the SHA-256 fingerprint`,
      `  ${e.fingerprint}`,
      `but the pinned fingerprint is`,
      `  ${e.pinned}`,
      'Someone may be intercepting the connection, or the server has a new certificate. Check the fingerprint',
      '`oriel serve` printed; if the change is expected, sign in again with --fingerprint set to the new one.',
    ].join('\n');
  const why = /SELF_SIGNED|UNABLE_TO_GET_ISSUER|UNABLE_TO_VERIFY/.test(e.reason) ? 'is self-signed or from an unknown CA' : `is not valid: ${e.reason}`;
  return [
    `the certificate of the server at ${url} ${why}.`,
    `Its SHA-256 fingerprint is`,
    `  ${e.fingerprint}`,
    'If that is the fingerprint `oriel serve` printed, pin it (oriel login saves the pin for this server):',
    `  oriel login --server ${url} --fingerprint ${e.fingerprint}`,
    'or trust the certificate or its CA with --ca FILE (ORIEL_CA).',
  ].join('\n');
}
