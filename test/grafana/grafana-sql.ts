// What Grafana does to a ClickHouse query before the server sees it, for exactly the macros and
// variable forms the bundled dashboards and alert rules use. Anything else is an error, so a file
// cannot start relying on an expansion these tests do not reproduce.
//
// Two stages, in Grafana's order:
// 1. The browser (dashboards only; alert rules are evaluated by the server and get no variables):
//    Grafana's template service replaces dashboard variables - `$name`, `${name}`, `${name:format}`.
//    The grafana-clickhouse-datasource passes its own format function for the plain forms: a single
//    value is inserted as it is (so quote it yourself), a multi-value as 'a','b'. `${name:singlequote}`
//    is Grafana's format: each value in single quotes with ' escaped as \', joined by commas.
//    Names starting with `__` that are not variables (the plugin's macros) are left alone.
// 2. The plugin's backend (pkg/macros/macros.go in grafana/clickhouse-datasource, applied by sqlds):
//    $__timeFilter(col)   col >= toDateTime(<from s>) AND col <= toDateTime(<to s>)
//    $__fromTime          toDateTime(<from s>)          (seconds: time.Unix(), i.e. floored)
//    $__toTime            toDateTime(<to s>)
//    $__timeInterval(col) toStartOfInterval(toDateTime(col), INTERVAL <interval s> second)
//    $__interval_s        <interval s>                  (the query interval in whole seconds, at least 1)

export type VariableValue = string | string[];

export interface ExpansionContext {
  /** dashboard time range, ms since the epoch */
  fromMs: number;
  toMs: number;
  /** the query interval Grafana computed for the panel */
  intervalMs: number;
}

const BROWSER_VARIABLE = /\$(\w+)|\$\{(\w+)(?::(\w+))?\}/g;
const MACRO = /\$__(\w+)/g;
const SUPPORTED_MACROS = new Set(['timeFilter', 'fromTime', 'toTime', 'timeInterval', 'interval_s']);

/** Stage 1: dashboard variables, as Grafana's template service with the ClickHouse data source's formatter. */
export function interpolateVariables(sql: string, variables: Readonly<Record<string, VariableValue>>): string {
  return sql.replace(BROWSER_VARIABLE, (whole, bare: string | undefined, braced: string | undefined, format: string | undefined) => {
    const name = (bare ?? braced)!;
    const value = variables[name];
    if (value === undefined) {
      if (name.startsWith('__')) return whole; // a backend macro (or a Grafana built-in the tests reject later)
      throw new Error(`query uses $${name}, which the dashboard does not define`);
    }
    if (format === undefined) return Array.isArray(value) ? `'${value.join("','")}'` : value;
    if (format === 'singlequote') return (Array.isArray(value) ? value : [value]).map((v) => `'${v.replace(/'/g, "\\'")}'`).join(',');
    throw new Error(`variable format :${format} is not reproduced by these tests`);
  });
}

/** Stage 2: the plugin's backend macros. */
export function expandMacros(sql: string, context: ExpansionContext): string {
  const fromSec = Math.floor(context.fromMs / 1000);
  const toSec = Math.floor(context.toMs / 1000);
  const intervalSec = Math.max(1, Math.floor(context.intervalMs / 1000));
  let out = '';
  let at = 0;
  for (const match of sql.matchAll(MACRO)) {
    const start = match.index;
    if (start < at) continue; // inside an argument already consumed
    const name = match[1]!;
    if (!SUPPORTED_MACROS.has(name)) throw new Error(`macro $__${name} is not reproduced by these tests`);
    out += sql.slice(at, start);
    let end = start + match[0].length;
    let args: string[] = [];
    if (name === 'timeFilter' || name === 'timeInterval') {
      if (sql[end] !== '(') throw new Error(`$__${name} needs an argument`);
      const close = closingParenthesis(sql, end);
      args = splitArguments(sql.slice(end + 1, close));
      end = close + 1;
      if (args.length !== 1) throw new Error(`$__${name} takes 1 argument, got ${args.length}`);
    }
    const column = args[0] ?? '';
    switch (name) {
      case 'timeFilter':
        out += `${column} >= toDateTime(${fromSec}) AND ${column} <= toDateTime(${toSec})`;
        break;
      case 'fromTime':
        out += `toDateTime(${fromSec})`;
        break;
      case 'toTime':
        out += `toDateTime(${toSec})`;
        break;
      case 'timeInterval':
        out += `toStartOfInterval(toDateTime(${column}), INTERVAL ${intervalSec} second)`;
        break;
      case 'interval_s':
        out += String(intervalSec);
        break;
    }
    at = end;
  }
  return out + sql.slice(at);
}

export function expandDashboardQuery(sql: string, variables: Readonly<Record<string, VariableValue>>, context: ExpansionContext): string {
  return expandMacros(interpolateVariables(sql, variables), context);
}

function closingParenthesis(sql: string, open: number): number {
  let depth = 0;
  for (let i = open; i < sql.length; i++) {
    if (sql[i] === '(') depth++;
    else if (sql[i] === ')' && --depth === 0) return i;
  }
  throw new Error(`unbalanced parentheses after position ${open}`);
}

function splitArguments(text: string): string[] {
  const args: string[] = [];
  let depth = 0;
  let start = 0;
  for (let i = 0; i < text.length; i++) {
    if (text[i] === '(') depth++;
    else if (text[i] === ')') depth--;
    else if (text[i] === ',' && depth === 0) {
      args.push(text.slice(start, i).trim());
      start = i + 1;
    }
  }
  args.push(text.slice(start).trim());
  return args.filter((a) => a !== '');
}
