// The picture a console shows while its SPICE session links: the server's PNG of the VM's screen (QEMU's
// screendump, server/console/screen-preview.ts), drawn by screen.ts until the display channel draws over it. A
// console page's first script (public/early-link.js) asks for it beside the main channel's socket; a console opened
// later asks here.

interface EarlyScreen {
  /** The proxy path the picture is of (/api/vms/NAME/spice). */
  path: string;
  picture: Promise<ImageBitmap | null>;
  /** Stops its download (SPICE drew first). */
  abort(): void;
}

declare global {
  interface Window {
    orielEarlyScreen?: EarlyScreen;
  }
}

/** /api/vms/NAME/spice → /api/vms/NAME/console/screen */
const screenUrl = (spicePath: string) => spicePath.replace(/\/spice$/, '/console/screen');

/** Exact pixels: no colour management, no premultiplication (the picture is opaque anyway). */
const EXACT: ImageBitmapOptions = { colorSpaceConversion: 'none', premultiplyAlpha: 'none' };

/** The VM's screen as the server has it now, decoded (null when there is none: previews off, the VM stopped, an
 * error), and a way to stop its download once it is not needed. */
export function screenPicture(spicePath: string): EarlyScreen {
  const e = window.orielEarlyScreen;
  delete window.orielEarlyScreen;
  if (e && e.path === spicePath) return e;
  if (e) {
    // Of another VM (the page moved on before a console mounted): not needed.
    e.abort();
    void e.picture.then((b) => b?.close());
  }
  const ac = new AbortController();
  const picture = fetch(screenUrl(spicePath), { credentials: 'same-origin', signal: ac.signal })
    .then(async (r) => (r.ok ? createImageBitmap(await r.blob(), EXACT) : null))
    .catch(() => null);
  return { path: spicePath, picture, abort: () => ac.abort() };
}
