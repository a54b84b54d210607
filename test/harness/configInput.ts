/**
 * A bridge's config as a test writes it: what the schema gives a default may be left out (one level deep),
 * and the bridge's validator (validate<Network>Config) fills it in.
 */
export type ConfigInput<T> = {
  [K in keyof T]?: T[K] extends readonly unknown[] ? T[K] : T[K] extends object ? Partial<T[K]> : T[K];
};
