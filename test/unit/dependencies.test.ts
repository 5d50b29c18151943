/**
 * Dependencies run one way: src/cni, src/cli and src/negotiator never import each other; what they
 * share lives below them (src/bpf, net, util, native, node, policy, control, identity, defaults.ts), which
 * never imports upward; only src/bin sees everything and nothing imports it; src/install is a
 * command like it (it takes the plugin's teardown and afsteerd's key check) that only src/bin
 * imports; scripts/ and
 * test/bench/ take shared test support from test/support/, never from test/integration/.
 * Parses the import specifiers of every source file (static, dynamic, re-exports, require).
 */
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { describe, expect, it } from 'vitest';

const ROOT = resolve(import.meta.dirname, '..', '..');
const SOURCE = /\.(ts|mts|cts|mjs|cjs|js)$/;

/** Every source file under dir (repository-relative). */
function files(dir: string): string[] {
  const out: string[] = [];
  for (const name of readdirSync(join(ROOT, dir))) {
    const rel = join(dir, name);
    if (statSync(join(ROOT, rel)).isDirectory()) out.push(...files(rel));
    else if (SOURCE.test(name)) out.push(rel);
  }
  return out;
}

/** Repository-relative targets of a file's relative imports (bare package names are not ours). */
function importsOf(file: string): string[] {
  const text = readFileSync(join(ROOT, file), 'utf8');
  const specs = [
    ...text.matchAll(/\b(?:import|export)\s[^'"`;]*?\sfrom\s*['"]([^'"]+)['"]/g),
    ...text.matchAll(/\bimport\s*['"]([^'"]+)['"]/g),
    ...text.matchAll(/\bimport\(\s*['"]([^'"]+)['"]\s*\)/g),
    ...text.matchAll(/\brequire\(\s*['"]([^'"]+)['"]\s*\)/g),
  ].map((m) => m[1]!);
  return specs.filter((s) => s.startsWith('.')).map((s) => relative(ROOT, resolve(ROOT, dirname(file), s)));
}

/** The layer a repository path belongs to: "src/cni", "src/defaults", "test/integration", ... */
function layerOf(path: string): string {
  const parts = path.replace(/\.(ts|mjs|cjs|js)$/, '').split('/');
  if (parts[0] === 'src') return `src/${parts[1]}`;
  if (parts[0] === 'test') return `test/${parts[1]}`;
  return parts[0]!;
}

const APPS = new Set(['src/cni', 'src/cli', 'src/negotiator']);
const BELOW = new Set([
  'src/bpf',
  'src/net',
  'src/util',
  'src/native',
  'src/node',
  'src/policy',
  'src/control',
  'src/defaults',
  'src/identity',
]);

/** Why importing `to` from `from` breaks the one-way rule, or undefined when it does not. */
function violation(from: string, to: string): string | undefined {
  const a = layerOf(from);
  const b = layerOf(to);
  if (APPS.has(a) && APPS.has(b) && a !== b) return `${a} imports ${b}`;
  if (BELOW.has(a) && (APPS.has(b) || b === 'src/bin')) return `${a} imports upward into ${b}`;
  if (b === 'src/bin' && a !== 'src/bin') return `${a} imports the executable's router`;
  if (b === 'src/install' && a.startsWith('src/') && a !== 'src/install' && a !== 'src/bin')
    return `${a} imports the installer (a command)`;
  if ((a === 'scripts' || a === 'test/bench') && b === 'test/integration') return `${a} imports test/integration (use test/support)`;
  return undefined;
}

const edges = ['src', 'scripts', 'test/bench', 'test/support'].flatMap(files).flatMap((f) => importsOf(f).map((to) => ({ from: f, to })));

describe('dependencies run one way', () => {
  it('the parser sees the imports it must judge', () => {
    expect(edges).toContainEqual({ from: 'src/bin/route.ts', to: 'src/cni/plugin' });
    expect(edges).toContainEqual({ from: 'src/cli/show.ts', to: 'src/node/attachments' });
    expect(edges).toContainEqual({ from: 'src/bin/route.ts', to: 'src/negotiator/main' });
    expect(edges.some((e) => e.from.startsWith('scripts/') && e.to.startsWith('test/support/'))).toBe(true);
    expect(violation('src/cni/add.ts', 'src/negotiator/protocol/messages')).toMatch(/imports/);
    expect(violation('src/bpf/programs.ts', 'src/cni/path-keys')).toMatch(/upward/);
    expect(violation('test/bench/failover.ts', 'test/integration/helpers/two-nodes')).toMatch(/test\/support/);
    expect(violation('src/cni/add.ts', 'src/node/attachments')).toBeUndefined();
    expect(violation('src/install/node-pods.ts', 'src/cni/teardown')).toBeUndefined();
    expect(violation('src/cni/add.ts', 'src/install/install')).toMatch(/the installer/);
  });

  it('no import between src/cni, src/cli and src/negotiator; none from below upward; none from scripts or benches into test/integration', () => {
    const bad = edges.flatMap((e) => {
      const why = violation(e.from, e.to);
      return why ? [`${e.from} → ${e.to}: ${why}`] : [];
    });
    expect(bad).toEqual([]);
  });

  it('no import cycle in src/, type imports included', () => {
    expect(cyclesIn(edges.filter((e) => e.from.startsWith('src/') && e.to.startsWith('src/')))).toEqual([]);
  });

  it('the cycle finder sees a cycle, also through type imports', () => {
    const edge = (from: string, to: string) => ({ from: `${from}.ts`, to });
    expect(cyclesIn([edge('src/a', 'src/b'), edge('src/b', 'src/c'), edge('src/c', 'src/a'), edge('src/c', 'src/d')])).toEqual([
      'src/a → src/b → src/c → src/a',
    ]);
    expect(cyclesIn([edge('src/a', 'src/b'), edge('src/b', 'src/d')])).toEqual([]);
  });

  it('no two files in src/ share a base name, but for one concept in two layers (the SEA shim of koffi)', () => {
    const byBase = new Map<string, string[]>();
    for (const f of files('src')) {
      const base = f.replace(/^.*\//, '').replace(SOURCE, '');
      byBase.set(base, [...(byBase.get(base) ?? []), f]);
    }
    const shared = [...byBase].filter(([base, fs]) => fs.length > 1 && !SAME_CONCEPT.has(base)).map(([, fs]) => fs.join(' = '));
    expect(shared).toEqual([]);
  });
});

/** Base names deliberately shared: the same concept in two layers. */
const SAME_CONCEPT = new Set(['koffi']);

/** Every cycle of the import graph (one line per strongly connected component, its members in import order), by Tarjan's algorithm. */
function cyclesIn(list: { from: string; to: string }[]): string[] {
  const graph = new Map<string, Set<string>>();
  const node = (f: string) => f.replace(SOURCE, '');
  for (const e of list) {
    const from = node(e.from);
    if (!graph.has(from)) graph.set(from, new Set());
    graph.get(from)!.add(node(e.to));
  }
  let next = 0;
  const index = new Map<string, number>();
  const low = new Map<string, number>();
  const stack: string[] = [];
  const onStack = new Set<string>();
  const out: string[] = [];
  const visit = (v: string): void => {
    index.set(v, next);
    low.set(v, next++);
    stack.push(v);
    onStack.add(v);
    for (const w of graph.get(v) ?? []) {
      if (!index.has(w)) {
        visit(w);
        low.set(v, Math.min(low.get(v)!, low.get(w)!));
      } else if (onStack.has(w)) low.set(v, Math.min(low.get(v)!, index.get(w)!));
    }
    if (low.get(v) === index.get(v)) {
      const scc: string[] = [];
      let w: string;
      do {
        w = stack.pop()!;
        onStack.delete(w);
        scc.push(w);
      } while (w !== v);
      if (scc.length > 1 || graph.get(v)?.has(v)) {
        const members = scc.reverse();
        out.push([...members, members[0]].join(' → '));
      }
    }
  };
  for (const v of [...graph.keys()].sort()) if (!index.has(v)) visit(v);
  return out;
}
