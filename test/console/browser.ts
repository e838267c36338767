import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import puppeteer, { type Browser, type Page } from 'puppeteer-core';

export const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';

export interface OfflinePage {
  page: Page;
  /** every request the page tried outside the allowed origin (all were aborted) */
  blocked: string[];
  /** the page's console errors and uncaught exceptions */
  problems: string[];
}

export function launchBrowser(): Promise<Browser> {
  return puppeteer.launch({ executablePath: CHROMIUM, headless: true, args: ['--no-sandbox', '--disable-gpu', '--disable-dev-shm-usage'] });
}

/** A page that may reach only `origin`: anything else is aborted and recorded, as with no network. */
export async function offlinePage(browser: Browser, origin: string): Promise<OfflinePage> {
  const page = await browser.newPage();
  await page.setViewport({ width: 1200, height: 900 });
  const blocked: string[] = [];
  const problems: string[] = [];
  await page.setRequestInterception(true);
  page.on('request', (request) => {
    const url = request.url();
    if (url.startsWith(`${origin}/`) || url.startsWith('data:') || url.startsWith('blob:')) void request.continue();
    else {
      blocked.push(url);
      void request.abort('internetdisconnected');
    }
  });
  page.on('console', (message) => {
    if (message.type() === 'error') problems.push(message.text());
  });
  page.on('pageerror', (error) => problems.push(String(error)));
  return { page, blocked, problems };
}

/** With BREAKWATER_SCREENSHOTS set (`npm run screenshots`), saves the page there as `name`.png for the docs. */
export async function screenshot(page: Page, name: string): Promise<void> {
  const dir = process.env.BREAKWATER_SCREENSHOTS;
  if (!dir) return;
  mkdirSync(dir, { recursive: true });
  await page.screenshot({ path: join(dir, `${name}.png`) as `${string}.png`, fullPage: false });
}
