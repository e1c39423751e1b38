// Two team servers over one PostgreSQL database: a trainer logs to server A, and this
// browser watches server B. Started by goodseed-server/tests/ui.rs (the test
// `a_browser_on_one_team_server_follows_a_trainer_on_another`). Environment:
// GOODSEED_URL (server B), GOODSEED_PROJECT, GOODSEED_RUN, GOODSEED_CHROMIUM,
// GOODSEED_SHOTS. Exits 1 when a check fails.
import { join } from 'node:path';
import { chromium } from 'playwright-core';

const BASE = process.env.GOODSEED_URL;
const PROJECT = process.env.GOODSEED_PROJECT;
const RUN = process.env.GOODSEED_RUN;
const SHOTS = process.env.GOODSEED_SHOTS ?? '.';

const browser = await chromium.launch({
  executablePath: process.env.GOODSEED_CHROMIUM ?? '/usr/bin/chromium',
  args: ['--no-sandbox', '--disable-gpu', '--no-first-run', '--disable-background-networking'],
});
const page = await (await browser.newContext({ viewport: { width: 1400, height: 900 } })).newPage();
const errors = [];
page.on('pageerror', (e) => errors.push(e.message));
let failed = false;
try {
  await page.goto(`${BASE}/?${new URLSearchParams({ project: PROJECT })}`);
  const row = `tr[data-run="${RUN}"]`;
  // The run a trainer logs through the other server shows as running here.
  await page.locator(`${row} [data-state="running"]`).waitFor({ timeout: 30000 });
  await page.click(`${row} >> text=${RUN}`);
  const chart = 'figure.chart[data-path="train/loss"]';
  await page.locator(`${chart} canvas`).waitFor({ timeout: 30000 });
  const first = Number(await page.getAttribute(chart, 'data-total'));
  // Its points arrive live, written through the other server.
  await page.waitForFunction(
    ([sel, n]) => Number(document.querySelector(sel)?.dataset.total) > n + 5,
    [chart, first],
    { timeout: 30000 },
  );
  await page.screenshot({ path: join(SHOTS, 'team-live.png') });
  console.log(`ok   live points through the other server (${first} at first)`);
  // A stop asked here reaches the trainer on the other server, which finishes.
  await page.click('button:has-text("Stop run")');
  await page.locator('.run-head [data-state="finished"]').waitFor({ timeout: 30000 });
  // 0.4.0's status is `finished`; how it ended says it was stopped on request.
  await page
    .locator('.run-head [data-state="finished"][data-ended-by="stopped"]:has-text("stopped")')
    .waitFor({ timeout: 30000 });
  await page.screenshot({ path: join(SHOTS, 'team-stopped.png') });
  console.log('ok   stop from this server ended the trainer on the other, shown as stopped');
  if (errors.length) throw new Error(`page errors: ${errors.join('; ')}`);
} catch (e) {
  failed = true;
  console.log(`FAIL ${e.message}`);
  await page.screenshot({ path: join(SHOTS, 'team-failed.png') }).catch(() => {});
}
await browser.close();
process.exit(failed ? 1 : 0);
