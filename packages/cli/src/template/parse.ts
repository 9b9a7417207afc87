// The parser of `--format` templates: the subset of Go's text/template that Docker's scripts use
// (fields, variables, functions, pipelines, if/else if/else, range, with, comments, {{- -}}).
// Written here: the npm packages for Go templates take no functions of one's own, no pipelines or
// variables, and print nothing for an unknown field where Go (and docker) fail.
// Errors read as Go's, on one line: `template: :1: unexpected "}" in operand`.

import { UsageError } from '../errors.js';

/** Where a node starts in the template (a byte offset, as Go's error contexts count). */
export interface Pos {
  pos: number;
}

export type Operand =
  | (Pos & { kind: 'field'; path: string[]; text: string })
  | (Pos & { kind: 'var'; name: string; path: string[]; text: string })
  | (Pos & { kind: 'chain'; pipe: Pipe; path: string[]; text: string })
  | (Pos & { kind: 'func'; name: string; text: string })
  | (Pos & { kind: 'literal'; value: string | number | boolean | null; text: string });

export interface Command extends Pos {
  args: Operand[];
}

export interface Pipe extends Pos {
  /** `$x :=` / `$i, $e :=` (declare) or `$x =` (assign). */
  vars: string[];
  assign: boolean;
  cmds: Command[];
}

export type Node =
  | { kind: 'text'; text: string }
  | (Pos & { kind: 'action'; pipe: Pipe })
  | (Pos & { kind: 'if' | 'range' | 'with'; pipe: Pipe; list: Node[]; elseList: Node[] });

/** The functions a template may call (templates naming another fail to parse, as in Go). */
export const FUNCTION_NAMES = new Set([
  'and', 'or', 'not', 'len', 'index', 'print', 'printf', 'println', 'eq', 'ne', 'lt', 'le', 'gt', 'ge',
  'json', 'join', 'split', 'upper', 'lower', 'title', 'truncate', 'pad',
]);

interface Token {
  kind: 'field' | 'var' | 'dot' | 'ident' | 'string' | 'number' | 'pipe' | 'lparen' | 'rparen' | 'declare' | 'assign' | 'comma' | 'end';
  text: string;
  pos: number;
  /** Whitespace right before it (a field right after `)` with none chains onto the parenthesis). */
  spaced: boolean;
}

export class TemplateError extends UsageError {}

export function lineOf(src: string, pos: number): number {
  let line = 1;
  for (let i = 0; i < pos && i < src.length; i++) if (src[i] === '\n') line++;
  return line;
}

function fail(src: string, pos: number, msg: string): never {
  throw new TemplateError(`template: :${lineOf(src, pos)}: ${msg}`);
}

const IDENT = /[A-Za-z_][A-Za-z0-9_]*/y;

/** The tokens of one action's inside (between `{{` and `}}`, trim markers removed). */
function lexAction(src: string, start: number, end: number): Token[] {
  const out: Token[] = [];
  let i = start;
  let spaced = true;
  const push = (kind: Token['kind'], text: string, pos: number): void => {
    out.push({ kind, text, pos, spaced });
    spaced = false;
  };
  const path = (from: number): number => {
    // `.A.B.C` (after `.`, `$x` or `)`): the end of the chain.
    let j = from;
    while (src[j] === '.') {
      IDENT.lastIndex = j + 1;
      const m = IDENT.exec(src);
      if (!m || m.index !== j + 1) break;
      j = j + 1 + m[0].length;
    }
    return j;
  };
  while (i < end) {
    const c = src[i]!;
    if (c === ' ' || c === '\t' || c === '\n' || c === '\r') {
      i++;
      spaced = true;
      continue;
    }
    if (c === '.') {
      const j = path(i);
      if (j === i) {
        if (/[0-9]/.test(src[i + 1] ?? '')) fail(src, i, `unexpected "." in operand`);
        push('dot', '.', i);
        i++;
      } else {
        push('field', src.slice(i, j), i);
        i = j;
      }
      continue;
    }
    if (c === '$') {
      IDENT.lastIndex = i + 1;
      const m = IDENT.exec(src);
      const nameEnd = m && m.index === i + 1 ? i + 1 + m[0].length : i + 1;
      const j = path(nameEnd);
      push('var', src.slice(i, j), i);
      i = j;
      continue;
    }
    if (c === '"') {
      let j = i + 1;
      while (j < end && src[j] !== '"') j += src[j] === '\\' ? 2 : 1;
      if (j >= end) fail(src, i, 'unterminated quoted string');
      push('string', src.slice(i, j + 1), i);
      i = j + 1;
      continue;
    }
    if (c === '`') {
      const j = src.indexOf('`', i + 1);
      if (j < 0 || j >= end) fail(src, i, 'unterminated raw quoted string');
      push('string', src.slice(i, j + 1), i);
      i = j + 1;
      continue;
    }
    const num = /-?[0-9]+(\.[0-9]+)?/y;
    num.lastIndex = i;
    const n = num.exec(src);
    if (n && (c !== '-' || n[0].length > 1)) {
      push('number', n[0], i);
      i += n[0].length;
      continue;
    }
    IDENT.lastIndex = i;
    const id = IDENT.exec(src);
    if (id && id.index === i) {
      push('ident', id[0], i);
      i += id[0].length;
      continue;
    }
    if (c === ':' && src[i + 1] === '=') {
      push('declare', ':=', i);
      i += 2;
      continue;
    }
    const single: Record<string, Token['kind']> = { '|': 'pipe', '(': 'lparen', ')': 'rparen', '=': 'assign', ',': 'comma' };
    if (single[c]) {
      push(single[c]!, c, i);
      i++;
      continue;
    }
    fail(src, i, `unexpected ${JSON.stringify(c)} in operand`);
  }
  out.push({ kind: 'end', text: '', pos: end, spaced });
  return out;
}

