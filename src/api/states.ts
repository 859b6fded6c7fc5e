// The state lists as plain values, without zod: what the web UI and the CLI may import at run time (their bundles
// stay free of zod). vms.ts and operations.ts build their schemas on these.

/** Every state a VM can be in: the one list (src/vm uses it too). */
export const VM_STATES = ['stopped', 'starting', 'running', 'paused', 'stopping', 'crashed'] as const;
export type VmState = (typeof VM_STATES)[number];

export const OPERATION_STATUSES = ['pending', 'running', 'succeeded', 'failed', 'cancelled'] as const;
export type OperationStatus = (typeof OPERATION_STATUSES)[number];
/** The statuses an operation ends in. */
export const FINAL_STATUSES: readonly OperationStatus[] = ['succeeded', 'failed', 'cancelled'];
export const isFinalStatus = (s: OperationStatus): boolean => FINAL_STATUSES.includes(s);
