// How the CLI shows things: aligned tables, JSON on request, a progress bar on a terminal (plain stage lines
// otherwise, so logs and CI output stay readable).
import { parseSize as parseConfigSize } from '../config.ts';

export function table(rows: Record<string, unknown>[], columns: string[]): string {
  const cells = rows.map((r) => columns.map((c) => (r[c] === null || r[c] === undefined ? '-' : String(r[c]))));
  const widths = columns.map((c, i) => Math.max(c.length, ...cells.map((row) => row[i]!.length)));
  const line = (vals: string[]) => vals.map((v, i) => (i === vals.length - 1 ? v : v.padEnd(widths[i]!))).join('  ');
  return [line(columns.map((c) => c.toUpperCase())), ...cells.map(line)].join('\n');
}

export function printJson(v: unknown): void {
  process.stdout.write(JSON.stringify(v, null, 2) + '\n');
}

export function formatBytes(n: number): string {
  const u = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let i = 0;
  while (n >= 1024 && i < u.length - 1) { n /= 1024; i++; }
  return `${n.toFixed(i ? 1 : 0)} ${u[i]}`;
}

export class ProgressBar {
  private lastStage = '';
  private readonly tty = !!process.stderr.isTTY;

  update(done: number, total: number, stage: string): void {
    if (this.tty) {
      const width = 30;
      const frac = total > 0 ? Math.min(1, done / total) : 0;
      const bar = '#'.repeat(Math.round(frac * width)).padEnd(width, '.');
      const pct = total > 0 ? `${Math.round(frac * 100)}%`.padStart(4) : '    ';
      process.stderr.write(`\r[${bar}] ${pct} ${stage.slice(0, 40).padEnd(40)}`);
    } else if (stage !== this.lastStage) {
      process.stderr.write(`${stage}\n`);
    }
    this.lastStage = stage;
  }

  end(): void {
    if (this.tty) process.stderr.write('\n');
  }
}

/** A size as people and qemu-img write it: 20G, 512M, 1.5T (binary units; KiB/GiB and bare bytes too). */
export function parseSize(v: string): number {
  const n = parseConfigSize(v);
  if (n === undefined) throw new Error(`'${v}' is not a size: write it like 20G, 512M or 1.5T`);
  return n;
}
