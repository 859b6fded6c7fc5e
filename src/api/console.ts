// Console tickets: a single-use pass (60 s) for one console session's SPICE channels.
import { z } from 'zod';

export const consoleTicketSchema = z.object({ ticket: z.string(), expiresAt: z.string(), path: z.string() });
export type ConsoleTicket = z.infer<typeof consoleTicketSchema>;

export { CONSOLE_TAKEN_OVER } from './console-close.ts';
