// Conformance (issue 20): agents instrumented by the real GenAI instrumentations, unchanged, against
// a real Breakwater. Each setup runs its agent in a child process (the instrumentations patch
// `openai` through require hooks) on the real `openai` or `ai` client against a mock OpenAI server,
// exporting with the official OTLP exporter, the tenant set only by OTEL_RESOURCE_ATTRIBUTES, with
// the default policy (built-in prices and tiers). Each agent makes a parentless loop (every call its
// own trace, one conversation id), a 429, and a runaway loop in a second conversation.
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Service } from '../../src/app/service.js';
import { queryRows } from '../../src/storage/clickhouse.js';
import { REPO_ROOT } from '../helpers/child-service.js';
import { gql } from '../helpers/graphql.js';
import { MOCK_INPUT_TOKENS, MOCK_OUTPUT_TOKENS, MOCK_RESPONSE_MODEL, MOCK_TOOLS, startMockOpenAi, type MockOpenAi } from '../helpers/mock-openai.js';
import { startTestService, tempDataDir } from '../helpers/service.js';

interface Setup {
  setup: string;
  script: string;
  /** the setup names the tools a response asked for (the official instrumentation records only finish reasons) */
  namesTools: boolean;
  /** the setup exports a failed call's span (OpenInference and OpenLLMetry JS never end it) */
  exportsFailedCalls: boolean;
  /**
   * the setup keeps a long conversation's response attributes: OpenInference flattens every input
   * message into attributes, and past the SDK's 128-attribute limit the response's are dropped
   */
  keepsLongResponses: boolean;
}

const SETUPS: Setup[] = [
  { setup: 'otel', keepsLongResponses: true, script: 'openai-agent.cts', namesTools: false, exportsFailedCalls: true },
  { setup: 'openinference', keepsLongResponses: false, script: 'openai-agent.cts', namesTools: true, exportsFailedCalls: false },
  { setup: 'traceloop', keepsLongResponses: true, script: 'openai-agent.cts', namesTools: true, exportsFailedCalls: false },
  { setup: 'vercel-legacy', keepsLongResponses: true, script: 'vercel-agent.ts', namesTools: true, exportsFailedCalls: true },
  { setup: 'vercel-genai', keepsLongResponses: true, script: 'vercel-agent.ts', namesTools: true, exportsFailedCalls: true },
];

const TURNS = 2;
const TOOLS = 2;
/** model calls of the loop: each turn asks for TOOLS tools, one call each, then answers */
const LOOP_MODEL_CALLS = TURNS * (TOOLS + 1);
const LOOP_TOOL_CALLS = TURNS * TOOLS;
/** past the free tier's modelCallsPerMinute and toolCallsPerMinute (30) */
const RUNAWAY_TOOLS = 40;

let service: Service;
let mock: MockOpenAi;

beforeAll(async () => {
  mock = await startMockOpenAi();
  service = await startTestService({ dataDir: tempDataDir('bw-conformance-') });
});

afterAll(async () => {
  await service?.stop();
  await mock?.close();
});

