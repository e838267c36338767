import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { ProtobufTraceSerializer } from '@opentelemetry/otlp-transformer';
import type { Attributes } from '@opentelemetry/api';
import { recordingTracer } from './otel.js';

export interface StepSpec {
  tool?: string;
  model?: string;
  inputTokens?: number;
  outputTokens?: number;
  error?: boolean;
  /** how long the call took: the span starts this long before it ends (now) */
  durationMs?: number;
  attributes?: Attributes;
}

/** Real OTLP protobuf bytes for a run's steps, made by a real tracer and the official serializer. */
export function runSteps(tenant: string, runId: string, steps: StepSpec[]): Uint8Array {
  const { tracer, finished } = recordingTracer({ 'service.name': 'test-agent', 'tenant.id': tenant });
  for (const step of steps) {
    const attributes: Attributes = step.tool
      ? { 'gen_ai.operation.name': 'execute_tool', 'gen_ai.tool.name': step.tool, 'agent.run.id': runId }
      : {
          'gen_ai.operation.name': 'chat',
          'gen_ai.provider.name': 'openai',
          'gen_ai.request.model': step.model ?? 'gpt-4o-mini',
          'gen_ai.usage.input_tokens': step.inputTokens ?? 100,
          'gen_ai.usage.output_tokens': step.outputTokens ?? 20,
          'agent.run.id': runId,
        };
    if (step.error) attributes['error.type'] = 'tool_error';
    const startTime = step.durationMs === undefined ? undefined : Date.now() - step.durationMs;
    tracer.startSpan(step.tool ? `execute_tool ${step.tool}` : 'chat', { attributes: { ...attributes, ...step.attributes }, ...(startTime === undefined ? {} : { startTime }) }).end();
  }
  return ProtobufTraceSerializer.serializeRequest(finished())!;
}

export function postSpans(otlpUrl: string, body: Uint8Array, headers: Record<string, string> = {}): Promise<Response> {
  return fetch(`${otlpUrl}/v1/traces`, {
    method: 'POST',
    headers: { 'content-type': 'application/x-protobuf', ...headers },
    body: Buffer.from(body),
  });
}

/** Writes a policy file into `dir` and returns its path. */
export function writePolicy(dir: string, yaml: string): string {
  const path = join(dir, 'breakwater.yaml');
  writeFileSync(path, yaml);
  return path;
}
