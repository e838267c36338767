// The names of the rolling metrics Breakwater keeps. They are the contract between the windows
// (which compute them), the policy (whose thresholds name them) and the breakers (which compare
// them); the GraphQL schema and the decision object's `metric` field use the same strings.

/** Metrics kept per run and, summed over its runs, per tenant. */
export const RUN_METRICS = [
  /** tokens (input + output) per second over the last 10 s */
  'tokenVelocity10s',
  /** tokens per second over the last 60 s */
  'tokenVelocity60s',
  /** execute_tool spans per minute (last 60 s) */
  'toolCallsPerMinute',
  /** model calls (chat, generate_content, text_completion, embeddings) per minute (last 60 s) */
  'modelCallsPerMinute',
  /** errored calls / calls, over the last N calls and the last 60 s, the larger; 0 below the minimum call count */
  'errorRatio',
  /** steps (model + tool calls) in the run so far */
  'stepCount',
  /** deepest sub-agent depth seen in the run (0 = root agent only) */
  'subAgentDepth',
  /** wall-clock seconds from the run's first span start to its latest span end */
  'durationSeconds',
  /** USD per minute over the last 60 s, from the per-model price table */
  'costPerMinuteUsd',
  /** USD spent by the run (or tenant) since its window began */
  'costUsd',
] as const;

export type RunMetric = (typeof RUN_METRICS)[number];

/** Metrics kept per provider and per model (latency and health). */
export const PROVIDER_METRICS = [
  'latencyP50Ms',
  'latencyP95Ms',
  'callsPerMinute',
  'errorRatio',
] as const;

export type ProviderMetric = (typeof PROVIDER_METRICS)[number];

export type MetricValues<M extends string> = Record<M, number>;
