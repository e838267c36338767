import { appendFileSync, mkdtempSync, readdirSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { WriteAheadLog } from '../../src/audit/write-ahead-log.js';

const dir = () => mkdtempSync(join(tmpdir(), 'bw-wal-'));

describe('WriteAheadLog', () => {
  it('gives back, in order, every record a previous process appended and did not release', () => {
    const d = dir();
    const { wal, records } = WriteAheadLog.open(d);
    expect(records).toEqual([]);
    const ids = [wal.append({ n: 1 }), wal.append({ n: 2 }), wal.append({ n: 3 })];
    wal.release(ids[0]!);
    // No close(): the process is killed; what write() put in the file is there.
    const reopened = WriteAheadLog.open(d);
    expect(reopened.records.map((r) => r.value)).toEqual([{ n: 1 }, { n: 2 }, { n: 3 }]);
    expect(reopened.records.map((r) => r.id)).toEqual(ids);
    // New records continue the ids: a replayed id never names a new record.
    expect(reopened.wal.append({ n: 4 })).toBe(4);
    reopened.wal.close();
  });

  it('stops at a torn last line and keeps the records before it', () => {
    const d = dir();
    const { wal } = WriteAheadLog.open(d);
    wal.append({ n: 1 });
    wal.append({ n: 2 });
    wal.close();
    const [segment] = readdirSync(d);
    appendFileSync(join(d, segment!), '{"n": 3, "half');
    expect(WriteAheadLog.open(d).records.map((r) => r.value)).toEqual([{ n: 1 }, { n: 2 }]);
  });

  it('deletes segments once everything in them is released, and empty segments at open', () => {
    const d = dir();
    const { wal } = WriteAheadLog.open(d, { segmentBytes: 64 });
    const ids: number[] = [];
    for (let i = 0; i < 20; i++) ids.push(wal.append({ i, pad: 'x'.repeat(20) }));
    expect(wal.segmentCount).toBeGreaterThan(3);
    wal.release(ids[9]!);
    expect(wal.pending).toBe(10);
    const left = WriteAheadLog.open(d).records.map((r) => (r.value as { i: number }).i);
    // Whole segments go: what is left starts at a segment boundary at or before record 10.
    expect(left[left.length - 1]).toBe(19);
    expect(left[0]).toBeLessThanOrEqual(10);
    expect(left[0]).toBeGreaterThan(0);

    const e = dir();
    writeFileSync(join(e, 'wal-0000000000000001.jsonl'), '');
    const opened = WriteAheadLog.open(e);
    expect(opened.records).toEqual([]);
    expect(readdirSync(e)).toHaveLength(1); // the fresh segment only
  });

  it('refuses appends after close', () => {
    const { wal } = WriteAheadLog.open(dir());
    wal.close();
    expect(() => wal.append({})).toThrow(/closed/);
  });
});
