// The `--format` template engine: each construct of Go's text/template that docker's scripts use,
// Go's printing of values, and one-line errors for a bad template or an unknown field.

import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { Template, goMap } from '../src/template/exec.js';
import { tabwrite } from '../src/template/tabwriter.js';
import { parseOutput, renderList, renderObject } from '../src/output.js';
import { UsageError, CliError } from '../src/errors.js';

const run = (src: string, data: unknown): string => new Template(src).execute(data);

const svc = {
  ID: 'abc123',
  Name: 'web',
  Replicas: '2/3',
  Spec: {
    Name: 'web',
    Labels: goMap({ 'com.example.team': 'blue', tier: 'front' }),
    Env: ['A=1', 'B=2'],
    Mode: { Replicated: { Replicas: 3 } },
    Ports: [
      { PublishedPort: 8080, TargetPort: 80 },
      { PublishedPort: 8443, TargetPort: 443 },
    ],
    Empty: [] as string[],
    Zero: 0,
    Nothing: null,
  },
};

describe('template: fields and literals', () => {
  test('fields, nested fields, dot, text around', () => {
    assert.equal(run('{{.Name}} {{.Replicas}}', svc), 'web 2/3');
    assert.equal(run('name={{.Spec.Name}}!', svc), 'name=web!');
    assert.equal(run('{{.Spec.Mode.Replicated.Replicas}}', svc), '3');
    assert.equal(run('{{.}}', 'plain'), 'plain');
    assert.equal(run('no actions', svc), 'no actions');
    assert.equal(run('{{ .Name }}', svc), 'web');
  });

  test('literals: strings, raw strings, numbers, booleans', () => {
    assert.equal(run('{{"a\\tb"}}|{{`raw\\t`}}|{{42}}|{{-1}}|{{true}}', {}), 'a\tb|raw\\t|42|-1|true');
  });

  test('values print as Go %v: lists, maps (sorted), structs, nil, a missing map key', () => {
    assert.equal(run('{{.Spec.Env}}', svc), '[A=1 B=2]');
    assert.equal(run('{{.Spec.Labels}}', svc), 'map[com.example.team:blue tier:front]');
    assert.equal(run('{{.Spec.Mode}}', svc), '{{3}}');
    assert.equal(run('{{.Spec.Nothing}}', svc), '<nil>');
    assert.equal(run('{{.Spec.Labels.missing}}', svc), '<no value>');
    assert.equal(run('{{.Spec.Labels.tier}}', svc), 'front');
  });

  test('trim markers {{- and -}}; comments', () => {
    assert.equal(run('a  {{- .Name -}}  b', svc), 'aweb' + 'b');
    assert.equal(run('x{{/* a comment */}}y', svc), 'xy');
  });
});

describe('template: functions', () => {
  test('json of a value, of the whole row; maps keep sorted keys', () => {
    assert.equal(run('{{json .Spec.Labels}}', svc), '{"com.example.team":"blue","tier":"front"}');
    assert.equal(run('{{json .Spec.Env}}', svc), '["A=1","B=2"]');
    assert.equal(run('{{json .}}', { B: 1, A: '<&>' }), '{"B":1,"A":"<&>"}');
    assert.equal(run('{{json .Missing}}', goMap({})), 'null');
  });

  test('index of a map (missing: ""), of a list', () => {
    assert.equal(run('{{index .Spec.Labels "com.example.team"}}', svc), 'blue');
    assert.equal(run('[{{index .Spec.Labels "none"}}]', svc), '[]');
    assert.equal(run('{{index .Spec.Env 1}}', svc), 'B=2');
    assert.equal(run('{{(index .Spec.Ports 1).PublishedPort}}', svc), '8443');
  });

  test('join, split, upper, lower, title, truncate, pad, len', () => {
    assert.equal(run('{{join .Spec.Env ","}}', svc), 'A=1,B=2');
    assert.equal(run('{{join (split "a:b:c" ":") "-"}}', {}), 'a-b-c');
    assert.equal(run('{{upper .Name}} {{lower "ABC"}} {{title "hello big world"}}', svc), 'WEB abc Hello Big World');
    assert.equal(run('{{truncate .Name 2}}|{{pad .Name 1 2}}|', svc), 'we| web  |');
    assert.equal(run('{{len .Spec.Env}} {{len .Spec.Labels}} {{len .Name}}', svc), '2 2 3');
  });

  test('print, printf, println', () => {
    assert.equal(run('{{print .Name 1 2 "x"}}', svc), 'web1 2x');
    assert.equal(run('{{printf "%s has %d ports (%-4s)" .Name (len .Spec.Ports) "x"}}', svc), 'web has 2 ports (x   )');
    assert.equal(run('{{println .Name .Replicas}}', svc), 'web 2/3\n');
  });

  test('pipelines: the value goes last', () => {
    assert.equal(run('{{.Name | upper}}', svc), 'WEB');
    assert.equal(run('{{.Spec.Env | len | printf "%d env"}}', svc), '2 env');
  });

  test('comparisons and logic', () => {
    assert.equal(run('{{eq .Name "web"}} {{ne .Name "web"}} {{eq .Name "a" "web"}}', svc), 'true false true');
    assert.equal(run('{{lt 1 2}} {{ge 2 2}} {{gt "b" "a"}}', {}), 'true true true');
    assert.equal(run('{{and .Name .Spec.Zero}} {{or .Spec.Zero .Name}} {{not .Spec.Empty}}', svc), '0 web true');
    assert.equal(run('{{and .Spec.Nothing .Name}} {{or .Name .Spec.Nothing}} {{and .Name .Replicas}}', svc), '<nil> web 2/3');
  });
});

