// Where a restore's milliseconds go: named marks from "restore requested", kept in the restore's result, summed up
// in one line of its operation log, and printed as they happen when ORIEL_RESTORE_TRACE=1 (stderr).
// QEMU's own moments (its RESUME event) come with QEMU's wall-clock timestamps and are placed on the same axis.

export interface TimelineMark {
  /** What had just happened. */
  stage: string;
  /** Milliseconds since the restore was requested (0.1 ms resolution). */
  ms: number;
}

export class RestoreTimeline {
  readonly marks: TimelineMark[] = [];
  private readonly p0 = performance.now();
  /** Date.now() minus performance.now(), to place wall-clock timestamps (QMP events) on the axis. */
  private readonly wallOffset = Date.now() - performance.now();
  private readonly trace = process.env.ORIEL_RESTORE_TRACE === '1';

  /** Records `stage` now (or at `atPerf`, a performance.now() value); returns its ms since the request. */
  mark(stage: string, atPerf = performance.now()): number {
    const ms = Math.round((atPerf - this.p0) * 10) / 10;
    this.marks.push({ stage, ms });
    if (this.trace) process.stderr.write(`[restore +${ms.toFixed(1)} ms] ${stage}\n`);
    return ms;
  }

  /** Records `stage` at a wall-clock time (ms since the epoch, e.g. a QMP event's timestamp). */
  markWall(stage: string, wallMs: number): number {
    return this.mark(stage, wallMs - this.wallOffset);
  }

  /** ms since the request of the first mark named `stage`, if any. */
  at(stage: string): number | undefined {
    return this.marks.find((m) => m.stage === stage)?.ms;
  }

  /** ms from `from` to `to`, if both were marked. */
  between(from: string, to: string): number | undefined {
    const a = this.at(from), b = this.at(to);
    return a === undefined || b === undefined ? undefined : Math.round((b - a) * 10) / 10;
  }

  /** One line: every mark's time, and the gap since the previous one. */
  summary(): string {
    const sorted = [...this.marks].sort((a, b) => a.ms - b.ms);
    return sorted.map((m, i) => `${m.stage} +${m.ms}` + (i ? ` (Δ${(m.ms - sorted[i - 1]!.ms).toFixed(1)})` : ''))
      .join(', ');
  }
}
