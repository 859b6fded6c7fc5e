// Timers exist in every host the core runs in (the HTML standard's and Node's globals) but in neither ES lib, and the
// core's tsconfig loads neither DOM nor Node types: this is the one place that reaches for them.
interface HostTimers {
  setTimeout(callback: () => void, ms: number): unknown;
  clearTimeout(handle: unknown): void;
}

const host = globalThis as unknown as HostTimers;

/** Calls `callback` after `ms`; the returned function cancels it. */
export function startTimer(ms: number, callback: () => void): () => void {
  const h = host.setTimeout(callback, ms);
  return () => host.clearTimeout(h);
}

/** Calls `callback` every `ms`; the returned function stops it. */
export function startInterval(ms: number, callback: () => void): () => void {
  let stop = startTimer(ms, function tick() {
    callback();
    stop = startTimer(ms, tick);
  });
  return () => stop();
}

/** Resolves after `ms`. */
export function pause(ms: number): Promise<void> {
  return new Promise((resolve) => startTimer(ms, resolve));
}
