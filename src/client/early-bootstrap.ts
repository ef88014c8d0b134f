/**
 * The bootstrap ssh started before fcp has even loaded (bin/fcp.js, src/cli/fcp-launch.ts), so that the ssh
 * login, the slowest step of a run over ssh, overlaps the client's own start-up (module loading, option and
 * config parsing, the wasm hasher). It is a guess made from argv alone: the bootstrap adopts it only when
 * the argv it works out from every option and the config file is exactly the one the guess ran; anything
 * else ends it (its remote fcpd sees its stdin close and exits) and starts its own, as without a guess.
 *
 * The launcher and fcp's main module are separate bundles with a copy of this module each: the guess is
 * handed over through one well-known global.
 */
import { abortSsh, type SshChild, spawnSsh } from './ssh-process.js';

const HANDOFF = Symbol.for('fcp.early-bootstrap');

interface EarlyBootstrap {
  readonly argv: readonly string[];
  readonly ssh: SshChild;
  /** Where its stderr lines go: kept until adopted, then the adopter's. */
  sink: (line: string) => void;
  readonly kept: string[];
}

type WithHandoff = typeof globalThis & { [HANDOFF]?: EarlyBootstrap };

/** Starts the bootstrap ssh `argv` now, for takeEarlyBootstrap to adopt; its stderr is kept until then. */
export function startEarlyBootstrap(argv: readonly string[]): void {
  const kept: string[] = [];
  const route = { sink: (line: string) => void kept.push(line) };
  const ssh = spawnSsh(argv, (line) => route.sink(line));
  (globalThis as WithHandoff)[HANDOFF] = Object.assign(route, { argv, ssh, kept });
}

/** What became of the early bootstrap: none was started, it was adopted, or it guessed wrong and was ended. */
export type EarlyOutcome =
  { readonly kind: 'none' | 'wrong' } | { readonly kind: 'adopted'; readonly ssh: SshChild };

/**
 * The early bootstrap ssh when it runs exactly `argv`, its kept stderr passed to `onStderr` first; an early
 * one that guessed wrong is ended. Only the first call can adopt.
 */
export function takeEarlyBootstrap(argv: readonly string[], onStderr: (line: string) => void): EarlyOutcome {
  const early = claim();
  if (early === undefined) return { kind: 'none' };
  if (!sameWords(early.argv, argv)) {
    abortSsh(early.ssh);
    return { kind: 'wrong' };
  }
  for (const line of early.kept.splice(0)) onStderr(line);
  early.sink = onStderr;
  return { kind: 'adopted', ssh: early.ssh };
}

/** Ends an early bootstrap nobody will adopt (the run does not go through ssh). */
export function dropEarlyBootstrap(): void {
  const early = claim();
  if (early !== undefined) abortSsh(early.ssh);
}

function claim(): EarlyBootstrap | undefined {
  const holder = globalThis as WithHandoff;
  const early = holder[HANDOFF];
  delete holder[HANDOFF];
  return early;
}

function sameWords(a: readonly string[], b: readonly string[]): boolean {
  return a.length === b.length && a.every((word, i) => word === b[i]);
}
