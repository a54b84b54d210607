/** How many entries each of the bridge's in-memory maps keeps (BoundedMap). */
export const CACHE_SIZE = 5000;
