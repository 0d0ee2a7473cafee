// How tapedeck talks to a secured Kafka cluster: TLS (a CA file, a client certificate and key
// for mutual TLS, or, loudly, no verification for test clusters) and SASL (PLAIN,
// SCRAM-SHA-256, SCRAM-SHA-512). From flags, and from a config file in the style of the
// Kafka clients users already have (Java properties, or JSON with the same keys), so that
// secrets need not appear on the command line; the password may also come from the
// environment (TAPEDECK_KAFKA_PASSWORD). Secrets never reach logs, errors, --json output or
// tapes: the tape's metadata records only whether TLS and which SASL mechanism were used.
//
// Config keys (librdkafka/kcat names): security.protocol (PLAINTEXT, SSL, SASL_PLAINTEXT,
// SASL_SSL), ssl.ca.location, ssl.certificate.location, ssl.key.location, ssl.key.password,
// enable.ssl.certificate.verification (false: no verification), sasl.mechanism (or
// sasl.mechanisms: PLAIN, SCRAM-SHA-256, SCRAM-SHA-512), sasl.username, sasl.password.

import { readFileSync } from 'node:fs';
import type { ConnectionOptions } from 'node:tls';
import { Command } from 'commander';
import type { SASLOptions } from 'kafkajs';
import { TapedeckError } from '../engine/errors.js';

export const PASSWORD_ENV = 'TAPEDECK_KAFKA_PASSWORD';
const MECHANISMS = ['plain', 'scram-sha-256', 'scram-sha-512'] as const;
type Mechanism = (typeof MECHANISMS)[number];
const KNOWN_KEYS = [
  'security.protocol',
  'ssl.ca.location',
  'ssl.certificate.location',
  'ssl.key.location',
  'ssl.key.password',
  'enable.ssl.certificate.verification',
  'sasl.mechanism',
  'sasl.mechanisms',
  'sasl.username',
  'sasl.password',
];

/** What kafkajs needs (spread into its client's config), and what may be said about it (in reports and tapes). */
export interface KafkaSecurity {
  readonly client: { readonly ssl?: ConnectionOptions; readonly sasl?: SASLOptions };
  /** Safe to print and store: no secret. */
  readonly summary: { readonly tls: boolean; readonly verify: boolean; readonly sasl: Mechanism | null };
}

export interface KafkaSecurityFlags {
  kafkaConfig?: string;
  tls?: boolean;
  ca?: string;
  cert?: string;
  key?: string;
  insecureSkipVerify?: boolean;
  saslMechanism?: string;
  saslUsername?: string;
}

/** Every secret seen, so that error output can be scrubbed of them (see scrubSecrets). */
const secrets = new Set<string>();

export function scrubSecrets(text: string): string {
  let out = text;
  for (const s of secrets) if (s.length >= 3) out = out.split(s).join('***');
  return out;
}

export function addKafkaSecurityOptions(command: Command): Command {
  return command
    .option('--kafka-config <file>', 'Kafka client settings (Java properties or JSON): security.protocol, ssl.ca.location, sasl.mechanism, sasl.username, sasl.password, ... (docs/kafka-security.md)')
    .option('--tls', 'connect with TLS (verifying the broker against the system CAs, or --ca)')
    .option('--ca <file>', 'TLS: the CA certificate(s) to trust, PEM (implies --tls)')
    .option('--cert <file>', 'TLS: client certificate, PEM, for mutual TLS (with --key)')
    .option('--key <file>', 'TLS: client private key, PEM')
    .option('--insecure-skip-verify', "TLS: do NOT verify the broker's certificate (test clusters only; warned loudly)")
    .option('--sasl-mechanism <name>', 'SASL: plain, scram-sha-256 or scram-sha-512; the password from $TAPEDECK_KAFKA_PASSWORD or sasl.password in --kafka-config')
    .option('--sasl-username <name>', 'SASL: the user');
}

