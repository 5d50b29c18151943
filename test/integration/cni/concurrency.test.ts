/** kubelet runs ADDs in parallel: 50 concurrent ADDs, then 50 concurrent DELs, leak nothing. */
import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { listEndpoints, readCounters } from '../../../src/bpf/endpoint-map';
import { MAPS } from '../../../src/bpf/maps-layout';
import { PIN_LAYOUT_MAP } from '../../../src/bpf/pin-layout';
import { WRITER_GEN_MAP } from '../../../src/bpf/writer-lock';
import { announceSkip, IS_ROOT, sh, World } from '../../support/world';

announceSkip('50 parallel ADD/DEL');

const N = 50;

describe.skipIf(!IS_ROOT)('50 parallel ADD/DEL', () => {
  let w: World;
  beforeAll(() => (w = new World()));
  afterAll(() => w?.cleanup());

  it('all succeed with distinct addresses and nothing leaks', async () => {
    const list = w.conflist('par');
    const pods = Array.from({ length: N }, (_, i) => ({ id: `ctr-${i}`, ns: w.netns(`p${i}`) }));
    const adds = await Promise.all(pods.map((p) => w.driver('add', list, p.ns, p.id)));
    adds.forEach((a, i) => expect(a.code, `ADD ${i}: ${a.stdout} ${a.stderr}`).toBe(0));
    const addrs = adds.flatMap((a) => (a.json as { ips: { address: string }[] }).ips.map((i) => i.address));
    expect(new Set(addrs).size).toBe(2 * N);
    expect(w.stateFiles()).toHaveLength(N);
    expect(listEndpoints(w.pinDir).size).toBe(N);
    const ports = w.bridgePorts();
    expect(ports).toHaveLength(N);
    for (const port of ports) expect(sh('tc', ['filter', 'show', 'dev', port, 'ingress'])).toMatch(/afsteer_from_po/);
    expect(readdirSync(join(w.pinDir, 'progs'))).toHaveLength(1);

    const dels = await Promise.all(pods.map((p) => w.driver('del', list, p.ns, p.id)));
    dels.forEach((d, i) => expect(d.code, `DEL ${i}: ${d.stdout} ${d.stderr}`).toBe(0));
    expect(w.stateFiles()).toEqual([]);
    expect(listEndpoints(w.pinDir).size).toBe(0);
    expect(readCounters(w.pinDir)).toEqual([]);
    expect(w.bridgePorts()).toEqual([]);
    expect(w.leases()).toEqual([]);
    // Only the shared maps (the object's, the steering writers' generation, the layout record) and
    // the one program directory stay pinned, and no address is left pointing at a deleted pod.
    expect(readdirSync(w.pinDir).sort()).toEqual(
      [...Object.values(MAPS).map((m) => m.name), WRITER_GEN_MAP, PIN_LAYOUT_MAP, 'progs'].sort(),
    );
    expect(sh('bpftool', ['map', 'dump', 'pinned', join(w.pinDir, MAPS.localAddrs.name)]).trim()).toMatch(/^(\[\]|Found 0 elements)$/);
  });
});
