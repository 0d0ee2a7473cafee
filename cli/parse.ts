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

/** A duration: a number with a unit, ms, s, m or h ("1500ms", "30s", "5m"); returns milliseconds. */
export function durationMs(name: string): (value: string) => number {
  return (value) => {
    const m = /^(\d+(?:\.\d+)?)(ms|s|m|h)$/.exec(value.trim());
    if (m !== null) {
      const ms = Number(m[1]) * { ms: 1, s: 1000, m: 60_000, h: 3_600_000 }[m[2] as 'ms' | 's' | 'm' | 'h'];
      if (ms > 0 && Number.isFinite(ms)) return ms;
    }
    throw new InvalidArgumentError(`${name} must be a duration such as 1500ms, 30s, 5m or 2h, got "${value}"`);
  };
}

/** A repeatable option: each use adds its value to the list. */
export function collect(value: string, previous: string[] | undefined): string[] {
  return [...(previous ?? []), value];
}

/** A comma-separated list of HOST:PORT addresses. */
export function hostPorts(name: string): (value: string) => string[] {
  return (value) => {
    const list = value.split(',').map((s) => s.trim()).filter((s) => s !== '');
    for (const hp of list) {
      const m = /^(.+):(\d{1,5})$/.exec(hp);
      if (m === null || Number(m[2]) < 1 || Number(m[2]) > 65535) throw new InvalidArgumentError(`${name} must be HOST:PORT[,HOST:PORT...], got "${value}"`);
    }
    if (list.length === 0) throw new InvalidArgumentError(`${name} must be HOST:PORT[,HOST:PORT...], got "${value}"`);
    return list;
  };
}

/** The command-line spelling of an option's camelCase name: "fromTime" -> "--from-time". */
export function flagName(option: string): string {
  return `--${option.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`)}`;
}
