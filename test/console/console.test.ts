import type { Browser, Page } from 'puppeteer-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Service } from '../../src/app/service.js';
import { startWithPolicy } from '../helpers/service.js';
import { postSpans, runSteps } from '../helpers/spans.js';
import { launchBrowser, offlinePage, screenshot, type OfflinePage } from './browser.js';

const ADMIN = 'console-admin-0123456789abcdef';
const GLOBEX = 'console-globex-0123456789abcdef';

const POLICY = `
auth:
  adminTokens: ["${ADMIN}"]
  tenants:
    globex: { adminTokens: ["${GLOBEX}"] }
tenants:
  acme:
    tier: free
    overrides: { run: { toolCallsPerMinute: 3 } }
  globex:
    tier: free
    overrides: { run: { toolCallsPerMinute: 10 } }
degradation:
  defaults:
    tiers:
      - { tier: 0, provider: openai, model: gpt-4o }
      - { tier: 1, provider: openai, model: gpt-4o-mini }
`;

async function post(service: Service, tenant: string, runId: string, steps: Parameters<typeof runSteps>[2]): Promise<void> {
  const res = await postSpans(service.otlpUrl, runSteps(tenant, runId, steps));
  expect(res.status).toBe(200);
}

/** Waits for `selector`; a timeout names what the page showed instead. */
async function shown(page: Page, selector: string, timeout = 15_000): Promise<void> {
  try {
    await page.waitForSelector(selector, { timeout });
  } catch {
    throw new Error(`no ${selector}; the page shows: ${(await page.evaluate(() => document.body.innerText)).slice(0, 600)}`);
  }
}

const tools = (n: number) => Array.from({ length: n }, (_, i) => ({ tool: `search-${i}` }));

