// bench/display-browser.ts --breakdown: where Oriel's first picture's time goes. Each Oriel run's milestones, in ms
// since the page's navigation start: the page's own (navigation timing, its performance marks oriel:*, from
// public/early-link.js, main.ts, spice-web/preconnect.ts and screen.ts) and the console proxy's (its trace sink,
// src/server/console/trace.ts, in this process; same machine, same wall clock). Printed as medians over the runs.
import { consoleTrace, type ConsoleTraceEvent } from '../src/server/console/trace.ts';

const MAIN = 1;
const DISPLAY = 2;

export class Breakdown {
  private events: ConsoleTraceEvent[] = [];
  private readonly runs: Map<string, number>[] = [];

  /** Before a page loads: the proxy's events from now on are this run's. */
  start(): void {
    this.events = [];
    consoleTrace.sink = (e) => this.events.push(e);
  }

  /** After it matched: the run's milestones (also kept for the medians). */
  add(timeOrigin: number, marks: Record<string, number>, matched: number): Map<string, number> {
    consoleTrace.sink = undefined;
    const rel = (e: ConsoleTraceEvent | undefined) => (e ? e.at - timeOrigin : NaN);
    const connOf = (channel: number) => this.events.find((e) => e.what === 'link' && e.channel === channel)?.conn;
    const of = (channel: number, what: string) => {
      const c = connOf(channel);
      return this.events.filter((e) => e.conn === c && e.what === what && e.at - timeOrigin <= matched);
    };
    const chunks = (es: ConsoleTraceEvent[]) => es.map((e) => `${rel(e).toFixed(0)}@${e.bytes}`).join(' ');
    const sum = (es: ConsoleTraceEvent[]) => es.reduce((n, e) => n + (e.bytes ?? 0), 0) / 1024;
    const mainData = of(MAIN, 'from-qemu');
    const displayData = of(DISPLAY, 'from-qemu');
    const m = new Map<string, number>([
      ['HTML received', marks.html ?? NaN],
      ['early-link.js runs', marks['early-link'] ?? NaN],
      ['main socket open', marks['main-open'] ?? NaN],
      ['proxy: main link in', rel(of(MAIN, 'link')[0])],
      ['proxy: main dials QEMU', rel(of(MAIN, 'dial')[0])],
      ['proxy: QEMU main link reply', rel(mainData[0])],
      ['screen picture in (HTTP)', marks['picture-in'] ?? NaN],
      ['scripts received', marks.scripts ?? NaN],
      ['main.ts runs', marks.main ?? NaN],
      ['app: signed in (auth/me)', marks.me ?? NaN],
      ['app: VM record', marks.vm ?? NaN],
      ['app: console created', marks.console ?? NaN],
      ['core: MAIN INIT', marks['main-init'] ?? NaN],
      ['core: video codecs known (display links after)', marks['video-codecs'] ?? NaN],
      [`proxy: main data until display link (KB)`, sum(mainData.filter((e) => rel(e) <= rel(of(DISPLAY, 'link')[0])))],
      ['proxy: display link in', rel(of(DISPLAY, 'link')[0])],
      ['core: display linked', marks['linked-display'] ?? NaN],
      ['proxy: display data, first', rel(displayData[1])],
      ['proxy: display data, last', rel(displayData.at(-1))],
      ['proxy: display data (KB)', sum(displayData)],
      ['screen: server picture drawn', marks.picture ?? NaN],
      ['screen: first draw', marks['first-draw'] ?? NaN],
      ['screen: first paint', marks['first-paint'] ?? NaN],
      ['canvas equals the picture', matched],
    ]);
    this.runs.push(m);
    this.lastChunks = `main ${chunks(mainData)}; display ${chunks(displayData)}`;
    return m;
  }

  /** The last run's chunks from QEMU (ms@bytes) on the main and display channels, until the match. */
  lastChunks = '';

  /** The medians over the runs, one milestone a line. */
  print(): void {
    if (!this.runs.length) return;
    console.log(`\nWhere Oriel's first picture goes (ms since navigation start; medians of ${this.runs.length} runs)`);
    for (const key of this.runs[0]!.keys()) {
      const xs = this.runs.map((r) => r.get(key)!).filter((x) => !Number.isNaN(x)).sort((a, b) => a - b);
      const med = xs.length ? xs[Math.floor(xs.length / 2)]! : NaN;
      console.log(`  ${key.padEnd(44)} ${Number.isNaN(med) ? '   -' : med.toFixed(0).padStart(5)}`);
    }
  }
}
