/* Build-time replacement for node-gyp-build (used by netlink) inside the single executable. */
'use strict';
module.exports = () => require('./embedded-addon.cjs').loadEmbeddedAddon('netlink.node');
