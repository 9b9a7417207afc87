// The leaderless role check's timing rules, on a hand-driven clock: it asks only after a leaderless
// spell, backs off while the store still says "manager", starts over once a leader is found, and
// reports a demotion exactly once. (The real thing, over real managers: test/manager/demoted-while-down.)
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { silentLogger } from '@shoal/raft';
import { LeaderlessRoleCheck } from '../src/leaderless-role-check.js';
import type { IssuedCertificate } from '../src/cert-renewer.js';

function setup(answers: string[]) {
  let now = 0;
  let leader = '';
  const asked: number[] = [];
  const demoted: string[] = [];
  const check = new LeaderlessRoleCheck({
    leader: () => leader,
    peers: () => ['10.0.0.1:4242'],
    ask: async (addrs) => {
      asked.push(now);
      const role = answers.shift();
      if (!role) throw new Error('unreachable');
      return { role, notAfter: 0, certPem: '', keyPem: '', manager: addrs[0] } satisfies IssuedCertificate;
    },
    onDemoted: (c) => demoted.push(c.role),
    log: silentLogger(),
    leaderlessMs: 1_000,
    maxBackoffMs: 4_000,
    monotonic: () => now,
  });
  const at = async (t: number) => {
    now = t;
    await check.tick();
  };
  return { check, at, asked, demoted, setLeader: (l: string) => (leader = l) };
}

test('asks only after a leaderless spell, then less and less often while the store says manager', async () => {
  const s = setup(['manager', 'manager', 'manager', 'manager', 'manager']);
  await s.at(0);
  await s.at(999);
  assert.deepEqual(s.asked, []);
  for (const t of [1_000, 1_500, 1_999, 2_000, 3_999, 4_000, 7_999, 8_000, 11_999, 12_000]) await s.at(t);
  assert.deepEqual(s.asked, [1_000, 2_000, 4_000, 8_000, 12_000], 'waits 1 s, 2 s, then 4 s (the ceiling)');
  assert.deepEqual(s.demoted, []);
});

test('a leader found starts the count over; a demotion is reported once and ends the check', async () => {
  const s = setup(['manager', 'worker', 'worker']);
  await s.at(0);
  await s.at(1_000);
  assert.deepEqual(s.asked, [1_000]);
  s.setLeader('m1');
  await s.at(1_100);
  s.setLeader('');
  await s.at(1_200);
  await s.at(2_199);
  assert.deepEqual(s.asked, [1_000], 'a new leaderless spell of a full second first');
  await s.at(2_200);
  assert.deepEqual(s.demoted, ['worker']);
  await s.at(10_000);
  assert.deepEqual(s.asked, [1_000, 2_200]);
  assert.deepEqual(s.demoted, ['worker']);
});
