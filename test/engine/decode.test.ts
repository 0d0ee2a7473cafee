import { describe, expect, it } from 'vitest';
import { eventDecoder } from '../../engine/decode.js';
import { EngineShapeError } from '../../engine/errors.js';
import { normalizeEngine } from '../../engine/registry.js';
import type { Engine } from '../../engine/types.js';
import { worldEngine } from '../../engine/world/index.js';
import { join, move } from '../../engine/world/events.js';
import { worldCodec } from '../../engine/world/codec.js';

const bytes = [worldCodec.encode(join(1, 2, 3, 4)), worldCodec.encode(move(1, -2, 5))];

describe('eventDecoder', () => {
  it('decodes every event into one object for an engine that keeps no event (world)', () => {
    const decode = eventDecoder(worldEngine);
    const first = decode(bytes[0], 0, bytes[0].length);
    expect({ ...first }).toEqual(join(1, 2, 3, 4));
    const second = decode(bytes[1], 0, bytes[1].length);
    expect(second).toBe(first);
    expect({ ...second }).toEqual(move(1, -2, 5));
  });

  it('gives a new object per event to an engine that does not declare transientEvents, so that it may keep them', () => {
    const keeping: Engine = { ...worldEngine, transientEvents: undefined } as Engine;
    const decode = eventDecoder(keeping);
    const first = decode(bytes[0], 0, bytes[0].length);
    const second = decode(bytes[1], 0, bytes[1].length);
    expect(second).not.toBe(first);
    expect(first).toEqual(join(1, 2, 3, 4));
    // A codec with neither fast path: decode of the payload's bytes, at an offset.
    const plain = eventDecoder({ ...worldEngine, codec: { ...worldCodec, decodeAt: undefined, decodeInto: undefined } } as Engine);
    const buffer = new Uint8Array([9, 9, ...bytes[1]]);
    expect(plain(buffer, 2, bytes[1].length)).toEqual(move(1, -2, 5));
  });

  it('an engine module whose transientEvents or codec fast paths have the wrong type is refused, naming them', () => {
    const shape = { ...worldEngine, transientEvents: 'yes', codec: { ...worldCodec, decodeInto: 3 } };
    expect(() => normalizeEngine(shape, 'my-engine.js')).toThrow(EngineShapeError);
    expect(() => normalizeEngine(shape, 'my-engine.js')).toThrow(/`transientEvents`, when given, must be true or false; `codec.decodeInto`, when given, must be a function/);
  });
});
