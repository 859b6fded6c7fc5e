// Timestamps of the console proxy's steps, for bench/display-browser.ts --breakdown (where a first picture's time
// goes). Off unless a sink is set (in-process, by the bench); events carry no credential, only steps and sizes.
export interface ConsoleTraceEvent {
  /** Wall-clock milliseconds (performance.timeOrigin + now(), comparable with a page's on the same machine). */
  at: number;
  /** One number per WebSocket (channel connection) of this server process. */
  conn: number;
  what: string;
  /** The SPICE channel type, once the link message told it. */
  channel?: number;
  bytes?: number;
}

export const consoleTrace: { sink?: (e: ConsoleTraceEvent) => void } = {};
let conns = 0;

/** A tracer for one connection; a no-op while no sink is set. */
export function connectionTrace(): (what: string, more?: { channel?: number; bytes?: number }) => void {
  const conn = ++conns;
  return (what, more) => consoleTrace.sink?.({ at: performance.timeOrigin + performance.now(), conn, what, ...more });
}
