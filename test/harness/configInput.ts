/**
 * A config (or a bridge's section) as a test writes it: what the schema gives a default may be left out, one
 * level deep; the validator fills it in (loadConfig, or the bridge's validate<Network>Config).
 */
export type ConfigInput<T> = {
  [K in keyof T]?: NonNullable<T[K]> extends readonly unknown[]
    ? T[K]
    : NonNullable<T[K]> extends object
      ? Partial<NonNullable<T[K]>>
      : T[K];
};
