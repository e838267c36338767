import cron, { type ScheduledTask, type TaskOptions } from 'node-cron';
import type { Logger } from '../app/log.js';

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
      { name: job.name, noOverlap: true, unref: true, logger: this.#cronLogger(job.name) },
    );
    this.#tasks.push(task);
  }

  /** node-cron's own messages (a run skipped because the last one is still going) into our JSON log, not the console */
  #cronLogger(job: string): NonNullable<TaskOptions['logger']> {
    const fields = (err?: unknown) => ({ job, ...(err instanceof Error ? { error: err.message } : {}) });
    const text = (message: string | Error) => (message instanceof Error ? message.message : message);
    return {
      debug: (message, err) => this.log.debug(fields(err), `scheduler: ${text(message)}`),
      info: (message) => this.log.info(fields(), `scheduler: ${message}`),
      warn: (message) => this.log.warn(fields(), `scheduler: ${message}`),
      error: (message, err) => this.log.error(fields(err), `scheduler: ${text(message)}`),
    };
  }

  async stop(): Promise<void> {
    await Promise.all(this.#tasks.map((t) => t.destroy()));
    this.#tasks.length = 0;
  }
}
