// The one error every policy problem becomes, whether it came from breakwater.yaml, a persisted
// document or a run-time change: a list of issues, each naming where (file:line:column) and what
// (the key path), so an operator can go straight to the line.

/** One problem in a policy. line and column are 1-based; 0 when the source has no text (a run-time change). */
export interface PolicyIssue {
  /** the file name, or the name of the source (e.g. `mutation setTenantPolicy`) */
  file: string;
  line: number;
  column: number;
  /** the key path, e.g. `tiers.free.run.toolCallsPerMinute`; `(top level)` for the document itself */
  path: string;
  message: string;
}

/** Past this many issues the message says how many more there were: a hostile file could yield thousands. */
export const MAX_REPORTED_ISSUES = 50;

export class PolicyError extends Error {
  override name = 'PolicyError';
  readonly issues: readonly PolicyIssue[];
  /** issues beyond MAX_REPORTED_ISSUES, counted but not listed */
  readonly omittedIssues: number;

  /** `notListed`: issues the caller counted but did not build (finding their places costs time) */
  constructor(issues: readonly PolicyIssue[], notListed = 0) {
    const listed = issues.slice(0, MAX_REPORTED_ISSUES);
    const omitted = issues.length - listed.length + notListed;
    const lines = listed.map(formatPolicyIssue);
    if (omitted > 0) lines.push(`… and ${omitted} more`);
    super(lines.join('\n'));
    this.issues = Object.freeze(listed.map((issue) => Object.freeze({ ...issue })));
    this.omittedIssues = omitted;
  }
}

/** `breakwater.yaml:12:7 tiers.free.run.toolCallsPerMinute: must be a positive number` */
export function formatPolicyIssue(issue: PolicyIssue): string {
  const where = issue.line > 0 ? `${issue.file}:${issue.line}:${issue.column}` : issue.file;
  return `${where} ${issue.path}: ${issue.message}`;
}

/** A key path as the message shows it: dotted where unambiguous, bracketed where a key has dots or spaces. */
export function formatKeyPath(path: readonly PropertyKey[]): string {
  if (path.length === 0) return '(top level)';
  let text = '';
  for (const segment of path) {
    if (typeof segment === 'number') text += `[${segment}]`;
    else if (/^[A-Za-z_][A-Za-z0-9_-]*$/.test(String(segment))) text += (text ? '.' : '') + String(segment);
    else text += `[${JSON.stringify(String(segment))}]`;
  }
  return text;
}