async function runAgent(setup: Setup, tenant: string): Promise<void> {
  const child = spawn(process.execPath, ['--import', 'tsx', `test/conformance/agents/${setup.script}`], {
    cwd: REPO_ROOT,
    env: {
      ...process.env,
      SETUP: setup.setup,
      OPENAI_BASE_URL: mock.baseUrl,
      OTEL_EXPORTER_OTLP_ENDPOINT: service.otlpUrl,
      OTEL_EXPORTER_OTLP_PROTOCOL: 'http/protobuf',
      OTEL_RESOURCE_ATTRIBUTES: `tenant.id=${tenant},service.name=agent-${setup.setup}`,
      // The recommended setting (docs/ingest.md), and the test's runtime.
      OTEL_BSP_SCHEDULE_DELAY: '100',
      OTEL_METRICS_EXPORTER: 'none',
      OTEL_LOGS_EXPORTER: 'none',
      CONVERSATION_ID: 'loop',
      TURNS: String(TURNS),
      TOOLS: String(TOOLS),
      RATE_LIMITED: '1',
      RUNAWAY_CONVERSATION_ID: 'runaway',
      RUNAWAY_TOOLS: String(RUNAWAY_TOOLS),
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  child.stdout.on('data', (d) => (output += d));
  child.stderr.on('data', (d) => (output += d));
  const [code] = (await once(child, 'exit')) as [number | null];
  if (code !== 0) throw new Error(`${setup.setup} agent exited with ${code}: ${output.slice(-3000)}`);
}

interface StoredRun {
  spans: string;
  traces: string;
  modelCalls: string;
  toolCalls: string;
  toolNames: string[];
  providers: string[];
  models: string[];
  inputTokens: string;
  outputTokens: string;
  rateLimited: string;
  errors: string;
  cost: number;
}

async function storedRun(tenant: string, runId: string): Promise<StoredRun | undefined> {
  const rows = await queryRows<StoredRun>(
    service.store.client,
    `SELECT toString(count()) AS spans, toString(uniqExact(TraceId)) AS traces,
            toString(countIf(Operation IN ('chat', 'generate_content', 'text_completion', 'embeddings'))) AS modelCalls,
            toString(sum(ToolCalls)) AS toolCalls,
            arraySort(arrayDistinct(arrayFlatten(groupArray(splitByChar(',', ToolName))))) AS toolNames,
            groupUniqArrayIf(Provider, Provider != '') AS providers,
            arraySort(groupUniqArrayIf(if(ResponseModel != '', ResponseModel, RequestModel), Operation = 'chat')) AS models,
            toString(sumIf(InputTokens, Operation != 'invoke_agent')) AS inputTokens, toString(sumIf(OutputTokens, Operation != 'invoke_agent')) AS outputTokens,
            toString(countIf(ErrorClass = 'rate_limited' AND Operation = 'chat')) AS rateLimited,
            toString(countIf(ErrorClass IN ('provider_error', 'client_error', 'other_error'))) AS errors,
            sum(CostUsd) AS cost
     FROM spans WHERE TenantId = {tenant:String} AND RunId = {run:String}`,
    { tenant, run: runId },
  );
  return rows[0];
}

const RUN = `query($t: String!, $r: String!) {
  run(tenantId: $t, runId: $r) {
    metrics { stepCount modelCallsPerMinute toolCallsPerMinute errorRatio costUsd }
    decision { action metric }
  }
}`;

interface RunAnswer {
  run: {
    metrics: { stepCount: number; modelCallsPerMinute: number; toolCallsPerMinute: number; errorRatio: number; costUsd: number };
    decision: { action: string; metric: string };
  } | null;
}

async function liveRun(tenant: string, runId: string): Promise<RunAnswer['run']> {
  const answer = await gql<RunAnswer>(service.graphqlUrl, RUN, { t: tenant, r: runId });
  expect(answer.errors).toBeUndefined();
  return answer.data?.run ?? null;
}

describe.each(SETUPS)('$setup, unchanged, through a real Breakwater', (setup) => {
  const tenant = `conformance-${setup.setup}`;

  it('is protected: steps, tools, tokens, provider, models, cost, runs, 429s and a halted runaway', async () => {
    await runAgent(setup, tenant);
    const failedCalls = setup.exportsFailedCalls ? 1 : 0;

    const stored = await storedRun(tenant, 'loop');
    expect(stored, 'the conversation id made one run, under the resource tenant').toBeDefined();
    // One run for a loop of one trace per generation (or per call).
    expect.soft(Number(stored!.traces), 'traces in the one run').toBeGreaterThan(1);
    expect.soft(Number(stored!.modelCalls), 'model calls').toBe(LOOP_MODEL_CALLS + failedCalls);
    expect.soft(Number(stored!.toolCalls), 'tool calls, counted once').toBe(LOOP_TOOL_CALLS);
    if (setup.namesTools) expect.soft(stored!.toolNames.filter((n) => n !== ''), 'tool names').toEqual([...MOCK_TOOLS].sort());
    expect.soft(stored!.providers, 'provider').toEqual(['openai']);
    expect.soft(stored!.models, 'models').toContain(MOCK_RESPONSE_MODEL);
    expect.soft(Number(stored!.inputTokens), 'input tokens').toBe(LOOP_MODEL_CALLS * MOCK_INPUT_TOKENS);
    expect.soft(Number(stored!.outputTokens), 'output tokens').toBe(LOOP_MODEL_CALLS * MOCK_OUTPUT_TOKENS);
    expect.soft(Number(stored!.rateLimited), 'the 429 classed as a rate limit').toBe(failedCalls);
    expect.soft(Number(stored!.errors), 'errors other than the 429').toBe(0);
    expect.soft(stored!.cost, 'cost priced by the dated response model').toBeGreaterThan(0);

    const live = await liveRun(tenant, 'loop');
    expect.soft(live?.metrics.stepCount, 'live steps').toBe(LOOP_MODEL_CALLS + failedCalls + LOOP_TOOL_CALLS);
    expect.soft(live?.metrics.toolCallsPerMinute, 'live tool calls').toBe(LOOP_TOOL_CALLS);
    expect.soft(live?.metrics.errorRatio, 'the 429 is not in errorRatio').toBe(0);
    expect.soft(live?.metrics.costUsd, 'live cost').toBeGreaterThan(0);
    // The 429 may THROTTLE the run (the provider asked it to slow down); nothing halts it.
    expect.soft(live?.decision.action, 'the loop itself is not halted').not.toBe('HALT');

    const runaway = await liveRun(tenant, 'runaway');
    if (setup.keepsLongResponses) expect.soft(runaway?.metrics.stepCount, 'runaway steps').toBe(2 * RUNAWAY_TOOLS + 1);
    else expect.soft(runaway?.metrics.stepCount, 'runaway steps, at least its model calls').toBeGreaterThanOrEqual(RUNAWAY_TOOLS + 1);
    expect.soft(runaway?.decision.action, 'the runaway is halted').toBe('HALT');
  });
});
