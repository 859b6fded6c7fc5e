import { useSignal } from '@preact/signals';
import { quietClient } from '../lib/api.ts';
import { html } from '../lib/html.ts';
import { navigate, query } from '../lib/router.ts';
import { me, startEvents } from '../lib/state.ts';

export function LoginPage() {
  const username = useSignal('');
  const password = useSignal('');
  const error = useSignal('');
  const working = useSignal(false);
  const submit = async (e: Event) => {
    e.preventDefault();
    working.value = true;
    error.value = '';
    try {
      const r = await quietClient.auth.login({ username: username.value, password: password.value });
      me.value = r.user;
      startEvents();
      const next = query('next');
      navigate(next && next.startsWith('/') && !next.startsWith('//') ? next : '/', true);
    } catch (err) {
      error.value = (err as Error).message;
    } finally {
      working.value = false;
    }
  };
  return html`
    <main class="login">
      <form class="card" onSubmit=${submit}>
        <h1>Oriel</h1>
        <label>User name
          <input id="login-username" autocomplete="username" required value=${username.value} onInput=${(e: Event) => (username.value = (e.target as HTMLInputElement).value)} />
        </label>
        <label>Password
          <input id="login-password" type="password" autocomplete="current-password" required value=${password.value} onInput=${(e: Event) => (password.value = (e.target as HTMLInputElement).value)} />
        </label>
        ${error.value && html`<p class="error" id="login-error" role="alert">${error.value}</p>`}
        <button id="login-submit" class="primary" disabled=${working.value}>${working.value ? 'Signing in…' : 'Sign in'}</button>
      </form>
    </main>`;
}
