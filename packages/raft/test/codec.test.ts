import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { RAFT_SERVICE, ShoalError, getServiceDefinition, type RaftMessagePb } from '@shoal/api';
import { frameMessage, messageFromPb, messageToPb, LOCAL_ONLY_TYPES, proposeRequestFromPb } from '../src/transport/codec.js';
import { EntryType, MessageType, emptyMessage, type Message } from '../src/core/types.js';

const send = getServiceDefinition(RAFT_SERVICE).Send!;
const wire = (pb: unknown): RaftMessagePb =>
  (send.requestDeserialize(send.requestSerialize({ messages: [pb] })) as { messages: RaftMessagePb[] }).messages[0]!;

function full(): Message {
  return {
    type: MessageType.App,
    from: 'n1',
    to: 'n2',
    term: 7,
    logTerm: 6,
    index: 41,
    entries: [
      { term: 6, index: 42, type: EntryType.Normal, data: new Uint8Array([1, 2, 3]) },
      { term: 7, index: 43, type: EntryType.ConfChange, data: new Uint8Array(0) },
      { term: 7, index: 2 ** 40, type: EntryType.Normal, data: new Uint8Array([255]) },
    ],
    commit: 40,
    reject: true,
    rejectHint: 12,
    hintTerm: 5,
    context: new Uint8Array([9, 8, 7]),
  };
}

function norm(m: Message) {
  return {
    ...m,
    entries: m.entries.map((e) => ({ ...e, data: [...e.data] })),
    context: [...m.context],
    snapshot: m.snapshot && { meta: m.snapshot.meta, data: [...m.snapshot.data] },
  };
}

function rejects(pb: unknown, re: RegExp) {
  assert.throws(
    () => messageFromPb(wire(pb)),
    (e: unknown) => ShoalError.is(e, 'INVALID_ARGUMENT') && re.test(e.message),
  );
}

describe('codec', () => {
  test('every Message field survives a wire round trip', () => {
    const m = full();
    assert.deepEqual(norm(messageFromPb(wire(messageToPb(m)))), norm(m));
  });

  test('a Snap message with its snapshot, or with the data left out', () => {
    const m: Message = {
      ...emptyMessage(MessageType.Snap, 'n1', 'n3', 9),
      snapshot: {
        meta: { index: 100, term: 8, conf: { voters: [{ id: 'n1', addr: 'a:1' }], learners: [{ id: 'n3', addr: 'c:3' }] } },
        data: new Uint8Array([1, 2, 3, 4]),
      },
    };
    assert.deepEqual(norm(messageFromPb(wire(messageToPb(m)))), norm(m));
    const header = messageFromPb(wire(messageToPb(m, true)));
    assert.equal(header.snapshot!.data.length, 0);
    assert.deepEqual(header.snapshot!.meta, m.snapshot!.meta);
  });

  test('an empty message decodes with defaults', () => {
    const m = emptyMessage(MessageType.Heartbeat, 'a', 'b', 1);
    const back = messageFromPb(wire(messageToPb(m)));
    assert.deepEqual(norm(back), norm(m));
    assert.equal(back.snapshot, undefined);
  });

  test('invalid messages are refused', () => {
    const ok = messageToPb(emptyMessage(MessageType.Vote, 'a', 'b', 1));
    rejects({ ...ok, type: 99 }, /unknown type/);
    for (const t of LOCAL_ONLY_TYPES) rejects({ ...ok, type: t }, /local-only/);
    rejects({ ...ok, from: '' }, /missing from/);
    rejects({ ...ok, to: '' }, /missing to/);
    rejects({ ...ok, term: 2 ** 60 }, /term/);
    rejects({ ...ok, commit: 2 ** 53 }, /commit/);
    rejects({ ...ok, entries: [{ term: 1, index: 1, type: 5, data: Buffer.alloc(0) }] }, /entry type/);
    rejects({ ...ok, snapshot: { meta: { index: 1, term: 1, conf: { voters: [], learners: [] } }, data: Buffer.alloc(0) } }, /snapshot on a Vote/);
    rejects({ ...ok, type: MessageType.Snap }, /Snap without a snapshot/);
    rejects({ ...ok, type: MessageType.Snap, snapshot: { meta: null, data: Buffer.alloc(0) } }, /missing snapshot meta/);
    rejects({ ...ok, type: MessageType.Snap, snapshot: { meta: { index: 1, term: 1 }, data: Buffer.alloc(0) } }, /missing conf/);
    rejects(
      { ...ok, type: MessageType.Snap, snapshot: { meta: { index: 1, term: 1, conf: { voters: [{ id: '', addr: 'x' }] } } } },
      /voters\[0\]\.id is empty/,
    );
    assert.throws(() => messageFromPb(null as unknown as RaftMessagePb), /not an object/);
  });

  test('concatenated frames are the RaftBatch of their messages, in order', () => {
    const ms = [full(), emptyMessage(MessageType.Heartbeat, 'n1', 'n2', 7), { ...full(), index: 99, entries: [] }];
    const frames = ms.map(frameMessage);
    const batch = send.requestDeserialize(Buffer.concat(frames)) as { messages: RaftMessagePb[] };
    assert.deepEqual(batch.messages.map(messageFromPb).map(norm), ms.map(norm));
    assert.equal(Buffer.concat(frames).length, frames.reduce((n, f) => n + f.length, 0));
  });

  test('propose requests are validated', () => {
    assert.deepEqual(proposeRequestFromPb({ client_id: 'c', seq: 3, payload: Buffer.from('x') }), {
      client_id: 'c',
      seq: 3,
      payload: Buffer.from('x'),
      acked_below: 0,
    });
    assert.throws(() => proposeRequestFromPb({ client_id: '', seq: 1, payload: Buffer.alloc(0) }), /client_id/);
    assert.throws(() => proposeRequestFromPb({ client_id: 'c', seq: -1, payload: Buffer.alloc(0) }), /seq/);
  });
});
