/**
 * The documentation stays true to the repository: README.md, CONTRIBUTING.md and docs/*.md.
 * Relative links resolve (to a file, and to a heading when they name one); every `npm run X`
 * is a script of package.json; every scripts/… file and `bash X.sh` exists; the layout in
 * docs/architecture.md names every folder of src/ and no folder that is gone; every repository
 * path a page names exists; scripts/bench.sh's parts are the sections of docs/benchmarks.md, and
 * each table there says its date, commit and machine; README.md stays short.
 */
import { execFileSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, join, normalize, relative, resolve } from 'node:path';
import { describe, expect, it } from 'vitest';

const ROOT = resolve(import.meta.dirname, '..', '..');

/** The pages checked, repository-relative. */
const PAGES = [
  'README.md',
  'CONTRIBUTING.md',
  ...readdirSync(join(ROOT, 'docs'))
    .filter((f) => f.endsWith('.md'))
    .map((f) => `docs/${f}`),
];
const text = (page: string): string => readFileSync(join(ROOT, page), 'utf8');

/** A page without its fenced code blocks (links and headings live outside them). */
function prose(md: string): string {
  return md.replace(/^```[^\n]*\n[\s\S]*?^```[^\n]*$/gm, '');
}

/** GitHub's anchor for a heading: lower case, punctuation dropped, spaces to hyphens. */
function slug(heading: string): string {
  return heading
    .replace(/\[([^\]]*)\]\([^)]*\)/g, '$1')
    .toLowerCase()
    .replace(/[^\p{L}\p{N}\s_-]/gu, '')
    .trim()
    .replace(/\s/g, '-');
}

