// node-cron's own messages reach the service's JSON log (with the job's name), not the console.
import { Writable } from 'node:stream';
import { pino } from 'pino';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { JobScheduler } from '../../src/jobs/scheduler.js';

afterEach(() => {
  vi.restoreAllMocks();
});

describe('JobScheduler', () => {
  it('runs a job, never two at once, and logs the skipped run as JSON instead of printing it', async () => {
    const lines: Record<string, unknown>[] = [];
    const sink = new Writable({
      write(chunk: Buffer, _encoding, done) {
        for (const line of chunk.toString().split('\n').filter(Boolean)) lines.push(JSON.parse(line) as Record<string, unknown>);
        done();
      },
    });
    const consoleWarn = vi.spyOn(console, 'warn');
    const consoleLog = vi.spyOn(console, 'log');
    const scheduler = new JobScheduler(pino({ level: 'debug' }, sink));
    let running = 0;
    let maxRunning = 0;
    let runs = 0;
    scheduler.add({
      name: 'slow-job',
      schedule: '* * * * * *',
      run: async () => {
        runs++;
        maxRunning = Math.max(maxRunning, ++running);
        await new Promise((resolve) => setTimeout(resolve, 2_300));
        running--;
      },
    });
    await vi.waitFor(() => expect(lines.some((l) => String(l.msg).includes('overlap'))).toBe(true), { timeout: 6_000, interval: 100 });
    await scheduler.stop();
    expect(runs).toBeGreaterThanOrEqual(1);
    expect(maxRunning).toBe(1);
    const skipped = lines.find((l) => String(l.msg).includes('overlap'))!;
    expect(skipped).toMatchObject({ level: 40, job: 'slow-job' });
    expect(String(skipped.msg)).toMatch(/^scheduler: task still running/);
    expect(consoleWarn).not.toHaveBeenCalled();
    expect(consoleLog).not.toHaveBeenCalled();
  });
});
