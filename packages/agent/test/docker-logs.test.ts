import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import Docker from 'dockerode';
import { parseDockerLogs } from '../src/docker-logs.js';

// dockerode's modem (no connection is made: only its demuxer is used).
const modem = new Docker({ socketPath: '/nonexistent' }).modem;
const demux = modem.demuxStream.bind(modem);

function frame(stream: number, text: string): Buffer {
  const payload = Buffer.from(text, 'utf8');
  const h = Buffer.alloc(8);
  h[0] = stream;
  h.writeUInt32BE(payload.length, 4);
  return Buffer.concat([h, payload]);
}

describe('parseDockerLogs', async () => {
  test('multiplexed stdout and stderr frames with timestamps', async () => {
    const buf = Buffer.concat([
      frame(1, '2026-11-26T01:00:00.000000001Z hello\n'),
      frame(2, '2026-11-26T01:00:00.5Z oops: été\n'),
      frame(1, '2026-11-26T01:00:01Z a\n2026-11-26T01:00:02Z b\n'),
    ]);
    assert.deepEqual(await parseDockerLogs(buf, false, demux), [
      { timestamp: '2026-11-26T01:00:00.000000001Z', stream: 'stdout', data: 'hello' },
      { timestamp: '2026-11-26T01:00:00.5Z', stream: 'stderr', data: 'oops: été' },
      { timestamp: '2026-11-26T01:00:01Z', stream: 'stdout', data: 'a' },
      { timestamp: '2026-11-26T01:00:02Z', stream: 'stdout', data: 'b' },
    ]);
  });
  test('a line split over frames is joined; an empty line is kept; a cut frame at the end is dropped', async () => {
    const buf = Buffer.concat([frame(1, '2026-11-26T01:00:00Z par'), frame(1, 'tial\n2026-11-26T01:00:01Z \n'), frame(2, '2026-11-26T01:00:02Z lost').subarray(0, 12)]);
    assert.deepEqual(await parseDockerLogs(buf, false, demux), [
      { timestamp: '2026-11-26T01:00:00Z', stream: 'stdout', data: 'partial' },
      { timestamp: '2026-11-26T01:00:01Z', stream: 'stdout', data: '' },
    ]);
  });
  test('a TTY container: plain text, carriage returns dropped', async () => {
    assert.deepEqual(await parseDockerLogs(Buffer.from('2026-11-26T01:00:00Z one\r\n2026-11-26T01:00:01Z two\r\n'), true, demux), [
      { timestamp: '2026-11-26T01:00:00Z', stream: 'stdout', data: 'one' },
      { timestamp: '2026-11-26T01:00:01Z', stream: 'stdout', data: 'two' },
    ]);
  });
});
