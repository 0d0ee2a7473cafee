// A file a command writes must not be one it reads: `export a.tape --out a.tape` would replace
// the tape by its own export, `record --input events.ndjson --out events.ndjson --force` the
// input by the tape made of it, `replay --position-file` or `--report` naming the tape the tape
// by a few lines of JSON. Each command names what it reads and what it writes, and is refused
// (exit 2, before it opens anything) when an output is one of its inputs, under any spelling
// or link, or when two of its outputs are one file.

import { resolve } from 'node:path';
import { TapedeckError } from '../engine/errors.js';
import { engineModulePath } from '../tape/load-engine.js';
import { sameFile } from '../tape/private.js';
import type { KafkaSecurityFlags } from './kafka-security.js';

/** A file given to a command: how the user gave it (`--out`, "the tape being exported") and its path (undefined: not given). */
export interface NamedFile {
  readonly name: string;
  readonly path: string | undefined;
  /** False: the name says it all (standard input, whose path is /dev/stdin). */
  readonly showPath?: boolean;
}

/** The --engine module, when --engine names a file rather than a built-in engine. */
export function engineFile(spec: string | undefined): NamedFile {
  return { name: 'the --engine module', path: engineModulePath(spec) };
}

/** The TLS and Kafka configuration files a Kafka command reads. */
export function kafkaSecurityFiles(flags: KafkaSecurityFlags): NamedFile[] {
  return [
    { name: 'the --kafka-config file', path: flags.kafkaConfig },
    { name: 'the --ca certificate', path: flags.ca },
    { name: 'the --cert certificate', path: flags.cert },
    { name: 'the --key private key', path: flags.key },
  ];
}

/**
 * Refuses an output that is one of the inputs (E_OUTPUT_IS_INPUT), or two outputs that are one
 * file (E_OUTPUTS_SAME_FILE: the second would replace the first).
 */
export function refuseOutputsOverInputs(outputs: readonly NamedFile[], inputs: readonly NamedFile[]): void {
  const given = outputs.filter((o): o is NamedFile & { path: string } => o.path !== undefined);
  for (const [i, output] of given.entries()) {
    for (const input of inputs) {
      if (input.path === undefined || !sameFile(output.path, input.path)) continue;
      const spelled = input.path === output.path || input.showPath === false ? '' : ` (${input.path})`;
      throw new TapedeckError('E_OUTPUT_IS_INPUT', `${output.name} ${output.path} is ${input.name}${spelled}: writing there would destroy it; choose another file`);
    }
    for (const other of given.slice(0, i)) {
      if (resolve(other.path) === resolve(output.path) || sameFile(other.path, output.path)) {
        throw new TapedeckError('E_OUTPUTS_SAME_FILE', `${other.name} and ${output.name} name the same file (${output.path}): one would replace the other; choose two files`);
      }
    }
  }
}
