// Views loaded on first use (Vite splits each dynamic import() into its own chunk): the console page's script does
// not carry the VM list, the checkpoints (uPlot) or the serial terminal (xterm.js). Shows "Loading…" meanwhile, and
// the error if the chunk cannot be fetched (e.g. the server was updated under an open page: a reload helps).
import type { ComponentType } from 'preact';
import { useEffect, useState } from 'preact/hooks';
import { html } from './html.ts';

// eslint-disable-next-line @typescript-eslint/no-explicit-any
type AnyComponent = ComponentType<any>;

export function lazyView<M, K extends keyof M>(load: () => Promise<M>, name: K): AnyComponent {
  let loaded: AnyComponent | undefined;
  let loading: Promise<AnyComponent> | undefined;
  const get = () => (loading ??= load().then((m) => (loaded = m[name] as unknown as AnyComponent)));
  return function Lazy(props: Record<string, unknown>) {
    const [, setTick] = useState(0);
    const [error, setError] = useState('');
    useEffect(() => {
      if (loaded) return;
      let on = true;
      get().then(() => on && setTick((n) => n + 1), (e: Error) => on && setError(e.message));
      return () => { on = false; };
    }, []);
    if (loaded) return html`<${loaded} ...${props} />`;
    return error
      ? html`<p class="error">This part of the page could not be loaded (${error}): reload the page.</p>`
      : html`<p class="muted">Loading…</p>`;
  };
}
