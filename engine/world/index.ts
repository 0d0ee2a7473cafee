// The reference engine `world`: the game backend from the story (see docs/world-engine.md).

import type { Engine } from '../types.js';
import { applyWorld, type WorldUpdate } from './apply.js';
import { worldCodec } from './codec.js';
import type { WorldEvent } from './events.js';
import { checkWorldInvariants } from './invariants.js';
import { restoreWorld, snapshotWorld } from './snapshot.js';
import { normalizeWorldOptions, WorldState } from './state.js';
import { viewWorld } from './view.js';

export const WORLD_ENGINE_VERSION = '1.0.0';

export const worldEngine: Engine<WorldState, WorldEvent, WorldUpdate> = {
  name: 'world',
  version: WORLD_ENGINE_VERSION,
  codec: worldCodec,
  init: (options?: unknown) => new WorldState(normalizeWorldOptions(options)),
  apply: applyWorld,
  digest: (state) => state.digest(),
  snapshot: snapshotWorld,
  restore: restoreWorld,
  checkInvariants: checkWorldInvariants,
  view: viewWorld,
};

export * from './events.js';
export { worldCodec } from './codec.js';
export { applyWorld, type WorldUpdate } from './apply.js';
export { WorldState, DEFAULT_WORLD_OPTIONS, normalizeWorldOptions, type WorldOptions } from './state.js';
export { WorldTraffic, TRAFFIC_PROFILES, DEFAULT_TRAFFIC_OPTIONS, DEFAULT_START_US, type TrafficOptions, type TrafficProfile, type TrafficRecord } from './traffic.js';
export { viewWorld, type WorldView } from './view.js';