describe('template: control', () => {
  test('if / else if / else; Go truth (empty list, 0, nil are false; a struct is true)', () => {
    const t = '{{if eq .Name "a"}}A{{else if .Spec.Empty}}E{{else}}other{{end}}';
    assert.equal(run(t, svc), 'other');
    assert.equal(run(t, { ...svc, Name: 'a' }), 'A');
    assert.equal(run('{{if .Spec.Zero}}y{{else}}n{{end}}{{if .Spec.Nothing}}y{{else}}n{{end}}{{if .Spec.Mode}}y{{end}}', svc), 'nny');
  });

  test('range over a list, with $i, $e; over a map in key order; else when empty', () => {
    assert.equal(run('{{range .Spec.Env}}[{{.}}]{{end}}', svc), '[A=1][B=2]');
    assert.equal(run('{{range $i, $e := .Spec.Ports}}{{$i}}:{{$e.PublishedPort}} {{end}}', svc), '0:8080 1:8443 ');
    assert.equal(run('{{range $k, $v := .Spec.Labels}}{{$k}}={{$v}};{{end}}', svc), 'com.example.team=blue;tier=front;');
    assert.equal(run('{{range .Spec.Empty}}x{{else}}none{{end}}', svc), 'none');
    assert.equal(run('{{range .Spec.Ports}}{{.TargetPort}}/{{$.Name}} {{end}}', svc), '80/web 443/web ');
  });

  test('with, variables', () => {
    assert.equal(run('{{with .Spec.Mode.Replicated}}{{.Replicas}}{{else}}global{{end}}', svc), '3');
    assert.equal(run('{{with .Spec.Nothing}}x{{else}}none{{end}}', svc), 'none');
    assert.equal(run('{{$n := .Name}}{{range .Spec.Env}}{{$n}}:{{.}} {{end}}', svc), 'web:A=1 web:B=2 ');
    assert.equal(run('{{$x := 1}}{{$x = 2}}{{$x}}', {}), '2');
  });

  test('a method field takes the arguments after it (docker\'s .Label "k")', () => {
    const row = { Name: 'n', Label: (k: string) => (k === 'a' ? 'A' : '') };
    assert.equal(run('{{.Label "a"}}|{{.Label "b"}}', row), 'A|');
    assert.equal(run('{{json .}}', row), '{"Name":"n"}');
  });
});

