// The fast path of `oriel console screenshot spice://…|spice+unix://… FILE`: a headless screenshot is timed from
// process start (bench/display.ts holds it against spice-gtk's spicy-screenshot), and most of a Node command's time
// is loading code. scripts/build-node.js bundles this file on its own (dist/node/bundle/screenshot.cjs) with only the
// SPICE client, no commander or API client; bin/oriel.js loads it for `console screenshot`. It runs only when built
// from the sources as they are (bundle-stamp.ts) and only for the targets and options it knows: a direct target
// (spice://, spice+unix://, with --password, --timeout as main.ts's command line spells them) or a VM name through
// the server (--timeout; the server, token and trust from the environment and `oriel login`, server-config.ts);
// everything else (--size, --help, global options, an invalid value: the full command line explains) it leaves to
// the full command, by returning false before it has done anything.
import { bundleIsCurrent } from './bundle-stamp.ts';
import { CliError } from './errors.ts';
import { screenshot, type ScreenshotOptions } from './commands/console-session.ts';
import { serverAccess } from './server-config.ts';

/** The options `console screenshot` takes here, as commander parses them; undefined: the full command decides. */
export function parseScreenshotArgs(args: readonly string[]): { target: string; file: string; o: ScreenshotOptions }
  | undefined {
  const positional: string[] = [];
  let password: string | undefined;
  let timeout = '20';
  for (let i = 0; i < args.length; i++) {
    const a = args[i]!;
    const m = /^(--password|--timeout)(?:=(.*))?$/s.exec(a);
    if (m) {
      // An option's value is the next word whatever it looks like (commander's rule for a required value).
      const v = m[2] ?? args[++i];
      if (v === undefined) return undefined;
      if (m[1] === '--password') password = v;
      else timeout = v;
    } else if (a.startsWith('-')) return undefined;
    else positional.push(a);
  }
  if (positional.length !== 2 || !/^\d+$/.test(timeout) || Number(timeout) === 0) return undefined;
  const [target, file] = positional as [string, string];
  const direct = target.startsWith('spice://') || target.startsWith('spice+unix://');
  // A VM name goes through the server (ORIEL_URL and the saved credentials); other schemes, and a --password
  // (direct targets only), are the full command's to explain.
  if (!direct && (/^[a-z][a-z0-9+.-]*:/i.test(target) || password !== undefined)) return undefined;
  return { target, file, o: { password, timeout: Number(timeout) } };
}

/**
 * Takes the screenshot `args` (what follows `console screenshot`) ask for; false: not one for the fast path, or this
 * bundle is not current for the checkout at `root`.
 */
export async function runScreenshot(root: string, args: readonly string[]): Promise<boolean> {
  const p = parseScreenshotArgs(args);
  if (!p || !bundleIsCurrent(root)) return false;
  try {
    await screenshot(p.target, p.file, p.o, () => serverAccess());
  } catch (e) {
    if (!(e instanceof CliError)) throw e;
    process.stderr.write(`oriel: ${e.message}\n`);
    process.exit(e.exitCode);
  }
  return true;
}
