// The serial console: a WebSocket at /api/vms/{vm}/serial carries the guest's first serial port (ttyS0), raw
// bytes both ways (binary frames; text frames are taken as UTF-8 input), for xterm.js in the browser.
//
// - Who: as for the SPICE proxy: a session cookie (same origin only) or an API token (Authorization: Bearer),
//   and the per-VM permission (owner or admin), checked before the upgrade is accepted. The WebSocket is closed
//   (4401, with the reason) when that credential ends (auth/streams.ts).
// - Many viewers, one line: QEMU's chardev socket (paths.serial) serves one client at a time, so the server holds
//   one connection per VM while anyone watches, sends its output to every viewer and every viewer's keys to it.
//   A viewer that joins first gets the recent output (the tail of serial.log, which QEMU writes as it goes), so
//   the prompt is on screen at once.
// - A viewer that cannot keep up is dropped rather than buffered without bound.
import { connect, type Socket } from 'node:net';
import { WebSocketServer, type WebSocket, type RawData } from 'ws';
import type { FastifyInstance } from 'fastify';
import { unauthorized } from '../../errors.ts';
import type { ServerContext } from '../context.ts';
import { checkOrigin, liveVmFor, upgradeCaller, type VmUpgrade } from './upgrade.ts';
import type { VmRecord } from '../../vm/records.ts';
import type { ConsoleLimits } from './limits.ts';
import { lastBytes } from '../../vm/serial-log.ts';

/** Largest input frame: a paste into the terminal. */
const MAX_FRAME = 64 * 1024;
/** Output queued towards one viewer beyond which that viewer is disconnected. */
const MAX_VIEWER_BACKLOG = 4 << 20;
/** Input waiting for the guest to read it beyond which more is refused (a guest that never reads its serial port). */
const MAX_INPUT_BACKLOG = 1 << 20;
/** How much of serial.log a joining viewer is shown. */
const REPLAY_BYTES = 16 * 1024;

/** One VM's serial line, shared by its viewers. */
class SerialLine {
  readonly viewers = new Set<WebSocket>();
  private _sock: Socket | undefined;
  private _queued: Buffer[] = []; // input typed before QEMU's socket connected

  constructor(
    private readonly _path: string,
    private readonly _log: FastifyInstance['log'],
    private readonly _onEmpty: () => void,
  ) {}

  add(ws: WebSocket, replay: Buffer): void {
    if (replay.length) ws.send(replay, { binary: true });
    this.viewers.add(ws);
    if (!this._sock) this._open();
  }

  remove(ws: WebSocket): void {
    if (!this.viewers.delete(ws)) return; // left already
    if (this.viewers.size === 0) this.close();
  }

  /** Sends a viewer's keys to the guest; false (nothing sent) when MAX_INPUT_BACKLOG bytes already wait. */
  input(bytes: Buffer): boolean {
    const open = this._sock && !this._sock.connecting;
    const waiting = open ? this._sock!.writableLength : this._queued.reduce((n, b) => n + b.length, 0);
    if (waiting + bytes.length > MAX_INPUT_BACKLOG) return false;
    if (this._sock && !this._sock.connecting) this._sock.write(bytes);
    else this._queued.push(bytes);
    return true;
  }

  /** Ends the line and every viewer (the VM stopped, or the last viewer left). */
  close(code = 1000, reason = 'closed'): void {
    const sock = this._sock;
    this._sock = undefined;
    sock?.destroy();
    for (const ws of this.viewers) ws.close(code, reason);
    this.viewers.clear();
    this._onEmpty();
  }

  private _open(): void {
    const sock = connect(this._path);
    this._sock = sock;
    sock.on('connect', () => {
      for (const b of this._queued) sock.write(b);
      this._queued = [];
    });
    sock.on('data', (buf: Buffer) => {
      for (const ws of this.viewers) {
        if (ws.bufferedAmount > MAX_VIEWER_BACKLOG) {
          ws.close(1008, 'this viewer is too slow for the serial console');
          continue;
        }
        ws.send(buf, { binary: true });
      }
    });
    sock.on('error', (e) => this._log.warn({ err: e.message }, 'serial console: socket error'));
    sock.on('close', () => {
      if (this._sock === sock) this.close(1000, 'the VM closed its serial console');
    });
  }
}

/** The upgrade handler for /api/vms/{vm}/serial (see upgrade.ts). */
export function serialUpgrade(app: FastifyInstance, ctx: ServerContext, limits: ConsoleLimits): VmUpgrade {
  const wss = new WebSocketServer({ noServer: true, maxPayload: MAX_FRAME, perMessageDeflate: false });
  const lines = new Map<string, SerialLine>(); // by VM id

  const handle: VmUpgrade = (req, socket, head, ref) => {
    checkOrigin(req);
    const caller = upgradeCaller(app, ctx, req);
    if (!caller) throw unauthorized();
    const { user, credential } = caller;
    const vm = liveVmFor(ctx, ref, user, 'serial console');
    socket.once('close', limits.acquire(user.id)); // counted until the TCP connection closes
    wss.handleUpgrade(req, socket, head, (ws) => {
      let line = lines.get(vm.id);
      if (!line) {
        const id = vm.id;
        line = new SerialLine(ctx.vms.paths(vm).serial, app.log, () => {
          if (lines.get(id) === line) lines.delete(id);
        });
        lines.set(id, line);
      }
      const l = line;
      let recent: Buffer;
      try {
        recent = replay(ctx.vms.paths(vm).serialLog);
      } catch (e) {
        app.log.warn({ err: (e as Error).message }, 'serial console: cannot read serial.log');
        recent = Buffer.alloc(0); // the viewer still gets the live output
      }
      l.add(ws, recent);
      ws.on('message', (data: RawData) => {
        if (!l.viewers.has(ws)) return; // left the line (its credential ended): no more input
        const b = Array.isArray(data) ? Buffer.concat(data) : Buffer.from(data as ArrayBuffer);
        if (!l.input(b)) ws.close(1008, 'input faster than the guest reads it');
      });
      // Closed when its credential ends (sign-out, revocation, expiry, password change, account deleted): the
      // viewer leaves the line at once, so no output reaches it while the closing handshake runs.
      const unregister = ctx.users.streams.add(credential, (reason) => {
        l.remove(ws);
        ws.close(4401, reason.slice(0, 120));
        setTimeout(() => ws.terminate(), 1000).unref();
      });
      ws.on('close', () => (unregister(), l.remove(ws)));
      ws.on('error', () => (unregister(), l.remove(ws)));
    });
  };

  // A VM that stops ends its viewers' sessions (QEMU closing the socket does too; this is quicker and certain).
  const onChanged = (vm: VmRecord) => {
    if (!['running', 'paused'].includes(vm.state)) lines.get(vm.id)?.close(1000, `the VM is ${vm.state}`);
  };
  ctx.vms.on('changed', onChanged);
  app.addHook('onClose', async () => {
    ctx.vms.off('changed', onChanged);
    for (const l of [...lines.values()]) l.close(1001, 'the server is stopping');
    wss.close();
  });
  return handle;
}

/** The last REPLAY_BYTES of serial.log, starting after a line break when there is one. */
function replay(path: string): Buffer {
  const buf = lastBytes(path, REPLAY_BYTES + 1); // one more byte: was there anything before the replay?
  if (buf.length <= REPLAY_BYTES) return buf;
  const tailPart = buf.subarray(1);
  const nl = tailPart.indexOf(10);
  return nl >= 0 ? tailPart.subarray(nl + 1) : tailPart;
}
