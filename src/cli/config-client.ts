/**
 * fcp's config file, `$FCP_CONFIG_DIR/config` else `$XDG_CONFIG_HOME/fcp/config` else `~/.config/fcp/config`:
 * defaults for push and pull, and per-host sections (README "Configuration"). A missing file is no file.
 */
import { homedir } from 'node:os';
import {
  applySettings,
  configSchema,
  type Effective,
  explicitOptions,
  formatSettings,
  type OptionTable,
} from './config-apply.js';
import { clientConfigPath } from './config-dir.js';
import { parseClientConfig, type Setting } from './config-file.js';
import { readDefaultConfigText } from './config-read.js';
import { settingsFor } from './config-hosts.js';
import { MAX_CONNECTIONS, parseConnections } from './fcp-options.js';
import { RATE_RULE } from './rate-option.js';

const PER_RUN = 'it belongs to one run, not to every run';

/** Options a file may not set, and why (shown to whoever tries). */
const REFUSED = new Map([
  // known_hosts already keeps every accepted key; a pin copied into a file would go on overriding it, long
  // after the daemon's key changed, for every host the section matches.
  ['accept-host-key', 'fcp keeps accepted host keys in known_hosts; give a new key once on the command line'],
  // A selection hidden in a file would make a later transfer silently skip files (rsync has no such file).
  ['include', 'what to send belongs on the command line'],
  ['exclude', 'what to send belongs on the command line'],
  ['regex', 'what to send belongs on the command line'],
  ['print-config', PER_RUN],
  ['dry-run', PER_RUN],
  ['limit', PER_RUN],
  ['background', PER_RUN],
]);

/** Keys whose option takes less than its type allows: checked at their line in the file. */
const VALUES = new Map([
  [
    'connections',
    {
      takes: `auto or an integer from 1 to ${MAX_CONNECTIONS}`,
      accepts: (value: unknown) => parseConnections(value) !== undefined,
    },
  ],
  [
    'retries',
    { takes: 'a whole number', accepts: (value: unknown) => Number.isInteger(value) && Number(value) >= 0 },
  ],
  [
    'retry-wait',
    { takes: 'a number of seconds, 0 or more', accepts: (value: unknown) => Number(value) >= 0 },
  ],
  ['bwlimit', RATE_RULE],
]);

export interface ClientConfig<T> extends Effective<T> {
  /** The file read, or undefined when there is none. */
  file: string | undefined;
}

/** `args` with the config file applied for `alias`, the host as typed; flags (in `tokens`) win. */
export function clientSettings<T extends object>(
  args: T,
  table: OptionTable,
  tokens: readonly string[],
  alias: string,
  env: NodeJS.ProcessEnv = process.env,
): ClientConfig<T> {
  const home = homedir();
  const file = clientConfigPath(env, home);
  const schema = configSchema(table, REFUSED, VALUES);
  const text = readDefaultConfigText(file);
  const config = text === undefined ? undefined : parseClientConfig(file, text, schema, home);
  const settings = config === undefined ? new Map<string, Setting>() : settingsFor(config, alias);
  const keys = [...schema.kinds.keys()];
  const effective = applySettings(args, keys, explicitOptions(tokens, table), settings);
  return { ...effective, file: config === undefined ? undefined : file };
}

/** What `fcp --print-config HOST` prints. */
export function formatClientConfig(config: ClientConfig<object>, alias: string): string {
  const from = config.file ?? `no config file (${clientConfigPath()} does not exist)`;
  return formatSettings(config, `fcp settings for host "${alias}"; file: ${from}`);
}
