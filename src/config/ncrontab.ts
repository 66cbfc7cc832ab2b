/**
 * Six-field NCRONTAB, parsed the way the Functions timer trigger (NCrontab with seconds) parses
 * it. The product validates schedule settings with it at start-up (`/api/ready`); the local host
 * fires timers with it.
 */
import { OpsAutopilotError } from '../errors.ts';

/** A six-field NCRONTAB expression could not be parsed, or never fires. */
export class CronExpressionError extends OpsAutopilotError {
  override readonly name: string = 'CronExpressionError';
}

/**
 * A parsed six-field NCRONTAB expression (`{second} {minute} {hour} {day} {month} {day-of-week}`),
 * the format the Functions timer trigger reads. Evaluated in UTC.
 */
export interface CronSchedule {
  readonly expression: string;
  /** The first occurrence strictly after `after`. */
  nextAfter(after: Date): Date;
}

interface FieldSpec {
  readonly label: string;
  readonly min: number;
  readonly max: number;
  readonly names?: readonly string[];
}

const FIELDS: readonly FieldSpec[] = [
  { label: 'second', min: 0, max: 59 },
  { label: 'minute', min: 0, max: 59 },
  { label: 'hour', min: 0, max: 23 },
  { label: 'day', min: 1, max: 31 },
  {
    label: 'month',
    min: 1,
    max: 12,
    names: ['JANUARY', 'FEBRUARY', 'MARCH', 'APRIL', 'MAY', 'JUNE', 'JULY', 'AUGUST', 'SEPTEMBER', 'OCTOBER', 'NOVEMBER', 'DECEMBER'],
  },
  { label: 'day-of-week', min: 0, max: 6, names: ['SUNDAY', 'MONDAY', 'TUESDAY', 'WEDNESDAY', 'THURSDAY', 'FRIDAY', 'SATURDAY'] },
];

function parseValue(text: string, spec: FieldSpec, expression: string): number {
  // NCrontab takes a value that starts with a letter as a name: the first full name it is a
  // (case-insensitive) prefix of, so "Mon", "Monday" and "M" all mean Monday.
  if (/^[A-Za-z]/.test(text) && spec.names) {
    const upper = text.toUpperCase();
    const named = spec.names.findIndex((n) => n.startsWith(upper));
    if (named >= 0) return named + spec.min;
    throw new CronExpressionError(
      `NCRONTAB "${expression}": ${spec.label} value "${text}" is not a known name; expected a prefix of one of ${spec.names.join(', ')}`,
      { context: { expression } },
    );
  }
  if (!/^\d+$/.test(text)) {
    throw new CronExpressionError(`NCRONTAB "${expression}": ${spec.label} value "${text}" is not a number or name`, { context: { expression } });
  }
  // Unlike Vixie cron, NCrontab has no 7 for Sunday: day-of-week is 0-6.
  const value = Number(text);
  if (value < spec.min || value > spec.max) {
    throw new CronExpressionError(
      `NCRONTAB "${expression}": ${spec.label} value ${value} is out of range; expected ${spec.min}-${spec.max}`,
      { context: { expression } },
    );
  }
  return value;
}

function parseField(text: string, spec: FieldSpec, expression: string): ReadonlySet<number> {
  const values = new Set<number>();
  for (const part of text.split(',')) {
    const [rangeText = '', stepText] = part.split('/');
    const parsedStep = stepText === undefined ? 1 : Number(stepText);
    if (stepText !== undefined && !/^\d+$/.test(stepText)) {
      throw new CronExpressionError(`NCRONTAB "${expression}": ${spec.label} step "${stepText}" must be a whole number`, { context: { expression } });
    }
    // NCrontab treats a step below 1 as 1.
    const step = Math.max(1, parsedStep);
    let low: number;
    let high: number;
    if (rangeText === '*') {
      low = spec.min;
      high = spec.max;
    } else if (rangeText.includes('-')) {
      const [a = '', b = ''] = rangeText.split('-');
      // NCrontab swaps a backwards range ("22-2" means 2-22); it never wraps around.
      const first = parseValue(a, spec, expression);
      const second = parseValue(b, spec, expression);
      low = Math.min(first, second);
      high = Math.max(first, second);
    } else {
      low = parseValue(rangeText, spec, expression);
      high = stepText === undefined ? low : spec.max;
    }
    for (let v = low; v <= high; v += step) values.add(v);
  }
  return values;
}

/**
 * Parses a six-field NCRONTAB expression. Five-field (minute-first) expressions are rejected:
 * the Functions host requires the seconds field.
 */
export function parseNcrontab(expression: string): CronSchedule {
  const parts = expression.trim().split(/\s+/);
  if (parts.length !== 6) {
    throw new CronExpressionError(
      `NCRONTAB "${expression}" has ${parts.length} fields; expected 6 ({second} {minute} {hour} {day} {month} {day-of-week})`,
      { context: { expression } },
    );
  }
  const sets = FIELDS.map((spec, i) => parseField(parts[i] ?? '', spec, expression));
  const [seconds, minutes, hours, days, months, weekdays] = sets as [
    ReadonlySet<number>, ReadonlySet<number>, ReadonlySet<number>, ReadonlySet<number>, ReadonlySet<number>, ReadonlySet<number>,
  ];
  return {
    expression,
    nextAfter(after: Date): Date {
      const t = new Date(Math.floor(after.getTime() / 1000) * 1000 + 1000);
      // Bounded search: an expression such as "0 0 0 31 2 *" never matches.
      const limit = after.getTime() + 5 * 366 * 24 * 3600 * 1000;
      while (t.getTime() <= limit) {
        if (!months.has(t.getUTCMonth() + 1)) {
          t.setUTCMonth(t.getUTCMonth() + 1, 1);
          t.setUTCHours(0, 0, 0, 0);
          continue;
        }
        // NCRONTAB requires both day-of-month and day-of-week to match.
        if (!days.has(t.getUTCDate()) || !weekdays.has(t.getUTCDay())) {
          t.setUTCDate(t.getUTCDate() + 1);
          t.setUTCHours(0, 0, 0, 0);
          continue;
        }
        if (!hours.has(t.getUTCHours())) {
          t.setUTCHours(t.getUTCHours() + 1, 0, 0, 0);
          continue;
        }
        if (!minutes.has(t.getUTCMinutes())) {
          t.setUTCMinutes(t.getUTCMinutes() + 1, 0, 0);
          continue;
        }
        if (!seconds.has(t.getUTCSeconds())) {
          t.setUTCSeconds(t.getUTCSeconds() + 1, 0);
          continue;
        }
        return t;
      }
      throw new CronExpressionError(`NCRONTAB "${expression}" has no occurrence within five years after ${after.toISOString()}`, { context: { expression } });
    },
  };
}
