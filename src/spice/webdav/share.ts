// A WebDAV share on the org.spice-space.webdav.0 port channel: the mux (spice-webdavd's connections), the WebDAV
// server over the shared folder (or an empty read-only root when only file drops are served) and the drop box.
// The guest side tells what is served from OPTIONS' X-Oriel-Share header: "folder" (mount it) or "drops".
import type { PortChannel } from '../channels/port.ts';
import type { Disposable } from '../emitter.ts';
import { DropBox } from './drops.ts';
import { EMPTY_FS, type DavFs } from './fs.ts';
import { WebdavMux } from './mux.ts';
import { WebdavServer } from './server.ts';

export class WebdavShare {
  readonly server = new WebdavServer(EMPTY_FS);
  readonly drops = new DropBox();
  private readonly _mux: WebdavMux;
  private readonly _subs: Disposable[];
  private _folder: DavFs | undefined;

  constructor(readonly port: PortChannel, folder?: DavFs) {
    this.server.special = this.drops.handle;
    this.setFolder(folder);
    this._mux = new WebdavMux(
      { write: (b) => port.write(b), buffered: () => port.buffered },
      (stream, sink) => this.server.serveConnection(stream, sink),
    );
    const reset = () => {
      this._mux.reset();
      this.drops.reset();
    };
    this._subs = [
      port.onData((d) => this._mux.data(d)),
      port.onOpened((open) => { if (!open) reset(); }),
      port.onClose(() => reset()),
    ];
  }

  /** The folder shared (undefined: none, only drops). Takes effect for the guest's next requests: its loop is woken
   * from its drop poll to read OPTIONS again, and mounts or unmounts within a second, not after the poll's 10 s. */
  setFolder(fs: DavFs | undefined): void {
    const changed = fs !== this._folder;
    this._folder = fs;
    this.server.fs = fs ?? EMPTY_FS;
    this.server.optionsHeaders = { 'X-Oriel-Share': fs ? 'folder' : 'drops' };
    if (changed) this.drops.wake();
  }

  get folder(): DavFs | undefined {
    return this._folder;
  }

  /** The guest's spice-webdavd holds the port. */
  get guestOpened(): boolean {
    return this.port.opened && !this.port.closed;
  }

  /** Guest connections served so far (tests, diagnostics). */
  get connectionsOpened(): number {
    return this._mux.opened;
  }

  dispose(): void {
    for (const s of this._subs) s.dispose();
    this._mux.reset();
    this.drops.reset();
  }
}
