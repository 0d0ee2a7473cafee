// The `world` codec: a compact binary form for the tape and a JSON form for NDJSON.
//
// Binary layout (little-endian), one tag byte then fixed fields per kind:
//   join   0x00 player:u32 zone:u16 x:u16 y:u16            11 bytes
//   leave  0x01 player:u32                                   5 bytes
//   move   0x02 player:u32 dx:i16 dy:i16                     9 bytes
//   rotate 0x03 player:u32 angle:u16                         7 bytes
//   shoot  0x04 player:u32 target:u32 damage:u8             10 bytes
//   loot   0x05 player:u32 treasure:u32                      9 bytes
//   spawn  0x06 treasure:u32 zone:u16 x:u16 y:u16 value:u16 13 bytes
// Ids must be at most WORLD_LIMITS.maxId. Anything else (unknown tag, wrong length, id out of
// range) is a CodecError that says which.

import { CodecError } from '../errors.js';
import type { EventCodec, JsonEvent } from '../types.js';
import { WORLD_EVENT_KIND_NAMES, WORLD_LIMITS, WorldEventKind, type WorldEvent } from './events.js';

type FieldName = 'id' | 'other' | 'zone' | 'x' | 'y' | 'amount';
type FieldType = 'u8' | 'u16' | 'i16' | 'u32';

interface FieldSpec {
  /** Name in the JSON payload. */
  readonly json: string;
  /** Field of WorldEvent it fills. */
  readonly field: FieldName;
  readonly type: FieldType;
  readonly min: number;
  readonly max: number;
}

const id = (json: string, field: FieldName): FieldSpec => ({ json, field, type: 'u32', min: 0, max: WORLD_LIMITS.maxId });
const u16 = (json: string, field: FieldName, max: number): FieldSpec => ({ json, field, type: 'u16', min: 0, max });
const i16 = (json: string, field: FieldName): FieldSpec => ({
  json,
  field,
  type: 'i16',
  min: -WORLD_LIMITS.maxStep,
  max: WORLD_LIMITS.maxStep,
});

/** Fields per kind, in binary order. Index = WorldEventKind. */
const LAYOUT: readonly (readonly FieldSpec[])[] = [
  [id('player', 'id'), u16('zone', 'zone', WORLD_LIMITS.maxZone), u16('x', 'x', WORLD_LIMITS.maxCoordinate), u16('y', 'y', WORLD_LIMITS.maxCoordinate)],
  [id('player', 'id')],
  [id('player', 'id'), i16('dx', 'x'), i16('dy', 'y')],
  [id('player', 'id'), u16('angle', 'amount', WORLD_LIMITS.maxAngle)],
  [id('player', 'id'), id('target', 'other'), { json: 'damage', field: 'amount', type: 'u8', min: 0, max: WORLD_LIMITS.maxDamage }],
  [id('player', 'id'), id('treasure', 'other')],
  [
    id('treasure', 'id'),
    u16('zone', 'zone', WORLD_LIMITS.maxZone),
    u16('x', 'x', WORLD_LIMITS.maxCoordinate),
    u16('y', 'y', WORLD_LIMITS.maxCoordinate),
    u16('value', 'amount', WORLD_LIMITS.maxValue),
  ],
];

const FIELD_BYTES: Record<FieldType, number> = { u8: 1, u16: 2, i16: 2, u32: 4 };
const SIZES = LAYOUT.map((fields) => 1 + fields.reduce((n, f) => n + FIELD_BYTES[f.type], 0));
const KIND_BY_NAME = new Map<string, WorldEventKind>(WORLD_EVENT_KIND_NAMES.map((n, i) => [n, i as WorldEventKind]));

function checkRange(kind: number, spec: FieldSpec, value: number): void {
  if (!Number.isInteger(value) || value < spec.min || value > spec.max) {
    throw new CodecError(
      `${WORLD_EVENT_KIND_NAMES[kind]}.${spec.json} must be an integer in [${spec.min}, ${spec.max}], got ${value}`,
    );
  }
}

/** The value of field `spec` of an event of `kind`, checked against its range. */
function checked(kind: number, spec: FieldSpec, value: number): number {
  if (!(value >= spec.min && value <= spec.max) || value !== Math.floor(value)) checkRange(kind, spec, value);
  return value;
}

