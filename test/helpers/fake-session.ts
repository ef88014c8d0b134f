// Ending a fake daemon's session (raw-peer.ts) once a test has seen what it wanted of the real client.
import * as assert from 'uvu/assert';
import { ERROR_CODES, MsgType } from '../../src/protocol/index.js';
import type { RawPeer } from './raw-peer.js';

/**
 * Sends ABORT and checks that the client's transfer ended with it: `outcome` resolves with what the
 * transfer rejected with (an Error when it succeeded, which it must not against a fake daemon).
 */
export async function abortFakeSession(peer: RawPeer, outcome: Promise<unknown>): Promise<void> {
  await peer.send({ type: MsgType.Abort, code: ERROR_CODES.FCP_ERR_SESSION_ABORTED.wire, text: 'test over' });
  const err = await outcome;
  assert.is((err as { code?: string }).code, 'FCP_ERR_SESSION_ABORTED', String(err));
}
