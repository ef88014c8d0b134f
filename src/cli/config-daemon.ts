/**
 * fcpd's config file (README "Configuration"): `--config FILE`, else `/etc/fcpd.conf` when started as root,
 * else `fcpd.conf` in the user's fcp config directory. Flat TOML, one key per long option of `fcpd`; flags
 * win. A missing default file is no file; a missing `--config` file is an error.
 */
import { homedir } from 'node:os';
import { join } from 'node:path';
import { FcpError } from '../protocol/errors.js';
import { isRoot } from '../security/privileges.js';
import {
  applySettings,
  configSchema,
  type Effective,
  explicitOptions,
  formatSettings,
  type OptionTable,
} from './config-apply.js';
import { configDir } from './config-dir.js';
import { parseFlatConfig, type Setting, type ValueRule } from './config-file.js';
import { readConfigText, readDefaultConfigText } from './config-read.js';
import { isCount, isListenPort } from './fcpd-options.js';
import { RATE_RULE } from './rate-option.js';

export const SYSTEM_DAEMON_CONFIG = '/etc/fcpd.conf';

/** Options the file may not set: they are actions or name the file itself. */
const REFUSED = new Map([
  ['config', 'a config file cannot name another'],
  ['print-config', 'it is an action, not a setting'],
  ['fingerprint', 'it is an action, not a setting'],
  ['serve-once', 'it is what fcp runs over ssh, not a setting'],
  ['stdio', 'it is what fcp runs over ssh, not a setting'],
]);

const COUNT: ValueRule = { takes: 'a whole number, 1 or more', accepts: isCount };

/**
 * Keys whose option takes less than its type allows: checked at their line in the file, where serve()
 * would otherwise refuse them naming a flag the user never typed (`--port must be ...`).
 */
const VALUES = new Map<string, ValueRule>([
  ['port', { takes: 'a whole number from 0 to 65535', accepts: isListenPort }],
  ['max-sessions', COUNT],
  ['max-connections', COUNT],
  ['bwlimit', RATE_RULE],
]);

export function defaultDaemonConfigPath(env: NodeJS.ProcessEnv = process.env, home = homedir()): string {
  return isRoot() ? SYSTEM_DAEMON_CONFIG : join(configDir(env, home), 'fcpd.conf');
}

export interface DaemonConfig<T> extends Effective<T> {
  file: string;
  /** False when the default file does not exist. */
  found: boolean;
}

/**
 * `args` (of the command whose options are `table`) with the config file applied; flags (in `tokens`) win.
 * Every key is checked against fcpd's serve options, `all`, so `fcpd stop` reads the daemon's own file and
 * takes from it only what it has options for (port, pid-file, user).
 */
export function daemonSettings<T extends object>(
  args: T,
  table: OptionTable,
  all: OptionTable,
  tokens: readonly string[],
): DaemonConfig<T> {
  const given = (args as { config?: unknown }).config;
  const file = typeof given === 'string' ? given : defaultDaemonConfigPath();
  const text = typeof given === 'string' ? readConfigText(file) : readDefaultConfigText(file);
  if (text === undefined && typeof given === 'string') {
    throw new FcpError('FCP_ERR_USAGE', `--config ${file}: no such file`, { path: file });
  }
  const schema = configSchema(all, REFUSED, VALUES);
  const settings = new Map<string, Setting>();
  for (const s of text === undefined ? [] : parseFlatConfig(file, text, schema, homedir())) {
    settings.set(s.key, s);
  }
  const keys = [...configSchema(table, REFUSED).kinds.keys()];
  const effective = applySettings(args, keys, explicitOptions(tokens, table), settings);
  return { ...effective, file, found: text !== undefined };
}

/** What `fcpd --print-config` prints. */
export function formatDaemonConfig(config: DaemonConfig<object>): string {
  const from = config.found ? config.file : `no config file (${config.file} does not exist)`;
  return formatSettings(config, `fcpd settings; file: ${from}`);
}