function encodedLength(event: WorldEvent): number {
  const size = SIZES[event.kind];
  if (size === undefined) throw new CodecError(`unknown world event kind ${event.kind}`);
  return size;
}

function encode(event: WorldEvent): Uint8Array {
  const b = new Uint8Array(encodedLength(event));
  encodeInto(event, b, 0);
  return b;
}

// Encoding is on the recording hot path: each kind's fields are read by name (a loop over
// LAYOUT reading event[spec.field] would be a keyed load per field, several times slower),
// tested against the limits LAYOUT holds, and written byte by byte (a DataView per event costs
// more than the event; helpers for the stores were not inlined). The tests are written out,
// one expression a kind, against constants: made through a checking function per field, they
// were calls that V8 did not inline, about 120 of the 240 instructions encoding a generated
// event took (valgrind). A field that fails goes to refuse(), which names it as LAYOUT does.
const MAX_ID = WORLD_LIMITS.maxId;
const MAX_ZONE = WORLD_LIMITS.maxZone;
const MAX_COORDINATE = WORLD_LIMITS.maxCoordinate;
const MAX_STEP = WORLD_LIMITS.maxStep;
const MAX_ANGLE = WORLD_LIMITS.maxAngle;
const MAX_DAMAGE = WORLD_LIMITS.maxDamage;
const MAX_VALUE = WORLD_LIMITS.maxValue;

/**
 * Throws the CodecError for the first field of `event` (in LAYOUT's order) that is not an
 * integer in its range; encodeInto calls it when one is not.
 */
function refuse(event: WorldEvent): never {
  const kind = event.kind;
  const fields = LAYOUT[kind];
  if (fields === undefined) throw new CodecError(`unknown world event kind ${kind}`);
  for (const spec of fields) checked(kind, spec, event[spec.field]);
  throw new Error(`world codec: event of kind ${kind} refused, but each of its fields is in range`);
}

function encodeInto(event: WorldEvent, b: Uint8Array, offset: number): number {
  const kind = event.kind;
  const id = event.id;
  // Each field: in range, and an integer ((v | 0) === v, exact for the int32 values in range;
  // false for NaN and fractions). Every kind starts with its tag and a u32 id.
  if (!(kind >= 0 && kind < LAYOUT.length && (kind | 0) === kind) || !(id >= 0 && id <= MAX_ID && (id | 0) === id)) refuse(event);
  let o = offset;
  b[o++] = kind;
  b[o++] = id;
  b[o++] = id >>> 8;
  b[o++] = id >>> 16;
  b[o++] = id >>> 24;
  switch (kind) {
    case WorldEventKind.join:
    case WorldEventKind.spawn: {
      const zone = event.zone;
      const x = event.x;
      const y = event.y;
      const value = kind === WorldEventKind.spawn ? event.amount : 0;
      if (
        !(zone >= 0 && zone <= MAX_ZONE && (zone | 0) === zone) ||
        !(x >= 0 && x <= MAX_COORDINATE && (x | 0) === x) ||
        !(y >= 0 && y <= MAX_COORDINATE && (y | 0) === y) ||
        !(value >= 0 && value <= MAX_VALUE && (value | 0) === value)
      ) {
        refuse(event);
      }
      b[o++] = zone;
      b[o++] = zone >>> 8;
      b[o++] = x;
      b[o++] = x >>> 8;
      b[o++] = y;
      b[o++] = y >>> 8;
      if (kind === WorldEventKind.spawn) {
        b[o++] = value;
        b[o++] = value >>> 8;
      }
      return o;
    }
    case WorldEventKind.move: {
      const x = event.x;
      const y = event.y;
      if (!(x >= -MAX_STEP && x <= MAX_STEP && (x | 0) === x) || !(y >= -MAX_STEP && y <= MAX_STEP && (y | 0) === y)) refuse(event);
      b[o++] = x;
      b[o++] = (x & 0xffff) >>> 8;
      b[o++] = y;
      b[o++] = (y & 0xffff) >>> 8;
      return o;
    }
    case WorldEventKind.rotate: {
      const angle = event.amount;
      if (!(angle >= 0 && angle <= MAX_ANGLE && (angle | 0) === angle)) refuse(event);
      b[o++] = angle;
      b[o++] = angle >>> 8;
      return o;
    }
    case WorldEventKind.shoot:
    case WorldEventKind.loot: {
      const other = event.other;
      const damage = kind === WorldEventKind.shoot ? event.amount : 0;
      if (!(other >= 0 && other <= MAX_ID && (other | 0) === other) || !(damage >= 0 && damage <= MAX_DAMAGE && (damage | 0) === damage)) refuse(event);
      b[o++] = other;
      b[o++] = other >>> 8;
      b[o++] = other >>> 16;
      b[o++] = other >>> 24;
      if (kind === WorldEventKind.shoot) b[o++] = damage;
      return o;
    }
    case WorldEventKind.leave:
      return o;
    default:
      return refuse(event);
  }
}

