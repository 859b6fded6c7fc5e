// Which pages of the web UI show a VM's console: the console page (/vms/NAME/console) and a VM's page on its console
// tab (/vms/NAME, the default tab, or ?tab=console). The page starts that console as its script starts
// (spice-web/preconnect.ts), and the server dials it while it serves the page (server/console/predial.ts).
// No zod here: the web console imports it.

/** The VM whose console the page at `pathname`/`search` shows, or undefined if it shows none. */
export function consoleVmFor(pathname: string, search: string): string | undefined {
  const m = /^\/vms\/([^/]+)(\/console)?$/.exec(pathname);
  if (!m) return undefined;
  const tab = queryParam(search, 'tab');
  if (!m[2] && tab && tab !== 'console') return undefined;
  try {
    return decodeURIComponent(m[1]!);
  } catch {
    return undefined; // a malformed name: the page says so
  }
}

/** The first value of `key` in a query string ("?a=1&b=2"), as URLSearchParams reads it (this layer has no DOM or
 * Node types); undefined when absent or malformed. */
function queryParam(search: string, key: string): string | undefined {
  for (const pair of search.replace(/^\?/, '').split('&')) {
    const at = pair.indexOf('=');
    const [k, v] = at < 0 ? [pair, ''] : [pair.slice(0, at), pair.slice(at + 1)];
    try {
      if (decodeURIComponent(k.replace(/\+/g, ' ')) === key) return decodeURIComponent(v.replace(/\+/g, ' '));
    } catch {
      return undefined;
    }
  }
  return undefined;
}
