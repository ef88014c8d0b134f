/**
 * A user-space WAN emulator: a TCP proxy that adds a one-way delay, a per-connection window, an optional
 * per-connection rate cap and a shared link rate cap, in each direction. Usable as a library
 * (`startWanProxy`) and as a CLI (`node dist/bench/wan-proxy.js --listen 0 --target 127.0.0.1:7523
 * --rtt 40 --window 4MiB --link 2Gbit`).
 *
 * Model, per direction of each connection:
 *   - a chunk read from the source is due for delivery one-way-delay (rttMs / 2) later;
 *   - once written to the destination it is "acknowledged" a further one-way delay later;
 *   - bytes read but not yet acknowledged are "in flight"; while they reach windowBytes the proxy stops
 *     reading the source socket, so the sender meets real TCP backpressure. One connection therefore tops
 *     out near windowBytes / RTT, as a TCP flow with that window would;
 *   - delivery also spends tokens from the connection's bucket (perConnRateBps, a per-flow shaper) and from
 *     the link's bucket for that direction (linkRateBps, shared by all connections, full duplex).
 * Bytes waiting for tokens count as in flight, like bytes queued at a real bottleneck.
 *
 * All connections share one timer that wakes at slot boundaries (slotMs, default 1 ms), so the cost is one
 * wake-up per slot with work to do rather than one timer per chunk.
 */
