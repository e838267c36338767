// SpanWriter's batching and acknowledgement rules, against a fake inserter whose inserts the test
// completes by hand. (That the blocks store the right rows is span-block.test.ts's job.)
import type { ClickHouseClient } from '@clickhouse/client';
import { afterEach, describe, expect, it, vi } from 'vitest';
import type { AgentSpan } from '../../src/contracts/agent-span.js';
import type { BlockInserter } from '../../src/storage/span-insert.js';
import { QueueFullError, SpanWriter, WriterClosedError, type SpanWriterOptions } from '../../src/storage/span-writer.js';
import { blankAgentSpan } from '../helpers/agent-span.js';
import { IngestPipeline, type IngestOutcome } from '../../src/app/pipeline.js';
import { SelfMetrics } from '../../src/app/self-metrics.js';
import { RefusalLog } from '../../src/app/refusal-log.js';
import { attrs, filler, modelRequest, modelSpan } from '../helpers/otlp-model.js';

interface PendingInsert {
  rows: number;
  resolve(): void;
  reject(error: Error): void;
}

/** Records every insert; each stays running until the test settles it. */
class FakeInserter implements BlockInserter {
  readonly kind = 'body' as const;
  readonly inserts: PendingInsert[] = [];
  closed = false;

  insert(blocks: readonly Buffer[]): Promise<void> {
    expect(blocks).toHaveLength(1); // one Native block per insert
    return new Promise((resolve, reject) => this.inserts.push({ rows: blockRows(blocks[0]!), resolve, reject }));
  }

  close(): void {
    this.closed = true;
  }

  get running(): PendingInsert[] {
    return this.inserts.filter((i) => !(i as { done?: boolean }).done);
  }

  /** Completes insert `i` (in start order). */
  commit(i: number): void {
    const insert = this.inserts[i]!;
    (insert as { done?: boolean }).done = true;
    insert.resolve();
  }

  fail(i: number, error: Error): void {
    const insert = this.inserts[i]!;
    (insert as { done?: boolean }).done = true;
    insert.reject(error);
  }
}

/** A Native block starts with varuint column count, varuint row count. */
function blockRows(block: Buffer): number {
  let pos = 0;
  const varuint = () => {
    let value = 0;
    for (let shift = 0; ; shift += 7) {
      const b = block[pos++]!;
      value += (b & 0x7f) * 2 ** shift;
      if (b < 0x80) return value;
    }
  };
  varuint();
  return varuint();
}

function spans(n: number, tenant = 't'): AgentSpan[] {
  return Array.from({ length: n }, (_, i) =>
    blankAgentSpan({
      tenantId: tenant,
      runId: 'r',
      traceId: 'ab'.repeat(16),
      spanId: (i + 1).toString(16).padStart(16, '0'),
      name: 'n',
      kind: 1,
      startTimeUnixNano: 1_700_000_000_000_000_000n,
      endTimeUnixNano: 1_700_000_000_000_000_001n,
      serviceName: 's',
      spanAttributes: [{ key: 'k', value: 'v' }],
    }),
  );
}

const noClient = {} as ClickHouseClient;

function writer(options: Partial<SpanWriterOptions> = {}): { writer: SpanWriter; inserter: FakeInserter } {
  const inserter = new FakeInserter();
  const w = new SpanWriter(noClient, {
    table: 'spans',
    batchMaxRows: 1000,
    batchMaxDelayMs: 50,
    queueMaxRows: 5000,
    batchMinRows: 100,
    inserter,
    ...options,
  });
  return { writer: w, inserter };
}

/** Lets promise callbacks run. */
const tick = () => new Promise((resolve) => setImmediate(resolve));

function track(promise: Promise<void>): { settled: () => 'pending' | 'resolved' | Error } {
  let state: 'pending' | 'resolved' | Error = 'pending';
  promise.then(
    () => (state = 'resolved'),
    (err: Error) => (state = err),
  );
  return { settled: () => state };
}

afterEach(() => {
  vi.useRealTimers();
});

