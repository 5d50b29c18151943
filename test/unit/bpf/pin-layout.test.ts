// Unit tests of the layout rules (src/bpf/layout-version.ts, pin-layout.ts, src/node/state-layout.ts):
// which builds may share a node's pins, what a build does with the pins it finds (use, migrate step
// by step, refuse with what to do), and state files read across layouts.
import { describe, expect, it } from 'vitest';
import { layoutsCompatible, PIN_LAYOUT } from '../../../src/bpf/layout-version';
import { type FoundLayout, type PinMigration, planPinLayout } from '../../../src/bpf/pin-layout';
import { PIN_MIGRATIONS } from '../../../src/bpf/pin-migrations';
import { layoutOfState, STATE_LAYOUT, STATE_MIGRATIONS, StateLayoutError, stateInOwnLayout } from '../../../src/node/state-layout';

const L = (version: number, readableFrom: number) => ({ version, readableFrom });
const found = (version: number, readableFrom: number, recorded = true): FoundLayout => ({ version, readableFrom, recorded });
const step = (to: number, readableFrom: number): PinMigration => ({ to, readableFrom, what: `to ${to}`, up: () => {} });

describe('layouts that may share a node', () => {
  it('the same layout; a newer one readable by the older; not a newer one that raised readableFrom past the older', () => {
    expect(layoutsCompatible(L(3, 1), L(3, 1))).toBe(true);
    expect(layoutsCompatible(L(2, 1), L(3, 2))).toBe(true);
    expect(layoutsCompatible(L(3, 2), L(2, 1))).toBe(true);
    expect(layoutsCompatible(L(2, 1), L(3, 3))).toBe(false);
    expect(layoutsCompatible(L(1, 1), L(3, 2))).toBe(false);
  });
});

describe("what a build does with a node's pins", () => {
  it('none yet: uses them and records its layout; the same layout: uses them, recording it only when the pins had no record', () => {
    expect(planPinLayout(undefined, L(2, 1), [])).toEqual({ action: 'use', record: true });
    expect(planPinLayout(found(2, 1), L(2, 1), [])).toEqual({ action: 'use', record: false });
    expect(planPinLayout(found(1, 1, false), L(1, 1), [])).toEqual({ action: 'use', record: true });
  });
  it('older pins: every step from the found layout to its own, in order', () => {
    const steps = [step(4, 3), step(2, 1), step(3, 3)];
    const plan = planPinLayout(found(1, 1, false), L(4, 3), steps);
    expect(plan.action).toBe('migrate');
    expect(plan.action === 'migrate' && plan.steps.map((s) => s.to)).toEqual([2, 3, 4]);
    expect(planPinLayout(found(3, 3), L(4, 3), steps)).toMatchObject({ action: 'migrate', steps: [{ to: 4 }] });
  });
  it('older pins without a step for some layout: refused as a bug, before anything is touched', () => {
    expect(planPinLayout(found(1, 1), L(3, 1), [step(3, 1)])).toEqual({
      action: 'refuse',
      why: expect.stringMatching(/no migration of the pins from layout 1 to 2/),
    });
  });
  it('newer pins this build can read: used as they are, the newer record left alone (a rollback over an additive change)', () => {
    expect(planPinLayout(found(5, 3), L(3, 1), [])).toEqual({ action: 'use', record: false });
  });
  it('newer pins this build cannot read: refused, naming the layouts and what to run instead — never "remove the pins"', () => {
    const plan = planPinLayout(found(5, 4), L(3, 1), []);
    expect(plan.action).toBe('refuse');
    const why = plan.action === 'refuse' ? plan.why : '';
    expect(why).toMatch(/pins are layout 5, which only code of layout 4 or later can use; this build is layout 3/);
    expect(why).toMatch(/docs\/upgrades\.md/);
    expect(why).not.toMatch(/remove|delete/i);
  });
  it("this build's own layout is reachable from layout 1 through its migrations", () => {
    const plan = planPinLayout(found(1, 1, false), PIN_LAYOUT, PIN_MIGRATIONS);
    expect(plan.action).not.toBe('refuse');
  });
});

describe('state files across layouts', () => {
  const file = { containerId: 'c', ifname: 'eth0' };
  it('a file without a layout is layout 1; the same layout is read as it is', () => {
    expect(stateInOwnLayout(file, L(1, 1), [])).toBe(file);
    expect(stateInOwnLayout({ ...file, layout: L(1, 1) }, L(1, 1), [])).toEqual({ ...file, layout: L(1, 1) });
  });
  it('an older file is migrated step by step and comes out in the own layout', () => {
    const migrations = [
      { to: 2, up: (f: Record<string, unknown>) => ({ ...f, network: 'n' }) },
      { to: 3, up: (f: Record<string, unknown>) => ({ ...f, ifname: `${f.ifname}-3` }) },
    ];
    expect(stateInOwnLayout(file, L(3, 2), migrations)).toEqual({ containerId: 'c', ifname: 'eth0-3', network: 'n', layout: L(3, 2) });
    expect(() => stateInOwnLayout(file, L(3, 2), migrations.slice(1))).toThrow(/no migration of state files from layout 1 to 2/);
  });
  it('a newer file is read when its layout says older code can, refused when it says it cannot', () => {
    expect(stateInOwnLayout({ ...file, layout: L(4, 2) }, L(2, 1), [])).toEqual({ ...file, layout: L(4, 2) });
    expect(() => stateInOwnLayout({ ...file, layout: L(4, 3) }, L(2, 1), [])).toThrow(StateLayoutError);
  });
  it('a host-veth file is written so that layout-1 code still reads it; an in-pod one only for layout 2 and later', () => {
    expect(layoutOfState({ placement: 'host-veth' })).toEqual({ version: STATE_LAYOUT.version, readableFrom: 1 });
    expect(layoutOfState({})).toEqual({ version: STATE_LAYOUT.version, readableFrom: 1 });
    expect(layoutOfState({ placement: 'pod' })).toEqual({ version: STATE_LAYOUT.version, readableFrom: 2 });
    expect(() => stateInOwnLayout({ ...file, layout: layoutOfState({ placement: 'pod' }) }, L(1, 1), [])).toThrow(StateLayoutError);
  });
  it('a hostile layout record is refused or read as layout 1, never trusted past what this build can read', () => {
    // Not an object, or without numbers: no record (layout 1), migrated like any file written before layouts.
    for (const layout of ['2', null, [], { version: '9' }])
      expect(stateInOwnLayout({ ...file, layout }, L(2, 1), STATE_MIGRATIONS)).toMatchObject({ layout: L(2, 1) });
    // A layout far ahead that no older code may read, or one below 1: refused.
    expect(() => stateInOwnLayout({ ...file, layout: { version: 1e12 } }, L(2, 1), STATE_MIGRATIONS)).toThrow(StateLayoutError);
    expect(() => stateInOwnLayout({ ...file, layout: { version: -3, readableFrom: -3 } }, L(2, 1), STATE_MIGRATIONS)).toThrow(
      StateLayoutError,
    );
  });
  it("this build's state layout is reachable from layout 1 through its migrations", () => {
    expect(() => stateInOwnLayout(file, STATE_LAYOUT, STATE_MIGRATIONS)).not.toThrow();
  });
});
