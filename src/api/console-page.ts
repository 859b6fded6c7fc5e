// The web UI's pages that show a VM's console: the console page (/vms/NAME/console) and a VM's page on its console
// tab (/vms/NAME, ?tab=console or no tab). The page's script starts its SPICE session first thing for them
// (web/main.ts; public/early-link.js, which cannot import, spells the same rule), and the server starts the
// console's first picture while it serves them (server/console/screen-preview.ts). No zod here: the web UI imports it.

/** The VM whose console the page at `pathname`/`search` shows, or undefined if it shows none. */
export function consoleVmFor(pathname: string, search: string): string | undefined {
  const m = /^\/vms\/([^/]+)(\/console)?$/.exec(pathname);
  if (!m) return undefined;
  const tab = /[?&]tab=([^&#]*)/.exec(search)?.[1];
  if (!m[2] && tab && tab !== 'console') return undefined;
  try {
    return decodeURIComponent(m[1]!);
  } catch {
    return undefined; // a malformed name: the page says so
  }
}