describe('SpanWriter', () => {
  it('acknowledges a write only when the insert holding it has committed', async () => {
    const { writer: w, inserter } = writer();
    const write = track(w.write(spans(200), new Float64Array(200)));
    await tick();
    expect(inserter.inserts.map((i) => i.rows)).toEqual([200]); // 200 >= batchMinRows: no waiting
    expect(write.settled()).toBe('pending');
    expect(w.queuedRows).toBe(200);
    inserter.commit(0);
    await tick();
    expect(write.settled()).toBe('resolved');
    expect(w.queuedRows).toBe(0);
  });

  it('gathers the requests arriving during an insert into the next one, as one block', async () => {
    const { writer: w, inserter } = writer();
    const first = track(w.write(spans(300), new Float64Array(300)));
    const during = [200, 150, 250].map((n) => track(w.write(spans(n), new Float64Array(n))));
    await tick();
    expect(inserter.inserts.map((i) => i.rows)).toEqual([300]); // one insert in flight by default
    inserter.commit(0);
    await tick();
    expect(first.settled()).toBe('resolved');
    expect(during.map((d) => d.settled())).toEqual(['pending', 'pending', 'pending']);
    expect(inserter.inserts.map((i) => i.rows)).toEqual([300, 600]);
    inserter.commit(1);
    await tick();
    expect(during.map((d) => d.settled())).toEqual(['resolved', 'resolved', 'resolved']);
  });

  it('never splits a request across inserts, nor lets a batch pass batchMaxRows', async () => {
    const { writer: w, inserter } = writer({ batchMaxRows: 1000 });
    void w.write(spans(100), new Float64Array(100));
    for (let i = 0; i < 3; i++) void w.write(spans(400), new Float64Array(400));
    await tick();
    inserter.commit(0);
    await tick();
    inserter.commit(1);
    await tick();
    expect(inserter.inserts.map((i) => i.rows)).toEqual([100, 800, 400]);
  });

  it('runs up to maxInFlight inserts at once', async () => {
    const { writer: w, inserter } = writer({ maxInFlight: 2 });
    for (let i = 0; i < 3; i++) void w.write(spans(500), new Float64Array(500));
    await tick();
    expect(inserter.inserts.map((i) => i.rows)).toEqual([500, 500]);
    inserter.commit(1);
    await tick();
    expect(inserter.inserts.map((i) => i.rows)).toEqual([500, 500, 500]);
  });

  it('lets a small batch wait up to batchMaxDelayMs for company, then sends it', async () => {
    vi.useFakeTimers();
    const { writer: w, inserter } = writer({ batchMinRows: 1000, batchMaxDelayMs: 50 });
    void w.write(spans(10), new Float64Array(10));
    await vi.advanceTimersByTimeAsync(30);
    void w.write(spans(20), new Float64Array(20));
    expect(inserter.inserts).toHaveLength(0);
    await vi.advanceTimersByTimeAsync(25); // the first row has now waited 55 ms
    expect(inserter.inserts.map((i) => i.rows)).toEqual([30]);
  });

  it('refuses what does not fit the queue, admitting nothing, and makes room as inserts end', async () => {
    const { writer: w, inserter } = writer({ queueMaxRows: 1000 });
    void w.write(spans(600), new Float64Array(600));
    expect(w.hasRoomFor(500)).toBe(false);
    await expect(w.write(spans(500), new Float64Array(500))).rejects.toBeInstanceOf(QueueFullError);
    expect(w.queuedRows).toBe(600);
    await tick();
    inserter.commit(0);
    await tick();
    expect(w.queuedRows).toBe(0);
    expect(w.hasRoomFor(1000)).toBe(true);
  });

  it('fails the requests of a failed insert only, and keeps going', async () => {
    const { writer: w, inserter } = writer();
    const a = track(w.write(spans(200), new Float64Array(200)));
    await tick();
    const b = track(w.write(spans(200), new Float64Array(200)));
    inserter.fail(0, new Error('engine down'));
    await tick();
    expect(a.settled()).toBeInstanceOf(Error);
    expect(w.queuedRows).toBe(200);
    inserter.commit(1);
    await tick();
    expect(b.settled()).toBe('resolved');
    expect(w.queuedRows).toBe(0);
  });

  it('rejects spans it cannot encode without disturbing the batch they would have joined', async () => {
    const { writer: w, inserter } = writer();
    void w.write(spans(200), new Float64Array(200));
    await tick();
    const good = track(w.write(spans(150), new Float64Array(150)));
    const broken = spans(100);
    (broken[60] as { startTimeUnixNano: unknown }).startTimeUnixNano = 'not a bigint';
    await expect(w.write(broken, new Float64Array(100))).rejects.toThrow();
    const after = track(w.write(spans(50), new Float64Array(50)));
    inserter.commit(0);
    await tick();
    expect(inserter.inserts.map((i) => i.rows)).toEqual([200, 200]);
    inserter.commit(1);
    await tick();
    expect([good.settled(), after.settled()]).toEqual(['resolved', 'resolved']);
    expect(w.queuedRows).toBe(0);
  });

  it('on close, sends what waits without the delay, waits for every insert, then refuses writes', async () => {
    const { writer: w, inserter } = writer({ batchMinRows: 1000, batchMaxDelayMs: 60_000 });
    const write = track(w.write(spans(10), new Float64Array(10)));
    await tick();
    expect(inserter.inserts).toHaveLength(0);
    const closed = track(w.close());
    await tick();
    expect(inserter.inserts.map((i) => i.rows)).toEqual([10]);
    expect(closed.settled()).toBe('pending');
    inserter.commit(0);
    await tick();
    expect([write.settled(), closed.settled()]).toEqual(['resolved', 'resolved']);
    expect(inserter.closed).toBe(true);
    await expect(w.write(spans(1), new Float64Array(1))).rejects.toBeInstanceOf(WriterClosedError);
  });

  it('answers an empty write at once', async () => {
    const { writer: w, inserter } = writer();
    await w.write([], new Float64Array(0));
    expect(inserter.inserts).toHaveLength(0);
  });
});

