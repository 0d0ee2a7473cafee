// Kafka over TLS and SASL against a real broker: a second single-node broker started by
// scripts/kafka/broker.sh with a SASL_SSL listener, its certificate made here with openssl and
// its SCRAM users created with Kafka's own ConfigCommand from the same jars. Needs the jars the
// main broker fetched (scripts/kafka/broker.sh start), java and openssl: in CI they are there
// and the tests must run; locally they skip with a message when something is missing.

import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Kafka, logLevel } from 'kafkajs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { REPO, tapedeck, tempDir } from '../support/cli.js';
import { createTopicsSettled } from '../support/kafka.js';

const LIBS = join(REPO, '.kafka', 'libs');
const PORT = 29192; // plaintext (setup only); the controller takes 29193
const SECURE = `127.0.0.1:${PORT + 2}`;
const TOPIC = 'secure-events';
const SCRAM_USER = 'capture';
const PLAIN_USER = 'plainuser';
// Distinctive, so that a grep for them over every output and file means something.
const SCRAM_PASSWORD = `scram-${process.pid}-Zq8LxW`;
const PLAIN_PASSWORD = `plain-${process.pid}-Vt3KpR`;

const dir = tempDir('tapedeck-secure-');
const brokerEnv = {
  TAPEDECK_KAFKA_DIR: join(dir, 'kafka'),
  TAPEDECK_KAFKA_LIBS: LIBS,
  TAPEDECK_KAFKA_PORT: String(PORT),
  TAPEDECK_KAFKA_HEAP: '512m',
  TAPEDECK_KAFKA_SASL_SSL_PORT: String(PORT + 2),
  TAPEDECK_KAFKA_TLS_KEYSTORE: join(dir, 'tls', 'broker-keystore.pem'),
  TAPEDECK_KAFKA_PLAIN_USER: PLAIN_USER,
  TAPEDECK_KAFKA_PLAIN_PASSWORD: PLAIN_PASSWORD,
};

function prerequisites(): string | null {
  if (!existsSync(join(LIBS, '.complete-3.9.1'))) return `no Kafka jars in ${LIBS} (run scripts/kafka/broker.sh start once)`;
  for (const tool of ['java', 'openssl']) if (spawnSync('sh', ['-c', `command -v ${tool}`]).status !== 0) return `${tool} is not installed`;
  return null;
}
const missing = prerequisites();
if (missing !== null) {
  if (process.env.CI) throw new Error(`the secure Kafka tests must run in CI: ${missing}`);
  console.warn(`\n*** SKIPPING secure Kafka tests: ${missing} ***\n`);
}
const run = missing === null ? describe : describe.skip;

function openssl(args: string[], cwd: string): void {
  execFileSync('openssl', args, { cwd, stdio: 'pipe' });
}

/** A CA, a broker certificate for 127.0.0.1 signed by it, and an unrelated CA. */
function makeCertificates(): void {
  const tls = join(dir, 'tls');
  execFileSync('mkdir', ['-p', tls]);
  openssl(['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', 'ca.key', '-out', 'ca.pem', '-days', '2', '-subj', '/CN=tapedeck test CA'], tls);
  openssl(['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', 'other.key', '-out', 'other-ca.pem', '-days', '2', '-subj', '/CN=someone else'], tls);
  openssl(['req', '-newkey', 'rsa:2048', '-nodes', '-keyout', 'broker.key', '-out', 'broker.csr', '-subj', '/CN=127.0.0.1'], tls);
  writeFileSync(join(tls, 'san.ext'), 'subjectAltName=IP:127.0.0.1,DNS:localhost\n');
  openssl(['x509', '-req', '-in', 'broker.csr', '-CA', 'ca.pem', '-CAkey', 'ca.key', '-CAcreateserial', '-out', 'broker.pem', '-days', '2', '-extfile', 'san.ext'], tls);
  openssl(['pkcs8', '-topk8', '-nocrypt', '-in', 'broker.key', '-out', 'broker.pk8'], tls);
  writeFileSync(join(tls, 'broker-keystore.pem'), readFileSync(join(tls, 'broker.pk8'), 'utf8') + readFileSync(join(tls, 'broker.pem'), 'utf8'));
}

