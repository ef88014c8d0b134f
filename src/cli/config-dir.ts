/**
 * Where fcp's config files live. Its own module, without the TOML parser: the launcher (fcp-launch.ts)
 * looks at the client's file before the rest of fcp is loaded.
 */
import { homedir } from 'node:os';
import { isAbsolute, join } from 'node:path';

/** `$FCP_CONFIG_DIR`, else `$XDG_CONFIG_HOME/fcp`, else `~/.config/fcp` (where known_hosts lives too). */
export function configDir(env: NodeJS.ProcessEnv = process.env, home: string = homedir()): string {
  const dir = env['FCP_CONFIG_DIR'];
  if (dir !== undefined && dir !== '') return dir;
  const xdg = env['XDG_CONFIG_HOME'];
  if (xdg !== undefined && isAbsolute(xdg)) return join(xdg, 'fcp');
  return join(home, '.config', 'fcp');
}

/** fcp's own file: `config` in configDir. */
export function clientConfigPath(env: NodeJS.ProcessEnv = process.env, home: string = homedir()): string {
  return join(configDir(env, home), 'config');
}
