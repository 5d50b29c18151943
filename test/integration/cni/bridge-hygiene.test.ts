/**
 * afsteer_bridge_out lives exactly as long as an afsteer pod on its bridge: two pods on one
 * bridge through the real chain (libcni + bridge + host-local + dist/afsteer); DEL of one keeps
 * the bridge's filter, DEL of the other removes it and the clsact qdisc afsteer created; a
 * qdisc that was there before afsteer stays.
 */

import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { announceSkip, IS_ROOT, ROOT, sh, World } from '../../support/world';

announceSkip('bridge hygiene (afsteer_bridge_out removed with the last pod)');

const bridgeFilters = (w: World): string => sh('tc', ['filter', 'show', 'dev', w.bridge, 'egress']);
const hasClsact = (w: World): boolean => /qdisc clsact/.test(sh('tc', ['qdisc', 'show', 'dev', w.bridge]));

describe.skipIf(!IS_ROOT)('bridge filter hygiene', () => {
  let w: World | undefined;
  afterEach(() => {
    w?.cleanup();
    w = undefined;
  });

  it('keeps afsteer_bridge_out while a pod remains; removes it and its clsact with the last pod', async () => {
    w = new World();
    const conflist = w.conflist('hyg');
    const [a, b] = [w.netns('a'), w.netns('b')];
    for (const [ns, id] of [
      [a, 'hyg-a'],
      [b, 'hyg-b'],
    ] as const) {
      const r = await w.driver('add', conflist, ns, id);
      expect(r.code, r.stderr + r.stdout).toBe(0);
    }
    expect(bridgeFilters(w)).toMatch(/afsteer_bridge_/);
    expect(hasClsact(w)).toBe(true);

    // The first pod (whose ADD created the bridge's clsact) goes first: the record passes on.
    const delA = await w.driver('del', conflist, a, 'hyg-a');
    expect(delA.code, delA.stderr).toBe(0);
    expect(bridgeFilters(w)).toMatch(/afsteer_bridge_/);

    const delB = await w.driver('del', conflist, b, 'hyg-b');
    expect(delB.code, delB.stderr).toBe(0);
    expect(bridgeFilters(w)).not.toMatch(/afsteer_bridge_/);
    expect(hasClsact(w)).toBe(false);
    // A DEL repeated after that changes nothing and still succeeds.
    expect((await w.driver('del', conflist, b, 'hyg-b')).code).toBe(0);
  });

  it('leaves a clsact qdisc it did not create (and another filter on it) in place', async () => {
    w = new World();
    const conflist = w.conflist('hygq');
    const ns = w.netns('a');
    // The bridge exists with someone else's clsact and filter before afsteer's first pod.
    sh('ip', ['link', 'add', w.bridge, 'type', 'bridge']);
    sh('tc', ['qdisc', 'add', 'dev', w.bridge, 'clsact']);
    // (a BPF filter: the kernel here has no matchall/u32/flower classifier modules)
    sh('tc', [
      'filter',
      'add',
      'dev',
      w.bridge,
      'ingress',
      'pref',
      '7',
      'bpf',
      'obj',
      join(ROOT, 'build', 'bench_empty.bpf.o'),
      'sec',
      'tc',
      'da',
    ]);
    expect((await w.driver('add', conflist, ns, 'hygq-a')).code).toBe(0);
    expect(bridgeFilters(w)).toMatch(/afsteer_bridge_/);
    expect((await w.driver('del', conflist, ns, 'hygq-a')).code).toBe(0);
    expect(bridgeFilters(w)).not.toMatch(/afsteer_bridge_/);
    expect(hasClsact(w)).toBe(true);
    expect(sh('tc', ['filter', 'show', 'dev', w.bridge, 'ingress'])).toMatch(/bench_empty/);
  });
});