import { createWriteStream } from 'node:fs';
import net from 'node:net';
import { performance } from 'node:perf_hooks';
import { pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';
import { parseBytes, parseRate } from './units.js';

export interface WanProxyOptions {
  /** Port to listen on, 0 for any free port. */
  listenPort: number;
  /** Address to listen on; only loopback makes sense here. Default 127.0.0.1. */
  listenHost?: string;
  target: { host: string; port: number };
  /** Round-trip time added by the proxy; each direction is delayed by rttMs / 2. */
  rttMs: number;
  /** Bytes in flight allowed per connection and direction (the TCP window being modelled). */
  windowBytes: number;
  /** Optional per-connection, per-direction rate cap in bytes per second. */
  perConnRateBps?: number;
  /** Optional link rate cap in bytes per second, shared by all connections, per direction. */
  linkRateBps?: number;
  /** Scheduler slot in milliseconds. Default 1. */
  slotMs?: number;
  /** Token-bucket depth in milliseconds of the rate (at least 64 KiB). Default 5. */
  burstMs?: number;
}

export interface WanProxyStats {
  connections: number;
  active: number;
  /** Bytes delivered client -> target and target -> client. */
  bytesUp: number;
  bytesDown: number;
  /** Times a source was paused because its window was full. */
  windowPauses: number;
  /** Times a destination's write() returned false. */
  writeBlocks: number;
  /** Largest in-flight count seen on any direction. */
  maxInFlight: number;
}

/** Bytes one connection delivered so far: client -> target (up) and target -> client (down). */
export interface Delivered {
  readonly up: number;
  readonly down: number;
}

/** A connection the emulator carried, once both its sides have closed. */
export interface ClosedConnection {
  /** Its place in the order connections were accepted, from 0. */
  index: number;
  /**
   * Which side closed first: the one whose FIN (end of stream) the emulator read first. 'reset' when
   * neither ended cleanly before the connection was gone.
   */
  firstEnd: 'client' | 'target' | 'reset';
}

export interface WanProxy {
  port: number;
  stats: WanProxyStats;
  /** The connections closed so far, in the order they closed. */
  closed: ClosedConnection[];
  /** Bytes each connection accepted so far delivered, in accept order. */
  delivered(): Delivered[];
  close(): Promise<void>;
}

const MIN_BURST_BYTES = 64 * 1024;
// Do not split a chunk for fewer tokens than this unless the chunk itself is smaller: tiny writes cost CPU.
const MIN_RELEASE_BYTES = 16 * 1024;

class TokenBucket {
  readonly #rate: number;
  readonly #depth: number;
  #tokens: number;
  #last: number;

  constructor(rateBps: number, burstMs: number, now: number) {
    this.#rate = rateBps;
    this.#depth = Math.max(MIN_BURST_BYTES, (rateBps * burstMs) / 1000);
    this.#tokens = this.#depth;
    this.#last = now;
  }

  available(now: number): number {
    if (now > this.#last) {
      this.#tokens = Math.min(this.#depth, this.#tokens + ((now - this.#last) * this.#rate) / 1000);
      this.#last = now;
    }
    return this.#tokens;
  }

  take(bytes: number): void {
    this.#tokens -= bytes;
  }

  /** Milliseconds until `bytes` tokens are available. */
  waitMs(bytes: number): number {
    const need = Math.min(bytes, this.#depth) - this.#tokens;
    return need <= 0 ? 0 : (need * 1000) / this.#rate;
  }
}

interface Chunk {
  due: number;
  buf: Buffer;
}

interface Ack {
  at: number;
  bytes: number;
}

/** A FIFO with an advancing head; compacts when the dead prefix dominates. */
class Fifo<T> {
  #items: T[] = [];
  #head = 0;

  get length(): number {
    return this.#items.length - this.#head;
  }

  peek(): T | undefined {
    return this.#items[this.#head];
  }

  last(): T | undefined {
    return this.#items[this.#items.length - 1];
  }

  push(item: T): void {
    this.#items.push(item);
  }

  shift(): void {
    this.#head++;
    if (this.#head > 64 && this.#head * 2 > this.#items.length) {
      this.#items = this.#items.slice(this.#head);
      this.#head = 0;
    }
  }

  clear(): void {
    this.#items = [];
    this.#head = 0;
  }
}

/** One direction of one connection: reads `src`, delivers to `dst` through the model. */
class Direction {
  readonly queue = new Fifo<Chunk>();
  readonly acks = new Fifo<Ack>();
  inFlight = 0;
  windowPaused = false;
  blocked = false;
  /** Time at which the source's FIN reaches the destination, once the source has ended. */
  endAt = Number.POSITIVE_INFINITY;
  ended = false;
  dead = false;
  /** Bytes released to `dst` so far. */
  delivered = 0;

  constructor(
    readonly src: net.Socket,
    readonly dst: net.Socket,
    readonly link: TokenBucket | undefined,
    readonly flow: TokenBucket | undefined,
    readonly up: boolean,
  ) {}
}

class Scheduler {
  readonly #dirs = new Set<Direction>();
  readonly #oneWay: number;
  readonly #window: number;
  readonly #slot: number;
  readonly #stats: WanProxyStats;
  #timer: NodeJS.Timeout | undefined;
  #timerAt = Number.POSITIVE_INFINITY;
  #rotate = 0;

  constructor(oneWayMs: number, windowBytes: number, slotMs: number, stats: WanProxyStats) {
    this.#oneWay = oneWayMs;
    this.#window = windowBytes;
    this.#slot = slotMs;
    this.#stats = stats;
  }

  add(dir: Direction): void {
    this.#dirs.add(dir);
  }

  remove(dir: Direction): void {
    dir.dead = true;
    dir.queue.clear();
    dir.acks.clear();
    this.#dirs.delete(dir);
  }

  /** A chunk read from dir.src: it is in flight from now, due one-way-delay later. */
  onData(dir: Direction, buf: Buffer): void {
    const now = performance.now();
    dir.queue.push({ due: now + this.#oneWay, buf });
    dir.inFlight += buf.length;
    if (dir.inFlight > this.#stats.maxInFlight) this.#stats.maxInFlight = dir.inFlight;
    if (dir.inFlight >= this.#window && !dir.windowPaused) {
      dir.windowPaused = true;
      this.#stats.windowPauses++;
      dir.src.pause();
    }
    this.#schedule(now + this.#oneWay);
  }

  onEnd(dir: Direction): void {
    const now = performance.now();
    dir.endAt = now + this.#oneWay;
    this.#schedule(dir.endAt);
  }

  /** The destination took everything: deliver what is due now rather than at the next slot, or a socket's
   * small write buffer would cap each slot at one chunk. */
  onDrain(dir: Direction): void {
    dir.blocked = false;
    if (dir.dead) return;
    const now = performance.now();
    this.#service(dir, now);
    this.#schedule(this.#nextEvent(dir, now));
  }

  stop(): void {
    if (this.#timer !== undefined) clearTimeout(this.#timer);
    this.#timer = undefined;
    this.#timerAt = Number.POSITIVE_INFINITY;
  }

  #schedule(at: number): void {
    if (at === Number.POSITIVE_INFINITY) return;
    // Round up to a slot boundary so chunks arriving within one slot are delivered by one wake-up.
    const slotAt = Math.ceil(at / this.#slot) * this.#slot;
    if (this.#timer !== undefined && this.#timerAt <= slotAt) return;
    if (this.#timer !== undefined) clearTimeout(this.#timer);
    this.#timerAt = slotAt;
    const delay = Math.max(0, slotAt - performance.now());
    this.#timer = setTimeout(this.#tick, delay);
  }

  readonly #tick = (): void => {
    this.#timer = undefined;
    this.#timerAt = Number.POSITIVE_INFINITY;
    const now = performance.now();
    const dirs = [...this.#dirs];
    const n = dirs.length;
    // Rotate the starting direction so no connection always gets the link's tokens first.
    this.#rotate = n === 0 ? 0 : (this.#rotate + 1) % n;
    let next = Number.POSITIVE_INFINITY;
    for (let i = 0; i < n; i++) {
      const dir = dirs[(this.#rotate + i) % n];
      if (dir === undefined || dir.dead) continue;
      this.#service(dir, now);
      next = Math.min(next, this.#nextEvent(dir, now));
    }
    if (next !== Number.POSITIVE_INFINITY) this.#schedule(next);
  };

  #service(dir: Direction, now: number): void {
    this.#ackDue(dir, now);
    this.#release(dir, now);
    this.#endIfDone(dir, now);
  }

  #ackDue(dir: Direction, now: number): void {
    for (let ack = dir.acks.peek(); ack !== undefined && ack.at <= now; ack = dir.acks.peek()) {
      dir.inFlight -= ack.bytes;
      dir.acks.shift();
    }
    if (dir.windowPaused && dir.inFlight < this.#window) {
      dir.windowPaused = false;
      dir.src.resume();
    }
  }

  #release(dir: Direction, now: number): void {
    let released = 0;
    dir.dst.cork();
    while (!dir.blocked) {
      const head = dir.queue.peek();
      if (head === undefined || head.due > now) break;
      const tokens = Math.min(
        dir.link?.available(now) ?? Number.POSITIVE_INFINITY,
        dir.flow?.available(now) ?? Number.POSITIVE_INFINITY,
      );
      const n = Math.min(head.buf.length, Math.floor(tokens));
      if (n < Math.min(head.buf.length, MIN_RELEASE_BYTES)) break;
      const piece = n === head.buf.length ? head.buf : head.buf.subarray(0, n);
      if (n === head.buf.length) dir.queue.shift();
      else head.buf = head.buf.subarray(n);
      dir.link?.take(n);
      dir.flow?.take(n);
      released += n;
      dir.delivered += n;
      if (!dir.dst.write(piece)) {
        dir.blocked = true;
        this.#stats.writeBlocks++;
      }
    }
    dir.dst.uncork();
    if (released === 0) return;
    if (dir.up) this.#stats.bytesUp += released;
    else this.#stats.bytesDown += released;
    const at = now + this.#oneWay;
    const last = dir.acks.last();
    if (last !== undefined && last.at === at) last.bytes += released;
    else dir.acks.push({ at, bytes: released });
  }

  #endIfDone(dir: Direction, now: number): void {
    if (dir.ended || dir.blocked || dir.endAt > now || dir.queue.length > 0) return;
    dir.ended = true;
    dir.endAt = Number.POSITIVE_INFINITY;
    dir.dst.end();
  }

  #nextEvent(dir: Direction, now: number): number {
    let next = dir.acks.peek()?.at ?? Number.POSITIVE_INFINITY;
    const endPending = !dir.ended && !dir.blocked && dir.queue.length === 0;
    if (endPending && dir.endAt !== Number.POSITIVE_INFINITY) next = Math.min(next, dir.endAt);
    const head = dir.queue.peek();
    if (head === undefined || dir.blocked) return next;
    if (head.due > now) return Math.min(next, head.due);
    // Due but short of tokens: wake when the emptier bucket has refilled enough.
    const want = Math.min(head.buf.length, MIN_RELEASE_BYTES);
    const wait = Math.max(dir.link?.waitMs(want) ?? 0, dir.flow?.waitMs(want) ?? 0);
    return Math.min(next, now + Math.max(wait, this.#slot));
  }
}

/** Starts the emulator; resolves once it is listening. */
export async function startWanProxy(opts: WanProxyOptions): Promise<WanProxy> {
  const oneWay = opts.rttMs / 2;
  const slot = opts.slotMs ?? 1;
  const burstMs = opts.burstMs ?? 5;
  const stats: WanProxyStats = {
    connections: 0,
    active: 0,
    bytesUp: 0,
    bytesDown: 0,
    windowPauses: 0,
    writeBlocks: 0,
    maxInFlight: 0,
  };
  const sched = new Scheduler(oneWay, opts.windowBytes, slot, stats);
  const t0 = performance.now();
  const linkUp = opts.linkRateBps ? new TokenBucket(opts.linkRateBps, burstMs, t0) : undefined;
  const linkDown = opts.linkRateBps ? new TokenBucket(opts.linkRateBps, burstMs, t0) : undefined;
  const sockets = new Set<net.Socket>();
  const timers = new Set<NodeJS.Timeout>();
  const closed: ClosedConnection[] = [];
  const pairs: Array<{ up: Direction; down: Direction }> = [];

  function flowBucket(): TokenBucket | undefined {
    return opts.perConnRateBps ? new TokenBucket(opts.perConnRateBps, burstMs, performance.now()) : undefined;
  }

  function serverOnConnection(client: net.Socket): void {
    const index = stats.connections++;
    stats.active++;
    client.setNoDelay(true);
    const upstream = new net.Socket({ allowHalfOpen: true });
    upstream.setNoDelay(true);
    sockets.add(client);
    sockets.add(upstream);
    const up = new Direction(client, upstream, linkUp, flowBucket(), true);
    const down = new Direction(upstream, client, linkDown, flowBucket(), false);
    pairs.push({ up, down });
    // Nothing may be written to the target before it is connected; 'connect' releases the queue.
    up.blocked = true;
    upstream.once('connect', () => sched.onDrain(up));
    sched.add(up);
    sched.add(down);
    let sidesClosed = 0;
    let firstEnd: ClosedConnection['firstEnd'] | undefined;

    const wire = (dir: Direction, other: Direction): void => {
      dir.src.on('data', (buf: Buffer) => sched.onData(dir, buf));
      dir.src.on('end', () => {
        firstEnd ??= dir.up ? 'client' : 'target';
        sched.onEnd(dir);
      });
      dir.dst.on('drain', () => sched.onDrain(dir));
      dir.src.on('error', () => {
        // An error on one side is passed on as a reset of the other; data still in flight is lost, as it
        // would be with a real RST.
        resetSocket(dir.dst);
      });
      dir.src.on('close', (hadError: boolean) => {
        sockets.delete(dir.src);
        // dir.src is also `other`'s destination: anything still owed to it can no longer be delivered.
        if (hadError || !other.ended) resetSocket(dir.dst);
        sched.remove(other);
        if (++sidesClosed === 2) {
          sched.remove(dir);
          stats.active--;
          closed.push({ index, firstEnd: firstEnd ?? 'reset' });
        }
      });
    };
    wire(up, down);
    wire(down, up);
    // The SYN travels one-way-delay before the target sees the connection.
    const connectTimer = setTimeout(() => {
      timers.delete(connectTimer);
      if (client.destroyed) {
        upstream.destroy();
        return;
      }
      upstream.connect(opts.target.port, opts.target.host);
    }, oneWay);
    timers.add(connectTimer);
  }

  const server = net.createServer({ allowHalfOpen: true }, serverOnConnection);
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(opts.listenPort, opts.listenHost ?? '127.0.0.1', () => {
      server.off('error', reject);
      resolve();
    });
  });
  const address = server.address();
  if (address === null || typeof address === 'string') throw new Error('wan-proxy: no TCP address');

  return {
    port: address.port,
    stats,
    closed,
    delivered: () => pairs.map((p) => ({ up: p.up.delivered, down: p.down.delivered })),
    close: async () => {
      for (const t of timers) clearTimeout(t);
      timers.clear();
      sched.stop();
      const done = new Promise<void>((resolve) => server.close(() => resolve()));
      for (const s of sockets) s.destroy();
      sockets.clear();
      await done;
    },
  };
}

/**
 * Ends a connection with a TCP RST where one can be sent, so the peer sees ECONNRESET rather than an
 * orderly end; otherwise destroys it. resetAndDestroy needs a connected handle (before connect a plain
 * destroy is all there is), and libuv refuses to reset a socket whose end() is still being flushed
 * (uv_tcp_close_reset: EINVAL, libuv/libuv#3661), after which node emits 'error' but never 'close'.
 */
export function resetSocket(socket: net.Socket): void {
  if (socket.destroyed) return;
  const connected =
    socket.readyState === 'open' || socket.readyState === 'readOnly' || socket.readyState === 'writeOnly';
  const flushingEnd = socket.writableEnded && !socket.writableFinished;
  if (connected && !flushingEnd) socket.resetAndDestroy();
  else socket.destroy();
}

/** Interval of `--timeline`'s samples. */
const TIMELINE_MS = 100;

/**
 * `--timeline FILE`: every TIMELINE_MS while anything moves, one line `MS B0 B1 ...`: the ms since data
 * first moved, then the bytes each connection (in accept order) delivered in that interval, both ways.
 * Shows a sender's ramp, its per-connection balance and its tail.
 */
function writeTimeline(proxy: WanProxy, file: string): void {
  const out = createWriteStream(file);
  let last: number[] = [];
  let t0: number | undefined;
  setInterval(() => {
    const now = proxy.delivered().map((d) => d.up + d.down);
    if (now.length === 0) return;
    const delta = now.map((b, i) => b - (last[i] ?? 0));
    last = now;
    if (delta.every((d) => d === 0)) return;
    t0 ??= performance.now();
    out.write(`${Math.round(performance.now() - t0)} ${delta.join(' ')}\n`);
  }, TIMELINE_MS).unref();
}

function parseTarget(text: string): { host: string; port: number } {
  const i = text.lastIndexOf(':');
  const port = Number(text.slice(i + 1));
  if (i <= 0 || !Number.isInteger(port) || port <= 0 || port > 65535) {
    throw new Error(`--target wants HOST:PORT, got ${JSON.stringify(text)}`);
  }
  return { host: text.slice(0, i), port };
}

const USAGE = `usage: node dist/bench/wan-proxy.js --listen PORT --target HOST:PORT --rtt MS --window SIZE
       [--listen-host ADDR] [--per-conn-rate RATE] [--link RATE] [--slot MS] [--timeline FILE]
  SIZE: bytes with an optional unit (64KiB, 4MiB); RATE: 2Gbit, 500Mbit, 100MB (bytes) per second.
  Prints {"event":"listening","port":N} when ready and its counters as JSON on SIGINT/SIGTERM.`;

async function cliMain(argv: string[]): Promise<void> {
  const { values } = parseArgs({
    args: argv,
    options: {
      listen: { type: 'string', default: '0' },
      'listen-host': { type: 'string', default: '127.0.0.1' },
      target: { type: 'string' },
      rtt: { type: 'string', default: '40' },
      window: { type: 'string', default: '4MiB' },
      'per-conn-rate': { type: 'string' },
      link: { type: 'string' },
      slot: { type: 'string', default: '1' },
      timeline: { type: 'string' },
      help: { type: 'boolean', default: false },
    },
  });
  if (values.help || values.target === undefined) {
    console.log(USAGE);
    process.exit(values.help ? 0 : 2);
  }
  const proxy = await startWanProxy({
    listenPort: Number(values.listen),
    listenHost: values['listen-host'],
    target: parseTarget(values.target),
    rttMs: Number(values.rtt),
    windowBytes: parseBytes(values.window),
    perConnRateBps: values['per-conn-rate'] ? parseRate(values['per-conn-rate']) : undefined,
    linkRateBps: values.link ? parseRate(values.link) : undefined,
    slotMs: Number(values.slot),
  });
  console.log(JSON.stringify({ event: 'listening', port: proxy.port }));
  if (values.timeline !== undefined) writeTimeline(proxy, values.timeline);
  const stop = (): void => {
    console.log(JSON.stringify({ event: 'stats', ...proxy.stats }));
    void proxy.close().then(() => process.exit(0));
  };
  process.once('SIGINT', stop);
  process.once('SIGTERM', stop);
}

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) {
  cliMain(process.argv.slice(2)).catch((err: unknown) => {
    console.error(`wan-proxy: ${err instanceof Error ? err.message : String(err)}`);
    process.exit(1);
  });
}
