import { describe, expect, it } from 'vitest';
import { parseNcrontab } from '../../../src/config/ncrontab.ts';

// NCrontab's parsing rules as the Functions timer trigger applies them (CrontabSchedule with
// IncludingSeconds): value names are any prefix of the full English name, day-of-week is 0-6,
// a backwards range is swapped, a zero step means every value, and both day fields must match.
describe('NCRONTAB as NCrontab parses it', () => {
  const next = (expression: string, after: string): string => parseNcrontab(expression).nextAfter(new Date(after)).toISOString();

  it('accepts full and abbreviated names, case-insensitively, as prefixes of the full name', () => {
    expect(next('0 0 9 * * Monday', '2025-03-01T00:00:00Z')).toBe('2025-03-03T09:00:00.000Z');
    expect(next('0 0 9 * * mon', '2025-03-01T00:00:00Z')).toBe('2025-03-03T09:00:00.000Z');
    expect(next('0 0 9 * * Thurs', '2025-03-01T00:00:00Z')).toBe('2025-03-06T09:00:00.000Z');
    expect(next('0 0 0 1 January *', '2025-03-01T00:00:00Z')).toBe('2026-01-01T00:00:00.000Z');
    expect(next('0 0 0 1 Sept *', '2025-03-01T00:00:00Z')).toBe('2025-09-01T00:00:00.000Z');
    expect(next('0 0 0 1 Jan-Mar *', '2025-03-02T00:00:00Z')).toBe('2026-01-01T00:00:00.000Z');
  });

  it('rejects names that are not a prefix of any full name', () => {
    expect(() => parseNcrontab('0 0 9 * * Mondays')).toThrow(/day-of-week value "Mondays"/);
    expect(() => parseNcrontab('0 0 9 * Jab *')).toThrow(/month value "Jab"/);
  });

  it('rejects day-of-week 7 (NCrontab allows 0-6 only)', () => {
    expect(() => parseNcrontab('0 0 9 * * 7')).toThrow(/day-of-week value 7 is out of range; expected 0-6/);
  });

  it('swaps a backwards range and treats a zero step as every value', () => {
    // Swapped to 2-22 (not a wrap-around to 22:00).
    expect(next('0 0 22-2 * * *', '2025-03-01T03:00:00Z')).toBe('2025-03-01T04:00:00.000Z');
    expect(next('0 */0 * * * *', '2025-03-01T00:00:30Z')).toBe('2025-03-01T00:01:00.000Z');
  });

  it('requires both day-of-month and day-of-week to match', () => {
    // 13th of a month that falls on a Friday: 2025-06-13.
    expect(next('0 0 0 13 * FRI', '2025-03-01T00:00:00Z')).toBe('2025-06-13T00:00:00.000Z');
  });
});
