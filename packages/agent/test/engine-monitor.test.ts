// The EngineMonitor's verdicts: one failed ping is no news, failures in a row a condition, a long
// outage an error; a hung engine never holds a caller of health().
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { EngineMonitor, type EngineProbe } from '../src/engine-monitor.js';

/** An engine the test drives: each ping answers as told ('ok', 'fail', or 'hang' until released). */
class Engine implements EngineProbe {
  mode: 'ok' | 'fail' | 'hang' = 'ok';
  pings = 0;
  private hung: (() => void)[] = [];
  async ping(): Promise<void> {
    this.pings++;
    if (this.mode === 'fail') throw new Error('engine is restarting');
    if (this.mode === 'hang') await new Promise<void>((r) => this.hung.push(r));
  }
  async info(): Promise<{ engineVersion: string }> {
    return { engineVersion: '27.1' };
  }
  release(): void {
    for (const r of this.hung.splice(0)) r();
  }
}

const until = async (what: string, f: () => boolean): Promise<void> => {
  for (let i = 0; i < 500 && !f(); i++) await new Promise((r) => setTimeout(r, 10));
  assert.ok(f(), what);
};

describe('EngineMonitor', () => {
  test('one failure is no news; failures in a row are a condition; a long outage an error; recovery clears it', async () => {
    const engine = new Engine();
    let clock = 0;
    const m = new EngineMonitor(engine, { intervalMs: 5, timeoutMs: 50, conditionAfter: 3, downAfterMs: 10_000, now: () => clock });
    m.start();
    await m.firstProbe;
    assert.deepEqual(m.health(), { error: '', condition: '', engineVersion: '27.1' });
    engine.mode = 'fail';
    const at = engine.pings;
    await until('a failed ping', () => engine.pings > at);
    assert.deepEqual([m.health().error, m.health().condition], ['', '']);
    await until('three failed pings', () => engine.pings >= at + 3);
    await until('the condition', () => m.health().condition !== '');
    assert.match(m.health().condition, /docker is not answering: engine is restarting \(\d+ pings failed in a row\)/);
    assert.equal(m.health().error, '');
    clock += 10_000;
    assert.match(m.health().error, /docker is unreachable: engine is restarting/);
    assert.equal(m.health().condition, '');
    engine.mode = 'ok';
    await until('recovered', () => m.health().error === '' && m.health().condition === '');
    await m.stop();
  });

  test('a hung engine: each ping gives up after its timeout, and health() answers at once meanwhile', async () => {
    const engine = new Engine();
    const m = new EngineMonitor(engine, { intervalMs: 5, timeoutMs: 30, conditionAfter: 3 });
    m.start();
    await m.firstProbe;
    engine.mode = 'hang';
    await until('the condition while hung', () => m.health().condition !== '');
    assert.match(m.health().condition, /no answer within 30 ms/);
    engine.mode = 'ok';
    engine.release();
    await until('recovered', () => m.health().condition === '');
    await m.stop();
  });
});
