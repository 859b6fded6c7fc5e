// Close codes of the console WebSockets (/api/vms/{vm}/spice) that clients act on. No zod here: the web console
// imports it.
/**
 * The close code of a console WebSocket whose VM another console took over (one SPICE client per VM, as with
 * remote-viewer; server/console/takeover.ts). The browser console then stays disconnected rather than taking the VM
 * back.
 */
export const CONSOLE_TAKEN_OVER = 4409;
