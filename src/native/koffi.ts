/** The koffi FFI module, loaded once; bundles swap it for the addon carried inside the executable. */
import koffi from 'koffi';

/** koffi's API (an alias so that callers import it from one place). */
export const ffi = koffi;
