// Starts a short-lived QEMU with a SPICE unix socket and a QMP socket for the SPICE tests, and
// speaks just enough raw QMP (qmp_capabilities, screendump to PPM) to compare framebuffers.
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { connect, createServer, type AddressInfo, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';

export interface QemuOptions {
  /** -spice image-compression value (off, lz, quic, glz, auto_glz, auto_lz). */
  imageCompression?: string;
  /** Enables SPICE ticketing with this password (password-secret). */
  password?: string;
  /** Extra arguments (e.g. -kernel/-initrd of a guest image). */
  extraArgs?: string[];
  memoryMb?: number;
  /** Start with the CPU stopped (-S); `qmp.execute('cont')` runs it, so a client connected in
   * between receives all guest drawing as DRAW_COPY commands (not as one initial surface image). */
  paused?: boolean;
  /** Listen on 127.0.0.1 TCP instead of a unix socket. libspice-server never compresses
   * DRAW_COPY bitmaps for AF_UNIX clients (server/dcc-send.cpp fill_bits), so codec tests need TCP. */
  tcp?: boolean;
  /** More -spice suboptions, e.g. `jpeg-wan-compression=always`, `streaming-video=all`. */
  spiceOptions?: string[];
  /** -vga device (default std); 'none' with a -device in extraArgs, e.g. `VGA,xres=320,yres=240`. */
  vga?: 'std' | 'qxl' | 'none';
  /** -smp (default 1); with -cpu max for SMP guests, as Oriel's VMs run (TCG is multi-threaded by default). */
  cpus?: number;
}

export interface QemuInstance {
  dir: string;
  /** Set for unix-socket instances. */
  spiceSocket: string;
  /** Set for TCP instances. */
  spicePort: number;
  qmp: Qmp;
  proc: ChildProcess;
  stop(): Promise<void>;
}

export class Qmp {
  private _buf = '';
  private _waiters: ((msg: Record<string, unknown>) => void)[] = [];

  private constructor(private readonly _sock: Socket) {
    _sock.setEncoding('utf8');
    _sock.on('data', (d: string) => {
      this._buf += d;
      let nl: number;
      while ((nl = this._buf.indexOf('\n')) >= 0) {
        const line = this._buf.slice(0, nl).trim();
        this._buf = this._buf.slice(nl + 1);
        if (!line) continue;
        const msg = JSON.parse(line) as Record<string, unknown>;
        if ('event' in msg) continue;
        this._waiters.shift()?.(msg);
      }
    });
  }

  static async open(path: string): Promise<Qmp> {
    const sock = connect({ path });
    await new Promise<void>((res, rej) => sock.once('connect', res).once('error', rej));
    const qmp = new Qmp(sock);
    await qmp._next(); // greeting
    await qmp.execute('qmp_capabilities');
    return qmp;
  }

  private _next(): Promise<Record<string, unknown>> {
    return new Promise((resolve) => this._waiters.push(resolve));
  }

  async execute(command: string, args?: Record<string, unknown>): Promise<unknown> {
    const reply = this._next();
    this._sock.write(JSON.stringify({ execute: command, ...(args ? { arguments: args } : {}) }) + '\n');
    const msg = await reply;
    if ('error' in msg) throw new Error(`QMP ${command}: ${JSON.stringify(msg.error)}`);
    return msg.return;
  }

  close(): void {
    this._sock.destroy();
  }
}

export interface Ppm {
  width: number;
  height: number;
  rgb: Uint8Array;
}

export function parsePpm(buf: Buffer): Ppm {
  // P6\n<w> <h>\n<max>\n<binary>
  let pos = 0;
  const tokens: string[] = [];
  while (tokens.length < 4) {
    while (/\s/.test(String.fromCharCode(buf[pos]!))) pos++;
    let t = '';
    while (!/\s/.test(String.fromCharCode(buf[pos]!))) t += String.fromCharCode(buf[pos++]!);
    tokens.push(t);
  }
  pos++;
  if (tokens[0] !== 'P6' || tokens[3] !== '255') throw new Error(`unexpected PPM header ${tokens.join(' ')}`);
  const width = Number(tokens[1]);
  const height = Number(tokens[2]);
  return { width, height, rgb: new Uint8Array(buf.subarray(pos, pos + width * height * 3)) };
}

/** What a screendump needs: a folder for the file and a QMP connection (a QemuInstance, or a server's VM). */
export interface Screen {
  dir: string;
  qmp: { execute(command: 'screendump', args: { filename: string }): Promise<unknown> };
}

export async function screendump(q: Screen): Promise<Ppm> {
  const file = join(q.dir, 'screen.ppm');
  await q.qmp.execute('screendump', { filename: file });
  return parsePpm(readFileSync(file));
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const port = (srv.address() as AddressInfo).port;
      srv.close(() => resolve(port));
    });
  });
}

export async function startQemu(opts: QemuOptions = {}): Promise<QemuInstance> {
  const dir = mkdtempSync(join(tmpdir(), 'osp-'));
  const spiceSocket = join(dir, 'spice.sock');
  const qmpSocket = join(dir, 'qmp.sock');
  const spicePort = opts.tcp ? await freePort() : 0;
  const where = opts.tcp ? [`port=${spicePort}`, 'addr=127.0.0.1'] : ['unix=on', `addr=${spiceSocket}`];
  const spice = [...where, `image-compression=${opts.imageCompression ?? 'auto_glz'}`, ...(opts.spiceOptions ?? [])];
  const args = [
    '-machine',
    'q35',
    '-accel',
    'tcg',
    '-m',
    String(opts.memoryMb ?? 128),
    '-nodefaults',
    '-no-user-config',
    '-display',
    'none',
    '-vga',
    opts.vga ?? 'std',
  ];
  if (opts.cpus && opts.cpus > 1) args.push('-smp', String(opts.cpus), '-cpu', 'max');
  if (opts.paused) args.push('-S');
  if (opts.password !== undefined) {
    args.push('-object', `secret,id=sec0,data=${opts.password}`);
    spice.push('password-secret=sec0');
  } else {
    spice.push('disable-ticketing=on');
  }
  args.push('-spice', spice.join(','), '-qmp', `unix:${qmpSocket},server=on,wait=off`, ...(opts.extraArgs ?? []));
  const proc = spawn('qemu-system-x86_64', args, { stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  proc.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
  const deadline = Date.now() + 10_000;
  while (!(existsSync(qmpSocket) && (opts.tcp || existsSync(spiceSocket)))) {
    if (proc.exitCode !== null || Date.now() > deadline) {
      proc.kill('SIGKILL');
      throw new Error(`QEMU did not start: ${stderr}`);
    }
    await sleep(50);
  }
  const qmp = await Qmp.open(qmpSocket);
  return {
    dir,
    spiceSocket: opts.tcp ? '' : spiceSocket,
    spicePort,
    qmp,
    proc,
    async stop() {
      qmp.close();
      if (proc.exitCode === null) {
        const exited = new Promise((r) => proc.once('exit', r));
        proc.kill('SIGKILL'); // by pid, this instance only
        await exited;
      }
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
