// A QMP transcript for reading a failure afterwards: with ORIEL_QMP_TRANSCRIPT=1 in the environment (the tests set
// it, test/helpers/artifacts.ts), every QMP client appends each line it sends (->) and receives (<-) to
// qmp-transcript.log beside the socket, with the time, up to TRANSCRIPT_MAX_BYTES per file. Off by default.
import { appendFileSync, statSync } from 'node:fs';
import { dirname, join } from 'node:path';

export const TRANSCRIPT_FILE = 'qmp-transcript.log';
const TRANSCRIPT_MAX_BYTES = 4 << 20;

export type Transcript = (dir: '->' | '<-', line: string) => void;

/** The transcript writer of a client of `socketPath`, or undefined when transcripts are off. */
export function transcriptFor(socketPath: string): Transcript | undefined {
  if (process.env.ORIEL_QMP_TRANSCRIPT !== '1') return undefined;
  const file = join(dirname(socketPath), TRANSCRIPT_FILE);
  let full = false;
  return (dir, line) => {
    if (full) return;
    try {
      if ((statSync(file, { throwIfNoEntry: false })?.size ?? 0) > TRANSCRIPT_MAX_BYTES) {
        full = true;
        appendFileSync(file, `--- transcript cut at ${TRANSCRIPT_MAX_BYTES} bytes\n`);
        return;
      }
      appendFileSync(file, `${new Date().toISOString()} ${process.pid} ${dir} ${line}\n`, { mode: 0o600 });
    } catch {
      full = true; // the folder is gone (the VM was deleted): nothing more to write
    }
  };
}
