// A small history router: the current path as a signal, links that push state, and route matching.
import { signal } from '@preact/signals';

export const path = signal(location.pathname + location.search);

export function navigate(to: string, replace = false): void {
  if (to === path.value) return;
  if (replace) history.replaceState(null, '', to);
  else history.pushState(null, '', to);
  path.value = to;
}

window.addEventListener('popstate', () => (path.value = location.pathname + location.search));

/** Link clicks without modifier keys are handled here; the others open tabs as usual. */
export function onLinkClick(e: MouseEvent): void {
  const a = (e.target as Element).closest('a');
  if (!a || e.defaultPrevented || e.button !== 0 || e.metaKey || e.ctrlKey || e.shiftKey || e.altKey || a.target)
    return;
  const url = new URL(a.href, location.href);
  if (url.origin !== location.origin || url.pathname.startsWith('/api/')) return;
  e.preventDefault();
  navigate(url.pathname + url.search);
}

/** Matches '/vms/:name/console' against a path; params are decoded. */
export function match(pattern: string, p: string): Record<string, string> | null {
  const pp = pattern.split('/');
  const xs = p.split('?')[0]!.split('/');
  if (pp.length !== xs.length) return null;
  const out: Record<string, string> = {};
  for (let i = 0; i < pp.length; i++) {
    if (pp[i]!.startsWith(':')) out[pp[i]!.slice(1)] = decodeURIComponent(xs[i]!);
    else if (pp[i] !== xs[i]) return null;
  }
  return out;
}

export function query(name: string): string | null {
  return new URLSearchParams(path.value.split('?')[1] ?? '').get(name);
}
