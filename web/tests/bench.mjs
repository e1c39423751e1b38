// The runs table in the system Chromium at scale, timed (started by
// goodseed-server/benches/ui.rs, which generates and serves the sweep). Environment:
// GOODSEED_URL (the server), GOODSEED_PROJECT, GOODSEED_RUNS (how many it holds),
// GOODSEED_CUT (the creation time of the 1,001st run: runs created before are the first
// 1,000), GOODSEED_CHROMIUM. Prints one line per measure: the median of a few tries, in
// milliseconds, from the user's action to the answer on screen.
import { chromium } from 'playwright-core';

const BASE = process.env.GOODSEED_URL;
const project = process.env.GOODSEED_PROJECT;
const runs = Number(process.env.GOODSEED_RUNS);
const cut = process.env.GOODSEED_CUT;
const TRIES = Number(process.env.GOODSEED_TRIES ?? 5);
const browser = await chromium.launch({
  executablePath: process.env.GOODSEED_CHROMIUM ?? '/usr/bin/chromium',
  args: ['--no-sandbox', '--disable-gpu'],
});
const page = await (await browser.newContext({ viewport: { width: 1400, height: 900 } })).newPage();
const url = (q) => `${BASE}/?${new URLSearchParams({ project, ...q })}`;
const count = () => page.evaluate(() => document.querySelector('.count')?.textContent ?? '');
const firstRun = () => page.evaluate(() => document.querySelector('tr[data-run]')?.dataset.run ?? null);
const fmt = (n) => n.toLocaleString('en-US');

const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const results = [];
async function measure(name, target, once) {
  const times = [];
  for (let i = 0; i < TRIES; i++) times.push(await once(i));
  results.push({ name, ms: median(times), target, all: times });
  console.log(`${name.padEnd(70)} ${String(median(times)).padStart(6)} ms   (target ${target}; tries ${times.join(', ')})`);
}

// The table: from asking for the page to its first rows, and to a click on a column
// header answered (interactive).
await measure('table: first rows on screen', 'reported', async () => {
  const t0 = Date.now();
  await page.goto(url({}));
  await page.locator('tr[data-run]').first().waitFor();
  return Date.now() - t0;
});
await measure('table: interactive (loaded, then a sort by a click answered)', '<= 500 ms', async () => {
  const t0 = Date.now();
  await page.goto(url({}));
  await page.locator('tr[data-run]').first().waitFor();
  await page.click('button.sort[data-col="created"]');
  await page.waitForFunction(() => document.querySelector('tr[data-run]')?.dataset.run === 'trial-000000');
  return Date.now() - t0;
});
await measure('sort: by created, oldest first (a click)', '<= 300 ms', async () => {
  await page.goto(url({}));
  await page.locator('tr[data-run]').first().waitFor();
  const t0 = Date.now();
  await page.click('button.sort[data-col="created"]');
  await page.waitForFunction(() => document.querySelector('tr[data-run]')?.dataset.run === 'trial-000000');
  return Date.now() - t0;
});
// Runs with the most layers (5: every sixth triple of runs), newest first, head a sort by
// layers from the most.
const k = Math.floor((runs - 1) / 3);
const mostLayers = `trial-${String(Math.min(3 * (k - ((k - 5) % 6 + 6) % 6) + 2, runs - 1)).padStart(6, '0')}`;
await measure('sort: by a config column (layers, a click)', '<= 300 ms', async () => {
  await page.goto(url({ cols: 'c:layers' }));
  await page.locator('tr[data-run]').first().waitFor();
  const t0 = Date.now();
  await page.click('button.sort[data-col="c:layers"]');
  await page.waitForFunction((id) => document.querySelector('tr[data-run]')?.dataset.run === id, mostLayers);
  return Date.now() - t0;
});
const adam = Math.ceil(runs / 3);
await measure('filter: optimizer = adam typed and entered', '<= 300 ms', async () => {
  await page.goto(url({}));
  await page.locator('tr[data-run]').first().waitFor();
  const box = page.locator('input[aria-label="Add a filter"]');
  await box.fill('optimizer = adam');
  const t0 = Date.now();
  await box.press('Enter');
  await page.waitForFunction((want) => document.querySelector('.count')?.textContent?.startsWith(want), `${fmt(adam)} of`);
  await page.locator('tr[data-run]').first().waitFor();
  return Date.now() - t0;
});
await measure('search: a name typed (trial 12345)', '<= 300 ms', async () => {
  await page.goto(url({}));
  await page.locator('tr[data-run]').first().waitFor();
  const before = await count();
  const t0 = Date.now();
  await page.fill('input[aria-label="Search runs"]', 'trial 12345');
  await page.waitForFunction((b) => { const c = document.querySelector('.count')?.textContent; return c && c !== b; }, before);
  return Date.now() - t0;
});
// Groups: the mean curves of the first 1,000 runs by optimizer (the first try reads the
// runs; the server keeps closed runs' series, so the next ones do not).
await measure('group: 1,000 runs\' mean curves ± std drawn (page load to chart)', '<= 500 ms', async () => {
  const t0 = Date.now();
  await page.goto(url({ where: `created_at < ${cut}`, group: 'optimizer', gm: 'val/acc' }));
  await page.waitForFunction(() => Number(document.querySelector('.group-chart')?.dataset.lines) === 2);
  return Date.now() - t0;
});
console.log(`first runs: ${await firstRun()}`);
console.log(`RESULTS ${JSON.stringify(results)}`);
await browser.close();
