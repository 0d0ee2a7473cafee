// tapedeck/testing: the properties `tapedeck simulate` checks, for a user's own vitest (or any)
// test suite. Two ways in:
//
//   await assertEngineProperties(engine, { seed: 42, faults: ['dup', 'reorder'] });
//     runs the simulation and throws SimulationFailedError with the report (property, message,
//     seed, path, the counterexample tape and the commands to re-run and replay it);
//
//   fc.assert(engineProperty(engine, { faults: ['dup'] }), { seed: 42 });
//     the same check as a fast-check property, for fast-check's own runner and its seed/path
//     reporting (use the fc exported here, the copy tapedeck builds its arbitraries with).

import fc from 'fast-check';
import type { Engine } from './engine/types.js';
import { applyFaults, faultsArbitrary, toRecords, interleave, firstDeliveries, FAULT_KINDS, type Fault, type FaultKind, type SimRecord } from './simulator/faults.js';
import { checkStream, PROPERTY_NAMES, type PropertyFailure, type PropertyName, type CheckContext } from './simulator/properties.js';
import { caseArbitrary, defaultProperties, generatedStreams, simulate, simulationOf, DEFAULT_MAX_EVENTS, DEFAULT_MAX_FAULTS, type SimulateOptions, type SimulateResult, type SimulationFailure } from './simulator/simulate.js';

export { fc, simulate, applyFaults, faultsArbitrary, toRecords, interleave, firstDeliveries, FAULT_KINDS, PROPERTY_NAMES };
export type { Fault, FaultKind, SimRecord, PropertyName, PropertyFailure, SimulateOptions, SimulateResult, SimulationFailure };

export class SimulationFailedError extends Error {
  constructor(readonly result: SimulateResult) {
    const f = result.failure!;
    super(
      `${f.property} falsified for ${result.engine.name} ${result.engine.version}: ${f.message}\n` +
        `  counterexample: ${f.events} events${f.faults.length > 0 ? `, faults: ${f.faults.join('; ')}` : ''}\n` +
        `  seed ${f.seed}${f.path === null ? '' : `, path ${f.path}`}\n` +
        (f.tape === null ? '' : `  tape: ${f.tape}\n  replay it: ${f.commands.replay}\n`) +
        `  re-run it: ${f.commands.rerun}`,
    );
    this.name = 'SimulationFailedError';
  }
}

export interface EnginePropertyOptions {
  readonly properties?: readonly PropertyName[];
  readonly faults?: readonly FaultKind[];
  readonly maxEvents?: number;
  readonly maxFaults?: number;
}

/** Run the simulation (as `tapedeck simulate`); throw SimulationFailedError when a property is falsified. */
export async function assertEngineProperties(engine: Engine, options: Omit<SimulateOptions, 'engine' | 'seed'> & { seed?: number } = {}): Promise<SimulateResult> {
  const seed = options.seed ?? (Date.now() >>> 0);
  const result = await simulate({ ...options, engine, seed });
  if (!result.ok) throw new SimulationFailedError(result);
  return result;
}

/** The engine's stream arbitrary: generated events as records (timestamps from the gaps, offsets per partition). */
export function streamArbitrary(engine: Engine, maxEvents = DEFAULT_MAX_EVENTS): fc.Arbitrary<SimRecord[]> {
  return generatedStreams(engine, maxEvents);
}

/**
 * The properties as one fast-check property over (stream, faults): for fc.assert, which reports
 * the seed and path of a failure. The failure's message names the property and what went wrong.
 */
export function engineProperty(engine: Engine, options: EnginePropertyOptions = {}) {
  const properties = options.properties ?? defaultProperties(engine, false);
  const ctx: CheckContext = { engine, engineOptions: simulationOf(engine)?.options, properties, latency: null, applied: 0, delivered: 0 };
  const arb = caseArbitrary(generatedStreams(engine, options.maxEvents), options.faults ?? [], options.maxFaults ?? DEFAULT_MAX_FAULTS);
  return fc.property(arb, (c) => {
    const failure = checkStream(ctx, applyFaults(c.stream, c.faults), c);
    if (failure !== null) throw new Error(`${failure.property}: ${failure.message}`);
  });
}
