// The desktop guest's WebDAV port daemon (webdavd/oriel-webdavd.c, in place of Debian's spice-webdavd): the mux of
// TCP connections to 127.0.0.1:9843 over the org.spice-space.webdav.0 port, and the fetching of Oriel's file drops
// straight into ~/Downloads. Compiled here with the host's gcc, statically (the host runs the guest's Debian release,
// but a static binary depends on nothing of the guest's libraries).
import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';

const run = promisify(execFile);
const SOURCE = fileURLToPath(new URL('./webdavd/oriel-webdavd.c', import.meta.url));
const FLAGS = ['-static', '-O2', '-Wall', '-Wextra', '-Werror'];

/** What the binary is made from (part of the desktop recipe). */
export function webdavdRecipe(): { source: string; flags: string[] } {
  return { source: readFileSync(SOURCE, 'utf8'), flags: FLAGS };
}

/** Compiles the daemon into `out`. */
export async function buildWebdavd(out: string, signal?: AbortSignal): Promise<void> {
  try {
    await run('gcc', [...FLAGS, '-o', out, SOURCE], { signal });
  } catch (e) {
    if (signal?.aborted) throw e;
    const x = e as { stderr?: string; message: string };
    throw new Error(`compiling oriel-webdavd failed (gcc and libc6-dev installed? run scripts/bootstrap.sh): `
      + (x.stderr || x.message).trim().split('\n').slice(-8).join('\n'));
  }
}