function broker(command: string, extraEnv: Record<string, string> = {}, arg?: string): void {
  const r = spawnSync(join(REPO, 'scripts/kafka/broker.sh'), arg === undefined ? [command] : [command, arg], { env: { ...process.env, ...brokerEnv, ...extraEnv }, encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`broker.sh ${command} failed: ${r.stderr}`);
}

/** Every output and file of a run, to search for secrets. */
const seen: string[] = [];
function cli(args: string[], env: Record<string, string> = {}) {
  const r = tapedeck(args, { env, cwd: dir });
  seen.push(r.stdout, r.stderr);
  return r;
}

run('Kafka over SASL_SSL (real broker)', () => {
  beforeAll(async () => {
    makeCertificates();
    broker('start');
    broker('add-scram-user', { TAPEDECK_KAFKA_SCRAM_PASSWORD: SCRAM_PASSWORD }, SCRAM_USER);
    const kafka = new Kafka({ clientId: 'secure-setup', brokers: [`127.0.0.1:${PORT}`], logLevel: logLevel.NOTHING });
    const admin = kafka.admin();
    await admin.connect();
    await createTopicsSettled(admin, [{ topic: TOPIC, numPartitions: 3 }, { topic: `${TOPIC}-out`, numPartitions: 3 }]);
    await admin.disconnect();
    const producer = kafka.producer();
    await producer.connect();
    await producer.send({
      topic: TOPIC,
      messages: Array.from({ length: 300 }, (_, i) => ({ key: String(i % 17), value: JSON.stringify({ type: 'join', payload: { player: i, zone: i % 4, x: i % 64, y: 7 } }) })),
    });
    await producer.disconnect();
  }, 180_000);

  afterAll(() => {
    if (missing === null) broker('stop');
  });

  const tls = (name: string) => join(dir, 'tls', name);
  const capture = ['record', '--source', 'kafka', '--brokers', SECURE, '--topic', TOPIC, '--from-beginning', '--until-caught-up'];

  it('records over SCRAM-SHA-256 and SCRAM-SHA-512 with the CA given, the password from the environment', () => {
    for (const mechanism of ['scram-sha-256', 'scram-sha-512']) {
      const out = join(dir, `${mechanism}.tape`);
      const r = cli([...capture, '--out', out, '--ca', tls('ca.pem'), '--sasl-mechanism', mechanism, '--sasl-username', SCRAM_USER, '--json'], { TAPEDECK_KAFKA_PASSWORD: SCRAM_PASSWORD });
      expect(r.status, r.stderr).toBe(0);
      // The consumer runs on the reader thread: the TLS and SASL settings are handed to it.
      expect(r.json<{ events: number; pipelined: boolean }>()).toMatchObject({ events: 300, pipelined: true });
      const source = cli(['inspect', out, '--json']).json<{ source: Record<string, unknown> }>().source;
      expect(source).toMatchObject({ brokers: [SECURE], topics: [TOPIC], security: { tls: true, verify: true, sasl: mechanism } });
    }
  });

  it('records over SASL/PLAIN with everything in a Kafka-style properties file, and republishes the tape over SASL_SSL', () => {
    const config = join(dir, 'client.properties');
    writeFileSync(config, `# client settings\nsecurity.protocol=SASL_SSL\nssl.ca.location=${tls('ca.pem')}\nsasl.mechanism=PLAIN\nsasl.username=${PLAIN_USER}\nsasl.password=${PLAIN_PASSWORD}\n`);
    const out = join(dir, 'plain.tape');
    const r = cli([...capture, '--out', out, '--kafka-config', config]);
    expect(r.status, r.stderr).toBe(0);
    const json = join(dir, 'client.json');
    writeFileSync(json, JSON.stringify({ 'security.protocol': 'SASL_SSL', 'ssl.ca.location': tls('ca.pem'), 'sasl.mechanism': 'SCRAM-SHA-512', 'sasl.username': SCRAM_USER, 'sasl.password': SCRAM_PASSWORD }));
    const back = cli(['replay', out, '--to-kafka', '--brokers', SECURE, '--topic', `${TOPIC}-out`, '--kafka-config', json, '--json']);
    expect(back.status, back.stderr).toBe(0);
    expect(back.json<{ events: number }>().events).toBe(300);
  });

  it('fails with a clear error, exit 2 and no tape for wrong credentials, an untrusted certificate, and a plaintext client on the TLS port', () => {
    const cases: [string, string[], Record<string, string>, RegExp][] = [
      ['wrong password', ['--ca', tls('ca.pem'), '--sasl-mechanism', 'scram-sha-256', '--sasl-username', SCRAM_USER], { TAPEDECK_KAFKA_PASSWORD: `${SCRAM_PASSWORD}-wrong` }, /E_KAFKA_AUTH.*refused the credentials \(SCRAM.*authentication failed\)/],
      ['unknown user', ['--ca', tls('ca.pem'), '--sasl-mechanism', 'scram-sha-512', '--sasl-username', 'nobody'], { TAPEDECK_KAFKA_PASSWORD: SCRAM_PASSWORD }, /E_KAFKA_AUTH.*refused the credentials/],
      ['untrusted certificate', ['--ca', tls('other-ca.pem'), '--sasl-mechanism', 'scram-sha-256', '--sasl-username', SCRAM_USER], { TAPEDECK_KAFKA_PASSWORD: SCRAM_PASSWORD }, /E_KAFKA_TLS.*certificate of Kafka at 127\.0\.0\.1:\d+ is not trusted.*--ca FILE/],
      ['plaintext client', [], {}, /E_KAFKA_CONNECT.*closed the connection or did not answer: if that port is a TLS or SASL listener, connect with --tls/],
    ];
    for (const [name, args, env, message] of cases) {
      const out = join(dir, `fail-${name.replace(/ /g, '-')}.tape`);
      const r = cli([...capture, '--out', out, ...args], env);
      expect(r.status, `${name}: ${r.stderr}`).toBe(2);
      expect(r.stderr, name).toMatch(message);
      expect(existsSync(out), `${name}: no tape`).toBe(false);
    }
  });

  it('warns loudly when verification is turned off, and records', () => {
    const r = cli([...capture, '--out', join(dir, 'insecure.tape'), '--insecure-skip-verify', '--sasl-mechanism', 'scram-sha-256', '--sasl-username', SCRAM_USER], { TAPEDECK_KAFKA_PASSWORD: SCRAM_PASSWORD });
    expect(r.status, r.stderr).toBe(0);
    expect(r.stderr).toMatch(/WARNING: TLS certificate verification is OFF/);
  });

  it('never shows or stores a password: outputs, tapes and logs are searched for both', () => {
    const files = readdirSync(dir).filter((f) => f.endsWith('.tape') || f.endsWith('-wal')).map((f) => readFileSync(join(dir, f)));
    expect(files.length).toBeGreaterThanOrEqual(4);
    for (const secret of [SCRAM_PASSWORD, PLAIN_PASSWORD]) {
      for (const text of seen) expect(text.includes(secret)).toBe(false);
      for (const bytes of files) expect(bytes.includes(secret)).toBe(false);
    }
  });
});