function readConfig(path: string): Record<string, string> {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (error) {
    throw new TapedeckError('E_USAGE', `--kafka-config ${path}: cannot read it: ${(error as Error).message}`);
  }
  const out: Record<string, string> = {};
  if (text.trimStart().startsWith('{')) {
    let json: unknown;
    try {
      json = JSON.parse(text);
    } catch (error) {
      throw new TapedeckError('E_USAGE', `--kafka-config ${path}: not valid JSON (${(error as Error).message.split(',')[0]})`);
    }
    for (const [k, v] of Object.entries(json as Record<string, unknown>)) out[k] = String(v);
  } else {
    text.split(/\r?\n/).forEach((raw, i) => {
      const lineText = raw.trim();
      if (lineText === '' || lineText.startsWith('#') || lineText.startsWith('!')) return;
      const m = /^([^=:\s]+)\s*[=:]\s*(.*)$/.exec(lineText);
      if (m === null) throw new TapedeckError('E_USAGE', `--kafka-config ${path} line ${i + 1}: expected key=value`);
      out[m[1]] = m[2];
    });
  }
  for (const k of Object.keys(out)) {
    if (!KNOWN_KEYS.includes(k)) throw new TapedeckError('E_USAGE', `--kafka-config ${path}: unknown setting "${k}"; known: ${KNOWN_KEYS.join(', ')}`);
  }
  return out;
}

function readPem(path: string, what: string): Buffer {
  try {
    return readFileSync(path);
  } catch (error) {
    throw new TapedeckError('E_USAGE', `${what} ${path}: cannot read it: ${(error as Error).message}`);
  }
}

/** The security settings from flags over the config file over the environment; null for a plaintext, unauthenticated connection. */
export function kafkaSecurityFrom(flags: KafkaSecurityFlags, warn: (message: string) => void): KafkaSecurity {
  const config = flags.kafkaConfig === undefined ? {} : readConfig(flags.kafkaConfig);
  const protocol = (config['security.protocol'] ?? '').toUpperCase();
  if (protocol !== '' && !['PLAINTEXT', 'SSL', 'SASL_PLAINTEXT', 'SASL_SSL'].includes(protocol)) {
    throw new TapedeckError('E_USAGE', `security.protocol must be PLAINTEXT, SSL, SASL_PLAINTEXT or SASL_SSL, got "${config['security.protocol']}"`);
  }
  const ca = flags.ca ?? config['ssl.ca.location'];
  const cert = flags.cert ?? config['ssl.certificate.location'];
  const key = flags.key ?? config['ssl.key.location'];
  const skipVerify = flags.insecureSkipVerify === true || config['enable.ssl.certificate.verification'] === 'false';
  const tls = flags.tls === true || protocol === 'SSL' || protocol === 'SASL_SSL' || ca !== undefined || cert !== undefined || skipVerify;
  if ((cert === undefined) !== (key === undefined)) throw new TapedeckError('E_USAGE', 'mutual TLS needs both a client certificate (--cert) and its key (--key)');
  const keyPassword = config['ssl.key.password'];
  if (keyPassword !== undefined) secrets.add(keyPassword);
  let ssl: ConnectionOptions | undefined;
  if (tls) {
    if (skipVerify) warn("WARNING: TLS certificate verification is OFF (--insecure-skip-verify): anyone on the path can impersonate the broker. Use this against test clusters only.");
    ssl = {
      rejectUnauthorized: !skipVerify,
      ...(ca === undefined ? {} : { ca: [readPem(ca, '--ca')] }),
      ...(cert === undefined ? {} : { cert: readPem(cert, '--cert'), key: readPem(key!, '--key') }),
      ...(keyPassword === undefined ? {} : { passphrase: keyPassword }),
    };
  }
  const mechanismText = (flags.saslMechanism ?? config['sasl.mechanism'] ?? config['sasl.mechanisms'])?.toLowerCase();
  const wantsSasl = mechanismText !== undefined || protocol === 'SASL_SSL' || protocol === 'SASL_PLAINTEXT';
  let sasl: SASLOptions | undefined;
  let mechanism: Mechanism | null = null;
  if (wantsSasl) {
    if (mechanismText === undefined || !(MECHANISMS as readonly string[]).includes(mechanismText)) {
      throw new TapedeckError('E_USAGE', `SASL needs a mechanism: --sasl-mechanism (or sasl.mechanism) ${MECHANISMS.join(', ')}${mechanismText === undefined ? '' : `; got "${mechanismText}"`}`);
    }
    mechanism = mechanismText as Mechanism;
    const username = flags.saslUsername ?? config['sasl.username'];
    const password = config['sasl.password'] ?? process.env[PASSWORD_ENV];
    if (username === undefined || username === '') throw new TapedeckError('E_USAGE', 'SASL needs a user: --sasl-username (or sasl.username in --kafka-config)');
    if (password === undefined || password === '') {
      throw new TapedeckError('E_USAGE', `SASL needs a password: sasl.password in --kafka-config, or the environment variable ${PASSWORD_ENV} (never on the command line)`);
    }
    secrets.add(password);
    sasl = { mechanism, username, password } as SASLOptions;
  }
  return { client: { ...(ssl === undefined ? {} : { ssl }), ...(sasl === undefined ? {} : { sasl }) }, summary: { tls, verify: tls && !skipVerify, sasl: mechanism } };
}

