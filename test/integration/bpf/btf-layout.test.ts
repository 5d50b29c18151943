/** The TS mirrors of bpf/include/afsteer_maps.h and afsteer_echo.h match the compiled objects' BTF, field for field. */
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { ECHO_LAYOUTS, ECHO_MAPS } from '../../../src/bpf/echo-maps';
import { ALL_LAYOUTS, MAPS, type StructLayout } from '../../../src/bpf/maps-layout';
import { ROOT, sh } from '../../support/world';

interface BtfType {
  id: number;
  kind: string;
  name: string;
  size?: number;
  members?: { name: string; type_id: number; bits_offset: number }[];
  type_id?: number;
  nr_elems?: number;
}
interface MapDef {
  name: string;
  keySize: number;
  valueSize: number;
  maxEntries: number;
}

const OBJECTS: { file: string; layouts: readonly StructLayout[]; maps: Record<string, MapDef> }[] = [
  { file: 'afsteer.bpf.o', layouts: ALL_LAYOUTS, maps: MAPS },
  { file: 'afsteer_echo.bpf.o', layouts: ECHO_LAYOUTS, maps: ECHO_MAPS },
];

for (const obj of OBJECTS) {
  describe(`BTF layout check: ${obj.file}`, () => {
    const types = (JSON.parse(sh('bpftool', ['btf', 'dump', 'file', join(ROOT, 'build', obj.file), '-j'])) as { types: BtfType[] }).types;
    const byId = new Map(types.map((t) => [t.id, t]));
    const sizeOf = (id: number): number => {
      const t = byId.get(id)!;
      if (t.kind === 'TYPEDEF' || t.kind === 'CONST' || t.kind === 'VOLATILE') return sizeOf(t.type_id!);
      if (t.kind === 'ARRAY') return sizeOf((t as unknown as { type_id: number }).type_id) * t.nr_elems!;
      return t.size!;
    };

    for (const layout of obj.layouts) {
      it(`struct ${layout.name}`, () => {
        const s = types.find((t) => t.kind === 'STRUCT' && t.name === layout.name);
        expect(s, `struct ${layout.name} in BTF`).toBeDefined();
        expect(s!.size).toBe(layout.size);
        const members = Object.fromEntries(s!.members!.map((m) => [m.name, { offset: m.bits_offset / 8, size: sizeOf(m.type_id) }]));
        expect(members).toEqual(layout.fields);
      });
    }

    it('map definitions (key/value sizes, capacity)', () => {
      const sec = types.find((t) => t.kind === 'DATASEC' && t.name === '.maps') as unknown as { vars: { type_id: number }[] };
      expect(sec).toBeDefined();
      // libbpf's __uint(x, N) is `int (*x)[N]`, __type(x, T) is `T *x`.
      const deref = (id: number) => byId.get(byId.get(id)!.type_id!)!;
      const found: Record<string, Omit<MapDef, 'name'>> = {};
      for (const v of sec.vars) {
        const variable = byId.get(v.type_id)!;
        const def = byId.get(variable.type_id!)!;
        const m = Object.fromEntries(def.members!.map((x) => [x.name, x.type_id]));
        found[variable.name] = {
          keySize: sizeOf(deref(m.key!).id),
          valueSize: sizeOf(deref(m.value!).id),
          maxEntries: deref(m.max_entries!).nr_elems!,
        };
      }
      const want = Object.fromEntries(
        Object.values(obj.maps).map((x) => [x.name, { keySize: x.keySize, valueSize: x.valueSize, maxEntries: x.maxEntries }]),
      );
      expect(found).toEqual(want);
    });
  });
}
