// Days and ranges, all in UTC. A range is { from, to }: ISO instants, `to` exclusive. The date
// inputs name whole days, `to` being the last day included.

export const DAY_MS = 86_400_000;
const DAY_S = 86_400;

// Milliseconds -> "2025-01-05".
export function isoDay(ms) {
  return new Date(ms).toISOString().slice(0, 10);
}

// "2025-01-05" -> its first millisecond.
export function dayStart(day) {
  return Date.parse(`${day}T00:00:00Z`);
}

// The range of the days from `fromDay` to `toDay`, both included; an Error a person can read
// when a day is missing or they are the wrong way round.
export function rangeOfDays(fromDay, toDay) {
  if (!fromDay || !toDay) throw new Error("Choose both dates.");
  if (fromDay > toDay) throw new Error("The start date is after the end date.");
  return {
    from: new Date(dayStart(fromDay)).toISOString(),
    to: new Date(dayStart(toDay) + DAY_MS).toISOString(),
  };
}

// The reverse of rangeOfDays: the first and the last day the range includes.
export function daysOfRange(range) {
  return { fromDay: isoDay(Date.parse(range.from)), toDay: isoDay(Date.parse(range.to) - 1) };
}

// Every UTC day the range touches, so days without usage are drawn as zero.
export function daysOf(range) {
  const days = [];
  const last = Date.parse(range.to) - 1;
  for (let t = dayStart(isoDay(Date.parse(range.from))); t <= last; t += DAY_MS) {
    days.push(isoDay(t));
  }
  return days;
}

// The days drawn: the range's, but none after `today` (or after the last day with usage), so a
// cycle that has just begun is not a year of empty space.
export function chartDays(range, usageDays, today) {
  const last = [today, ...usageDays].sort().at(-1);
  return daysOf(range).filter((day) => day <= last);
}

// Tick positions (in seconds, uPlot's unit) on whole UTC days between `min` and `max`, at most
// about `labels` of them, evenly stepped.
export function dayTicks(min, max, labels) {
  const first = dayStart(isoDay(Math.ceil(min) * 1000)) / 1000;
  const days = Math.floor((max - first) / DAY_S) + 1;
  const step = Math.max(1, Math.ceil(days / labels));
  const ticks = [];
  for (let t = first < min ? first + DAY_S : first; t <= max; t += step * DAY_S) ticks.push(t);
  return ticks;
}
