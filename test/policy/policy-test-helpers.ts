import { expect } from 'vitest';
import { PolicyError, type PolicyIssue } from '../../src/policy/policy-error.js';

/** Runs `action`, expects a PolicyError, returns its issues. */
export function policyIssues(action: () => unknown): readonly PolicyIssue[] {
  try {
    action();
  } catch (error) {
    expect(error).toBeInstanceOf(PolicyError);
    return (error as PolicyError).issues;
  }
  throw new Error('expected a PolicyError, got none');
}

/** The same for async actions. */
export async function policyIssuesAsync(action: () => Promise<unknown>): Promise<readonly PolicyIssue[]> {
  try {
    await action();
  } catch (error) {
    expect(error).toBeInstanceOf(PolicyError);
    return (error as PolicyError).issues;
  }
  throw new Error('expected a PolicyError, got none');
}

/** YAML written indented in a template literal, with the common indentation and the first newline removed. */
export function yaml(text: string): string {
  const lines = text.replace(/^\n/, '').split('\n');
  const indent = Math.min(...lines.filter((line) => line.trim() !== '').map((line) => line.match(/^ */)![0].length));
  return lines.map((line) => line.slice(indent)).join('\n');
}
