// oriel console share TARGET DIR [--read-only]: serves DIR to the guest over the SPICE WebDAV channel (the guest's
// WebDAV daemon relays to it; the desktop image mounts it at ~/Shared) until Ctrl-C or the session ends. And the
// choice of path for `console send-file`: the WebDAV drop box when the guest fetches drops, the agent otherwise.
import { stat } from 'node:fs/promises';
import { setTimeout as sleep } from 'node:timers/promises';
import { nodeDavFs } from '../../spice-node/webdav-fs.ts';
import {
  ChannelType, WebdavShare, nextEvent, sendPath, type PortChannel, type SendPath, type SpiceSession,
} from '../../spice/index.ts';
import { CliError } from '../api.ts';

/** How long `send-file` waits for the guest's drop fetcher before using the agent. */
const DROPS_WAIT_MS = 8000;

/** Opens the share on the session's WebDAV channel, if the VM has one; undefined otherwise. */
export async function openShare(session: SpiceSession, waitMs: number): Promise<WebdavShare | undefined> {
  const bound = sleep(waitMs, undefined, { ref: false });
  const port = await Promise.race([session.whenChannel<PortChannel>(ChannelType.WEBDAV), bound]);
  return port ? new WebdavShare(port) : undefined;
}

/** The path files take: `via` asked for, or WebDAV once the guest polls for drops (within a few seconds). */
export async function chooseSendPath(
  session: SpiceSession, via: 'auto' | SendPath,
): Promise<{ path: SendPath; share?: WebdavShare }> {
  if (via === 'agent') return { path: 'agent' };
  const share = await openShare(session, via === 'webdav' ? 20_000 : 3000);
  if (share) {
    const until = Date.now() + (via === 'webdav' ? 30_000 : DROPS_WAIT_MS);
    while (sendPath(share) !== 'webdav' && Date.now() < until && !share.port.closed) await sleep(100);
  }
  const path = sendPath(share);
  if (via === 'webdav' && path !== 'webdav')
    throw new CliError('the guest does not fetch files over WebDAV (no WebDAV daemon polling for drops)');
  return { path, share };
}

export async function runShare(session: SpiceSession, dir: string, readOnly: boolean, target: string): Promise<void> {
  const st = await stat(dir).catch(() => undefined);
  if (!st?.isDirectory()) throw new CliError(`${dir}: not a folder`);
  const share = await openShare(session, 10_000);
  if (!share) throw new CliError(`${target}: the VM has no WebDAV channel (org.spice-space.webdav.0)`);
  share.setFolder(await nodeDavFs(dir, { readOnly }));
  if (!share.port.opened) {
    console.error('waiting for the guest\'s WebDAV daemon to open its port…');
    await Promise.race([nextEvent(share.port.onOpened, (o) => o), nextEvent(share.port.onClose)]);
  }
  console.error(
    `sharing ${dir}${readOnly ? ' (read-only)' : ''}; the desktop image mounts it at ~/Shared. Ctrl-C stops.`,
  );
  const ac = new AbortController();
  const onSigint = () => ac.abort();
  process.once('SIGINT', onSigint);
  try {
    await Promise.race([
      new Promise<void>((resolve) => ac.signal.addEventListener('abort', () => resolve())),
      new Promise<void>((_, reject) => share.port.onClose(() => reject(new CliError(`${target}: the session ended`)))),
    ]);
  } finally {
    process.off('SIGINT', onSigint);
    share.dispose();
  }
}
