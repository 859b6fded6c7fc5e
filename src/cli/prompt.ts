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

/**
 * Reads several secrets: one line each from standard input (piped, in the order of `prompts`), or one prompt each
 * on the terminal without echo.
 */
export async function readSecrets(prompts: string[], fromStdin: boolean): Promise<string[]> {
  if (fromStdin || !process.stdin.isTTY) {
    const chunks: Buffer[] = [];
    for await (const c of process.stdin) chunks.push(c as Buffer);
    const lines = Buffer.concat(chunks).toString('utf8').split(/\r?\n/);
    const got = lines.slice(0, prompts.length);
    if (got.length < prompts.length || got.some((l) => !l)) {
      throw new CliError(`standard input needs ${prompts.length} lines: ${prompts.map((p) => p.replace(/:\s*$/, '')).join(', ')}`);
    }
    return got;
  }
  const out: string[] = [];
  for (const p of prompts) out.push(await readSecret(p, false));
  return out;
}