function unquote(src: string, t: Token): string {
  if (t.text.startsWith('`')) return t.text.slice(1, -1);
  try {
    return JSON.parse(t.text) as string;
  } catch {
    return fail(src, t.pos, `bad quoted string ${t.text}`);
  }
}

/** One action's tokens as a pipeline. */
class ActionParser {
  private i = 0;
  constructor(
    private readonly src: string,
    private readonly toks: Token[],
  ) {}

  peek(): Token {
    return this.toks[this.i]!;
  }

  next(): Token {
    return this.toks[this.i++]!;
  }

  atEnd(): boolean {
    return this.peek().kind === 'end';
  }

  pipeline(context: string, closer: 'end' | 'rparen' = 'end'): Pipe {
    const start = this.peek().pos;
    const vars: string[] = [];
    let assign = false;
    // `$x :=`, `$i, $e :=`, `$x =`: only when a declaration follows.
    const save = this.i;
    if (this.peek().kind === 'var' && !this.peek().text.includes('.')) {
      const names = [this.next().text];
      if (this.peek().kind === 'comma') {
        this.next();
        if (this.peek().kind === 'var') names.push(this.next().text);
      }
      const op = this.peek().kind;
      if (op === 'declare' || op === 'assign') {
        this.next();
        vars.push(...names);
        assign = op === 'assign';
      } else this.i = save;
    }
    const cmds: Command[] = [];
    for (;;) {
      const t = this.peek();
      if (t.kind === closer) break;
      if (t.kind === 'end') fail(this.src, t.pos, closer === 'rparen' ? 'unclosed left paren' : `missing value for ${context}`);
      cmds.push(this.command(closer));
      const after = this.peek();
      if (after.kind === 'pipe') {
        this.next();
        if (this.peek().kind === closer || this.peek().kind === 'end') fail(this.src, after.pos, 'missing command after |');
        continue;
      }
      if (after.kind === 'end' && closer === 'rparen') fail(this.src, after.pos, 'unclosed left paren');
      if (after.kind !== closer) fail(this.src, after.pos, `unexpected ${JSON.stringify(after.text)} in ${context}`);
    }
    if (cmds.length === 0) fail(this.src, start, `missing value for ${context}`);
    return { pos: start, vars, assign, cmds };
  }

  private command(closer: 'end' | 'rparen'): Command {
    const pos = this.peek().pos;
    const args: Operand[] = [];
    while (this.peek().kind !== 'pipe' && this.peek().kind !== closer && this.peek().kind !== 'end') {
      const t = this.peek();
      if (t.kind === 'rparen') fail(this.src, t.pos, 'unexpected right paren');
      args.push(this.operand());
    }
    if (args.length === 0) fail(this.src, pos, 'empty command');
    return { pos, args };
  }

  private operand(): Operand {
    const t = this.next();
    switch (t.kind) {
      case 'dot':
        return { kind: 'field', path: [], text: '.', pos: t.pos };
      case 'field':
        return { kind: 'field', path: t.text.slice(1).split('.'), text: t.text, pos: t.pos };
      case 'var': {
        const [name, ...path] = t.text.split('.');
        return { kind: 'var', name: name!, path, text: t.text, pos: t.pos };
      }
      case 'string':
        return { kind: 'literal', value: unquote(this.src, t), text: t.text, pos: t.pos };
      case 'number':
        return { kind: 'literal', value: Number(t.text), text: t.text, pos: t.pos };
      case 'ident':
        if (t.text === 'true' || t.text === 'false') return { kind: 'literal', value: t.text === 'true', text: t.text, pos: t.pos };
        if (t.text === 'nil') return { kind: 'literal', value: null, text: t.text, pos: t.pos };
        if (!FUNCTION_NAMES.has(t.text)) fail(this.src, t.pos, `function ${JSON.stringify(t.text)} not defined`);
        return { kind: 'func', name: t.text, text: t.text, pos: t.pos };
      case 'lparen': {
        const pipe = this.pipeline('parenthesized pipeline', 'rparen');
        const close = this.next();
        const f = this.peek();
        if (f.kind === 'field' && !f.spaced) {
          this.next();
          return { kind: 'chain', pipe, path: f.text.slice(1).split('.'), text: `(${'…'})${f.text}`, pos: t.pos };
        }
        return { kind: 'chain', pipe, path: [], text: this.src.slice(t.pos, close.pos + 1), pos: t.pos };
      }
      default:
        return fail(this.src, t.pos, `unexpected ${JSON.stringify(t.text || 'EOF')} in operand`);
    }
  }
}

