// Runs fuzz inputs against a server: a fixed number (or until a deadline), a few at a time, each input's outcome
// counted per kind. Used by bench/fuzz-server.ts and test/security/fuzz.test.ts.
import fc from 'fast-check';

export type Counts = Map<string, Map<string, number>>;

export function count(c: Counts, kind: string, outcome: string, n = 1): void {
  let m = c.get(kind);
  if (!m) c.set(kind, (m = new Map()));
  m.set(outcome, (m.get(outcome) ?? 0) + n);
}

/** Inputs drawn from `arb` (deterministic for a seed), `concurrency` at a time, until `n` were sent or `until`
 * (a Date.now() value) passed. `send` returns how many inputs the one drawn value was worth (frames on a socket). */
export async function drive<T>(
  arb: fc.Arbitrary<T>,
  o: { n: number; until: number; concurrency: number; seed: number },
  send: (input: T) => Promise<number>,
): Promise<number> {
  let done = 0;
  let batchNo = 0;
  let queue: T[] = [];
  const next = (): T | undefined => {
    if (!queue.length) queue = fc.sample(arb, { numRuns: 200, seed: o.seed + batchNo++ });
    return queue.pop();
  };
  const worker = async () => {
    while (done < o.n && Date.now() < o.until) {
      const input = next()!;
      const worth = await send(input); // (not `done += await ...`: that reads `done` before the wait)
      done += worth;
    }
  };
  await Promise.all(Array.from({ length: o.concurrency }, worker));
  return done;
}

/** Outcomes that start with 5 (a server error), per kind. */
export function serverErrors(c: Counts): string[] {
  const out: string[] = [];
  for (const [kind, m] of c) for (const [o, n] of m) if (/^5\d\d$/.test(o)) out.push(`${kind}: ${o} x${n}`);
  return out;
}

export function formatCounts(c: Counts): string {
  return [...c].sort(([a], [b]) => a.localeCompare(b)).map(([kind, m]) =>
    `  ${kind.padEnd(22)} ${[...m].sort(([a], [b]) => a.localeCompare(b)).map(([o, n]) => `${o}:${n}`).join(' ')}`).join('\n');
}
