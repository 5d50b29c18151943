/* Build-time replacement for node-gyp-build (used by netlink) inside the single executable:
 * the addon is loaded when netlink first touches it (creating a socket), not at module init. */
'use strict';
module.exports = () => {
  let real;
  const load = () => (real ??= require('./embedded-addon.cjs').loadEmbeddedAddon('netlink.node'));
  return new Proxy({}, { get: (_, key) => load()[key] });
};