describe('the console in a real browser with no network but Breakwater', () => {
  let service: Service;
  let browser: Browser;
  let tab: OfflinePage;

  beforeAll(async () => {
    [service, browser] = await Promise.all([startWithPolicy(POLICY), launchBrowser()]);
    await post(service, 'globex', 'g-1', [{ model: 'gpt-4o-mini', inputTokens: 900, outputTokens: 300 }, { tool: 'lookup' }]);
    // over acme's 3 tool calls a minute: the run is halted
    await post(service, 'acme', 'halted', [{ model: 'gpt-4o', inputTokens: 400, outputTokens: 100 }, ...tools(5)]);
    await post(service, 'acme', 'live', [{ tool: 'first' }]);
    tab = await offlinePage(browser, service.graphqlUrl);
  });

  afterAll(async () => {
    await browser?.close();
    await service?.stop();
  });

  it('lists the fleet with the halted tenant, after the token is pasted', async () => {
    const { page } = tab;
    await page.goto(`${service.graphqlUrl}/`);
    await shown(page, '.error[data-code="UNAUTHENTICATED"]');
    await page.type('input[name="token"]', ADMIN);
    await page.click('.token button');
    await shown(page, 'tr[data-tenant="acme"]');
    const rows = await page.$$eval('tr[data-tenant]', (trs) => trs.map((tr) => ({ id: tr.getAttribute('data-tenant'), text: tr.textContent })));
    expect(rows.map((r) => r.id).sort()).toEqual(['acme', 'globex']);
    const acme = rows.find((r) => r.id === 'acme')!.text!;
    expect(acme).toContain('OPEN');
    expect(acme).toContain('halted');
    expect(await page.$eval('tr[data-tenant="acme"] .trips', (td) => Number(td.textContent))).toBeGreaterThanOrEqual(1);
    await screenshot(page, 'fleet');
    expect(tab.blocked).toEqual([]);
    expect(tab.problems.filter((p) => !p.includes('401'))).toEqual([]);
  });

  it('shows a tenant: charts drawn from its history, its breakers, ladder and audit log', async () => {
    const { page } = tab;
    await page.goto(`${service.graphqlUrl}/#/tenant/acme`);
    await shown(page, 'section.tenant[data-tenant="acme"] .chart canvas');
    const charts = await page.$$eval('.chart', (figures) => figures.map((f) => ({ points: Number(f.getAttribute('data-points')), canvas: f.querySelector('canvas')?.width ?? 0 })));
    expect(charts).toHaveLength(3);
    for (const chart of charts) expect(chart.points).toBeGreaterThan(0);
    for (const chart of charts) expect(chart.canvas).toBeGreaterThan(0);
    const text = await page.$eval('section.tenant', (s) => s.textContent!);
    expect(await page.$eval('table.breakers', (t) => t.textContent)).toContain('OPEN');
    expect(await page.$eval('table.runs', (t) => t.textContent)).toContain('halted');
    expect(await page.$eval('table.audit', (t) => t.textContent)).toContain('breaker_transition');
    expect(text).toContain('tier 1: openai gpt-4o-mini');
    await screenshot(page, 'tenant');
    expect(tab.blocked).toEqual([]);
  });

  it('shows a run: its steps and the halt with its reason', async () => {
    const { page } = tab;
    await page.goto(`${service.graphqlUrl}/#/run/acme/halted`);
    await shown(page, 'section.run[data-run="halted"] .halt-reason');
    expect(await page.$eval('.halt-reason', (s) => s.textContent)).toMatch(/toolCallsPerMinute/);
    expect(await page.$$eval('table.steps tbody tr', (trs) => trs.length)).toBe(6);
    expect(await page.$eval('table.audit', (t) => t.textContent)).toContain('OPEN');
    await screenshot(page, 'run');
    expect(tab.problems.filter((p) => !p.includes('401'))).toEqual([]);
  });

  it('updates a run page live when the run is halted, without a reload', async () => {
    const { page } = tab;
    await page.goto(`${service.graphqlUrl}/#/run/acme/live`);
    await shown(page, 'section.run[data-run="live"] .badge-allow');
    await page.evaluate(() => Object.assign(window, { notReloaded: true }));
    expect(await page.$('.halt')).toBeNull();
    await post(service, 'acme', 'live', tools(4));
    await shown(page, 'section.run[data-run="live"] .halt-reason', 10_000);
    expect(await page.evaluate(() => (window as unknown as { notReloaded?: boolean }).notReloaded)).toBe(true);
    expect(await page.$$eval('table.steps tbody tr', (trs) => trs.length)).toBe(5);
    expect(tab.problems.filter((p) => !p.includes('401'))).toEqual([]);
  });

  it('shows a new trip on the fleet page without a reload', async () => {
    const { page } = tab;
    await page.goto(`${service.graphqlUrl}/#/`);
    await shown(page, 'tr[data-tenant="globex"]');
    await page.evaluate(() => Object.assign(window, { notReloaded: true }));
    expect(await page.$eval('tr[data-tenant="globex"] .breakers', (td) => td.textContent)).toContain('none');
    // over globex's 10 tool calls a minute
    await post(service, 'globex', 'g-burst', tools(12));
    await page.waitForFunction(() => document.querySelector('tr[data-tenant="globex"] .breakers')?.textContent?.includes('g-burst'), { timeout: 15_000 });
    expect(await page.evaluate(() => (window as unknown as { notReloaded?: boolean }).notReloaded)).toBe(true);
  });

  it("refuses another tenant's page to a tenant token, showing the API's error and no data", async () => {
    const context = await browser.createBrowserContext();
    try {
      const own = await offlinePage(context as unknown as Browser, service.graphqlUrl);
      await own.page.goto(`${service.graphqlUrl}/`);
      await own.page.type('input[name="token"]', GLOBEX);
      await own.page.click('.token button');
      await shown(own.page, 'tr[data-tenant="globex"]');
      expect(await own.page.$('tr[data-tenant="acme"]')).toBeNull();
      await own.page.goto(`${service.graphqlUrl}/#/tenant/acme`);
      await shown(own.page, '.error[data-code="FORBIDDEN"]');
      expect(await own.page.$('section.tenant')).toBeNull();
      expect(await own.page.$eval('main', (m) => m.textContent)).not.toContain('halted');
      await screenshot(own.page, 'forbidden');
    } finally {
      await context.close();
    }
  });

  it('opens GraphiQL from local assets on the Breakwater example query', async () => {
    const graphiql = await offlinePage(browser, service.graphqlUrl);
    await graphiql.page.goto(`${service.graphqlUrl}/graphql`);
    await graphiql.page.waitForFunction(() => document.body.innerText.replace(/\s+/g, ' ').includes('tenants(sort: TOKEN_VELOCITY'), { timeout: 20_000 });
    expect(await graphiql.page.title()).toBe('Breakwater GraphiQL');
    expect(await graphiql.page.evaluate(() => document.body.innerText)).not.toContain('in-browser tool');
    await screenshot(graphiql.page, 'graphiql');
    expect(graphiql.blocked).toEqual([]);
    // a refusal by the Content-Security-Policy or a failed load is logged as a console error
    expect(graphiql.problems.filter((p) => !p.includes('401'))).toEqual([]);
    await graphiql.page.close();
  });
});
