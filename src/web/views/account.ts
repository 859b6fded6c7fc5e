// My account: change my password. The server ends my other sessions and API tokens; this browser stays signed in.
import { useSignal } from '@preact/signals';
import { client } from '../lib/api.ts';
import { html } from '../lib/html.ts';
import { me, notify } from '../lib/state.ts';

export function AccountPage() {
  const current = useSignal('');
  const next = useSignal('');
  const again = useSignal('');
  const error = useSignal('');
  const working = useSignal(false);
  const submit = async (e: Event) => {
    e.preventDefault();
    error.value = '';
    if (next.value !== again.value) {
      error.value = 'the new passwords do not match';
      return;
    }
    working.value = true;
    try {
      await client.auth.changePassword({ currentPassword: current.value, newPassword: next.value });
      current.value = next.value = again.value = '';
      notify('Password changed: your other sessions and API tokens were signed out', 'info');
    } catch (err) {
      error.value = (err as Error).message;
    } finally {
      working.value = false;
    }
  };
  const field = (id: string, label: string, s: typeof current, autocomplete: string) => html`
    <label>${label}
      <input id=${id} type="password" required autocomplete=${autocomplete} value=${s.value}
        onInput=${(e: Event) => (s.value = (e.target as HTMLInputElement).value)} />
    </label>`;
  return html`
    <main class="page">
      <h1>Account: ${me.value?.name}</h1>
      <form class="card account" id="password-form" onSubmit=${submit}>
        <h2>Change password</h2>
        ${field('password-current', 'Current password', current, 'current-password')}
        ${field('password-new', 'New password (at least 8 characters)', next, 'new-password')}
        ${field('password-again', 'New password again', again, 'new-password')}
        <p class="hint">Your other sessions and API tokens (oriel login) are signed out; this one stays.</p>
        ${error.value && html`<p class="error" id="password-error" role="alert">${error.value}</p>`}
        <div class="buttons">
          <button id="password-submit" class="primary" disabled=${working.value}>${working.value ? 'Changing…' : 'Change password'}</button>
        </div>
      </form>
    </main>`;
}
