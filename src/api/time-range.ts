// The time ranges history fields take: absolute (`from`, `to`), relative (`last: "1h"`, ending at
// `to` or now), or neither (the last hour, for series; everything, for event lists).

import { HistoryRangeError } from './history.js';

export interface RangeArgs {
  from?: Date | null;
  to?: Date | null;
  last?: string | null;
}

const UNIT_MS: Record<string, number> = { s: 1_000, m: 60_000, h: 3_600_000, d: 86_400_000, w: 604_800_000 };
const DURATION = /^(\d{1,6})\s*(s|m|h|d|w)$/;

/** The series default when no range is given. */
export const DEFAULT_SERIES_MS = 3_600_000;

/** Milliseconds of a duration such as `90s`, `15m`, `1h`, `7d`, `2w`. */
export function durationMs(text: string): number {
  const match = DURATION.exec(text.trim());
  const ms = match === null ? 0 : Number(match[1]) * UNIT_MS[match[2]!]!;
  if (ms <= 0) throw new HistoryRangeError(`last must be a positive whole number with a unit s, m, h, d or w (such as "15m", "1h", "7d"), not ${JSON.stringify(text)}`);
  return ms;
}

/** A closed range for a series: `last` or `from` (else the default span) up to `to` (else now). */
export function seriesRange(args: RangeArgs, nowMs: number, defaultMs = DEFAULT_SERIES_MS): { from: Date; to: Date } {
  if (args.last != null && args.from != null) throw new HistoryRangeError('give either last or from, not both');
  const to = args.to ?? new Date(nowMs);
  const from = args.from ?? new Date(to.getTime() - (args.last != null ? durationMs(args.last) : defaultMs));
  return { from, to };
}

/** An open range for an event list: each bound only where given, `last` counting back from `to` or now. */
export function eventRange(args: RangeArgs, nowMs: number): { from?: number; to?: number } {
  if (args.last != null && args.from != null) throw new HistoryRangeError('give either last or from, not both');
  const to = args.to?.getTime();
  const from = args.last != null ? (to ?? nowMs) - durationMs(args.last) : args.from?.getTime();
  return { ...(from !== undefined ? { from } : {}), ...(to !== undefined ? { to } : {}) };
}
