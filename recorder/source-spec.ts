// Sources rebuilt from plain data (Source.workerSpec), for the recorder's source worker
// (recorder/pipeline.ts): the worker builds the same source, at the same starting point, as
// the main thread described.

import type { Engine } from '../engine/types.js';
import { Redactor } from './redact.js';
import type { Source, SourceSpec } from './source.js';
import { NdjsonSource, type NdjsonPosition } from './sources/ndjson.js';
import { EngineGeneratedSource, WorldTrafficSource, type GeneratedSourceOptions } from './sources/synthetic.js';
import type { TrafficOptions } from '../engine/world/traffic.js';

export function sourceFromSpec(spec: SourceSpec, engine: Engine): Source {
  switch (spec.kind) {
    case 'world-traffic':
      return new WorldTrafficSource(spec.options as Partial<TrafficOptions>, spec.startIndex) as Source;
    case 'engine-generated':
      return new EngineGeneratedSource(engine, spec.options as GeneratedSourceOptions, spec.startIndex) as Source;
    case 'ndjson': {
      const r = spec.redaction;
      const redactor = r === null ? null : Redactor.fromParts(r);
      return new NdjsonSource({
        input: spec.input,
        fd: spec.fd,
        codec: engine.codec,
        maxLineBytes: spec.maxLineBytes,
        from: spec.from as NdjsonPosition,
        keepRaw: spec.keepRaw,
        redaction: redactor === null ? undefined : { transform: redactor, record: redactor.record },
      }) as Source;
    }
    case 'ndjson-text':
      throw new Error('the text of an NDJSON input is parsed by recorder/segment-worker.ts, not rebuilt here');
    case 'kafka':
      throw new Error('a Kafka source is read by recorder/kafka-worker.ts, not rebuilt here');
  }
}
