/**
 * The bootstrap ssh's argv guessed from fcp's argv alone, before yargs and the config file are loaded
 * (client/early-bootstrap.ts says why and how a wrong guess is caught). It guesses only for the plainest
 * case, `fcp push|pull` with an explicit `--ssh[=CMD]` and exactly one remote operand, and gives up
 * (undefined) on anything it does not understand: giving up costs nothing, a wrong guess one extra login.
 */
import { parseRemoteSpec, type RemoteSpec } from '../client/remote-spec.js';
import { bootstrapArgv, parseSshCommand, sshDestination, withUserFiles } from '../transport/ssh-command.js';
import { remoteCommandFor } from '../transport/remote-script.js';

/** Words after which no guess is made: no transfer, or one that another process runs. */
const NO_GUESS = new Set([
  '-h',
  '--help',
  'help',
  '--version',
  '--background',
  '--daemon',
  '--',
  'completion',
]);
/** The options whose values the guess reads; every other option's value is left alone. */
const VALUE_OPTIONS: Readonly<Record<string, string>> = {
  '--ssh': 'ssh',
  '-F': 'ssh-config',
  '--ssh-config': 'ssh-config',
  '-i': 'identity',
  '--identity': 'identity',
  '--remote-fcpd': 'remote-fcpd',
};

/**
 * Config file keys that change the bootstrap's ssh command line (`identity` and `ssh-config` give ssh
 * `-i` / `-F`, `ssh` replaces the command, `remote-fcpd` the remote one). A file that sets any of them, in
 * any section, is not guessed around: an early `ssh HOST` without the host's `-i` would offer every key
 * the agent holds, or prompt for a password, before fcp ends it as a wrong guess. Read as text, not TOML
 * (the parser is not loaded yet): a key at a line's start, after a dot (a dotted key) or inside an inline
 * table; a false alarm (the words in a comment or a string) only costs the early start.
 */
const SSH_KEYS = /(?:^|[\s.{,])["']?(?:identity|ssh-config|ssh|remote-fcpd)["']?[ \t]*=/m;

/** True when fcp's config file `text` may make the bootstrap differ from a guess made from argv alone. */
export function configChangesSsh(text: string): boolean {
  return SSH_KEYS.test(text);
}

/** What the guess read from argv. */
interface Guess {
  readonly values: Map<string, string>;
  readonly operands: string[];
}

/**
 * The argv fcp's bootstrap would run for `words` (argv without node and the script), or undefined.
 * `cachedName` is the bundle's name in the remote cache (remote-install.ts), or a function giving it only
 * when needed (hashing the bundle is the one cost of a guess).
 */
export function earlyBootstrapArgv(
  words: readonly string[],
  cachedName: () => string | undefined,
): string[] | undefined {
  const guess = read(words);
  if (guess === undefined) return undefined;
  const ssh = guess.values.get('ssh');
  const remote = soleRemote(guess.operands);
  if (ssh === undefined || remote === undefined || remote.port !== undefined) return undefined;
  try {
    const command = withUserFiles(
      parseSshCommand(ssh),
      guess.values.get('ssh-config'),
      guess.values.get('identity'),
    );
    const given = guess.values.get('remote-fcpd');
    const name = given === undefined ? cachedName() : undefined;
    return bootstrapArgv(command, sshDestination(remote.host, remote.user), remoteCommandFor(given, name));
  } catch {
    // A bad --ssh or host: the real parse says so in its own words.
    return undefined;
  }
}

/** The values of VALUE_OPTIONS and the words that are no option; undefined to give up. */
function read(words: readonly string[]): Guess | undefined {
  const values = new Map<string, string>();
  const operands: string[] = [];
  let command: string | undefined;
  for (let i = 0; i < words.length; i++) {
    const word = words[i]!;
    if (NO_GUESS.has(word) || word.startsWith('--print-config')) return undefined;
    if (word === '--ssh') {
      if (values.has('ssh')) return undefined;
      values.set('ssh', 'ssh');
      continue;
    }
    const eq = word.indexOf('=');
    const name = word.startsWith('--') && eq !== -1 ? word.slice(0, eq) : word;
    const key = VALUE_OPTIONS[name];
    if (key !== undefined) {
      const value = eq !== -1 && name !== word ? word.slice(eq + 1) : words[++i];
      if (value === undefined || values.has(key)) return undefined;
      values.set(key, value);
    } else if (/^-[^-]*[Fi]/.test(word)) {
      return undefined; // -Fconfig, -qi key: forms the guess does not read
    } else if (command === undefined && (word === 'push' || word === 'pull')) {
      command = word;
    } else if (!word.startsWith('-')) {
      operands.push(word);
    }
  }
  return command === undefined ? undefined : { values, operands };
}

/** The one operand that names a remote; undefined when none or several could (the value of an option?). */
function soleRemote(operands: readonly string[]): RemoteSpec | undefined {
  let found: RemoteSpec | undefined;
  for (const word of operands) {
    let spec: RemoteSpec | undefined;
    try {
      spec = parseRemoteSpec(word);
    } catch {
      return undefined;
    }
    if (spec === undefined) continue;
    if (found !== undefined) return undefined;
    found = spec;
  }
  return found;
}
