// The options that describe synthetic traffic, shared by `demo` and `record --source synthetic`,
// and the source they build: world traffic for the world engine, the engine's generate() hook
// for any other engine.

import type { Command } from 'commander';
import { TapedeckError } from '../engine/errors.js';
import type { Engine } from '../engine/types.js';
import { DEFAULT_TRAFFIC_OPTIONS, TRAFFIC_PROFILES, type TrafficProfile } from '../engine/world/traffic.js';
import { DEFAULT_WORLD_OPTIONS } from '../engine/world/state.js';
import type { Source } from '../recorder/source.js';
import { EngineGeneratedSource, WorldTrafficSource } from '../recorder/sources/synthetic.js';
import { nonNegativeInt, oneOf, positiveInt, positiveNumber } from './parse.js';

export interface SyntheticFlags {
  events: number;
  seed: number;
  rate: number;
  partitions: number;
  players: number;
  profile: TrafficProfile;
}

export function addSyntheticOptions(command: Command, defaultEvents: number): Command {
  const d = DEFAULT_TRAFFIC_OPTIONS;
  return command
    .option('--events <n>', 'number of events to generate', positiveInt('--events'), defaultEvents)
    .option('--seed <n>', 'seed of the generator (the same seed gives the same events)', nonNegativeInt('--seed'), d.seed)
    .option('--rate <events-per-sec>', 'mean arrival rate in virtual time', positiveNumber('--rate'), d.ratePerSec)
    .option('--partitions <n>', 'partitions the zones map onto', positiveInt('--partitions'), d.partitions)
    .option('--players <n>', 'players in the world', positiveInt('--players'), d.players)
    .option(`--profile <name>`, `traffic shape: ${TRAFFIC_PROFILES.join(', ')}`, oneOf('--profile', TRAFFIC_PROFILES), d.profile);
}

export function syntheticSource(engine: Engine, flags: SyntheticFlags): Source {
  if (engine.name === 'world') {
    if (flags.seed > 0xffffffff) throw new TapedeckError('E_USAGE', '--seed must be below 2^32');
    return new WorldTrafficSource({
      seed: flags.seed,
      events: flags.events,
      ratePerSec: flags.rate,
      partitions: flags.partitions,
      players: flags.players,
      profile: flags.profile,
      zones: DEFAULT_WORLD_OPTIONS.zones,
    }) as Source;
  }
  if (engine.generate === undefined) {
    throw new TapedeckError(
      'E_USAGE',
      `engine "${engine.name}" has no generate() hook, so tapedeck cannot make synthetic traffic for it; ` +
        'add generate(random, index) to the module (see "Writing an engine" in the README)',
    );
  }
  return new EngineGeneratedSource(engine, { seed: flags.seed, events: flags.events, ratePerSec: flags.rate }) as Source;
}