interface Frame {
  kind: 'root' | 'if' | 'range' | 'with';
  node: (Node & { kind: 'if' | 'range' | 'with' }) | null;
  list: Node[];
  inElse: boolean;
  /** `{{else if}}` opens an if inside the else list that the same `{{end}}` closes. */
  chained: boolean;
}

/** A template's nodes; a TemplateError (a UsageError: one line, exit code 2) when it does not parse. */
export function parseTemplate(src: string): Node[] {
  const root: Frame = { kind: 'root', node: null, list: [], inElse: false, chained: false };
  const stack: Frame[] = [root];
  const top = (): Frame => stack[stack.length - 1]!;
  let i = 0;
  let trimNext = false;
  const addText = (text: string): void => {
    if (text !== '') top().list.push({ kind: 'text', text });
  };
  while (i < src.length) {
    const open = src.indexOf('{{', i);
    let text = src.slice(i, open < 0 ? src.length : open);
    if (trimNext) text = text.replace(/^\s+/, '');
    trimNext = false;
    if (open < 0) {
      addText(text);
      break;
    }
    let start = open + 2;
    if (src[start] === '-' && /\s/.test(src[start + 1] ?? '')) {
      text = text.replace(/\s+$/, '');
      start += 2;
    }
    addText(text);
    const close = src.indexOf('}}', start);
    if (close < 0) {
      // As Go: a stray character is named first (`{{.Name}` → unexpected "}" in operand).
      lexAction(src, start, src.length);
      fail(src, src.length, 'unclosed action');
    }
    let end = close;
    if (src[close - 1] === '-' && /\s/.test(src[close - 2] ?? '') && close - 2 >= start) {
      end = close - 2;
      trimNext = true;
    }
    i = close + 2;
    const inner = src.slice(start, end).trim();
    if (inner.startsWith('/*')) {
      if (!inner.endsWith('*/')) fail(src, open, 'unclosed comment');
      continue;
    }
    const toks = lexAction(src, start, end);
    const p = new ActionParser(src, toks);
    const first = p.peek();
    const keyword = first.kind === 'ident' ? first.text : '';
    if (keyword === 'if' || keyword === 'range' || keyword === 'with') {
      p.next();
      const pipe = p.pipeline(keyword);
      const node = { kind: keyword, pos: first.pos, pipe, list: [], elseList: [] } as Node & { kind: 'if' | 'range' | 'with' };
      top().list.push(node);
      stack.push({ kind: keyword, node, list: node.list, inElse: false, chained: false });
      continue;
    }
    if (keyword === 'else') {
      p.next();
      const f = top();
      if (f.kind === 'root' || f.inElse) fail(src, first.pos, 'unexpected {{else}}');
      f.inElse = true;
      f.list = f.node!.elseList;
      if (!p.atEnd()) {
        const k = p.next();
        if (k.kind !== 'ident' || (k.text !== 'if' && k.text !== 'with')) fail(src, k.pos, `unexpected ${JSON.stringify(k.text)} in else`);
        const pipe = p.pipeline(k.text);
        const node = { kind: k.text, pos: k.pos, pipe, list: [], elseList: [] } as Node & { kind: 'if' | 'with' };
        f.list.push(node);
        stack.push({ kind: k.text as 'if' | 'with', node, list: node.list, inElse: false, chained: true });
      }
      continue;
    }
    if (keyword === 'end') {
      p.next();
      if (!p.atEnd()) fail(src, p.peek().pos, `unexpected ${JSON.stringify(p.peek().text)} in end`);
      if (top().kind === 'root') fail(src, first.pos, 'unexpected {{end}}');
      while (stack.pop()!.chained);
      continue;
    }
    if (first.kind === 'end') fail(src, open, 'missing value for command');
    top().list.push({ kind: 'action', pos: first.pos, pipe: p.pipeline('command') });
  }
  if (stack.length > 1) fail(src, src.length, 'unexpected EOF');
  return root.list;
}
