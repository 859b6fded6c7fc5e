import type { OperationContext } from '../operations.ts';

/** The checkpoint service reports stages by name; operations show them as steps done. */
export function checkpointProgress(ctx: OperationContext): (stage: string) => void {
  let n = 0;
  return (stage) => {
    ctx.progress(++n, 0, stage);
    ctx.log(stage);
  };
}
