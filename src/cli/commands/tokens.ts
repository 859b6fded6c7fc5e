// oriel logout | token list|revoke
import type { Command } from 'commander';
import { Api, CliError, loadCredentials, removeToken } from '../api.ts';
import { printJson, table } from '../output.ts';

const day = (iso: string | null) => (iso ? iso.slice(0, 16).replace('T', ' ') : null);

export function tokenCommands(program: Command, api: () => Api): void {
  program.command('logout')
    .description('revoke the API token this CLI uses (on the server) and forget it (in the credentials file)')
    .action(async () => {
      const a = api();
      const token = a.bearer;
      if (!token) throw new CliError(`not signed in to ${a.url}`);
      let note = 'token revoked';
      try {
        await a.auth.logout();
      } catch (e) {
        // Already revoked or expired: nothing left to revoke, but the local copy still goes.
        if (!(e instanceof CliError && /\(HTTP 401\)$/.test(e.message))) throw e;
        note = 'the token was already not valid';
      }
      const saved = loadCredentials()[a.url]?.token === token && removeToken(a.url);
      console.log(`signed out of ${a.url}: ${note}${saved ? ', removed from the credentials file' : ''}`);
    });

  const token = program.command('token').description('list and revoke API tokens');
  token.command('list').alias('ls')
    .description('list my API tokens (--all: every user\'s, admin); * marks the one this CLI uses')
    .option('--all', 'all users\' tokens (admin)')
    .option('--json', 'print JSON')
    .action(async (o) => {
      const list = await api().tokens.list({ all: !!o.all });
      if (o.json) return printJson(list);
      const rows = list.map((t) => ({
        id: `${t.id}${t.current ? ' *' : ''}`, name: t.name, user: t.user, created: day(t.createdAt),
        'last used': day(t.lastUsedAt), expires: t.expiresAt ? `${day(t.expiresAt)}${t.expired ? ' (expired)' : ''}` : 'never',
      }));
      const cols = ['id', 'name', ...(o.all ? ['user'] : []), 'created', 'last used', 'expires'];
      console.log(table(rows, cols));
    });
  token.command('revoke <id>').alias('rm')
    .description('revoke an API token (mine; admins: anyone\'s); streams opened with it are closed')
    .action(async (id: string) => {
      await api().tokens.revoke(id);
      console.log(`revoked token ${id}`);
    });
}
