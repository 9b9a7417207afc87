// shoald's log output choices: the format (flag, else terminal or not), the level (flag, else
// $SHOAL_LOG_LEVEL), and the shape of a text line, printed by pino-pretty with shoald's settings.
// (The real daemon's output in both formats: test/manager/daemon-output.)
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { prettyFactory } from 'pino-pretty';
import { chooseLogFormat, chooseLogLevel, textOptions } from '../src/log-output.js';

test('the format: the flag wins; otherwise text on a terminal and JSON lines elsewhere', () => {
  assert.equal(chooseLogFormat(undefined, true), 'text');
  assert.equal(chooseLogFormat(undefined, false), 'json');
  assert.equal(chooseLogFormat('json', true), 'json');
  assert.equal(chooseLogFormat('text', false), 'text');
});

test('the level: --log-level wins over SHOAL_LOG_LEVEL, which still works alone; a bad env value is refused by name', () => {
  assert.equal(chooseLogLevel('debug', 'error'), 'debug');
  assert.equal(chooseLogLevel(undefined, 'warn'), 'warn');
  assert.equal(chooseLogLevel(undefined, 'silent'), 'silent');
  assert.equal(chooseLogLevel(undefined, undefined), undefined);
  assert.equal(chooseLogLevel(undefined, ''), undefined);
  assert.throws(() => chooseLogLevel(undefined, 'loud'), (e: Error) => /SHOAL_LOG_LEVEL=loud: want one of .*debug/.test(e.message));
});

test('a text line: time, level, component, message, then the fields as key=value, on one line', () => {
  const pretty = prettyFactory(textOptions(false));
  const time = new Date(2026, 11, 6, 22, 30, 1, 234).getTime(); // local time, as the line shows it
  const line = pretty({ level: 40, time, pid: 7, component: 'raft', msg: 'leader lost', term: 3, reason: 'no quorum', ok: true, peers: ['a', 'b'] });
  assert.equal(line, '[2026-12-06 22:30:01.234] WARN: raft: leader lost term=3 reason="no quorum" ok=true peers=["a","b"]\n');
  assert.equal(pretty({ level: 30, time, msg: 'plain' }), '[2026-12-06 22:30:01.234] INFO: plain\n');
});
