import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SIGNATURE_HEADER, verifySignature } from '../../src/notify/webhook-signer.js';
import { startChildService, type ChildService } from '../helpers/child-service.js';
import { tempDataDir } from '../helpers/service.js';
import { postSpans, runSteps, writePolicy } from '../helpers/spans.js';
import { startWebhookReceiver, type ReceivedRequest, type WebhookReceiver } from '../helpers/webhook-receiver.js';

// A notification being retried when the process dies (SIGKILL, or a stop at a deploy) is sent by
// the next process from the same data directory: at least once across restarts, and a
// notification already acknowledged is not sent again.

const SECRET = 'restart-hook-secret-0123456789';
const dataDir = tempDataDir('bw-webhook-restart-');
let receiver: WebhookReceiver;
let receiverDown = false;
let server: ChildService | undefined;
let args: string[];

const runOf = (r: ReceivedRequest) => (JSON.parse(r.body) as { event: { runId: string } }).event.runId;
const attemptsFor = (runId: string, after = 0) => receiver.at('/hook').filter((r) => runOf(r) === runId && r.at >= after);
const ownedMessages = (s: ChildService) => s.logs.filter((l) => l.msg === 'webhook notifications owed by the previous process queued again');

async function tripRun(runId: string): Promise<void> {
  const res = await postSpans(server!.otlpUrl, runSteps('acme', runId, [{ tool: 'search' }, {}, { tool: 'search' }]));
  expect(res.status).toBe(200);
}

beforeAll(async () => {
  receiver = await startWebhookReceiver({ '/hook': () => ({ status: receiverDown ? 503 : 200 }) });
  const policyFile = writePolicy(
    dataDir,
    `tenants:\n  acme: { overrides: { run: { stepCount: 2 } } }\nnotifications:\n  delivery: { backoffMs: 50, maxBackoffMs: 200, maxAttempts: 100, timeoutMs: 5000 }\n  webhooks:\n    - { url: "${receiver.url}/hook", secret: "${SECRET}", events: [trip] }\n`,
  );
  args = ['--data-dir', dataDir, '--config', policyFile, '--batch-max-delay-ms', '5'];
  server = await startChildService(args);
});

afterAll(async () => {
  server?.process.kill('SIGTERM');
  await server?.exited;
  await receiver?.close();
});

describe('webhook notifications across a restart', () => {
  it('sends after a SIGKILL what was being retried, once the endpoint is back, and not what was acknowledged', async () => {
    await tripRun('run-delivered');
    await receiver.waitFor(() => attemptsFor('run-delivered').length === 1);

    receiverDown = true;
    await tripRun('run-killed');
    await receiver.waitFor(() => attemptsFor('run-killed').length >= 2);
    server!.process.kill('SIGKILL');
    await server!.exited;
    const failedBefore = attemptsFor('run-killed').length;
    receiverDown = false;

    const restartedAt = Date.now();
    server = await startChildService(args);
    await receiver.waitFor(() => attemptsFor('run-killed', restartedAt).length === 1);
    const [resent] = attemptsFor('run-killed', restartedAt);
    // the same notification, byte for byte, signed afresh
    expect(resent!.body).toBe(attemptsFor('run-killed')[0]!.body);
    expect(resent!.headers['breakwater-event-id']).toBe(attemptsFor('run-killed')[0]!.headers['breakwater-event-id']);
    expect(verifySignature(String(resent!.headers[SIGNATURE_HEADER]), resent!.body, SECRET, Math.floor(Date.now() / 1000))).toBe(true);
    expect(failedBefore).toBeGreaterThanOrEqual(2);
    expect(ownedMessages(server)).toEqual([expect.objectContaining({ resumed: 1, noLongerRouted: 0, unreadableRecords: 0 })]);

    await new Promise((r) => setTimeout(r, 300));
    expect(attemptsFor('run-delivered', restartedAt)).toEqual([]);
    expect(attemptsFor('run-killed', restartedAt)).toHaveLength(1);
  });

  it('keeps what a graceful stop left, says so, and sends it at the next start', async () => {
    receiverDown = true;
    await tripRun('run-stopped');
    await receiver.waitFor(() => attemptsFor('run-stopped').length >= 1);
    server!.process.kill('SIGTERM');
    expect(await server!.exited).toBe(0);
    expect(server!.logs).toContainEqual(expect.objectContaining({ msg: 'stopping: webhook notifications not yet delivered are sent at the next start', undelivered: 1 }));
    receiverDown = false;

    const restartedAt = Date.now();
    server = await startChildService(args);
    await receiver.waitFor(() => attemptsFor('run-stopped', restartedAt).length === 1);
    expect(ownedMessages(server)).toEqual([expect.objectContaining({ resumed: 1 })]);
    // the SIGKILLed one was settled by the second process and does not come back a third time
    await new Promise((r) => setTimeout(r, 300));
    expect(attemptsFor('run-killed', restartedAt)).toEqual([]);
  });
});
