// The console's first picture: QEMU's own screendump of the VM's screen (PNG), which a console page draws while its
// SPICE channels link and until the display channel draws over it. spice-server's first picture to a new client
// comes only after the link, the ticket, the main channel's network test, the display link and the encoding of the
// whole screen, one after another; QEMU's screendump renders the same framebuffer (the picture the SPICE tests
// compare with, pixel for pixel) in one QMP command. Guacamole's and VMware's consoles likewise show the last known
// picture while they connect.
// One screendump at a time per VM; a picture taken less than FRESH_MS ago (or still being taken) is served again,
// so pages opening together, or reloaded, cost QEMU one. ORIEL_CONSOLE_PREVIEW=off turns it off.
import { randomUUID } from 'node:crypto';
import { readFile, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { conflict, notFound, unavailable } from '../../errors.ts';
import type { VmRecord } from '../../vm/records.ts';
import type { ServerContext } from '../context.ts';

/** How long a picture is served again. */
const FRESH_MS = 1000;
/** QEMU answers a screendump in tens of ms; longer means it is busy, and SPICE will be there before the picture. */
const TIMEOUT_MS = 3000;

export class ScreenPreviews {
  private readonly byVm = new Map<string, { started: number; png: Promise<Buffer> }>();

  constructor(private readonly ctx: ServerContext) {}

  /** The VM's screen as PNG bytes (at most FRESH_MS old). */
  get(vm: VmRecord): Promise<Buffer> {
    if (!this.ctx.config.consolePreview) {
      return Promise.reject(notFound('console previews are off on this server (ORIEL_CONSOLE_PREVIEW=off)'));
    }
    if (!['running', 'paused'].includes(vm.state)) {
      return Promise.reject(conflict(`VM '${vm.name}' is not running`));
    }
    const now = Date.now();
    const cur = this.byVm.get(vm.id);
    if (cur && now - cur.started < FRESH_MS) return cur.png;
    const entry = { started: now, png: this.take(vm) };
    this.byVm.set(vm.id, entry);
    entry.png.then(
      () => setTimeout(() => this.forget(vm.id, entry), FRESH_MS).unref(),
      () => this.forget(vm.id, entry),
    );
    return entry.png;
  }

  /**
   * A page is being served: when it is a console page (/vms/NAME/console, or /vms/NAME on its console tab; as
   * public/early-link.js tells them) for a signed-in owner of the VM or an admin, its picture is started now; the
   * page's script asks for it moments later and gets this one.
   */
  warmForPage(url: string, sessionCookie: string | undefined): void {
    if (!sessionCookie || !this.ctx.config.consolePreview) return;
    const u = new URL(url, 'http://page');
    const m = /^\/vms\/([^/]+)(\/console)?$/.exec(u.pathname);
    const tab = u.searchParams.get('tab');
    if (!m || (!m[2] && tab && tab !== 'console')) return;
    try {
      const vm = this.ctx.vms.get(decodeURIComponent(m[1]!));
      const user = this.ctx.users.session(sessionCookie)?.user;
      if (!user || (user.role !== 'admin' && vm.ownerId !== user.id)) return;
      if (['running', 'paused'].includes(vm.state)) this.get(vm).catch(() => undefined);
    } catch {
      // no such VM, a malformed name: the page says so
    }
  }

  private forget(vmId: string, entry: unknown): void {
    if (this.byVm.get(vmId) === entry) this.byVm.delete(vmId);
  }

  private async take(vm: VmRecord): Promise<Buffer> {
    // The file is named here, in the VM's own folder (which only the server and its QEMU reach); nothing of the
    // request goes into it.
    const file = join(this.ctx.vms.paths(vm).dir, `screen-${randomUUID()}.png`);
    try {
      await this.ctx.vms.qmp(vm.id).execute('screendump', { filename: file, format: 'png' }, { timeoutMs: TIMEOUT_MS });
      return await readFile(file);
    } catch (e) {
      // A timeout does not cancel the command: QEMU may still write the file.
      setTimeout(() => void rm(file, { force: true }), 30_000).unref();
      throw unavailable(`the VM's screen could not be read: ${(e as Error).message}`);
    } finally {
      await rm(file, { force: true });
    }
  }
}