/** The anchors of a page's headings, with GitHub's -1, -2 … for repeats. */
function anchorsOf(page: string): Set<string> {
  const seen = new Map<string, number>();
  const out = new Set<string>();
  for (const m of prose(text(page)).matchAll(/^#{1,6}\s+(.+?)\s*#*\s*$/gm)) {
    const s = slug(m[1]!);
    const n = seen.get(s) ?? 0;
    seen.set(s, n + 1);
    out.add(n === 0 ? s : `${s}-${n}`);
  }
  return out;
}

/** Every relative link (and image) of a page: [text](target), external ones left out. */
function relativeLinks(md: string): string[] {
  const body = prose(md).replace(/``[^`]*``|`[^`\n]*`/g, '');
  return [...body.matchAll(/!?\[[^\]]*\]\(\s*<?([^)\s>]+)>?(?:\s+"[^"]*")?\s*\)/g)]
    .map((m) => m[1]!)
    .filter((t) => !/^[a-z][a-z0-9+.-]*:/i.test(t));
}

/** Why a link from page does not resolve, or undefined when it does. */
function brokenLink(page: string, target: string): string | undefined {
  const [path, anchor] = target.split('#', 2) as [string, string | undefined];
  const file = path === '' ? page : normalize(join(dirname(page), decodeURI(path)));
  if (relative(ROOT, resolve(ROOT, file)).startsWith('..')) return 'points outside the repository';
  if (!existsSync(join(ROOT, file))) return `${file} does not exist`;
  if (anchor && file.endsWith('.md') && !anchorsOf(file).has(anchor)) return `${file} has no heading #${anchor}`;
  return undefined;
}

/** Repository paths a page names: tokens rooted at one of the repository's folders (no placeholders). */
function repositoryPaths(md: string): string[] {
  const roots = 'src|bpf|conf|scripts|test|tools|docs';
  const found = md.matchAll(new RegExp(`(?<![\\w./@~$-])(?:${roots})/[\\w./@-]*`, 'g'));
  return [...new Set([...found].map((m) => m[0].replace(/[.,:;]+$/, '')))];
}

/** Every folder under dir holding a file, recursively, as "dir/sub/" (an empty one is not in git either). */
function foldersUnder(dir: string): string[] {
  return readdirSync(join(ROOT, dir), { withFileTypes: true })
    .filter((e) => e.isDirectory() && filesUnder(`${dir}/${e.name}`).length > 0)
    .flatMap((e) => [`${dir}/${e.name}/`, ...foldersUnder(`${dir}/${e.name}`)]);
}

/** Every file under dir, recursively, repository-relative. */
function filesUnder(dir: string): string[] {
  return readdirSync(join(ROOT, dir), { withFileTypes: true }).flatMap((e) =>
    e.isDirectory() ? filesUnder(`${dir}/${e.name}`) : [`${dir}/${e.name}`],
  );
}

/** One level-2 section of a page: its heading and its text up to the next level-2 heading. */
interface Section {
  heading: string;
  body: string;
}
function sections(md: string): Section[] {
  const parts = prose(md).split(/^## /m).slice(1);
  return parts.map((p) => ({ heading: p.slice(0, p.indexOf('\n')).trim(), body: p.slice(p.indexOf('\n') + 1) }));
}

const NUMBERS = ['zero', 'one', 'two', 'three', 'four', 'five', 'six', 'seven', 'eight', 'nine', 'ten'];

/** A benchmark part as scripts/bench.sh's header lists it. */
interface BenchPart {
  name: string;
  file: string;
}

/** The parts bench.sh's header lists, the files it runs, and the count its header states. */
function benchScript(sh: string): { listed: BenchPart[]; run: string[]; stated: number } {
  const lines = sh.split('\n');
  const listed = lines.flatMap((l) => {
    const m = /^#\s+\d+\.\s+(.+?)\s{2,}(test\/bench\/\S+)/.exec(l);
    return m ? [{ name: m[1]!, file: m[2]! }] : [];
  });
  const run = lines
    .filter((l) => !l.trimStart().startsWith('#'))
    .flatMap((l) => [...l.matchAll(/test\/bench\/[\w.-]+\.(?:mjs|ts)/g)].map((m) => m[0]));
  const word = /the (\w+) benchmark parts/.exec(sh)?.[1] ?? '';
  return { listed, run, stated: NUMBERS.indexOf(word) };
}

describe('the documentation stays true', () => {
  it('README.md is at most 200 lines', () => {
    expect(text('README.md').split('\n').length).toBeLessThanOrEqual(200);
  });

  it('every relative link resolves, to a heading when it names one', () => {
    const links = PAGES.flatMap((p) => relativeLinks(text(p)).map((t) => ({ page: p, target: t })));
    expect(links.length).toBeGreaterThan(50);
    const broken = links.flatMap(({ page, target }) => {
      const why = brokenLink(page, target);
      return why ? [`${page}: (${target}) ${why}`] : [];
    });
    expect(broken).toEqual([]);
  });

  it('every npm script, scripts/ file and bash command named exists', () => {
    const scripts = Object.keys((JSON.parse(text('package.json')) as { scripts: Record<string, string> }).scripts);
    const bad: string[] = [];
    for (const page of PAGES) {
      const md = text(page);
      for (const m of md.matchAll(/\bnpm (?:run ([\w:.-]+)|(test)\b)/g)) {
        const name = m[1] ?? m[2]!;
        if (!scripts.includes(name)) bad.push(`${page}: npm run ${name} is not in package.json`);
      }
      for (const path of repositoryPaths(md).filter((p) => p.startsWith('scripts/') && !p.endsWith('/'))) {
        if (!existsSync(join(ROOT, path)) || !statSync(join(ROOT, path)).isFile()) bad.push(`${page}: ${path} does not exist`);
      }
      for (const m of md.matchAll(/\bbash ([\w./-]+\.sh)\b/g)) {
        if (!existsSync(join(ROOT, m[1]!))) bad.push(`${page}: bash ${m[1]} — no such script`);
      }
    }
    expect(bad).toEqual([]);
  });

  it("every folder of src/ is in docs/architecture.md's layout, and every src folder named there exists", () => {
    const md = text('docs/architecture.md');
    const start = md.indexOf('\n## Layout\n');
    expect(start, 'docs/architecture.md has a "## Layout" section').toBeGreaterThan(-1);
    const end = md.indexOf('\n## ', start + 1);
    const layout = md.slice(start, end === -1 ? undefined : end);
    const named = new Set(
      repositoryPaths(layout)
        .filter((p) => p.startsWith('src/'))
        .map((p) => (p.endsWith('/') ? p : `${dirname(p)}/`))
        .filter((p) => p !== 'src/'),
    );
    const actual = foldersUnder('src');
    expect(actual.filter((f) => !named.has(f)).map((f) => `${f} is not in the layout`)).toEqual([]);
    expect([...named].filter((f) => !existsSync(join(ROOT, f))).map((f) => `${f} is named but does not exist`)).toEqual([]);
  });

  it('every repository path and test file a page names exists', () => {
    const missing = PAGES.flatMap((page) =>
      repositoryPaths(text(page))
        .filter((p) => !existsSync(join(ROOT, p)))
        .map((p) => `${page}: ${p}`),
    );
    expect(missing).toEqual([]);
    // Test files are often named alone (`chain.test.ts`): each must be one of test/'s.
    const testFiles = new Set(filesUnder('test').map((f) => f.slice(f.lastIndexOf('/') + 1)));
    const unknownTests = PAGES.flatMap((page) =>
      [...text(page).matchAll(/(?<![\w./-])[\w.-]+\.test\.ts\b/g)].filter((m) => !testFiles.has(m[0])).map((m) => `${page}: ${m[0]}`),
    );
    expect(unknownTests).toEqual([]);
  });

  it("scripts/bench.sh's parts are the sections of docs/benchmarks.md", () => {
    const { listed, run, stated } = benchScript(text('scripts/bench.sh'));
    expect(run.length).toBeGreaterThan(0);
    expect(
      listed.map((p) => p.file),
      "bench.sh's header lists the files it runs, in order",
    ).toEqual(run);
    expect(stated, "bench.sh's header says how many parts it runs").toBe(run.length);
    const page = text('docs/benchmarks.md');
    expect(/runs (\w+) parts/.exec(page)?.[1], 'docs/benchmarks.md says how many parts npm run bench runs').toBe(NUMBERS[run.length]);
    const secs = sections(page);
    for (const part of listed) {
      const sec = secs.find((s) => s.heading.toLowerCase() === part.name.toLowerCase());
      expect(sec, `docs/benchmarks.md has a "## ${part.name}" section`).toBeDefined();
      expect(sec!.body.split('\n\n')[0], `the "${part.name}" section opens with ${part.file}`).toContain(part.file);
    }
    const benchSections = secs.filter((s) => /test\/bench\//.test(s.body.split('\n\n')[0]!));
    expect(benchSections.map((s) => s.heading).sort()).toEqual(listed.map((p) => p.name).sort());
  });

  it('every table in docs/benchmarks.md says its date, commit and machine', () => {
    const lines = prose(text('docs/benchmarks.md')).split('\n');
    const unstamped: string[] = [];
    const commits = new Set<string>();
    let since = 0; // first line after the previous table or heading
    for (let i = 0; i < lines.length; i++) {
      if (/^#{1,6} /.test(lines[i]!)) since = i + 1;
      if (!lines[i]!.startsWith('|') || lines[i - 1]?.startsWith('|')) continue;
      const before = lines.slice(since, i).join(' ');
      const hashes = [...before.matchAll(/\bcommits? ([0-9a-f]{7,40})\b/g)].map((m) => m[1]!);
      for (const h of hashes) commits.add(h);
      if (!/\b20\d\d-\d\d-\d\d\b/.test(before) || hashes.length === 0 || !/\d-vCPU .*Linux \d+\.\d+/.test(before))
        unstamped.push(`line ${i + 1}: ${lines[i]!.slice(0, 60)}`);
      while (lines[i + 1]?.startsWith('|')) i++;
      since = i + 1;
    }
    expect(unstamped).toEqual([]);
    // With the history at hand (not in a shallow clone), each stamped commit exists.
    const git = (args: string[]) => execFileSync('git', args, { cwd: ROOT, encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] });
    let fullHistory = false;
    try {
      fullHistory = git(['rev-parse', '--is-shallow-repository']).trim() === 'false';
    } catch {
      fullHistory = false;
    }
    if (fullHistory) {
      const unknown = [...commits].filter((h) => {
        try {
          git(['cat-file', '-e', `${h}^{commit}`]);
          return false;
        } catch {
          return true;
        }
      });
      expect(unknown).toEqual([]);
    }
  });

  it('no page speaks of "this session", "this VM", an issue number or a file outside the repository', () => {
    const bad = PAGES.flatMap((page) =>
      [...text(page).matchAll(/this session|this VM|\bissues? \d+|DESIGN\.md/gi)].map((m) => `${page}: "${m[0]}"`),
    );
    expect(bad).toEqual([]);
  });
});

describe('the checks themselves', () => {
  it('slug() gives GitHub anchors', () => {
    expect(slug('Operator override: `afsteerd prefer`')).toBe('operator-override-afsteerd-prefer');
    expect(slug("The plugin's logs")).toBe('the-plugins-logs');
    expect(slug('Trust: per-node identities')).toBe('trust-per-node-identities');
  });

  it('relativeLinks() skips external links and links inside code', () => {
    const md = '[a](b.md#c) [x](https://e.org) `[no](no.md)` ![img](p.png)\n```\n[no](code.md)\n```\n';
    expect(relativeLinks(md)).toEqual(['b.md#c', 'p.png']);
  });

  it('repositoryPaths() takes rooted paths only, without placeholders or trailing punctuation', () => {
    expect(repositoryPaths('see `src/cni/add.ts`, /sys/fs/bpf/afsteer, .tools/node-v*/bin and test/unit/<area>/.')).toEqual([
      'src/cni/add.ts',
      'test/unit/',
    ]);
  });

  it('benchScript() finds a drifted header', () => {
    const sh = [
      '# npm run bench: the three benchmark parts:',
      '#   1. CNI latency        test/bench/cni-latency.mjs',
      '#   2. Data plane         test/bench/dataplane.ts',
      'node test/bench/cni-latency.mjs || status=1',
      'node scripts/run-ts.mjs test/bench/dataplane.ts || status=1',
      'node scripts/run-ts.mjs test/bench/scale.ts || status=1',
    ].join('\n');
    const b = benchScript(sh);
    expect(b.stated).toBe(3);
    expect(b.listed.map((p) => p.file)).not.toEqual(b.run);
  });
});