function decodeAt(bytes: Uint8Array, offset: number, length: number): WorldEvent {
  return decodeInto(bytes, offset, length, null);
}

/** decodeAt, into `into` when given (every field overwritten), or into a new event. */
function decodeInto(bytes: Uint8Array, offset: number, length: number, into: WorldEvent | null): WorldEvent {
  if (length < 1) throw new CodecError('empty world event');
  const kind = bytes[offset];
  const size = SIZES[kind];
  if (size === undefined) throw new CodecError(`unknown world event tag 0x${kind.toString(16).padStart(2, '0')}`);
  if (length !== size) {
    throw new CodecError(`${WORLD_EVENT_KIND_NAMES[kind]} event must be ${size} bytes, got ${length}`);
  }
  const o = offset + 1;
  // The reads are written out: decodeAt is too large for V8 to inline the helpers into it.
  const idValue = (bytes[o] | (bytes[o + 1] << 8) | (bytes[o + 2] << 16) | (bytes[o + 3] << 24)) >>> 0;
  if (idValue > WORLD_LIMITS.maxId) {
    throw new CodecError(`${WORLD_EVENT_KIND_NAMES[kind]}.${LAYOUT[kind][0].json} must be at most ${WORLD_LIMITS.maxId}, got ${idValue}`);
  }
  let other = 0;
  let zone = 0;
  let x = 0;
  let y = 0;
  let amount = 0;
  switch (kind) {
    case WorldEventKind.join:
      zone = bytes[o + 4] | (bytes[o + 5] << 8);
      x = bytes[o + 6] | (bytes[o + 7] << 8);
      y = bytes[o + 8] | (bytes[o + 9] << 8);
      break;
    case WorldEventKind.leave:
      break;
    case WorldEventKind.move:
      x = ((bytes[o + 4] | (bytes[o + 5] << 8)) << 16) >> 16;
      y = ((bytes[o + 6] | (bytes[o + 7] << 8)) << 16) >> 16;
      if (x < -WORLD_LIMITS.maxStep || y < -WORLD_LIMITS.maxStep) throw new CodecError(`move step below -${WORLD_LIMITS.maxStep}`);
      break;
    case WorldEventKind.rotate:
      amount = bytes[o + 4] | (bytes[o + 5] << 8);
      break;
    case WorldEventKind.shoot:
      other = (bytes[o + 4] | (bytes[o + 5] << 8) | (bytes[o + 6] << 16) | (bytes[o + 7] << 24)) >>> 0;
      amount = bytes[o + 8];
      break;
    case WorldEventKind.loot:
      other = (bytes[o + 4] | (bytes[o + 5] << 8) | (bytes[o + 6] << 16) | (bytes[o + 7] << 24)) >>> 0;
      break;
    case WorldEventKind.spawn:
      zone = bytes[o + 4] | (bytes[o + 5] << 8);
      x = bytes[o + 6] | (bytes[o + 7] << 8);
      y = bytes[o + 8] | (bytes[o + 9] << 8);
      amount = bytes[o + 10] | (bytes[o + 11] << 8);
      break;
  }
  if (other > WORLD_LIMITS.maxId) {
    throw new CodecError(`${WORLD_EVENT_KIND_NAMES[kind]}.${LAYOUT[kind][1].json} must be at most ${WORLD_LIMITS.maxId}, got ${other}`);
  }
  if (into === null) return { kind: kind as WorldEventKind, id: idValue, other, zone, x, y, amount };
  into.kind = kind as WorldEventKind;
  into.id = idValue;
  into.other = other;
  into.zone = zone;
  into.x = x;
  into.y = y;
  into.amount = amount;
  return into;
}

