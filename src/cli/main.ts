// Entry point of the `oriel` command: every subcommand but `serve` speaks to a server over its HTTP API.
import { Command, CommanderError } from 'commander';
import { Api, CliError } from './api.ts';

const program = new Command('oriel')
  .description('Oriel: virtual desktops on QEMU, in the browser')
  .version('0.1.0')
  .option('--server <url>', 'Oriel server URL (ORIEL_URL; default http://127.0.0.1:8470)')
  .option('--token <token>', 'API token (ORIEL_TOKEN; default: the one `oriel login` saved)')
  .option('--ca <file>', "trust this CA or certificate file for an https server (ORIEL_CA)")
  .option('--fingerprint <sha256>', "pin the https server's certificate by its SHA-256 fingerprint (ORIEL_FINGERPRINT)")
  .showHelpAfterError()
  .exitOverride();

const api = () => {
  const g = program.opts<{ server?: string; token?: string; ca?: string; fingerprint?: string }>();
  return new Api({ server: g.server, token: g.token, ca: g.ca, fingerprint: g.fingerprint });
};

// The groups of subcommands are modules loaded on demand: `oriel console …` (where start-up time counts: a headless
// screenshot) loads and sets up only the console's, every other command line all of them, in this order.
const CONSOLE = async () => (await import('./commands/console.ts')).consoleCommands(program, api);
const ALL = [
  async () => (await import('./commands/serve.ts')).serveCommand(program),
  async () => (await import('./commands/users.ts')).userCommands(program, api),
  async () => (await import('./commands/tokens.ts')).tokenCommands(program, api),
  async () => (await import('./commands/vm.ts')).vmCommands(program, api),
  async () => (await import('./commands/images.ts')).imageCommands(program, api),
  CONSOLE,
  async () => (await import('./commands/checkpoint.ts')).checkpointCommands(program, api),
];
/** The first word of the command line that is not a global option or its value. */
function firstWord(args: string[]): string | undefined {
  const withValue = new Set(['--server', '--token', '--ca', '--fingerprint']);
  for (let i = 0; i < args.length; i++) {
    const a = args[i]!;
    if (withValue.has(a)) i++;
    else if (!a.startsWith('-')) return a;
  }
  return undefined;
}

try {
  if (firstWord(process.argv.slice(2)) === 'console') await CONSOLE();
  else for (const load of ALL) await load();
  await program.parseAsync(process.argv);
} catch (e) {
  if (e instanceof CommanderError) process.exit(e.exitCode);
  if (e instanceof CliError) {
    process.stderr.write(`oriel: ${e.message}\n`);
    process.exit(e.exitCode);
  }
  throw e;
}