describe('SpanWriter, bounded in attribute bytes', () => {
  it('closes a batch at batchMaxBytes and refuses past queueMaxBytes, though never into an empty queue', async () => {
    const { writer: w, inserter } = writer({ batchMaxBytes: 60, queueMaxBytes: 100, batchMinRows: 1, maxInFlight: 2 });
    const first = track(w.write(spans(2), new Float64Array(2), 50));
    const second = track(w.write(spans(2), new Float64Array(2), 50));
    await tick();
    expect(inserter.inserts.map((i) => i.rows)).toEqual([2, 2]); // 50 + 50 is over one batch's 60
    expect(w.hasRoomFor(1, 1)).toBe(false);
    await expect(w.write(spans(1), new Float64Array(1), 1)).rejects.toBeInstanceOf(QueueFullError);
    inserter.commit(0);
    inserter.commit(1);
    await tick();
    expect([first.settled(), second.settled()]).toEqual(['resolved', 'resolved']);
    expect(w.hasRoomFor(1, 500)).toBe(true); // one request larger than the queue still goes alone
  });
});

describe("a tenant's share of the write queue's attribute bytes", () => {
  it('refuses that tenant with 429 while another tenant is admitted', async () => {
    const { writer: w, inserter } = writer({ queueMaxBytes: 40_000, batchMinRows: 1 });
    const metrics = new SelfMetrics();
    const lines: Record<string, unknown>[] = [];
    const pipeline = new IngestPipeline(w, metrics, {
      requireTenant: true,
      prices: () => ({}),
      retentionDays: 30,
      tenantQueueShare: 0.25,
      attributeBudget: { maxAttributes: 1_000, maxBytes: 10_000 },
      refusals: new RefusalLog(metrics, { warn: (fields: Record<string, unknown>) => lines.push(fields) } as never),
    });
    const resource = (tenant: string) => [...attrs({ 'tenant.id': tenant }), ...filler(4, 'r', 'v'.repeat(1_200))];
    const ingest = (tenant: string, spanCount: number) =>
      pipeline.ingest(modelRequest(resource(tenant), Array.from({ length: spanCount }, () => modelSpan([]))), { receivedAt: 0 });
    const outcomes: IngestOutcome[] = [];
    // two spans of about 4,900 bytes each: almost all of the tenant's 10,000
    const held = ingest('hostile', 2).then((o) => outcomes.push(o));
    const refused = await Promise.race([ingest('hostile', 2), tick().then(() => 'admitted, waiting for storage')]);
    expect(refused).toMatchObject({ kind: 'retry', status: 429, message: expect.stringMatching(/tenant "hostile" has \d+ bytes of attributes waiting for storage/) });
    await expect(ingest('hostile', 2)).resolves.toMatchObject({ status: 429 });
    expect((await metrics.ingestRequestsRefused.get()).values).toEqual([expect.objectContaining({ labels: { reason: 'tenant_queue_share' }, value: 2 })]);
    expect(lines).toEqual([expect.objectContaining({ tenantId: 'hostile', reason: 'tenant_queue_share_bytes', requests: 1, spans: 2 })]);
    const other = ingest('bystander', 1).then((o) => outcomes.push(o));
    for (let round = 0; round < 5; round++) {
      await tick();
      for (const insert of inserter.running) inserter.commit(inserter.inserts.indexOf(insert));
    }
    await Promise.all([held, other]);
    expect(outcomes.map((o) => o.kind)).toEqual(['stored', 'stored']);
  });
});
