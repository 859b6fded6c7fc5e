// A bench's helper script in a child process (a browser driver, say): one JSON line per request on its stdin, one
// JSON line per answer on its stdout, in turn. The scripts keep their browser out of the bench's own process.
import { spawn } from 'node:child_process';
import { createInterface } from 'node:readline';

export interface JsonDriver<Req, Res> {
  ask(req: Req): Promise<Res>;
  close(): void;
}

/** Starts `script` (a .ts file, run through tsx) and talks to it. */
export function startJsonDriver<Req, Res>(script: string): JsonDriver<Req, Res> {
  const child = spawn(process.execPath, ['--import', 'tsx', script], { stdio: ['pipe', 'pipe', 'inherit'] });
  const lines = createInterface({ input: child.stdout! })[Symbol.asyncIterator]();
  return {
    async ask(req) {
      child.stdin!.write(`${JSON.stringify(req)}\n`);
      const line = await lines.next();
      if (line.done) throw new Error(`${script} ended`);
      return JSON.parse(line.value) as Res;
    },
    close: () => child.stdin!.end(),
  };
}

/** The script's side: answers each request line with `handle`'s answer, or with `onError`'s for a thrown error, until
 * stdin ends. */
export async function serveJsonDriver<Req, Res>(
  handle: (req: Req) => Promise<Res>,
  onError: (message: string) => Res,
): Promise<void> {
  for await (const line of createInterface({ input: process.stdin })) {
    if (!line.trim()) continue;
    let out: Res;
    try {
      out = await handle(JSON.parse(line) as Req);
    } catch (e) {
      out = onError((e as Error).message);
    }
    process.stdout.write(`${JSON.stringify(out)}\n`);
  }
}