describe('template: errors are one line, as Go', () => {
  const parseFails = (src: string, re: RegExp): void => {
    assert.throws(
      () => new Template(src),
      (e: unknown) => e instanceof UsageError && re.test(e.message) && !e.message.includes('\n'),
      src,
    );
  };
  const execFails = (src: string, data: unknown, re: RegExp): void => {
    assert.throws(
      () => run(src, data),
      (e: unknown) => e instanceof CliError && re.test(e.message) && !e.message.includes('\n'),
      src,
    );
  };

  test('bad templates', () => {
    parseFails('{{.Name}', /^template: :1: unexpected "}" in operand$/);
    parseFails('{{.Name', /^template: :1: unclosed action$/);
    parseFails('{{if .Name}}x', /^template: :1: unexpected EOF$/);
    parseFails('x{{end}}', /^template: :1: unexpected \{\{end\}\}$/);
    parseFails('{{else}}', /^template: :1: unexpected \{\{else\}\}$/);
    parseFails('{{nosuch .Name}}', /^template: :1: function "nosuch" not defined$/);
    parseFails('{{}}', /^template: :1: missing value for command$/);
    parseFails('a\n{{"open}}', /^template: :2: unterminated quoted string$/);
    parseFails('{{.Name | }}', /^template: :1: missing command after \|$/);
    parseFails('{{(.Name}}', /^template: :1: unclosed left paren$/);
  });

  test('an unknown field, a field of nil, a wrong argument', () => {
    execFails('{{.Nope}}', svc, /^template: :1:2: executing "" at <\.Nope>: can't evaluate field Nope$/);
    execFails('x\n  {{.Spec.Nope}}', svc, /^template: :2:4: executing "" at <\.Spec\.Nope>: can't evaluate field Nope$/);
    execFails('{{.Spec.Nothing.Name}}', svc, /nil pointer evaluating <nil>\.Name$/);
    execFails('{{.Name.Len}}', svc, /can't evaluate field Len in type string$/);
    execFails('{{upper .Spec.Zero}}', svc, /at <upper>: error calling upper: wrong type for value; expected string; got int$/);
    execFails('{{index .Spec.Env 5}}', svc, /error calling index: index out of range: 5$/);
    execFails('{{.Name 1}}', svc, /Name has arguments but cannot be invoked as function$/);
    execFails('{{$nope}}', svc, /undefined variable: \$nope$/);
  });
});

describe('tabwriter and --format', () => {
  test("tabwrite aligns as Go's tabwriter (minwidth 10, padding 3); the last cell is not padded", () => {
    assert.equal(tabwrite('ID\tNAME\tX\nabcdef0123456\tw\ty\n'), 'ID              NAME      X\nabcdef0123456   w         y\n');
  });

  test('table templates: a header row from the placeholders, aligned rows', () => {
    const out = parseOutput('table {{.ID}}\\t{{.Name}}\\t{{.Replicas}}');
    const text = renderList(out, {
      table: () => 'unused',
      json: () => [],
      rows: () => [
        { ID: 'a1', Name: 'web', Replicas: '1/1' },
        { ID: 'b2', Name: 'a-much-longer-name', Replicas: '0/3' },
      ],
      headers: { ID: 'ID', Name: 'NAME', Replicas: 'REPLICAS' },
    });
    assert.equal(text, ['ID        NAME                 REPLICAS', 'a1        web                  1/1', 'b2        a-much-longer-name   0/3', ''].join('\n'));
  });

  test('plain templates: one line per row; none for no rows; json and table keep their meaning', () => {
    const view = (rows: object[]) => ({ table: () => 'T', json: () => ({ j: 1 }), rows: () => rows, headers: { Name: 'NAME' } });
    assert.equal(renderList(parseOutput('{{.Name}}'), view([{ Name: 'a' }, { Name: 'b' }])), 'a\nb\n');
    assert.equal(renderList(parseOutput('{{.Name}}'), view([])), '');
    assert.equal(renderList(parseOutput('table {{.Name}}'), view([])), 'NAME\n');
    assert.equal(renderList(parseOutput('json'), view([])), '{\n  "j": 1\n}\n');
    assert.equal(renderList(parseOutput(undefined), view([])), 'T\n');
    assert.equal(renderList(parseOutput('table'), view([])), 'T\n');
    assert.equal(renderList(parseOutput(' table '), view([])), 'T\n');
  });

  test('inspect: docker prints a list four spaces deep; templates see the docker shape', () => {
    const view = { text: () => 'text', json: () => ({ name: 'web' }), docker: () => ({ Spec: { Name: 'web' } }) };
    assert.equal(renderObject(parseOutput('docker', { docker: true }), view), '[\n    {\n        "Spec": {\n            "Name": "web"\n        }\n    }\n]\n');
    assert.equal(renderObject(parseOutput('{{.Spec.Name}}', { docker: true }), view), 'web\n');
    assert.equal(renderObject(parseOutput('{{json .}}', { docker: true }), view), '{"Spec":{"Name":"web"}}\n');
    assert.equal(renderObject(parseOutput('json', { docker: true }), view), '{\n  "name": "web"\n}\n');
  });

  test('bad --format values', () => {
    assert.throws(() => parseOutput('yaml'), /^UsageError: invalid --format "yaml": expected table, json or a Go template/);
    assert.throws(() => parseOutput('docker'), /--format docker is for inspect commands/);
    assert.throws(() => parseOutput('{{.Name'), /template: :1: unclosed action/);
  });
});
