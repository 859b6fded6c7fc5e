// Reads a secret from standard input (piped), or from the terminal without echoing it.
import { createInterface } from 'node:readline';
import { CliError } from './api.ts';

export async function readSecret(prompt: string, fromStdin: boolean): Promise<string> {
  if (fromStdin || !process.stdin.isTTY) {
    const chunks: Buffer[] = [];
    for await (const c of process.stdin) chunks.push(c as Buffer);
    const s = Buffer.concat(chunks).toString('utf8').replace(/\r?\n$/, '');
    if (!s) throw new CliError('no password on standard input');
    return s;
  }
  const rl = createInterface({ input: process.stdin, output: process.stderr, terminal: true });
  // Mute the echo: readline writes typed characters through _writeToOutput.
  const r = rl as unknown as { _writeToOutput: (s: string) => void; output: NodeJS.WritableStream };
  let muted = false;
  r._writeToOutput = (s: string) => { if (!muted || s.includes('\n')) r.output.write(muted ? '\n' : s); };
  const answer = await new Promise<string>((resolve) => {
    rl.question(prompt, resolve);
    muted = true;
  });
  rl.close();
  return answer;
}
