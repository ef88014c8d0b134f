/**
 * The command lines fcp runs over ssh (`fcpd --serve-once [--bind A] [--port N] [--root DIR]
 * [--max-connections N] [--log-file F] [-v]` and `fcpd --stdio SOCKET`), read without yargs: building the
 * yargs parser costs about as much CPU as serving the one session's start-up (README "Over ssh"), on the
 * remote's side of every run. Only these exact forms are read here; anything else (another option, another
 * spelling, a doubtful value) is left to the full parse, which accepts or refuses it with its messages.
 */
import path from 'node:path';
import type { OverSshArgs } from './fcpd-serve-once.js';

/** The value-taking options read here, by their one accepted spelling. */
const VALUES = ['--bind', '--port', '--root', '--max-connections', '--log-file', '--stdio'] as const;
type ValueOption = (typeof VALUES)[number];

/** yargs' default for --max-connections (fcpd-options.ts). */
const DEFAULT_MAX_CONNECTIONS = 64;

/** The arguments of `--serve-once` or `--stdio` when `words` is one of the plain forms; else undefined. */
export function quickOverSshArgs(words: readonly string[]): OverSshArgs | undefined {
  const values = new Map<ValueOption, string>();
  let serveOnce = false;
  let verbose = false;
  for (let i = 0; i < words.length; i++) {
    const word = words[i]!;
    if (word === '--serve-once' && !serveOnce) serveOnce = true;
    else if ((word === '-v' || word === '--verbose') && !verbose) verbose = true;
    else {
      const option = VALUES.find((v) => v === word);
      const value = words[i + 1];
      if (option === undefined || values.has(option) || value === undefined || value.startsWith('-'))
        return undefined;
      values.set(option, value);
      i++;
    }
  }
  if (serveOnce === values.has('--stdio')) return undefined; // neither, or both (the full parse refuses)
  const port = whole(values.get('--port'));
  const max = whole(values.get('--max-connections'));
  if (port === null || max === null) return undefined;
  const root = values.get('--root');
  return {
    'serve-once': serveOnce ? true : undefined,
    stdio: values.get('--stdio'),
    port,
    bind: values.get('--bind'),
    root: root === undefined ? undefined : path.resolve(root),
    'max-connections': max ?? DEFAULT_MAX_CONNECTIONS,
    'log-file': values.get('--log-file'),
    verbose: verbose ? true : undefined,
    encryption: undefined,
  };
}

/** A run of digits as a number; undefined when absent, null when not plain digits (the full parse judges). */
function whole(text: string | undefined): number | undefined | null {
  if (text === undefined) return undefined;
  return /^[0-9]{1,9}$/.test(text) ? Number(text) : null;
}
