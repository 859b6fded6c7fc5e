// The server-sent event stream (GET /api/events): each event's name and what its data holds.
import { z } from 'zod';
import { operationSchema } from './operations.ts';
import { vmSchema } from './vms.ts';

export const eventSchemas = {
  /** A VM was created or changed. */
  vm: vmSchema,
  'vm-deleted': z.object({ id: z.string(), name: z.string() }),
  /** An operation started, progressed or ended. */
  operation: operationSchema,
  /** A VM's checkpoint schedule was set, removed or ran: reload it. */
  'checkpoint-schedule': z.object({ vmId: z.string(), vmName: z.string() }),
  /** The last event: the session or token the stream was opened with ended. */
  closed: z.object({ reason: z.string() }),
};
export type EventType = keyof typeof eventSchemas;
export type EventData<T extends EventType> = z.infer<(typeof eventSchemas)[T]>;
/** One event, its type telling its data apart. */
export type ApiEvent = { [T in EventType]: { type: T; data: EventData<T> } }[EventType];