function toJSON(event: WorldEvent): JsonEvent {
  const fields = LAYOUT[event.kind];
  if (fields === undefined) throw new CodecError(`unknown world event kind ${event.kind}`);
  const payload: Record<string, number> = {};
  for (const spec of fields) payload[spec.json] = event[spec.field];
  return { type: WORLD_EVENT_KIND_NAMES[event.kind], payload };
}

/** Payload field `spec` of a JSON event of `kind`: present, a number, in range. */
function jsonField(kind: WorldEventKind, spec: FieldSpec, value: unknown): number {
  if (typeof value !== 'number') {
    const type = WORLD_EVENT_KIND_NAMES[kind];
    if (value === undefined) throw new CodecError(`${type} payload is missing field "${spec.json}"`);
    throw new CodecError(`${type}.${spec.json} must be a number, got ${typeof value}`);
  }
  checkRange(kind, spec, value);
  return value;
}

// On the NDJSON recording hot path, like encode: fields read by name per kind. The names are
// LAYOUT's (the codec tests round-trip every kind, which holds the two together).
function fromJSON(json: JsonEvent): WorldEvent {
  const kind = KIND_BY_NAME.get(json.type);
  if (kind === undefined) {
    throw new CodecError(`unknown world event type ${JSON.stringify(json.type)}; expected one of ${WORLD_EVENT_KIND_NAMES.join(', ')}`);
  }
  const payload = json.payload;
  if (payload === null || typeof payload !== 'object' || Array.isArray(payload)) {
    throw new CodecError(`${json.type} payload must be an object`);
  }
  const p = payload as Record<string, unknown>;
  const fields = LAYOUT[kind];
  const event: WorldEvent = { kind, id: 0, other: 0, zone: 0, x: 0, y: 0, amount: 0 };
  switch (kind) {
    case WorldEventKind.join:
      event.id = jsonField(kind, fields[0], p.player);
      event.zone = jsonField(kind, fields[1], p.zone);
      event.x = jsonField(kind, fields[2], p.x);
      event.y = jsonField(kind, fields[3], p.y);
      break;
    case WorldEventKind.leave:
      event.id = jsonField(kind, fields[0], p.player);
      break;
    case WorldEventKind.move:
      event.id = jsonField(kind, fields[0], p.player);
      event.x = jsonField(kind, fields[1], p.dx);
      event.y = jsonField(kind, fields[2], p.dy);
      break;
    case WorldEventKind.rotate:
      event.id = jsonField(kind, fields[0], p.player);
      event.amount = jsonField(kind, fields[1], p.angle);
      break;
    case WorldEventKind.shoot:
      event.id = jsonField(kind, fields[0], p.player);
      event.other = jsonField(kind, fields[1], p.target);
      event.amount = jsonField(kind, fields[2], p.damage);
      break;
    case WorldEventKind.loot:
      event.id = jsonField(kind, fields[0], p.player);
      event.other = jsonField(kind, fields[1], p.treasure);
      break;
    case WorldEventKind.spawn:
      event.id = jsonField(kind, fields[0], p.treasure);
      event.zone = jsonField(kind, fields[1], p.zone);
      event.x = jsonField(kind, fields[2], p.x);
      event.y = jsonField(kind, fields[3], p.y);
      event.amount = jsonField(kind, fields[4], p.value);
      break;
  }
  // Every expected field was found above, so any extra key is unknown.
  let count = 0;
  for (const key in p) if (Object.hasOwn(p, key)) count++;
  if (count !== fields.length) {
    const unknown = Object.keys(p).find((key) => !fields.some((f) => f.json === key));
    throw new CodecError(`${json.type} payload has unknown field "${unknown}"; expected ${fields.map((f) => f.json).join(', ')}`);
  }
  return event;
}

export const worldCodec: EventCodec<WorldEvent> = {
  name: 'world-binary/1',
  encode,
  decode: (bytes) => decodeAt(bytes, 0, bytes.length),
  decodeAt,
  decodeInto,
  encodedLength,
  encodeInto,
  toJSON,
  fromJSON,
};
