/* Build-time replacement for the koffi package inside the single executable: the addon is
 * extracted and dlopen'ed on first use, so VERSION never loads it and the build-time preload
 * (scripts/make-code-cache.cjs) never does. */
'use strict';
let real;
const load = () => (real ??= require('./embedded-addon.cjs').loadEmbeddedAddon('koffi.node'));
module.exports = new Proxy(
  {},
  {
    get(_, key) {
      const v = load()[key];
      return typeof v === 'function' ? v.bind(load()) : v;
    },
  },
);
