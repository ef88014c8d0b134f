/**
 * Two ways to the same daemon, the preferred one tried once: the first channel goes the preferred way, and
 * if it ends before the daemon's first byte arrives (an ssh server that refuses stream-local forwarding
 * resets the connection, and says so nowhere we can rely on), the bytes written so far (HELLO) are written
 * again on a channel opened the other way, under the same Duplex, so the session never notices. The first
 * channel decides for the whole session: every later one goes the way that worked.
 */
import { Duplex } from 'node:stream';
import { FcpError } from '../protocol/index.js';
import type { Channel } from './channel.js';
import type { CommandDialer } from './command-dial.js';
import type { DialedChannel } from './dialer.js';

/**
 * What the first channel may write before the daemon answers and still be written again: the client's
 * HELLO and login are a few hundred bytes; anything far larger is no handshake.
 */
const REPLAY_MAX_BYTES = 64 * 1024;

export type Way = 'preferred' | 'fallback';

/** `preferred` until its first channel fails to get an answer, then `fallback` for good. */
export function firstAnswerDialer(
  preferred: CommandDialer,
  fallback: CommandDialer,
  onDecided?: (way: Way) => void,
): CommandDialer {
  let way: Way | undefined;
  let decided: Promise<Way> | undefined;
  let decide: (w: Way) => void = () => {};
  const settle = (w: Way) => {
    if (way !== undefined) return;
    way = w;
    onDecided?.(w);
    decide(w);
  };
  const first = async (resume: Buffer | undefined, signal?: AbortSignal): Promise<DialedChannel> => {
    let dialed: DialedChannel;
    try {
      dialed = await preferred.open(resume, signal);
    } catch (err) {
      if (signal?.aborted === true) throw err;
      settle('fallback');
      return fallback.open(resume, signal);
    }
    const reopen = async () => {
      settle('fallback');
      return (await fallback.open(resume, signal)).channel.stream;
    };
    const stream = new FirstAnswerStream(dialed.channel.stream, reopen, () => settle('preferred'), signal);
    const channel: Channel = { ...dialed.channel, stream };
    return { ...dialed, channel };
  };
  return {
    peerName: preferred.peerName,
    open: async (resume, signal) => {
      if (way !== undefined) return (way === 'preferred' ? preferred : fallback).open(resume, signal);
      if (decided === undefined) {
        decided = new Promise((resolve) => {
          decide = resolve;
        });
        return first(resume, signal);
      }
      // The first channel is still finding out: its answer decides this one's way.
      const w = await decided;
      return (w === 'preferred' ? preferred : fallback).open(resume, signal);
    },
    unanswered: (err) => (way === 'preferred' ? preferred : fallback).unanswered(err),
    close: () => {
      preferred.close();
      fallback.close();
    },
  };
}

/**
 * The first channel's Duplex: passes bytes both ways; until the first byte arrives it keeps a copy of what
 * was written, and an end, close or error of the inner stream then swaps in the fallback's stream and writes
 * the copy to it. Once answered (or swapped), it is a plain pass-through.
 */
class FirstAnswerStream extends Duplex {
  #inner: Duplex;
  /** What was written before the answer; undefined once answered, swapped, or too large to replay. */
  #sent: Buffer[] | undefined = [];
  #sentBytes = 0;
  #answered = false;
  #swapping: Promise<void> | undefined;
  readonly #reopen: () => Promise<Duplex>;
  readonly #onAnswer: () => void;
  readonly #signal: AbortSignal | undefined;
  readonly #detach: (() => void)[] = [];

  constructor(inner: Duplex, reopen: () => Promise<Duplex>, onAnswer: () => void, signal?: AbortSignal) {
    super({ allowHalfOpen: false });
    this.#inner = inner;
    this.#reopen = reopen;
    this.#onAnswer = onAnswer;
    this.#signal = signal;
    this.#attach(inner);
    // The session's own error handling listens later; an early error must not be uncaught.
    this.on('error', () => {});
  }

  #attach(inner: Duplex): void {
    const innerOnData = (chunk: Buffer) => {
      if (!this.#answered) {
        this.#answered = true;
        this.#sent = undefined;
        this.#onAnswer();
      }
      if (!this.push(chunk)) inner.pause();
    };
    const innerOnEnd = () => (this.#mayReplay() ? this.#swap() : this.push(null));
    const innerOnClose = () => (this.#mayReplay() ? this.#swap() : this.#innerGone());
    const innerOnError = (err: Error) => (this.#mayReplay() ? this.#swap() : this.destroy(err));
    inner.on('data', innerOnData);
    inner.on('end', innerOnEnd);
    inner.on('close', innerOnClose);
    inner.on('error', innerOnError);
    this.#detach.push(() => {
      inner.off('data', innerOnData);
      inner.off('end', innerOnEnd);
      inner.off('close', innerOnClose);
      inner.off('error', innerOnError);
    });
  }

  #mayReplay(): boolean {
    return !this.#answered && this.#sent !== undefined && this.#signal?.aborted !== true;
  }

  /** The inner stream closed without an end (a reset): ours ends the same way. */
  #innerGone(): void {
    if (!this.readableEnded) this.push(null);
  }

  #swap(): void {
    if (this.#swapping !== undefined) return;
    const sent = this.#sent ?? [];
    this.#sent = undefined;
    for (const detach of this.#detach.splice(0)) detach();
    this.#inner.destroy();
    this.#swapping = this.#reopen().then(
      (next) => {
        this.#inner = next;
        this.#attach(next);
        for (const chunk of sent) next.write(chunk);
        if (this.writableEnded) next.end();
        this.#swapping = undefined;
      },
      (err: unknown) => {
        this.destroy(err instanceof Error ? err : new FcpError('FCP_ERR_NET_CONNECT', String(err)));
      },
    );
  }

  override _read(): void {
    this.#inner.resume();
  }

  override _write(chunk: Buffer, _enc: BufferEncoding, callback: (err?: Error | null) => void): void {
    this.#keep(chunk);
    if (this.#swapping !== undefined) {
      void this.#swapping.then(() => this._write(chunk, _enc, callback));
      return;
    }
    if (this.#inner.destroyed) {
      callback();
      return;
    }
    // Errors of the inner stream come through its 'error' or 'close', which swap or end ours.
    this.#inner.write(chunk, () => callback());
  }

  override _final(callback: (err?: Error | null) => void): void {
    const end = () => {
      if (this.#inner.destroyed) callback();
      else this.#inner.end(() => callback());
    };
    if (this.#swapping !== undefined) void this.#swapping.then(end);
    else end();
  }

  override _destroy(err: Error | null, callback: (err?: Error | null) => void): void {
    this.#inner.destroy();
    callback(err);
  }

  /** Keeps a copy of `chunk` while a swap may still need it. */
  #keep(chunk: Buffer): void {
    if (this.#sent === undefined || this.#swapping !== undefined) return;
    this.#sentBytes += chunk.length;
    if (this.#sentBytes > REPLAY_MAX_BYTES) this.#sent = undefined;
    else this.#sent.push(Buffer.from(chunk));
  }
}
