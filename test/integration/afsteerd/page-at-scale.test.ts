/**
 * The page at cluster size, in headless Chromium (root): node A's afsteerd holding 1,000 simulated
 * peers (test/bench/scale-run.ts, every tenth with an active pair), one idle peer blackholed (A's
 * probes to it dropped). The summary covers every peer and renders within a second of the page's
 * load, with the blackholed peer at the top of the worst peers; the JSON the page polls stays
 * bounded; a click opens that peer's chart.
 */
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { simAddressOf } from '../../bench/scale-addresses';
import { runScale } from '../../bench/scale-run';
import { withPage } from '../../support/netns-tools';
import { nsExec, waitFor } from '../../support/two-nodes';
import { announceSkip, IS_ROOT } from '../../support/world';

announceSkip('the page at 1,000 peers in headless Chromium');

const BLACKHOLED = 500;

describe.skipIf(!IS_ROOT)('the page at 1,000 peers in headless Chromium', () => {
  it('the summary renders within 1 s of load with the blackholed peer at the top; the polled JSON stays bounded', async () => {
    let seen:
      | { ms: number; first: string | null; firstState: string | null; total: string | null; rows: number; chart: boolean }
      | undefined;
    let sizes = { summary: 0, history: 0 };
    await runScale({
      peers: 1000,
      measureS: 1,
      warmupMs: 1000,
      during: async ({ t }) => {
        const a = simAddressOf(BLACKHOLED);
        await nsExec(t.a.nsPath, ['nft', 'add', 'table', 'inet', 'page_test']);
        await nsExec(t.a.nsPath, ['nft', 'add', 'chain', 'inet', 'page_test', 'out', '{ type filter hook output priority 0; }']);
        await nsExec(t.a.nsPath, ['nft', 'add', 'rule', 'inet', 'page_test', 'out', 'ip', 'daddr', a.ipv4, 'drop']);
        await nsExec(t.a.nsPath, ['nft', 'add', 'rule', 'inet', 'page_test', 'out', 'ip6', 'daddr', a.ipv6, 'drop']);
        const get = (path: string) => nsExec(t.a.nsPath, ['curl', '-s', '--max-time', '10', `http://127.0.0.1:9617${path}`]);
        await waitFor(
          async () => (JSON.parse(await get('/summary.json?state=blackhole')).peers[0]?.peer ?? '') === `sim-${BLACKHOLED}`,
          30_000,
          `sim-${BLACKHOLED} blackholed in A's summary`,
        );
        sizes = { summary: (await get('/summary.json')).length, history: (await get('/history.json')).length };
        seen = await withPage(
          t.dir,
          t.a.nsPath,
          'http://127.0.0.1:9617/',
          '#worst tr.row',
          `(async () => {
            const ms = Number(document.body.getAttribute('data-summary-ms'));
            const rows = [...document.querySelectorAll('#worst tr.row')];
            const total = document.querySelector('#totals b')?.textContent ?? null;
            rows[0]?.click();
            const t0 = Date.now();
            while (!document.querySelector('svg.chart[data-peer="sim-${BLACKHOLED}"]') && Date.now() - t0 < 5000) await new Promise((r) => setTimeout(r, 50));
            return { ms, first: rows[0]?.getAttribute('data-peer') ?? null, firstState: rows[0]?.getAttribute('data-state') ?? null, total, rows: rows.length,
              chart: Boolean(document.querySelector('svg.chart[data-peer="sim-${BLACKHOLED}"]')) };
          })()`,
          process.env.AFSTEER_PAGE_SHOT ?? join(t.dir, 'page-at-scale.png'),
        );
      },
    });
    console.log(
      `page at 1,000 peers: summary rendered ${seen?.ms} ms after navigation; /summary.json ${sizes.summary} B, /history.json ${sizes.history} B`,
    );
    expect(seen?.first).toBe(`sim-${BLACKHOLED}`);
    expect(seen?.firstState).toBe('blackhole');
    expect(seen?.total).toMatch(/^1001 peers/);
    expect(seen?.rows).toBe(50);
    expect(seen?.ms).toBeGreaterThan(0);
    expect(seen?.ms).toBeLessThanOrEqual(1000);
    expect(seen?.chart).toBe(true);
    expect(sizes.summary).toBeLessThan(40_000);
    expect(sizes.history).toBeLessThan(2_000_000);
  }, 400_000);
});
