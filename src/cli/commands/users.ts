// oriel login | user create|list|delete
import { hostname } from 'node:os';
import type { Command } from 'commander';
import { Api, CliError, saveToken } from '../api.ts';
import { readSecret } from '../prompt.ts';
import { printJson, table } from '../output.ts';

export function userCommands(program: Command, api: () => Api): void {
  program.command('login')
    .description('sign in and save an API token (and the --fingerprint/--ca trust) for this server (~/.config/oriel/credentials.json, mode 0600)')
    .option('--user <name>', 'user name', 'admin')
    .option('--password-stdin', 'read the password from standard input')
    .action(async (o) => {
      const password = await readSecret('Password: ', !!o.passwordStdin);
      const a = api();
      const r = await a.request<{ user: { name: string; role: string }; token: string }>('POST', '/api/auth/login',
        { username: o.user, password, tokenName: `cli@${hostname()}` }, { auth: false });
      const file = saveToken(a, r.token);
      const pin = a.url.startsWith('https:') && a.trust.fingerprint ? ' with the certificate pin' : '';
      console.log(`signed in to ${a.url} as ${r.user.name} (${r.user.role}); token${pin} saved in ${file}`);
    });

  const user = program.command('user').description('manage accounts (admin)');
  user.command('create <name>').description('create an account')
    .option('--role <admin|user>', 'role', 'user')
    .option('--password-stdin', 'read the password from standard input')
    .action(async (name: string, o) => {
      if (!['admin', 'user'].includes(o.role)) throw new CliError(`--role must be admin or user, not '${o.role}'`);
      const password = await readSecret(`Password for ${name}: `, !!o.passwordStdin);
      const u = await api().post<{ name: string; role: string }>('/api/users', { name, password, role: o.role });
      console.log(`created user '${u.name}' (${u.role})`);
    });
  user.command('list').alias('ls').description('list accounts').option('--json', 'print JSON').action(async (o) => {
    const users = await api().get<Record<string, unknown>[]>('/api/users');
    if (o.json) printJson(users);
    else console.log(table(users, ['name', 'role', 'createdAt']));
  });
  user
    .command('delete <name>')
    .alias('rm')
    .description('delete an account (it must own no VMs)')
    .action(async (name: string) => {
    await api().delete(`/api/users/${encodeURIComponent(name)}`);
    console.log(`deleted user '${name}'`);
  });
}
