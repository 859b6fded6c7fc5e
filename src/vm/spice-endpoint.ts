// How the server's console proxy reaches a VM's SPICE server: loopback TCP with a password, not a unix socket.
// Why TCP: spice-server runs its start-up bandwidth test and latency monitor only for clients that are not on a
// plain unix socket (red_stream_is_plain_unix), and only after that test may it switch to JPEG, ZLIB-GLZ and
// lower ack rates for a slow client; the proxy relays that test's pings end to end, so it measures the real link.
// Why not `getfd` + `add_client`: add_client's socket would have to be a TCP socket handed over with SCM_RIGHTS,
// which Node cannot send, and it needs one QMP round trip per channel connection.
//
// The port is chosen by the server (an ephemeral port on 127.0.0.1, free a moment before QEMU binds it) and the
// password is fresh for every boot: 32 random characters that only QEMU (read from a 0600 file in the VM's 0700
// folder through `-object secret,file=`, never on its command line) and this server know. The browser and the CLI
// never see it: the proxy performs the SPICE ticket step itself (server/console/link-auth.ts). Another local user
// can connect to the port but cannot link without the password.
import { randomBytes } from 'node:crypto';
import { readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type AddressInfo } from 'node:net';
import type { VmPaths } from './paths.ts';

export interface SpiceEndpoint {
  port: number;
  password: string;
}

/** QEMU's id of the secret object that holds the SPICE password. */
const SECRET_ID = 'spicepw';

/** A free loopback port, as the kernel hands them out. */
async function freeLoopbackPort(): Promise<number> {
  const srv = createServer();
  await new Promise<void>((resolve, reject) => {
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', resolve);
  });
  const { port } = srv.address() as AddressInfo;
  await new Promise<void>((resolve) => srv.close(() => resolve()));
  return port;
}

/**
 * A new endpoint for one boot: picks the port, writes the password and port files (0600) for QEMU and the proxy.
 * ORIEL_SPICE_TCP=0 keeps the unix socket instead (undefined). (QEMU 7.2's spice-server crashed when a second console
 * replaced the first while it linked, on TCP and on the unix socket alike: the console proxy now hands over itself,
 * server/console/takeover.ts.)
 */
export async function newSpiceEndpoint(paths: VmPaths): Promise<SpiceEndpoint | undefined> {
  rmSync(paths.spicePort, { force: true });
  if (process.env.ORIEL_SPICE_TCP === '0') return undefined;
  const password = randomBytes(24).toString('base64url'); // 32 chars; SPICE allows up to 60
  const port = await freeLoopbackPort();
  writeFileSync(paths.spiceSecret, password, { mode: 0o600 }); // format=raw: the whole file is the password
  writeFileSync(paths.spicePort, String(port), { mode: 0o600 });
  return { port, password };
}

/** The endpoint of a running VM, or undefined for a VM started by an older server on a unix socket. */
export function readSpiceEndpoint(paths: VmPaths): SpiceEndpoint | undefined {
  try {
    const port = Number(readFileSync(paths.spicePort, 'utf8'));
    const password = readFileSync(paths.spiceSecret, 'utf8');
    if (!Number.isInteger(port) || port < 1 || port > 65535 || !password) return undefined;
    return { port, password };
  } catch {
    return undefined;
  }
}

const STREAMING_MODES = ['off', 'filter', 'all'] as const;

/**
 * `-spice streaming-video=` from ORIEL_SPICE_VIDEO: off (default, as QEMU's own default), filter (spice-server's
 * heuristic picks video-like regions) or all (every region updated often enough). Streams are encoded in the first
 * codec the client prefers and the server can make (VP8, H.264, VP9 with the GStreamer plugins, MJPEG always):
 * QEMU 7.2 has no `video-codecs=` option, so spice-server's own list applies, reordered by each client.
 */
export function streamingVideoMode(env: string | undefined = process.env.ORIEL_SPICE_VIDEO): string {
  const mode = env || 'off';
  if (!(STREAMING_MODES as readonly string[]).includes(mode))
    throw new Error(`ORIEL_SPICE_VIDEO must be one of ${STREAMING_MODES.join(', ')} (got '${mode}')`);
  return mode;
}

/** QEMU arguments: the secret object and the -spice option (loopback only, ticketing by the secret). */
export function spiceArgs(paths: VmPaths, ep: SpiceEndpoint | undefined): string[] {
  const mode = streamingVideoMode();
  const video = mode === 'off' ? '' : `,streaming-video=${mode}`;
  if (!ep) return ['-spice', `unix=on,addr=${paths.spice},disable-ticketing=on${video}`];
  return [
    '-object', `secret,id=${SECRET_ID},file=${paths.spiceSecret},format=raw`,
    '-spice', `port=${ep.port},addr=127.0.0.1,ipv4=on,password-secret=${SECRET_ID}${video}`,
  ];
}
