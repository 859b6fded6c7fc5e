// One way to copy a file into the guest, whichever path it has: the WebDAV drop box when the guest's
// spice-webdavd and its fetch loop are there (fast), the agent's file transfer otherwise. Same progress, cancel
// and errors (FileTransferError) either way.
import type { SpiceAgent } from '../vdagent/agent.ts';
import type { AbortSignalLike, FileSource, TransferProgress } from '../vdagent/file-xfer.ts';
import type { WebdavShare } from './share.ts';

export type SendPath = 'webdav' | 'agent';

export interface SendFileOptions {
  signal?: AbortSignalLike;
  onProgress?: (p: TransferProgress) => void;
}

/** The path a file sent now would take. */
export function sendPath(share: WebdavShare | undefined): SendPath {
  return share?.guestOpened && share.drops.ready ? 'webdav' : 'agent';
}

/** Sends one file; resolves with the path taken and, for WebDAV, the name it got in the guest's ~/Downloads. */
export async function sendFileToGuest(
  agent: SpiceAgent,
  share: WebdavShare | undefined,
  file: FileSource,
  opts: SendFileOptions = {},
): Promise<{ via: SendPath; name: string }> {
  if (sendPath(share) === 'webdav') return { via: 'webdav', name: await share!.drops.offer(file, opts) };
  await agent.files.send(file, opts);
  return { via: 'agent', name: file.name };
}
