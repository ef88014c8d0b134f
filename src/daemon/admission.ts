/**
 * Which new connections may start a handshake (spec/SECURITY.md §10), as sshd's `MaxStartups start:rate:full`
 * and `PerSourceMaxStartups` do it (OpenSSH sshd.c `should_drop_connection`):
 *   - below `start` connections in their handshake, every new one is admitted;
 *   - from `start` on, a new one is dropped with a probability rising linearly from `rate` % (at `start`) to
 *     100 % (at `full`), so a flood that fills the table still leaves a retrying client a fair chance,
 *     where a hard cap locked everyone out until the flood's handshakes timed out;
 *   - at `full`, and past the cap per source address, every new one is dropped.
 * An address with an authenticated session gets room for that session's own extra connections on top,
 * outside the random drop: a client opening many ATTACH sockets at once is not taken for a flood, and a
 * flood cannot cut a running session off its extra connections.
 */
import { randomInt } from 'node:crypto';

export interface MaxStartups {
  /** Connections in their handshake below which nothing is dropped. */
  readonly start: number;
  /** Percent of new connections dropped once `start` are in their handshake. */
  readonly rate: number;
  /** Connections in their handshake at which every new one is dropped. */
  readonly full: number;
}

/**
 * sshd's default is 10:30:100 for one process per connection; a handshake here costs a socket and under
 * 1 MiB of queued frames at most (§10), so the table is a little larger.
 */
export const MAX_STARTUPS: MaxStartups = { start: 32, rate: 30, full: 128 };

/**
 * Connections in their handshake at once from one address (plus its sessions' allowance): room for a script
 * starting a few dozen fcp runs at once, or users behind one NAT, while one address can never fill the total.
 */
export const MAX_UNAUTHENTICATED_PER_ADDRESS = 32;

/** A uniform integer in [0, 100): the CSPRNG by default, so a flood cannot predict which tries get in. */
export type PercentSource = () => number;

/** Percent chance that a new connection is dropped with `pending` already in their handshake. */
export function dropPercent(pending: number, limits: MaxStartups): number {
  if (pending < limits.start) return 0;
  if (pending >= limits.full) return 100;
  const span = limits.full - limits.start;
  return limits.rate + Math.floor(((100 - limits.rate) * (pending - limits.start)) / span);
}

/** One admitted connection's place in the table; release it once, when it authenticated or closed. */
export interface Slot {
  release(): void;
}

export class Admission {
  readonly #limits: MaxStartups;
  readonly #perAddress: number;
  readonly #random: PercentSource;
  /** Per address: its connections in their handshake, and how many of them use its sessions' allowance. */
  readonly #pending = new Map<string, { all: number; allowed: number }>();
  readonly #allowance = new Map<string, number>();
  /** Connections in their handshake outside any allowance: the number the random drop looks at. */
  #count = 0;

  constructor(
    limits: MaxStartups = MAX_STARTUPS,
    perAddress = MAX_UNAUTHENTICATED_PER_ADDRESS,
    random: PercentSource = () => randomInt(100),
  ) {
    this.#limits = limits;
    this.#perAddress = perAddress;
    this.#random = random;
  }

  /** Connections now in their handshake, allowances excluded. */
  get pending(): number {
    return this.#count;
  }

  /** A slot for a new connection from `address`, or undefined: the caller closes it at once. */
  admit(address: string): Slot | undefined {
    const mine = this.#pending.get(address) ?? { all: 0, allowed: 0 };
    if (mine.allowed < (this.#allowance.get(address) ?? 0)) return this.#take(address, mine, true);
    if (mine.all - mine.allowed >= this.#perAddress) return undefined;
    const chance = dropPercent(this.#count, this.#limits);
    if (chance >= 100 || (chance > 0 && this.#random() < chance)) return undefined;
    return this.#take(address, mine, false);
  }

  /** An authenticated session from `address` may open `connections` more sockets; undo with revoke(). */
  grant(address: string, connections: number): void {
    this.#allowance.set(address, (this.#allowance.get(address) ?? 0) + connections);
  }

  revoke(address: string, connections: number): void {
    const left = (this.#allowance.get(address) ?? 0) - connections;
    if (left <= 0) this.#allowance.delete(address);
    else this.#allowance.set(address, left);
  }

  #take(address: string, mine: { all: number; allowed: number }, allowed: boolean): Slot {
    this.#pending.set(address, { all: mine.all + 1, allowed: mine.allowed + (allowed ? 1 : 0) });
    if (!allowed) this.#count++;
    let held = true;
    return {
      release: () => {
        if (!held) return;
        held = false;
        this.#give(address, allowed);
      },
    };
  }

  #give(address: string, allowed: boolean): void {
    const mine = this.#pending.get(address);
    if (mine === undefined) return;
    if (!allowed) this.#count--;
    const left = { all: mine.all - 1, allowed: mine.allowed - (allowed ? 1 : 0) };
    if (left.all <= 0) this.#pending.delete(address);
    else this.#pending.set(address, left);
  }
}

/** How often, at most, a flood that goes on is reported again. */
const THROTTLE_REPORT_MS = 5 * 60_000;

/**
 * The log lines of a flood, as sshd writes them: one when dropping begins, one every few minutes while it
 * lasts, one when it is over; each dropped connection only with -v.
 */
export class ThrottleReport {
  readonly #limits: MaxStartups;
  #since: number | undefined;
  #lastReport = 0;
  #dropped = 0;

  constructor(limits: MaxStartups = MAX_STARTUPS) {
    this.#limits = limits;
  }

  /** A connection was dropped with `pending` in their handshake; returns a line to log, if one is due. */
  dropped(pending: number, nowMs: number): string | undefined {
    this.#dropped++;
    if (this.#since === undefined) {
      this.#since = nowMs;
      this.#lastReport = nowMs;
      this.#dropped = 1;
      return `${pending} connections in their handshake: dropping new ones (MaxStartups ${describe(this.#limits)})`;
    }
    if (nowMs - this.#lastReport < THROTTLE_REPORT_MS) return undefined;
    this.#lastReport = nowMs;
    return `still dropping new connections after ${seconds(nowMs - this.#since)}, ${this.#dropped} dropped`;
  }

  /** A connection was admitted; returns a line once the flood is over (pending back under `start`). */
  admitted(pending: number, nowMs: number): string | undefined {
    if (this.#since === undefined || pending >= this.#limits.start - 1) return undefined;
    const line = `stopped dropping connections after ${seconds(nowMs - this.#since)}, ${this.#dropped} dropped`;
    this.#since = undefined;
    return line;
  }
}

function describe(l: MaxStartups): string {
  return `${l.start}:${l.rate}:${l.full}`;
}

function seconds(ms: number): string {
  return `${Math.round(ms / 1000)} s`;
}
