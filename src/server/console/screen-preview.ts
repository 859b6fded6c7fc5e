// The console's first picture: QEMU's own screendump of the VM's screen (PNG), which a console page draws while its
// SPICE channels link and until the display channel draws over it. spice-server's first picture to a new client
// comes only after the link, the ticket, the main channel's network test, the display link and the encoding of the
// whole screen, one after another; QEMU's screendump renders the same framebuffer (the picture the SPICE tests
// compare with, pixel for pixel) in one QMP command. Guacamole's and VMware's consoles likewise show the last known
// picture while they connect.
// QEMU runs QMP commands one after another (the console proxy's own query-spice waits behind a screendump), so there
// is never more than one screendump per VM in QEMU: a picture is served again for FRESH_MS after QEMU answered, a
// failure is remembered for FAILED_MS, and a request that waited TIMEOUT_MS gets 503 while QEMU's answer is still
// awaited (the next request waits for that same one). ORIEL_CONSOLE_PREVIEW=off turns it off.
import { readFile, rm, stat } from 'node:fs/promises';
import type { FastifyBaseLogger } from 'fastify';
import { join } from 'node:path';
import { consoleVmFor } from '../../api/console-page.ts';
import { conflict, notFound, unavailable } from '../../errors.ts';
import type { VmRecord } from '../../vm/records.ts';
import { mayUseVm } from '../auth/vm-access.ts';
import type { ServerContext } from '../context.ts';

/** How long a picture is served again. */
const FRESH_MS = 1000;
/** How long a failed screendump is not tried again. */
const FAILED_MS = 5000;
/** QEMU answers a screendump in tens of ms; longer means it is busy, and SPICE will be there before the picture. */
const TIMEOUT_MS = 3000;
/** The file QEMU writes, in the VM's own folder (one name: at most one can be left behind by a crash). */
const FILE = 'console-screen.png';
/** A larger picture is not read: a guest can make its screen large and noisy (a PNG of tens of MB), and the server
 * would hold it in memory and send it; the console then waits for SPICE's own picture. */
export const MAX_PICTURE_BYTES = 8 << 20;

interface Entry {
  /** Settles when QEMU has answered (and the file is read and gone). */
  png: Promise<Buffer>;
  /** When QEMU answered; undefined while it has not. */
  done?: number;
  failed?: boolean;
}

export class ScreenPreviews {
  private readonly byVm = new Map<string, Entry>();

  constructor(private readonly ctx: ServerContext, private readonly log: FastifyBaseLogger) {}

  /** The VM's screen as PNG bytes (at most FRESH_MS old). */
  async get(vm: VmRecord): Promise<Buffer> {
    if (!this.ctx.config.consolePreview) {
      throw notFound('console previews are off on this server (ORIEL_CONSOLE_PREVIEW=off)');
    }
    if (!['running', 'paused'].includes(vm.state)) throw conflict(`VM '${vm.name}' is not running`);
    const now = Date.now();
    let e = this.byVm.get(vm.id);
    const stale = e?.done !== undefined && now - e.done >= (e.failed ? FAILED_MS : FRESH_MS);
    if (!e || stale) {
      const entry: Entry = { png: this.take(vm) };
      entry.png.then(() => (entry.done = Date.now()), () => {
        entry.done = Date.now();
        entry.failed = true;
      });
      this.byVm.set(vm.id, entry);
      e = entry;
    }
    let timer: NodeJS.Timeout | undefined;
    const late = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error('QEMU is busy')), TIMEOUT_MS);
    });
    try {
      return await Promise.race([e.png, late]);
    } catch {
      throw unavailable("the VM's screen could not be read now (QEMU is busy or failed; see the server log)");
    } finally {
      clearTimeout(timer);
    }
  }

  /**
   * A page is being served: when it is a console page (api/console-page.ts) for a signed-in owner of the VM or an
   * admin, its picture is started now; the page's script asks for it moments later and gets this one.
   */
  warmForPage(url: string, sessionCookie: string | undefined): void {
    if (!sessionCookie || !this.ctx.config.consolePreview) return;
    const q = url.indexOf('?');
    const name = consoleVmFor(q < 0 ? url : url.slice(0, q), q < 0 ? '' : url.slice(q));
    if (name === undefined) return;
    try {
      const vm = this.ctx.vms.get(name);
      const user = this.ctx.users.session(sessionCookie)?.user;
      if (user && mayUseVm(user, vm)) this.get(vm).catch(() => undefined); // a stopped VM: get() says so
    } catch {
      // no such VM: the page says so
    }
  }

  /** One screendump: QEMU writes the file (named here; nothing of the request goes into it), we read and remove
   * it. No QMP timeout: the entry stays busy until QEMU answers, so screendumps never pile up in QEMU. */
  private async take(vm: VmRecord): Promise<Buffer> {
    const file = join(this.ctx.vms.paths(vm).dir, FILE);
    try {
      await this.ctx.vms.qmp(vm.id).execute('screendump', { filename: file, format: 'png' }, { timeoutMs: Infinity });
      const size = (await stat(file)).size;
      if (size > MAX_PICTURE_BYTES) throw new Error(`the picture is ${size} bytes, over ${MAX_PICTURE_BYTES}`);
      return await readFile(file);
    } catch (e) {
      this.log.warn({ vm: vm.name, error: (e as Error).message }, 'console picture: screendump failed');
      throw e;
    } finally {
      await rm(file, { force: true });
    }
  }
}
