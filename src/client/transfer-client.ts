/**
 * The client's half of push and pull, as main.ts and the tests import it: connect (TLS unless
 * --no-encryption), authenticate, open the session, attach the extra connections with proofs of the session
 * secret, and run the sending or receiving engine until the daemon confirms the end (spec/PROTOCOL.md §3–§6,
 * spec/SECURITY.md §6). Each job lives in its own module: options.ts, session.ts (over a transport from
 * src/transport/), extra-connections.ts, push.ts, pull.ts, finish.ts.
 */
export type { Endpoint, PullOptions, PushOptions, SecurityOptions } from './options.js';
export { pull } from './pull.js';
export { push } from './push.js';
