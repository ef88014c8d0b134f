/**
 * The documented exit codes of fcp (and of fcpd where they apply), and the mapping from a thrown error to one.
 * README and the --help epilogue are generated from EXIT_DESCRIPTIONS so the three never disagree.
 */
import { exitClassOf, type ExitClass } from '../protocol/errors.js';

export const EXIT = {
  OK: 0,
  USAGE: 1,
  PATH: 2,
  PARTIAL: 3,
  CONNECT: 4,
  PROTOCOL: 5,
  REFUSED: 6,
  /** Authentication failed (spec/SECURITY.md §9). */
  AUTH: 7,
  /** sysexits.h EX_SOFTWARE: a bug or an error no other code describes. */
  INTERNAL: 70,
  /** 128 + SIGINT, what shells report for a command stopped with Ctrl-C. */
  INTERRUPTED: 130,
} as const satisfies Record<ExitClass | 'OK' | 'INTERRUPTED', number>;

export type ExitName = keyof typeof EXIT;
export type ExitCode = (typeof EXIT)[ExitName];

/** One line per exit code, markdown-safe (no pipes), for README and --help. */
export const EXIT_DESCRIPTIONS: Readonly<Record<ExitName, string>> = {
  OK: 'every file was copied or already up to date, or left out by --limit',
  USAGE:
    'invalid arguments, options, config file or ssh config; fcpd: already running, or the port is in use',
  PATH: 'a source or destination path cannot be used (missing, permission denied, disk full, read-only, I/O error, wrong type)',
  PARTIAL: 'the transfer finished but some files failed; each one was reported',
  CONNECT:
    'cannot reach the daemon (refused, unreachable, unknown host, timed out), or ssh cannot reach the host or start fcpd there (no fcpd and no node to install it)',
  PROTOCOL: 'the connection broke or the peer violated the protocol',
  REFUSED: 'the daemon refused or ended the session (busy, limit exceeded, shutting down)',
  AUTH: 'authentication failed: host key changed or unverifiable, no key accepted, no key to offer, or ssh refused the login',
  INTERNAL: 'internal error (a bug: please report it)',
  INTERRUPTED:
    'interrupted by SIGINT (Ctrl-C) or SIGTERM, or standard output closed under it (its reader went away)',
};

const MAX_CAUSE_DEPTH = 8;

/**
 * Maps anything thrown out of a transfer to fcp's exit code. An error whose own code says nothing
 * (FCP_ERR_INTERNAL, a wrapper) is judged by its `cause`, so a wrapped ECONNREFUSED still exits with CONNECT.
 */
export function exitCodeFor(err: unknown): number {
  let aborted = false;
  let current: unknown = err;
  for (let depth = 0; depth < MAX_CAUSE_DEPTH && current !== undefined && current !== null; depth++) {
    const code = codeOf(current);
    if (code === 'ABORT_ERR') aborted = true;
    const exit = code === undefined ? undefined : exitCodeForCode(code);
    if (exit !== undefined) return exit;
    current = (current as { cause?: unknown }).cause;
  }
  // An abort whose reason says nothing more: the caller cancelled because the user interrupted.
  return aborted ? EXIT.INTERRUPTED : EXIT.INTERNAL;
}

/**
 * Exit code for one error code name, read from the error tables' exit column (src/protocol/errors.ts), or
 * undefined when the code does not decide it (FCP_ERR_INTERNAL, EMFILE and the like, a name fcp does not know).
 */
export function exitCodeForCode(code: string): ExitCode | undefined {
  const exit = exitClassOf(code);
  return exit === undefined || exit === 'INTERNAL' ? undefined : EXIT[exit];
}

function codeOf(err: unknown): string | undefined {
  if (typeof err !== 'object' || err === null) return undefined;
  const code = (err as { code?: unknown }).code;
  if (typeof code === 'string') return code;
  // DOMException's `code` is a number; its AbortError (AbortController.abort()) is matched by name.
  if ((err as { name?: unknown }).name === 'AbortError') return 'ABORT_ERR';
  // net.connect with autoSelectFamily fails with an AggregateError of one error per address.
  if (err instanceof AggregateError) {
    for (const inner of err.errors) {
      const innerCode = codeOf(inner);
      if (innerCode !== undefined) return innerCode;
    }
  }
  return undefined;
}

/** The exit codes as a markdown table, for README. */
export function exitCodesMarkdown(): string {
  const rows = exitCodeEntries().map(([name, code]) => `| ${code} | ${name} | ${EXIT_DESCRIPTIONS[name]} |`);
  return ['| Code | Name | Meaning |', '| ---: | --- | --- |', ...rows].join('\n');
}

/**
 * The exit codes as aligned plain text for the --help epilogue, wrapped at word boundaries to `columns`
 * with each description's continuation lines under its first word.
 */
export function exitCodesHelp(columns = 80): string {
  const indent = ' '.repeat(7);
  const lines = exitCodeEntries().flatMap(([name, code]) =>
    wrapWords(EXIT_DESCRIPTIONS[name], columns - indent.length).map(
      (text, i) => `${i === 0 ? `  ${String(code).padStart(3)}  ` : indent}${text}`,
    ),
  );
  return ['Exit codes:', ...lines].join('\n');
}

/** Greedy word wrap; a word longer than `width` stays whole on its own line. */
function wrapWords(text: string, width: number): string[] {
  const out: string[] = [];
  let line = '';
  for (const word of text.split(' ')) {
    if (line !== '' && line.length + 1 + word.length > width) {
      out.push(line);
      line = word;
    } else {
      line = line === '' ? word : `${line} ${word}`;
    }
  }
  out.push(line);
  return out;
}

function exitCodeEntries(): Array<[ExitName, ExitCode]> {
  return (Object.entries(EXIT) as Array<[ExitName, ExitCode]>).sort((a, b) => a[1] - b[1]);
}
