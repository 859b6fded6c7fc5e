import type { OperationContext } from '../operations.ts';
import type { Progress } from '../../checkpoint/service.ts';

/** The checkpoint service reports stages by name; operations show them as steps done. The reporter carries the
 * operation's id: a capture worker that outlives the server names it, so the next server can finish the operation. */
export function checkpointProgress(ctx: OperationContext): Progress {
  let n = 0;
  const report: Progress = (stage) => {
    ctx.progress(++n, 0, stage);
    ctx.log(stage);
  };
  report.operationId = ctx.id;
  report.log = (line) => ctx.log(line);
  return report;
}
