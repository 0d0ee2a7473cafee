// Option parsers for commander: each names its option in the error, so a user sees
// "--events must be a positive integer, got "ten"" rather than NaN somewhere later.

import { InvalidArgumentError } from 'commander';

export function positiveInt(name: string): (value: string) => number {
  return (value) => {
    const n = Number(value.replace(/_/g, ''));
    if (!Number.isSafeInteger(n) || n < 1) throw new InvalidArgumentError(`${name} must be a positive integer, got "${value}"`);
    return n;
  };
}

export function nonNegativeInt(name: string): (value: string) => number {
  return (value) => {
    const n = Number(value.replace(/_/g, ''));
    if (!Number.isSafeInteger(n) || n < 0) throw new InvalidArgumentError(`${name} must be a non-negative integer, got "${value}"`);
    return n;
  };
}

export function positiveNumber(name: string): (value: string) => number {
  return (value) => {
    const n = Number(value.replace(/_/g, ''));
    if (!Number.isFinite(n) || n <= 0) throw new InvalidArgumentError(`${name} must be a positive number, got "${value}"`);
    return n;
  };
}

export function oneOf<T extends string>(name: string, choices: readonly T[]): (value: string) => T {
  return (value) => {
    if (!(choices as readonly string[]).includes(value)) {
      throw new InvalidArgumentError(`${name} must be one of ${choices.join(', ')}, got "${value}"`);
    }
    return value as T;
  };
}

/** A point in time: microseconds since the epoch (digits), or an ISO 8601 date-time. */
export function timeUs(name: string): (value: string) => number {
  return (value) => {
    if (/^\d+$/.test(value)) {
      const n = Number(value);
      if (Number.isSafeInteger(n)) return n;
    } else {
      const ms = Date.parse(value);
      if (Number.isFinite(ms)) return ms * 1000;
    }
    throw new InvalidArgumentError(`${name} must be microseconds since the epoch or an ISO date-time such as 2026-01-01T00:00:01.5Z, got "${value}"`);
  };
}
