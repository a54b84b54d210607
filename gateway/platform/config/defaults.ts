/**
 * The gateway section's defaults where the section itself may be absent (the schema's defaults apply only
 * inside a section that is present); test/unit/config checks they equal the schema's.
 */
export const DEFAULTS = { ackWaitMs: 30_000, duplicateWindowMs: 600_000, maxDeliver: 20 } as const;
