// Balances at past instants (R38's balanceAt): the instant a "balance on date" picker names, and
// the day-end balances the daily chart draws as a line, asked for in one request.

// The most day-ends asked for at once: one request of aliased balanceAt fields, under the
// server's limit of 30 aliases a document (graphql_schema/schema.py: MAX_ALIASES).
export const MAX_POINTS = 28;

// The last instant of a UTC day: balanceAt counts a change made exactly at `at`, and a change
// at the next midnight belongs to the next day.
export function dayEnd(day) {
  return `${day}T23:59:59.999999Z`;
}

// The days whose day-end balance is asked for: those drawn from the workspace's creation day
// on and before today (today's is the balance now; a day-end still to come is "in the future"
// to balanceAt), at most `max` of them, spread evenly and always with the latest.
export function balanceDays(days, { today, createdDay, max = MAX_POINTS }) {
  const past = days.filter((day) => day >= createdDay && day < today);
  if (past.length <= max) return past;
  const step = (past.length - 1) / (max - 1);
  const picked = [];
  for (let i = 0; i < max; i++) picked.push(past[Math.round(i * step)]);
  return [...new Set(picked)];
}

// One document asking balanceAt for each day's end: { query, variables, aliases: day -> alias }.
export function balancesRequest(days) {
  const names = days.map((_, i) => `b${i}`);
  const params = names.map((name) => `$${name}: DateTime!`).join(", ");
  const fields = names.map((name) => `${name}: balanceAt(at: $${name}) { dataCredits }`);
  return {
    query: `query Balances(${params}) {\n  ${fields.join("\n  ")}\n}`,
    variables: Object.fromEntries(days.map((day, i) => [names[i], dayEnd(day)])),
    aliases: new Map(days.map((day, i) => [day, names[i]])),
  };
}

// The answer of balancesRequest as day -> Data Credits balance (Decimal strings), with today's
// balance `now` (the workspace as shown) when `today` is one of the days.
export function balancesByDay(request, data, { today, now, days }) {
  const byDay = new Map();
  for (const [day, alias] of request.aliases) byDay.set(day, data[alias].dataCredits);
  if (days.includes(today) && now !== null && now !== undefined) byDay.set(today, now);
  return byDay;
}

// What a datetime-local input holds ("2026-12-06T07:30" or with seconds, read as UTC like
// every time on the page) as an ISO instant, or null when it is empty or malformed.
export function instantOfInput(value) {
  const match = /^(\d{4}-\d{2}-\d{2})T(\d{2}):(\d{2})(?::(\d{2})(\.\d{1,3})?)?$/.exec(value ?? "");
  if (!match) return null;
  const [, day, hours, minutes, seconds = "00", fraction = ""] = match;
  const iso = `${day}T${hours}:${minutes}:${seconds}${fraction}Z`;
  return Number.isNaN(Date.parse(iso)) ? null : iso;
}

// An ISO instant as a datetime-local input's value, to the second, in UTC.
export function inputOfInstant(ms) {
  return new Date(ms).toISOString().slice(0, 19);
}
