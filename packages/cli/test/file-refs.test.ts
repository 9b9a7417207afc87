// `--secret`/`--config` values and `--secret-add/-rm`, `--config-add/-rm` edits: docker's syntax,
// Swarm's defaults, every bad value a usage error naming it.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { completeServiceSpec } from '@shoal/types';
import { applyFileFlags, parseFileRef, validateFileFlags } from '../src/file-refs.js';

describe('secret and config references', () => {
  test('NAME, or source=,target=,uid=,gid=,mode= (octal)', () => {
    assert.deepEqual(parseFileRef('secret', 'db_pw'), { name: 'db_pw' });
    assert.deepEqual(parseFileRef('secret', 'source=db_pw,target=pw,uid=1000,gid=2000,mode=0400'), { name: 'db_pw', target: 'pw', uid: '1000', gid: '2000', mode: 0o400 });
    assert.deepEqual(parseFileRef('config', 'src=conf,target=/etc/app.conf,mode=440'), { name: 'conf', target: '/etc/app.conf', mode: 0o440 });
  });

  test('bad values: one usage error each', () => {
    const cases: [string, RegExp][] = [
      ['', /--secret is empty/],
      ['target=x', /source=NAME is missing/],
      ['source=a,mode=0999', /mode must be octal/],
      ['source=a,uid=root', /uid must be a number/],
      ['source=a,colour=red', /unknown field "colour"/],
      ['source=a,target=', /target has no value/],
      ['source=a,target=../x', /'\.' or '\.\.'/],
      ['source=a,target=a:b', /':'/],
    ];
    for (const [v, re] of cases) assert.throws(() => parseFileRef('secret', v), (e: Error) => e.name === 'UsageError' && re.test(e.message), v);
    assert.throws(() => validateFileFlags({ configAdd: ['ok', 'source=x,mode=8'] }), /mode must be octal/);
  });

  test('add and rm: removals first (by name or id), defaults filled in', () => {
    const base = completeServiceSpec({ name: 'web', image: 'nginx' });
    const one = applyFileFlags(base, { secretAdd: ['db_pw'], configAdd: ['conf', 'source=other,target=/etc/o,mode=0400'] });
    assert.deepEqual(one.secrets, [{ secretId: 'db_pw', secretName: 'db_pw', target: 'db_pw', uid: '0', gid: '0', mode: 0o444 }]);
    assert.deepEqual(one.configs.map((c) => [c.configName, c.target, c.mode]), [['conf', '/conf', 0o444], ['other', '/etc/o', 0o400]]);
    // As the manager stores it: named by id.
    const stored = { ...one, secrets: one.secrets.map((s) => ({ ...s, secretId: 'id-of-db-pw' })) };
    const two = applyFileFlags(stored, { secretRm: ['id-of-db-pw'], configRm: ['conf'], secretAdd: ['source=db_pw,target=new'] });
    assert.deepEqual(two.secrets.map((s) => [s.secretName, s.target]), [['db_pw', 'new']]);
    assert.deepEqual(two.configs.map((c) => c.configName), ['other']);
    assert.throws(() => applyFileFlags(base, { secretRm: ['nope'] }), /--secret-rm nope: the service has no such secret/);
  });
});
