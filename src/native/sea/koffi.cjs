/* Build-time replacement for the koffi package inside the single executable. */
'use strict';
module.exports = require('./embedded-addon.cjs').loadEmbeddedAddon('koffi.node');
