import cron, { type ScheduledTask } from 'node-cron';
import type { Logger } from '../log.js';

export interface Job {
  name: string;
  /** cron expression (node-cron, with seconds allowed) */
  schedule: string;
  run: () => Promise<unknown>;
}

/** Runs background jobs with node-cron: never overlapping, failures logged, timers unref'd. */
export class JobScheduler {
  readonly #tasks: ScheduledTask[] = [];

  constructor(private readonly log: Logger) {}

  add(job: Job): void {
    const task = cron.schedule(
      job.schedule,
      async () => {
        const started = performance.now();
        try {
          const result = await job.run();
          this.log.debug({ job: job.name, result, ms: Math.round(performance.now() - started) }, 'job done');
        } catch (err) {
          this.log.error({ job: job.name, error: (err as Error).message }, 'job failed');
        }
      },
      { name: job.name, noOverlap: true, unref: true },
    );
    this.#tasks.push(task);
  }

  async stop(): Promise<void> {
    await Promise.all(this.#tasks.map((t) => t.destroy()));
    this.#tasks.length = 0;
  }
}
