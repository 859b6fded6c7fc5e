// oriel login | user create|list|delete|passwd
import { hostname } from 'node:os';
import type { Command } from 'commander';
import { Api, CliError, saveToken } from '../api.ts';
import { readSecret, readSecrets } from '../prompt.ts';
import { printJson, table } from '../output.ts';
import { quotaCommand } from './quota.ts';

export function userCommands(program: Command, api: () => Api): void {
  program.command('login')
    .description('sign in and save an API token (and the --fingerprint/--ca trust) for this server (~/.config/oriel/credentials.json, mode 0600)')
    .option('--user <name>', 'user name', 'admin')
    .option('--password-stdin', 'read the password from standard input')
    .option('--expires <30d|never>', 'lifetime of the saved token: s, m, h or d, or never', '90d')
    .action(async (o) => {
      const password = await readSecret('Password: ', !!o.passwordStdin);
      const a = api();
      const r = await a.auth.login({ username: o.user, password, tokenName: `cli@${hostname()}`, tokenExpires: o.expires });
      if (!r.token) throw new CliError('the server signed in but issued no API token');
      const file = saveToken(a, r.token);
      const pin = a.url.startsWith('https:') && a.trust.fingerprint ? ' with the certificate pin' : '';
      const until = o.expires === 'never' ? 'does not expire' : `expires in ${o.expires}`;
      console.log(`signed in to ${a.url} as ${r.user.name} (${r.user.role}); token${pin} saved in ${file} (${until})`);
    });

  const user = program.command('user').description('manage accounts (admin)');
  user.command('create <name>').description('create an account')
    .option('--role <admin|user>', 'role', 'user')
    .option('--password-stdin', 'read the password from standard input')
    .action(async (name: string, o) => {
      if (!['admin', 'user'].includes(o.role)) throw new CliError(`--role must be admin or user, not '${o.role}'`);
      const password = await readSecret(`Password for ${name}: `, !!o.passwordStdin);
      const u = await api().users.create({ name, password, role: o.role });
      console.log(`created user '${u.name}' (${u.role})`);
    });
  user.command('list').alias('ls').description('list accounts').option('--json', 'print JSON').action(async (o) => {
    const users = await api().users.list();
    if (o.json) printJson(users);
    else console.log(table(users, ['name', 'role', 'createdAt']));
  });
  user
    .command('delete <name>')
    .alias('rm')
    .description('delete an account (it must own no VMs)')
    .action(async (name: string) => {
    await api().users.delete(name);
    console.log(`deleted user '${name}'`);
  });
  user
    .command('passwd [name]')
    .description('change my password (asks the current one), or reset another user\'s (admin)')
    .option('--password-stdin', 'read from standard input: current then new password, one a line (a reset: new only)')
    .action(async (name: string | undefined, o) => {
      const a = api();
      const me = await a.auth.me();
      const stdin = !!o.passwordStdin;
      const tty = !stdin && !!process.stdin.isTTY;
      if (!name || name === me.name) {
        const prompts = ['Current password: ', 'New password: ', ...(tty ? ['New password again: '] : [])];
        const [current, next, again] = await readSecrets(prompts, stdin);
        if (tty && next !== again) throw new CliError('the new passwords do not match');
        await a.auth.changePassword({ currentPassword: current!, newPassword: next! });
        console.log(`changed the password of '${me.name}': its other sessions and API tokens were signed out`);
        return;
      }
      const [next, again] = await readSecrets([`New password for ${name}: `, ...(tty ? ['Again: '] : [])], stdin);
      if (tty && next !== again) throw new CliError('the passwords do not match');
      await a.users.setPassword(name, next!);
      console.log(`set the password of '${name}': all its sessions and API tokens were signed out`);
    });
  quotaCommand(user, api);
}
