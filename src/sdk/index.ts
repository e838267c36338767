// @breakwater/sdk (packages/sdk builds it from here): the agent side of Breakwater.
//
//   const bw = await Breakwater.start({ tenantId, otlpUrl, graphqlUrl, failMode: 'open', onHalt }); // URLs default to the environment (docs/sdk.md)
//   await bw.run(async () => {
//     for (;;) {
//       const { model } = await bw.checkpoint({ model: 'gpt-4o' });  // HALT throws, THROTTLE waits
//       await bw.modelCall({ provider: 'openai', model }, async () => ({ inputTokens, outputTokens }));
//       await bw.toolCall('search', () => search(query));
//     }
//   });
//   await bw.shutdown();

export {
  Breakwater,
  type AttachOptions,
  type BreakwaterOptions,
  type BreakwaterStatus,
  type CheckpointOptions,
  type CheckpointResult,
  type ExportOptions,
  type FailMode,
  type RunHandle,
  type RunOptions,
  type StartOptions,
  type SubAgentOptions,
} from './breakwater.js';
export { BreakwaterHaltError, BreakwaterUnavailableError } from './errors.js';
export { BreakwaterSpanProcessor } from './span-processor.js';
export { StepExportProcessor, type ExportStats, type StepExportOptions } from './step-export-processor.js';
export { ATTR, RATE_LIMIT_HEADERS } from './attributes.js';
export type { ModelCallRequest, ModelOperation, ModelUsage, ToolCallOptions } from './spans.js';
export type { BackoffOptions } from './decision-client.js';
export type { SdkLogger } from './logger.js';
export type { Action, BreakerState, Decision, Scope } from '../contracts/decision.js';
