// Waiting without a busy loop: for a fixed time, or until a condition holds.

/** Resolves after `ms`; its timer does not keep the process alive. */
export const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms).unref());

/** Polls `cond` every `stepMs` until it holds (true) or `timeoutMs` has passed (its last answer). */
export async function waitUntil(cond: () => boolean, timeoutMs: number, stepMs = 50): Promise<boolean> {
  const end = Date.now() + timeoutMs;
  while (Date.now() < end) {
    if (cond()) return true;
    await new Promise((r) => setTimeout(r, stepMs));
  }
  return cond();
}
