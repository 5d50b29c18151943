/**
 * Chaining afsteer into a NetworkAttachmentDefinition's CNI config (pure): the named NAD out of a
 * `kubectl get net-attach-def [NAME] -o json` document (one object, or a List), its spec.config
 * (a single plugin's config, made a conflist, or a conflist) with afsteer appended last — the
 * same rules as the node's conflist (plan.ts chainConflist) — and the NAD again, without the
 * fields the API server sets, ready for `kubectl apply -f -`.
 */
import { chainConflist, InstallRefusal } from './plan';

/** Fields the API server sets, dropped so the printed object applies cleanly. */
const SERVER_FIELDS = ['resourceVersion', 'uid', 'creationTimestamp', 'generation', 'managedFields', 'selfLink'] as const;

type Obj = Record<string, unknown>;
const isObj = (v: unknown): v is Obj => typeof v === 'object' && v !== null && !Array.isArray(v);

/** The NAD called name in doc (a NetworkAttachmentDefinition, or a List of them). */
export function findNad(doc: unknown, name: string): Obj {
  const items = isObj(doc) && Array.isArray(doc.items) ? doc.items : [doc];
  const nads = items.filter((i): i is Obj => isObj(i) && i.kind === 'NetworkAttachmentDefinition');
  const found = nads.find((n) => isObj(n.metadata) && n.metadata.name === name);
  if (!found) {
    const names = nads.map((n) => (isObj(n.metadata) ? String(n.metadata.name) : '?'));
    throw new InstallRefusal(
      `no NetworkAttachmentDefinition named ${JSON.stringify(name)} in the input${names.length ? ` (it has ${names.join(', ')})` : ''}`,
    );
  }
  return found;
}

/**
 * The NAD with afsteer chained into its spec.config (extra: afsteer's keys; allow: more plugin
 * types to chain after). Already chained: undefined with the entry that is there.
 */
export function chainNad(nad: Obj, extra: Obj, allow: readonly string[] = []): { nad?: Obj; already?: Obj } {
  const name = isObj(nad.metadata) ? String(nad.metadata.name) : '?';
  const spec = isObj(nad.spec) ? nad.spec : undefined;
  if (!spec || typeof spec.config !== 'string')
    throw new InstallRefusal(`NetworkAttachmentDefinition ${name} has no spec.config (a CNI config as a JSON string)`);
  let conf: unknown;
  try {
    conf = JSON.parse(spec.config);
  } catch (err) {
    throw new InstallRefusal(`NetworkAttachmentDefinition ${name}: spec.config is not valid JSON (${(err as Error).message})`);
  }
  if (!isObj(conf)) throw new InstallRefusal(`NetworkAttachmentDefinition ${name}: spec.config is not a JSON object`);
  // A single plugin's config becomes a one-plugin conflist (Multus takes either).
  let list = conf;
  if (!Array.isArray(conf.plugins)) {
    const { cniVersion, name: netName, ...plugin } = conf;
    list = { cniVersion, name: netName, plugins: [plugin] };
  }
  if (typeof list.name !== 'string' || !list.name)
    throw new InstallRefusal(`NetworkAttachmentDefinition ${name}: spec.config has no "name" (afsteerd's networks[].name is that name)`);
  const c = chainConflist(`${name}.conflist`, JSON.stringify(list, null, 2), extra, allow);
  if (c.already) return { already: c.already };
  const metadata = { ...(nad.metadata as Obj) };
  for (const f of SERVER_FIELDS) delete metadata[f];
  if (isObj(metadata.annotations)) {
    const annotations = { ...metadata.annotations };
    delete annotations['kubectl.kubernetes.io/last-applied-configuration'];
    metadata.annotations = annotations;
  }
  const { status: _status, ...rest } = nad;
  return { nad: { ...rest, metadata, spec: { ...spec, config: c.text!.trimEnd() } } };
}
