// What a FrameDecoder's DataSink was told, checked against the DATA frames that should have landed.
import * as assert from 'uvu/assert';

/** One landed() call: where the data belongs and (a copy of) what arrived. */
export interface LandedData {
  id: number;
  seq: number;
  offset: number;
  data: Buffer;
}

/** Each of `expected` (DATA payloads: 12-byte prefix, then data) landed, in order, with its data intact. */
export function assertLanded(
  landed: readonly LandedData[],
  expected: readonly Buffer[],
  label: string,
): void {
  assert.is(landed.length, expected.length, `${label}: landed count`);
  for (let i = 0; i < expected.length; i++) {
    const p = expected[i]!;
    const l = landed[i]!;
    assert.equal([l.id, l.seq, l.offset], [p.readUInt32BE(0), p.readUInt32BE(4), p.readUInt32BE(8)], label);
    assert.ok(l.data.equals(p.subarray(12)), `${label}: data of landed frame ${i}`);
  }
}
