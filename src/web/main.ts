// The Oriel web UI: Preact + htm (templates without a build transform) + signals for state. Pages: sign-in, the
// VM list with operations, a VM's page (details, lifecycle, SPICE console, serial console, log), and the
// full-window console. The console pages are the critical path: this script carries what they need and starts
// their SPICE session first thing (console/preconnect.ts); the other views are separate chunks loaded on use.
import { consoleVmFor } from '../api/console-page.ts';
import { preconnect, spicePath } from '../spice-web/preconnect.ts';
import { render } from 'preact';
import { useEffect } from 'preact/hooks';
import './style.css';
import { client, quietClient, setUnauthorizedHandler } from './lib/api.ts';
import { html } from './lib/html.ts';
import { match, navigate, onLinkClick, path } from './lib/router.ts';
import { dismiss, live, me, notices, startEvents, stopEvents, upsertVm } from './lib/state.ts';
import { lazyView } from './lib/lazy.ts';
import { ConfirmHost } from './views/confirm.ts';
import { ConsolePage } from './views/console-page.ts';
import { LoginPage } from './views/login.ts';

// Before anything else: a console page's session links while the page signs in, loads the VM and renders; and the
// VM's record is asked for at once, beside the sign-in check (not after the event stream's first list).
performance.mark('oriel:main');
const consoleVm = consoleVmFor(location.pathname, location.search);
if (consoleVm) {
  preconnect(spicePath(consoleVm));
  quietClient.vms.get(consoleVm).then((vm) => {
    performance.mark('oriel:vm');
    upsertVm(vm);
  }, () => undefined);
}
// Who is signed in: asked now, not after the first render (an effect runs only after the first paint).
const signedIn = quietClient.auth.me();
signedIn.catch(() => undefined); // handled in App (toLogin); not an unhandled rejection before that

const VmListPage = lazyView(() => import('./views/vm-list.ts'), 'VmListPage');
const VmPage = lazyView(() => import('./views/vm-page.ts'), 'VmPage');
const AccountPage = lazyView(() => import('./views/account.ts'), 'AccountPage');
const UsersPage = lazyView(() => import('./views/users.ts'), 'UsersPage');
const NetworksPage = lazyView(() => import('./views/networks.ts'), 'NetworksPage');

function toLogin(): void {
  stopEvents();
  me.value = null;
  const here = path.value;
  if (!here.startsWith('/login')) navigate(`/login${here === '/' ? '' : `?next=${encodeURIComponent(here)}`}`, true);
}
setUnauthorizedHandler(toLogin);

async function logout(): Promise<void> {
  await client.auth.logout().catch(() => undefined);
  stopEvents();
  me.value = null;
  navigate('/login', true);
}

function Header() {
  const u = me.value;
  return html`
    <header class="top">
      <a href="/" class="brand">Oriel</a>
      <nav><a href="/">Machines</a> <a href="/networks" id="nav-networks">Networks</a>${u?.role === 'admin' && html` <a href="/users" id="nav-users">Users</a>`}</nav>
      <span class="spacer"></span>
      <span class=${`live live-${live.value}`} id="events-status" title="Live updates from the server">${live.value === 'live' ? '● live' : live.value === 'connecting' ? '○ connecting' : '○ offline: retrying'}</span>
      ${
        u &&
        html`<a href="/account" id="current-user" title="Account: change password">${u.name}${u.role === 'admin' ? ' (admin)' : ''}</a>
        <button id="logout" onClick=${logout}>Sign out</button>`
      }
    </header>`;
}

function Notices() {
  return html`<div class="notices" aria-live="polite">${notices.value.map(
    (n) => html`
    <div class=${`notice notice-${n.kind}`} key=${n.id} role=${n.kind === 'error' ? 'alert' : 'status'}>
      <span>${n.text}</span><button class="small" onClick=${() => dismiss(n.id)} aria-label="Dismiss">×</button></div>`,
  )}</div>`;
}

function Routes() {
  const p = path.value;
  const pathname = p.split('?')[0]!;
  if (pathname === '/login') return html`<${LoginPage} />`;
  if (me.value === undefined) return html`<main class="page"><p class="muted">Loading…</p></main>`;
  if (me.value === null) return null;
  let m;
  if (pathname === '/') return html`<${VmListPage} />`;
  if (pathname === '/account') return html`<${AccountPage} />`;
  if (pathname === '/users') return html`<${UsersPage} />`;
  if (pathname === '/networks') return html`<${NetworksPage} />`;
  if ((m = match('/vms/:name/console', pathname))) return html`<${ConsolePage} key=${m.name} name=${m.name} />`;
  if ((m = match('/vms/:name', pathname))) return html`<${VmPage} key=${m.name} name=${m.name} />`;
  return html`<main class="page"><h1>Not found</h1><p><a href="/">All virtual machines</a></p></main>`;
}

function App() {
  useEffect(() => {
    signedIn.then((u) => {
      performance.mark('oriel:me');
      me.value = u;
      startEvents();
      if (path.value.startsWith('/login')) navigate('/', true);
    }, toLogin);
  }, []);
  const full = path.value.split('?')[0]!.endsWith('/console');
  return html`
    <div class=${full ? 'app app-full' : 'app'} onClick=${onLinkClick}>
      ${!path.value.startsWith('/login') && html`<${Header} />`}
      <${Notices} />
      <${Routes} />
      <${ConfirmHost} />
    </div>`;
}

render(html`<${App} />`, document.getElementById('app')!);
