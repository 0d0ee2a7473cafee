// The bad-input corpus shared by the recorder's tests: a line of every malformed kind, with the
// reason code the recorder must give it, and a file mixing them with accepted forms.

export const good = (player: number, ts = 1_000 + player) =>
  `{"timestampUs":${ts},"partition":0,"key":"${player}","type":"join","payload":{"player":${player},"zone":0,"x":1,"y":2}}`;

/** [reason code, line bytes] for each malformed kind. */
export const BAD: [string, Buffer][] = [
  ['invalid-json', Buffer.from('{"timestampUs":1,"partition":0,"key":"1","type":"join","payload":{"player":1')],
  ['invalid-utf8', Buffer.concat([Buffer.from('{"timestampUs":1,"partition":0,"key":"'), Buffer.from([0xff, 0xfe]), Buffer.from('","type":"leave","payload":{"player":1}}')])],
  ['nul-byte', Buffer.from('{"timestampUs":1,"partition":0,\u0000"key":"1","type":"leave","payload":{"player":1}}')],
  ['bom', Buffer.concat([Buffer.from([0xef, 0xbb, 0xbf]), Buffer.from(good(5))])],
  ['line-too-long', Buffer.from(`{"timestampUs":1,"partition":0,"key":"${'k'.repeat(400)}","type":"leave","payload":{"player":1}}`)],
  ['missing-field', Buffer.from('{"timestampUs":1,"key":"1","type":"leave","payload":{"player":1}}')],
  ['wrong-type', Buffer.from('{"timestampUs":1,"partition":"3","key":"1","type":"leave","payload":{"player":1}}')],
  ['integer-too-large', Buffer.from('{"timestampUs":9007199254740993,"partition":0,"key":"1","type":"leave","payload":{"player":1}}')],
  ['integer-too-large', Buffer.from('{"timestampUs":1,"partition":0,"key":"1","type":"leave","payload":{"player":123456789012345678}}')],
  ['codec-rejected', Buffer.from('{"timestampUs":1,"partition":0,"key":"1","type":"teleport","payload":{"player":1}}')],
  ['codec-rejected', Buffer.from('{"timestampUs":1,"partition":0,"key":"1","type":"join","payload":{"player":1,"zone":0,"x":70000,"y":2}}')],
  ['empty-line', Buffer.from('')],
  ['not-an-object', Buffer.from('[1,2,3]')],
  ['unknown-field', Buffer.from('{"timestampUs":1,"partition":0,"key":"1","type":"leave","payload":{"player":1},"offset":7}')],
];
export const MAX_LINE = 300;

/** A file mixing accepted forms (BOM at start, CRLF, no final newline) with every bad kind. */
export function corpus(): { bytes: Buffer; goodLines: number; badCodes: string[] } {
  const parts: Buffer[] = [Buffer.from([0xef, 0xbb, 0xbf]), Buffer.from(good(1) + '\n'), Buffer.from(good(2) + '\r\n')];
  let player = 10;
  for (const [, bytes] of BAD) parts.push(bytes, Buffer.from('\n'), Buffer.from(good(player++) + '\n'));
  parts.push(Buffer.from(good(99))); // no final newline
  return { bytes: Buffer.concat(parts), goodLines: 3 + BAD.length, badCodes: BAD.map(([code]) => code) };
}

