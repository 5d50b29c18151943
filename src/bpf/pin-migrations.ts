/**
 * The pin layout's migrations, one per layout after the first (src/bpf/layout-version.ts). A change
 * to a pinned map bumps PIN_LAYOUT.version and adds its step here, in the same commit:
 *   - a map added: `up` does nothing (loading the object pins the new map); readableFrom unchanged;
 *   - a map's key, value, size or meaning changed: the map gets a new pin name (e.g.
 *     afsteer_endpoints_v2; older code keeps the old one, never a map of another shape), `up`
 *     fills it from the old map (openable by name), `retires` names the old pin (removed once no
 *     older program is pinned), and readableFrom becomes the new version.
 * Steps run in order under the node lock, each recorded as it completes; then every pod and bridge
 * is moved onto the new programs (tc filter replace) and program pins no attachment uses are removed.
 */
import type { PinMigration } from './pin-layout';

/** Every migration of this build, by target layout. */
export const PIN_MIGRATIONS: readonly PinMigration[] = [
  {
    // Additive only: a layout-1 object's programs never name the new maps, and run only on host
    // veths, whose filters carry no classid, so they never meet an in-pod key (docs/upgrades.md).
    to: 2,
    readableFrom: 1,
    what:
      'maps added (afsteer_pair_seen; the echo reflector allow-list, token buckets and refusal counts, whose object replaces its own pins); ' +
      'endpoint keys AFSTEER_EP_KEY_POD | id for attachments inside a pod (secondary networks), host-veth keys unchanged',
    up: () => {
      // Nothing to fill: loading this build's object pinned the new maps, empty as they start.
    },
  },
];
