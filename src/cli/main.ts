// Entry point of the `oriel` command: every subcommand but `serve` speaks to a server over its HTTP API.
import { Command, CommanderError } from 'commander';
import { Api, CliError } from './api.ts';
import { checkpointCommands } from './commands/checkpoint.ts';
import { consoleCommands } from './commands/console.ts';
import { imageCommands } from './commands/images.ts';
import { serveCommand } from './commands/serve.ts';
import { tokenCommands } from './commands/tokens.ts';
import { userCommands } from './commands/users.ts';
import { vmCommands } from './commands/vm.ts';

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

serveCommand(program);
userCommands(program, api);
tokenCommands(program, api);
vmCommands(program, api);
imageCommands(program, api);
consoleCommands(program, api);
checkpointCommands(program, api);

try {
  await program.parseAsync(process.argv);
} catch (e) {
  if (e instanceof CommanderError) process.exit(e.exitCode);
  if (e instanceof CliError) {
    process.stderr.write(`oriel: ${e.message}\n`);
    process.exit(e.exitCode);
  }
  throw e;
}
