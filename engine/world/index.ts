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
  // applyWorld reads the event's fields and keeps nothing of it (updates are objects of their own).
  transientEvents: true,
  // Zones are partitions, and no rule reaches across zones (a shot or a loot in another zone
  // is ignored), so each zone's players and treasures form a shard, provided every entity's
  // events come on its zone's partition, as the generator and the story's topic do.
  sharding: {
    digestWords: (state) => state.digestWords(),
    digestFromWords: (words, options) => WorldState.digestFromWords(words, normalizeWorldOptions(options)),
  },
};

export * from './events.js';
export { worldCodec } from './codec.js';
export { applyWorld, type WorldUpdate } from './apply.js';
export { WorldState, DEFAULT_WORLD_OPTIONS, normalizeWorldOptions, type WorldOptions } from './state.js';
export { WorldTraffic, TRAFFIC_PROFILES, DEFAULT_TRAFFIC_OPTIONS, DEFAULT_START_US, type TrafficOptions, type TrafficProfile, type TrafficRecord } from './traffic.js';
export { viewWorld, type WorldView } from './view.js';
