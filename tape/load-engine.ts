// Resolve --engine (the CLI, and the replay and recording workers, which load the engine themselves): a built-in name ("world") or a path to a user's engine module, which
// exports the engine as its default export or as `engine`.

import { existsSync } from 'node:fs';
import { resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { EngineShapeError, TapedeckError } from '../engine/errors.js';
import { builtInEngine, builtInEngineNames, normalizeEngine } from '../engine/registry.js';
import type { Engine } from '../engine/types.js';

function looksLikePath(spec: string): boolean {
  return spec.includes('/') || spec.includes('\\') || /\.(m|c)?js$/.test(spec);
}

/** The module file `spec` names, or undefined when it names a built-in engine (or nothing a path could be). */
export function engineModulePath(spec: string | undefined): string | undefined {
  return spec === undefined || builtInEngine(spec) !== undefined || !looksLikePath(spec) ? undefined : spec;
}

export async function loadEngine(spec: string): Promise<Engine> {
  const builtIn = builtInEngine(spec);
  if (builtIn !== undefined) return builtIn;
  if (!looksLikePath(spec)) {
    throw new TapedeckError(
      'E_ENGINE_UNKNOWN',
      `--engine "${spec}" is not a built-in engine (${builtInEngineNames().join(', ')}) nor a path; give a path such as ./my-engine.js`,
    );
  }
  const path = resolve(spec);
  if (!existsSync(path)) throw new TapedeckError('E_ENGINE_NOT_FOUND', `--engine ${spec}: no such file (${path})`);
  let module: Record<string, unknown>;
  try {
    module = (await import(pathToFileURL(path).href)) as Record<string, unknown>;
  } catch (cause) {
    throw new TapedeckError('E_ENGINE_LOAD', `--engine ${spec}: the module failed to load: ${(cause as Error).message}`, { cause });
  }
  const candidate = module.default ?? module.engine;
  if (candidate === undefined) {
    throw new EngineShapeError(`--engine ${spec}: the module has neither a default export nor an export named "engine"`);
  }
  return normalizeEngine(candidate, `--engine ${spec}`);
}

const loaded = new Map<string, Promise<Engine>>();

/**
 * loadEngine, once per spec in this thread: for worker threads kept from job to job (the
 * recording pipelines), which load a job's engine when it comes. A failed load is not kept:
 * the next job tries again (and reports its own error).
 */
export function loadEngineOnce(spec: string): Promise<Engine> {
  let engine = loaded.get(spec);
  if (engine === undefined) {
    engine = loadEngine(spec);
    loaded.set(spec, engine);
    engine.catch(() => loaded.delete(spec));
  }
  return engine;
}

/** The built-in engine a tape names, or an error saying to pass --engine PATH. */
export function builtInEngineOf(tapePath: string, engineName: string): Engine {
  const engine = builtInEngine(engineName);
  if (engine === undefined) {
    throw new TapedeckError('E_ENGINE_UNKNOWN', `${tapePath} was recorded with engine "${engineName}", which is not built in; pass --engine PATH to its module`);
  }
  return engine;
}

/** The engine to read a tape with: the one given (--engine), else the built-in engine the tape names. */
export async function engineForTape(tapePath: string, spec: string | undefined): Promise<Engine> {
  if (spec !== undefined) return loadEngine(spec);
  // Imported here, not at the top: the recording and replay workers load engines through this
  // file, and SQLite's native module and the reader are a third of their start-up otherwise.
  const { TapeReader } = await import('./reader.js');
  const reader = TapeReader.open(tapePath);
  const name = reader.meta.engineName;
  reader.close();
  return builtInEngineOf(tapePath, name);
}
