// The default codec for users' engines: events are JSON values of the form {type, payload},
// stored in the tape as UTF-8 JSON text.

import { CodecError } from './errors.js';
import type { EventCodec, JsonEvent } from './types.js';

const encoder = new TextEncoder();
const decoder = new TextDecoder('utf-8', { fatal: true });

function checkJsonEvent(value: unknown): JsonEvent {
  if (value === null || typeof value !== 'object' || Array.isArray(value)) throw new CodecError('event must be a JSON object with "type" and "payload"');
  const v = value as Record<string, unknown>;
  if (typeof v.type !== 'string' || v.type === '') throw new CodecError('event "type" must be a non-empty string');
  if (!('payload' in v)) throw new CodecError(`event of type ${JSON.stringify(v.type)} has no "payload"`);
  return { type: v.type, payload: v.payload };
}

export const jsonCodec: EventCodec<JsonEvent> = {
  name: 'json',
  encode: (event) => encoder.encode(JSON.stringify(checkJsonEvent(event))),
  decode(bytes) {
    let text: string;
    try {
      text = decoder.decode(bytes);
    } catch (cause) {
      throw new CodecError('event bytes are not valid UTF-8', { cause });
    }
    let value: unknown;
    try {
      value = JSON.parse(text);
    } catch (cause) {
      throw new CodecError(`event bytes are not valid JSON: ${(cause as Error).message}`, { cause });
    }
    return checkJsonEvent(value);
  },
  toJSON: (event) => checkJsonEvent(event),
  fromJSON: (json) => checkJsonEvent(json),
};