/** True when any security option was given (so that commands without Kafka can refuse them). */
export function anyKafkaSecurityFlag(flags: KafkaSecurityFlags): boolean {
  return (['kafkaConfig', 'tls', 'ca', 'cert', 'key', 'insecureSkipVerify', 'saslMechanism', 'saslUsername'] as const).some((k) => flags[k] !== undefined);
}

const TLS_TRUST_CODES = new Set([
  'SELF_SIGNED_CERT_IN_CHAIN',
  'DEPTH_ZERO_SELF_SIGNED_CERT',
  'UNABLE_TO_VERIFY_LEAF_SIGNATURE',
  'UNABLE_TO_GET_ISSUER_CERT_LOCALLY',
  'UNABLE_TO_GET_ISSUER_CERT',
  'CERT_HAS_EXPIRED',
  'CERT_UNTRUSTED',
  'ERR_TLS_CERT_ALTNAME_INVALID',
]);

function causes(error: unknown): { name: string; message: string; code: string }[] {
  const out: { name: string; message: string; code: string }[] = [];
  let e = error as { name?: string; message?: string; code?: string; cause?: unknown; originalError?: unknown } | undefined;
  for (let depth = 0; e !== undefined && e !== null && depth < 8; depth++) {
    out.push({ name: String(e.name ?? ''), message: String(e.message ?? ''), code: String(e.code ?? '') });
    e = (e.cause ?? e.originalError) as typeof e;
  }
  return out;
}

/**
 * A Kafka connection failure said in the user's terms: wrong credentials, an untrusted
 * certificate, a plaintext client on a TLS port. Returns null when the error is none of these.
 */
export function explainKafkaFailure(error: unknown): TapedeckError | null {
  if (!(error instanceof TapedeckError) || !error.code.startsWith('E_KAFKA')) return null;
  const chain = causes(error.cause);
  const text = chain.map((c) => `${c.name} ${c.code} ${c.message}`).join(' | ');
  const where = /at ([^:]+:\d+(,[^:]+:\d+)*)/.exec(error.message)?.[1] ?? 'the brokers';
  if (/SASL|authentication failed|Authentication failed|SaslAuthenticate/i.test(text)) {
    const mechanism = /(PLAIN|SCRAM[- _]SHA[- _]?(256|512))/i.exec(text)?.[0] ?? 'SASL';
    return new TapedeckError('E_KAFKA_AUTH', `Kafka at ${where} refused the credentials (${mechanism} authentication failed): check --sasl-username and the password (sasl.password or $${PASSWORD_ENV}), and --sasl-mechanism`, { cause: error });
  }
  const tlsCode = chain.find((c) => TLS_TRUST_CODES.has(c.code))?.code ?? (/self[- ]signed certificate|unable to verify|certificate/i.test(text) ? 'certificate not trusted' : null);
  if (tlsCode !== null) {
    return new TapedeckError('E_KAFKA_TLS', `the TLS certificate of Kafka at ${where} is not trusted (${tlsCode}): give the CA that signed it with --ca FILE (or ssl.ca.location)`, { cause: error });
  }
  if (/wrong version number|packet length too long|ssl3_get_record|EPROTO/i.test(text)) {
    return new TapedeckError('E_KAFKA_TLS', `Kafka at ${where} does not speak TLS on that port: drop --tls (or use its TLS listener's port)`, { cause: error });
  }
  if (/Closed connection|Connection closed|ECONNRESET|socket hang up|Connection timeout|KafkaJSConnectionClosedError|Request .* timed out/i.test(text)) {
    return new TapedeckError(
      'E_KAFKA_CONNECT',
      `Kafka at ${where} closed the connection or did not answer: if that port is a TLS or SASL listener, connect with --tls (and --sasl-mechanism), or use its plaintext port; ${error.message}`,
      { cause: error },
    );
  }
  return null;
}
