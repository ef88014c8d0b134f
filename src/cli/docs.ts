/**
 * The files made from the command lines at build time (issue 18, packaging): the man pages fcp(1) and
 * fcpd(8), rendered from `--help` (man-page.ts), and the bash and zsh completion scripts yargs writes. Paths
 * are relative to the package root; `build-docs.ts` writes them, and a test checks them against the binaries.
 */
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { type HelpEntry, type ManMeta, parseHelp, renderManPage } from './man-page.js';

/** Both programs keep one (compile-cache.ts). */
const CODE_CACHE: HelpEntry = {
  term: '~/.cache/fcp/v8/',
  text:
    'V8 code caches that spare a run compiling the program ($XDG_CACHE_HOME/fcp/v8); private, may be removed ' +
    'at any time; FCP_NO_COMPILE_CACHE=1 turns them off',
};

const CLIENT_FILES: HelpEntry[] = [
  {
    term: '~/.config/fcp/config',
    text: 'settings: defaults and [host."PATTERNS"] sections ($FCP_CONFIG_DIR/config, $XDG_CONFIG_HOME/fcp/config); see fcp --print-config',
  },
  { term: '~/.config/fcp/known_hosts', text: 'host keys of the daemons this user accepted' },
  { term: '~/.ssh/config', text: 'host aliases: HostName, User and IdentityFile are used' },
  CODE_CACHE,
];

const DAEMON_FILES: HelpEntry[] = [
  {
    term: '/etc/fcpd.conf',
    text: 'settings when started as root (--config FILE to choose another); see fcpd --print-config',
  },
  {
    term: '~/.config/fcp/fcpd.conf',
    text: 'settings when started as another user ($FCP_CONFIG_DIR/fcpd.conf)',
  },
  { term: 'STATE/fcpd.log', text: 'the log of a detached daemon; SIGHUP reopens it (log rotation)' },
  { term: 'STATE/fcpd-PORT.pid', text: 'the pid file' },
  CODE_CACHE,
];

/** Runs a built binary and returns what it printed; throws with its stderr when it fails. */
function output(bin: string, args: string[], env: NodeJS.ProcessEnv = {}): string {
  const r = spawnSync(process.execPath, [bin, ...args], {
    encoding: 'utf8',
    // A fixed HOME and no config directory: nothing of this machine may reach the page.
    env: { ...process.env, HOME: '/nonexistent', FCP_CONFIG_DIR: '/nonexistent', ...env },
  });
  if (r.status !== 0) throw new Error(`${bin} ${args.join(' ')} failed: ${r.stderr}`);
  return r.stdout;
}

/** Every generated file, by its path in the package, from the bundles in `binDir`. */
export function generatedDocs(binDir: string): Map<string, string> {
  const fcp = join(binDir, 'fcp.js');
  const fcpd = join(binDir, 'fcpd.js');
  const version = output(fcp, ['--version']).trim();
  const client: ManMeta = {
    name: 'fcp',
    section: 1,
    version,
    summary: 'fast file copy over many parallel TCP connections (client)',
    description: [
      'fcp copies files and directory trees to (push) and from (pull) a machine running fcpd(8), over ' +
        'several TCP connections at once, encrypted with TLS and authenticated with SSH keys. An interrupted ' +
        'transfer resumes where it stopped. Settings can be kept per host in the config file (FILES).',
    ],
    files: CLIENT_FILES,
    seeAlso: ['fcpd(8)', 'ssh_config(5)', 'rsync(1)'],
  };
  const daemon: ManMeta = {
    name: 'fcpd',
    section: 8,
    version,
    summary: 'the fcp daemon: serves files to fcp over many parallel TCP connections',
    description: [
      'fcpd serves files to fcp(1) clients in the foreground, or in the background with -d. Started as ' +
        'root with --user NAME it binds its port, then runs as NAME. Every option can also be set in its ' +
        'config file (FILES); flags win over the file.',
    ],
    more: [{ title: 'fcpd stop', doc: parseHelp(output(fcpd, ['stop', '--help'])) }],
    files: DAEMON_FILES,
    seeAlso: ['fcp(1)', 'systemd.service(5)', 'logrotate(8)'],
  };
  const docs = new Map<string, string>([
    ['man/fcp.1', renderManPage(parseHelp(output(fcp, ['--help'])), client)],
    ['man/fcpd.8', renderManPage(parseHelp(output(fcpd, ['--help'])), daemon)],
  ]);
  for (const [name, bin] of [
    ['fcp', fcp],
    ['fcpd', fcpd],
  ] as const) {
    // yargs picks its zsh template when SHELL names zsh.
    docs.set(`completion/${name}.bash`, output(bin, ['completion'], { SHELL: '/bin/bash', ZSH_NAME: '' }));
    docs.set(`completion/_${name}`, output(bin, ['completion'], { SHELL: '/bin/zsh' }));
  }
  return docs;
}
