import { mkdtempSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { resolveAuditKey } from '../../src/audit/audit-key.js';

const dir = () => mkdtempSync(join(tmpdir(), 'bw-audit-key-'));

describe('the audit checkpoint key', () => {
  it('is generated once into the data directory, readable by its owner only, and reused', () => {
    const dataDir = dir();
    const first = resolveAuditKey({}, undefined, dataDir);
    expect(first.source).toBe(`${join(dataDir, 'audit-key')} (generated)`);
    expect(statSync(join(dataDir, 'audit-key')).mode & 0o777).toBe(0o600);
    expect(first.key.length).toBeGreaterThanOrEqual(32);
    expect(resolveAuditKey({}, undefined, dataDir).key.equals(first.key)).toBe(true);
    expect(resolveAuditKey({}, undefined, dir()).key.equals(first.key)).toBe(false);
  });

  it('comes from BREAKWATER_AUDIT_KEY before a file, and from the named file before a generated one', () => {
    const dataDir = dir();
    const file = join(dataDir, 'operator-key');
    writeFileSync(file, 'file-key-0123456789abcdef\n');
    expect(resolveAuditKey({ BREAKWATER_AUDIT_KEY: 'env-key-0123456789abcdef' }, file, dataDir).key.toString()).toBe('env-key-0123456789abcdef');
    expect(resolveAuditKey({}, file, dataDir)).toEqual({ key: Buffer.from('file-key-0123456789abcdef'), source: file });
    expect(() => readFileSync(join(dataDir, 'audit-key'))).toThrow(/ENOENT/);
  });

  it('refuses a short or empty key from any source, naming the source and never the value', () => {
    expect(() => resolveAuditKey({ BREAKWATER_AUDIT_KEY: 'short' }, undefined, dir())).toThrow('audit key: environment variable BREAKWATER_AUDIT_KEY holds fewer than 16 characters');
    expect(() => resolveAuditKey({ BREAKWATER_AUDIT_KEY: '  ' }, undefined, dir())).toThrow(/BREAKWATER_AUDIT_KEY is empty: set it/);
    const file = join(dir(), 'k');
    writeFileSync(file, 'tiny');
    expect(() => resolveAuditKey({}, file, dir())).toThrow(`audit key: ${file} holds fewer than 16 characters`);
    expect(() => resolveAuditKey({}, join(dir(), 'missing'), dir())).toThrow(/audit key: cannot read .*missing \(ENOENT\)/);
  });
});
