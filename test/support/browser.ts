/**
 * The dashboard's browser tests' Chromium: Debian's (`CHROMIUM_PATH` for another), headless with
 * the flags the machine needs, never a downloaded one; screenshots go to the git-ignored
 * test-output/screenshots/ for people to look at; `signIn` opens the dashboard with a token and
 * waits until it follows the event stream.
 */
import { mkdir } from 'node:fs/promises';
import { type Browser, chromium, type Page } from 'playwright-core';

export const SHOTS = new URL('../../test-output/screenshots/', import.meta.url);

/** Where a screenshot named `name` (with its extension) is written. */
export const shotPath = (name: string): string => new URL(name, SHOTS).pathname;

/** A headless Debian Chromium, with the screenshot folder made. */
export async function launchBrowser(): Promise<Browser> {
  await mkdir(SHOTS, { recursive: true });
  return chromium.launch({
    executablePath: process.env.CHROMIUM_PATH ?? '/usr/bin/chromium',
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking'],
  });
}

/** Opens `<url>/dashboard`, signs in with `token` and waits until the page is live. */
export async function signIn(page: Page, url: string, token: string): Promise<void> {
  await page.goto(`${url}/dashboard`);
  await page.fill('#token', token);
  await page.click('#login button[type=submit]');
  await page.waitForSelector('#status[data-status="live"]', { timeout: 30_000 });
}
