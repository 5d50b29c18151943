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

/** Every migration of this build, by target layout (none yet: layout 1 is the first recorded). */
export const PIN_MIGRATIONS: readonly PinMigration[] = [];
