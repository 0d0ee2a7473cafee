// Private tapes: redaction before anything reaches the tape, owner-only files whatever the
// umask, and strings from a tape shown inert in terminals and in the HTML report.

import { chmodSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { chromium } from 'playwright-core';
import { describe, expect, it } from 'vitest';
import { CHROMIUM, CHROMIUM_ARGS, chromiumAvailable } from '../support/chromium.js';
import { REPO, tapedeck, tempDir } from '../support/cli.js';

const KV = join(REPO, 'fixtures/engines/kv-lww.mjs');
const T0 = 1_767_225_600_000_000;

/** Every byte of a tape and its -wal/-shm files. */
function tapeBytes(dir: string, name: string): Buffer {
  return Buffer.concat(readdirSync(dir).filter((f) => f.startsWith(name)).map((f) => readFileSync(join(dir, f))));
}

function put(i: number, payload: Record<string, unknown>, extra: Record<string, unknown> = {}): string {
  return JSON.stringify({ timestampUs: T0 + i * 100, partition: i % 2, key: `user-${i}@example.com`, type: 'put', payload: { k: 'abcd'[i % 4], ver: i, v: i % 10, ...payload }, ...extra });
}

describe('redaction at record time', () => {
  it('removes redacted fields from every byte of the tape, hashes with a key it never stores, and lists the rules', () => {
    const dir = tempDir();
    const input = join(dir, 'in.ndjson');
    const cards = ['4000-0000-0000-0002', '5500-0000-0000-0004', '4000-0000-0000-0002'];
    const lines = cards.map((card, i) => put(i, { email: `secret-${i}@example.com`, card, tags: [{ ssn: `123-45-678${i}` }] }));
    lines.push(put(3, { email: 'secret-3@example.com', card: 'x' }, { bogus: true })); // rejected after parsing
    lines.push('{"timestampUs": 1, "payload": {"email": "secret-4@example.com"'); // does not parse
    writeFileSync(input, lines.join('\n') + '\n');
    const tape = join(dir, 't.tape');
    const key = join(dir, 'hash.key');
    writeFileSync(key, 'k3y-that-must-not-leak');
    const args = ['record', '--source', 'ndjson', '--input', input, '--out', tape, '--engine', KV, '--quarantine', '--redact', 'payload.email', '--redact', 'payload.tags.*.ssn', '--hash', 'payload.card', '--hash', 'key', '--hash-key-file', key];
    const r = tapedeck([...args, '--quarantine-raw', 'off', '--json']);
    expect(r.status, r.stderr).toBe(0);
    const bytes = tapeBytes(dir, 't.tape');
    for (const secret of ['secret-', '@example.com', '123-45-678', '4000-0000', 'k3y-that-must-not-leak']) expect(bytes.includes(secret), secret).toBe(false);
    const events = tapedeck(['export', tape, '--engine', KV]).stdout.trim().split('\n').map((l) => JSON.parse(l) as { key: string; payload: { card: string; email?: string; tags: unknown[] } });
    expect(events).toHaveLength(3);
    // Equal inputs, equal hashes; different inputs, different hashes.
    expect(events[0].payload.card).toBe(events[2].payload.card);
    expect(events[0].payload.card).not.toBe(events[1].payload.card);
    expect(events[0].payload.card).toMatch(/^hmac:[0-9a-f]{32}$/);
    expect(new Set(events.map((e) => e.key)).size).toBe(3);
    expect(events[0].payload.email).toBeUndefined();
    expect(events[0].payload.tags).toEqual([{}]);
    const inspect = tapedeck(['inspect', tape, '--json']).json<{ source: { redaction: unknown }; rejects: number }>();
    expect(inspect.source.redaction).toEqual({ redacted: ['payload.email', 'payload.tags.*.ssn'], hashed: ['payload.card', 'key'], hash: 'hmac-sha256/128' });
    expect(inspect.rejects).toBe(2);
    // Rejected lines that parse are kept redacted; the one that does not is kept raw unless --quarantine-raw off.
    const kept = join(dir, 'kept.tape');
    expect(tapedeck([...args.map((a) => (a === tape ? kept : a))]).status).toBe(0);
    const keptBytes = tapeBytes(dir, 'kept.tape');
    expect(keptBytes.includes('secret-3@example.com')).toBe(false);
    expect(keptBytes.includes('"bogus":true')).toBe(true);
    expect(keptBytes.includes('secret-4@example.com')).toBe(true);
    // Without a key, --hash is refused before anything is written.
    const nokey = tapedeck(['record', '--source', 'ndjson', '--input', input, '--out', join(dir, 'nokey.tape'), '--engine', KV, '--hash', 'payload.card'], { env: { TAPEDECK_HASH_KEY: '' } });
    expect(nokey.status).toBe(2);
    expect(nokey.stderr).toMatch(/--hash needs a key: --hash-key-file FILE, or the environment variable TAPEDECK_HASH_KEY/);
    // The key may come from the environment; the same key gives the same hashes.
    const envTape = join(dir, 'env.tape');
    expect(tapedeck(['record', '--source', 'ndjson', '--input', input, '--out', envTape, '--engine', KV, '--quarantine', '--hash', 'payload.card'], { env: { TAPEDECK_HASH_KEY: 'k3y-that-must-not-leak' } }).status).toBe(0);
    expect(JSON.parse(tapedeck(['export', envTape, '--engine', KV]).stdout.split('\n')[0]).payload.card).toBe(events[0].payload.card);
  });
});

describe('private files', () => {
  it('creates every file owner-only (0600) under a permissive umask, and inspect warns about a tape others can read', () => {
    const dir = tempDir();
    const umask = '000';
    const tape = join(dir, 'a.tape');
    expect(tapedeck(['record', '--events', '20000', '--out', tape], { umask }).status).toBe(0);
    expect(tapedeck(['export', tape, '--out', join(dir, 'a.ndjson')], { umask }).status).toBe(0);
    expect(tapedeck(['replay', tape, '--service-time', 'exp:1us', '--report', join(dir, 'r.html')], { umask }).status).toBe(0);
    expect(tapedeck(['rehearse', tape, '--service-time', 'exp:1us', '--speeds', '1', '--report', join(dir, 'r.json')], { umask }).status).toBe(0);
    expect(tapedeck(['replay', tape, '--save-service-times', join(dir, 'service.json')], { umask }).status).toBe(0);
    expect(tapedeck(['record', '--source', 'ndjson', '--input', join(dir, 'a.ndjson'), '--out', join(dir, 'b.tape')], { umask }).status).toBe(0);
    expect(tapedeck(['record', '--source', 'ndjson', '--input', join(dir, 'a.ndjson'), '--out', join(dir, 'c.tape')], { umask }).status).toBe(0);
    expect(tapedeck(['merge', join(dir, 'b.tape'), join(dir, 'c.tape'), '--out', join(dir, 'm.tape')], { umask }).status).toBe(0);
    expect(tapedeck(['simulate', '--engine', join(REPO, 'fixtures/engines/world-duplicate-spawn-bug.mjs'), '--faults', 'dup', '--seed', '1', '--out', join(dir, 'sim')], { umask }).status).toBe(1);
    const files = [...readdirSync(dir).map((f) => join(dir, f)), ...readdirSync(join(dir, 'sim')).map((f) => join(dir, 'sim', f))].filter((f) => statSync(f).isFile());
    expect(files.length).toBeGreaterThanOrEqual(8);
    for (const f of files) expect((statSync(f).mode & 0o777).toString(8), f).toBe('600');
    // A tape made readable by others is pointed out.
    const open = join(dir, 'open.tape');
    expect(tapedeck(['record', '--events', '1000', '--out', open]).status).toBe(0);
    chmodSync(open, 0o644);
    expect(tapedeck(['inspect', open]).stdout).toMatch(/WARNING\s+.*open\.tape is readable or writable by others \(mode 0644\).*chmod 600/);
    expect(tapedeck(['inspect', open, '--json']).json<{ warnings: string[] }>().warnings).toHaveLength(1);
    expect(tapedeck(['inspect', tape, '--json']).json<{ warnings: string[] }>().warnings).toEqual([]);
  });
});

describe('strings from a tape are inert', () => {
  it('terminal output shows control characters visibly', () => {
    const dir = tempDir();
    // An engine whose invariant message repeats a string from an event, as real engines do.
    const engine = join(dir, 'echo.mjs');
    writeFileSync(
      engine,
      `export default { name: 'echo', version: '1', init: () => ({ last: '' }), apply: (s, e) => ({ last: e.payload.name }),
  digest: (s) => s.last.length.toString(16).padStart(16, '0'), snapshot: (s) => new TextEncoder().encode(JSON.stringify(s)),
  restore: (b) => JSON.parse(new TextDecoder().decode(b)),
  checkInvariants: (s) => (s.last.includes('<') ? [{ code: 'bad-name', message: 'name ' + s.last }] : []) };\n`,
    );
    const evil = 'x\u001b[2J\u001b]0;pwned\u0007<script>alert(1)</script>\r';
    const input = join(dir, 'in.ndjson');
    writeFileSync(input, `${JSON.stringify({ timestampUs: T0, partition: 0, key: 'k\u001b[31m', type: 'hello', payload: { name: evil } })}\n`);
    const tape = join(dir, 't.tape');
    expect(tapedeck(['record', '--source', 'ndjson', '--input', input, '--out', tape, '--engine', engine, '--checkpoint-every', '1']).status).toBe(0);
    const replay = tapedeck(['replay', tape, '--engine', engine]);
    expect(replay.status).toBe(1);
    expect(replay.stdout).toContain('name x\\x1b[2J\\x1b]0;pwned\\x07<script>alert(1)</script>\\x0d');
    for (const out of [replay.stdout, tapedeck(['inspect', tape]).stdout, tapedeck(['export', tape, '--engine', engine]).stdout]) {
      expect(out).not.toMatch(/[\u001b\u0007\r]/);
    }
  });

  it('the HTML report renders tape strings as text: no script runs (headless Chromium)', async (ctx) => {
    if (!chromiumAvailable()) return ctx.skip();
    const dir = tempDir();
    const evilName = '<img src=x onerror="window.pwned=1">';
    const engine = join(dir, 'evil.mjs');
    writeFileSync(engine, `import { worldEngine } from ${JSON.stringify(pathToFileURL(join(REPO, 'dist/index.js')).href)};\nexport default { ...worldEngine, version: ${JSON.stringify(`1 ${evilName}</script><script>window.pwned=2</script>`)} };\n`);
    const tape = join(dir, '<script>window.pwned=3<\\script>.tape'.replace('\\', '/').replace('/', '_'));
    expect(tapedeck(['record', '--events', '5000', '--out', tape]).status).toBe(0);
    const html = join(dir, 'report.html');
    const r = tapedeck(['replay', tape, '--engine', engine, '--service-time', 'exp:1us', '--report', html]);
    expect(r.status, r.stderr).toBeLessThanOrEqual(1);
    const text = readFileSync(html, 'utf8');
    expect(text).toContain('&lt;img src=x onerror=&quot;window.pwned=1&quot;&gt;');
    const browser = await chromium.launch({ executablePath: CHROMIUM!, args: CHROMIUM_ARGS });
    try {
      const page = await browser.newPage();
      const dialogs: string[] = [];
      page.on('dialog', (d) => {
        dialogs.push(d.message());
        void d.dismiss();
      });
      await page.goto(pathToFileURL(html).href);
      await page.waitForFunction('window.tapedeckCharts?.length === 3', null, { timeout: 20_000 });
      expect(await page.evaluate('window.pwned')).toBeUndefined();
      expect(dialogs).toEqual([]);
      expect(await page.evaluate('document.querySelectorAll("img").length')).toBe(0);
      expect(await page.locator('h1').textContent()).toContain('<script>window.pwned=3');
    } finally {
      await browser.close();
    }
  });
});
