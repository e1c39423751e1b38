// End-to-end tests of the UI in the system Chromium, driven by playwright-core.
// Started by goodseed-server/tests/ui.rs, which writes the fixture runs, serves them and
// runs a trainer process. Environment: GOODSEED_URL (the server), GOODSEED_CHROMIUM,
// GOODSEED_FLAGS (a directory: `go` starts the trainer, `die` kills it), GOODSEED_SHOTS
// (where screenshots go), GOODSEED_CHECKPOINTS (the fixture trainer's own checkpoint
// files, which downloads are compared with). Prints one line per test and the measured timings; exits 1
// when a test fails.
import assert from 'node:assert/strict';
import { readFileSync, unlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { chromium } from 'playwright-core';

const BASE = process.env.GOODSEED_URL ?? 'http://127.0.0.1:8765';
const SHOTS = process.env.GOODSEED_SHOTS ?? '.';
const FLAGS = process.env.GOODSEED_FLAGS;
const figures = {};

const browser = await chromium.launch({
  executablePath: process.env.GOODSEED_CHROMIUM ?? '/usr/bin/chromium',
  args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
});
const context = await browser.newContext({ viewport: { width: 1400, height: 900 } });
let page = await context.newPage();
const pageErrors = [];
page.on('pageerror', (e) => pageErrors.push(e.message));

const tests = [];
const test = (name, fn) => tests.push({ name, fn });
const shot = (name) => page.screenshot({ path: join(SHOTS, `${name}.png`) });
const url = (q) => `${BASE}/?${new URLSearchParams(q)}`;

/** How many pixels of a chart's canvas are not background: a drawn chart has many. */
async function inkOf(selector) {
  return page.$eval(selector, (fig) => {
    const canvas = fig.querySelector('canvas');
    if (!canvas) return 0;
    const ctx = canvas.getContext('2d');
    const { data } = ctx.getImageData(0, 0, canvas.width, canvas.height);
    let ink = 0;
    for (let i = 3; i < data.length; i += 4) if (data[i] > 0) ink++;
    return ink;
  });
}

/** Pixels of one colour (a series' stroke) on a chart's canvas. */
async function pixelsOf(selector, [r, g, b]) {
  return page.$eval(
    selector,
    (fig, [r, g, b]) => {
      const canvas = fig.querySelector('canvas');
      const { data } = canvas.getContext('2d').getImageData(0, 0, canvas.width, canvas.height);
      let n = 0;
      for (let i = 0; i < data.length; i += 4) {
        if (Math.abs(data[i] - r) < 40 && Math.abs(data[i + 1] - g) < 40 && Math.abs(data[i + 2] - b) < 40 && data[i + 3] > 200) n++;
      }
      return n;
    },
    [r, g, b],
  );
}

test('projects are listed', async () => {
  await page.goto(`${BASE}/`);
  await page.getByRole('link', { name: 'fx/table' }).waitFor();
  const names = await page.$$eval('table.projects td:first-child', (tds) => tds.map((t) => t.textContent));
  for (const p of ['fx/big', 'fx/cmp', 'fx/files', 'fx/py', 'fx/sys', 'fx/table']) assert.ok(names.includes(p), `${p} in ${names}`);
  await shot('projects');
});

test('runs table: 1,000 runs, virtualised, sortable, filterable, in the URL', async () => {
  const t0 = Date.now();
  await page.goto(url({ project: 'fx/table' }));
  await page.locator('tr[data-run]').first().waitFor();
  figures.runs_table_rows_ms = Math.round(await page.evaluate(() => window.__goodseedMarks.table));
  // Newest first; interactive: a click on the Created header reverses the order.
  assert.equal(await page.getAttribute('tr[data-run]', 'data-run'), 'run-0999');
  await page.click('button.sort[data-col="created"]');
  await page.waitForFunction(() => document.querySelector('tr[data-run]')?.dataset.run === 'run-0000');
  figures.runs_table_interactive_ms = Date.now() - t0;
  const rendered = await page.locator('tr[data-run]').count();
  assert.ok(rendered < 120, `only the rows in view are rendered, got ${rendered}`);
  assert.equal(await page.textContent('.count'), '1,000 of 1,000 runs');
  assert.match(page.url(), /sort=created%3Aasc/);
  await page.click('button.sort[data-col="id"]');
  await page.waitForFunction(() => document.querySelector('tr[data-run]')?.dataset.run === 'run-0999');
  // Scrolling to the end shows the last rows.
  await page.$eval('.vscroll', (el) => (el.scrollTop = el.scrollHeight));
  await page.locator('tr[data-run="run-0000"]').waitFor();
  // Status filter: every tenth run (i % 10 == 1) failed.
  await page.selectOption('select[aria-label="Status filter"]', 'failed');
  await page.waitForFunction(() => document.querySelector('.count')?.textContent === '100 of 1,000 runs');
  await page.selectOption('select[aria-label="Status filter"]', '');
  // Search, and the URL keeps it across a reload.
  await page.fill('input[aria-label="Search runs"]', 'trial 012');
  await page.waitForFunction(() => document.querySelector('.count')?.textContent === '10 of 1,000 runs');
  await page.waitForFunction(() => location.search.includes('q=trial'));
  await page.reload();
  await page.waitForFunction(() => document.querySelector('.count')?.textContent === '10 of 1,000 runs');
  assert.equal(await page.inputValue('input[aria-label="Search runs"]'), 'trial 012');
  // Tag filter.
  await page.goto(url({ project: 'fx/table', tag: 'third' }));
  await page.waitForFunction(() => document.querySelector('.count')?.textContent === '334 of 1,000 runs');
  // Config and metric columns, sorted by value.
  await page.goto(url({ project: 'fx/table', cols: 'c:lr,m:loss', sort: 'm:loss:desc' }));
  await page.waitForFunction(() => document.querySelector('tr[data-run]')?.dataset.run === 'run-0999');
  const cells = await page.$$eval('tr[data-run="run-0999"] td.num', (tds) => tds.map((t) => t.textContent));
  assert.ok(cells.some((c) => c.startsWith('0.1')), `last loss of run-0999 shown: ${cells}`);
  await shot('runs-table');
});

test('runs table paged through the server (beyond 5,000 runs, or paged=1): sort, scroll, filters and search are the server’s', async () => {
  await page.goto(url({ project: 'fx/table', paged: '1' }));
  await page.locator('tr[data-run]').first().waitFor();
  assert.equal(await page.getAttribute('tr[data-run]', 'data-run'), 'run-0999');
  assert.equal(await page.textContent('.count'), '1,000 of 1,000 runs');
  const rendered = await page.locator('tr[data-run]').count();
  assert.ok(rendered <= 100, `one page asked and rendered: ${rendered}`);
  await page.click('button.sort[data-col="created"]');
  await page.waitForFunction(() => document.querySelector('tr[data-run]')?.dataset.run === 'run-0000');
  assert.equal(await page.isDisabled('button.sort[data-col="duration"]'), true, 'the server cannot sort by duration');
  assert.equal(await page.isDisabled('input[aria-label="Select all shown runs"]'), true);
  // Scrolling to the end asks for the last page.
  await page.$eval('.vscroll', (el) => (el.scrollTop = el.scrollHeight));
  await page.locator('tr[data-run="run-0999"]').waitFor();
  await page.selectOption('select[aria-label="Status filter"]', 'failed');
  await page.waitForFunction(() => document.querySelector('.count')?.textContent === '100 of 1,000 runs');
  await page.selectOption('select[aria-label="Status filter"]', '');
  await page.fill('input[aria-label="Search runs"]', 'trial 012');
  await page.waitForFunction(() => document.querySelector('.count')?.textContent === '10 of 1,000 runs');
  await page.waitForFunction(() => document.querySelectorAll('tr[data-run]').length === 10);
  const ids = await page.$$eval('tr[data-run]', (trs) => trs.map((t) => t.dataset.run));
  assert.deepEqual(ids, ['run-0120', 'run-0121', 'run-0122', 'run-0123', 'run-0124', 'run-0125', 'run-0126', 'run-0127', 'run-0128', 'run-0129']);
  await page.goto(url({ project: 'fx/table', paged: '1', tag: 'third' }));
  await page.waitForFunction(() => document.querySelector('.count')?.textContent === '334 of 1,000 runs');
  await page.goto(url({ project: 'fx/table', paged: '1', cols: 'c:lr,m:loss', sort: 'm:loss:desc' }));
  await page.waitForFunction(() => document.querySelector('tr[data-run]')?.dataset.run === 'run-0999');
  const cells = await page.$$eval('tr[data-run="run-0999"] td.num', (tds) => tds.map((t) => t.textContent));
  assert.ok(cells.some((c) => c.startsWith('0.1')), `last loss of run-0999 shown: ${cells}`);
  await page.goto(url({ project: 'fx/table', paged: '1', where: 'layers = 2' }));
  await page.waitForFunction(() => document.querySelector('.count')?.textContent === '200 of 200 runs');
  // The CSV holds every run the conditions keep, not only the pages loaded.
  const [d] = await Promise.all([page.waitForEvent('download'), page.click('button:has-text("CSV")')]);
  const chunks = [];
  for await (const c of await d.createReadStream()) chunks.push(c);
  const lines = Buffer.concat(chunks).toString('utf8').trim().split('\r\n');
  assert.equal(lines.length, 201, 'a header and the 200 runs');
});

test('runs table: conditions on config values, evaluated by the server, in the URL', async () => {
  await page.goto(url({ project: 'fx/table' }));
  await page.locator('tr[data-run]').first().waitFor();
  const want = (keep) => [...Array(1000).keys()].filter(keep).length;
  const filter = page.locator('input[aria-label="Add a filter"]');
  await filter.fill('layers = 3');
  await filter.press('Enter');
  const layers3 = want((i) => i % 5 === 3);
  await page.waitForFunction((n) => document.querySelector('.count')?.textContent === `${n} of ${n} runs`, layers3);
  await filter.fill('lr in [0.0045, 1]');
  await filter.press('Enter');
  const both = want((i) => i % 5 === 3 && (i % 7) + 1 >= 5);
  await page.waitForFunction((n) => document.querySelector('.count')?.textContent === `${n} of ${n} runs`, both);
  assert.equal(await page.locator('.filter-chip').count(), 2);
  const ids = await page.$$eval('tr[data-run]', (trs) => trs.map((t) => Number(t.dataset.run.slice(4))));
  assert.ok(ids.length > 0 && ids.every((i) => i % 5 === 3 && (i % 7) + 1 >= 5), `only matching runs: ${ids.slice(0, 10)}`);
  // A condition the server cannot read is said and not added.
  await filter.fill('lr ?? 3');
  await filter.press('Enter');
  const problem = page.locator('.filter-problem');
  await problem.waitFor();
  assert.match(await problem.textContent(), /filter "lr \?\? 3": unknown operator/);
  assert.equal(await page.locator('.filter-chip').count(), 2);
  await shot('runs-filters');
  // In the URL: a reload keeps them; removing a chip widens the table again.
  assert.match(page.url(), /where=layers\+%3D\+3/);
  await page.reload();
  await page.waitForFunction((n) => document.querySelector('.count')?.textContent === `${n} of ${n} runs`, both);
  await page.click('button[aria-label="Remove filter lr in [0.0045, 1]"]');
  await page.waitForFunction((n) => document.querySelector('.count')?.textContent === `${n} of ${n} runs`, layers3);
  await page.click('button[aria-label="Remove filter layers = 3"]');
  await page.waitForFunction(() => document.querySelector('.count')?.textContent === '1,000 of 1,000 runs');
});

test('runs table: metrics at a glance as columns, sorts and conditions', async () => {
  // loss of run i falls from 1 + i/10000 (step 0) to 1/20 + i/10000 (step 19).
  await page.goto(url({ project: 'fx/table' }));
  await page.locator('tr[data-run]').first().waitFor();
  await page.click('text=Columns');
  await page.click('input[aria-label="loss min"]');
  await page.click('input[aria-label="loss step of min"]');
  await page.click('text=Done');
  await page.waitForFunction(() => location.search.includes('s%3Amin%3Aloss'));
  const header = 'button.sort[data-col="s:min:loss"]';
  await page.locator(header).waitFor();
  assert.match(await page.textContent(header), /loss \(min\)/);
  // Sorted by it, highest first: the last run has the highest minimum.
  await page.click(header);
  await page.waitForFunction(() => document.querySelector('tr[data-run]')?.dataset.run === 'run-0999');
  const cells = await page.$$eval('tr[data-run="run-0999"] td.num', (tds) => tds.map((t) => t.textContent));
  assert.ok(cells.includes('0.1499') && cells.includes('19'), `min and its step: ${cells}`);
  // A condition on it, evaluated by the server.
  const filter = page.locator('input[aria-label="Add a filter"]');
  await filter.fill('loss.min < 0.05045');
  await filter.press('Enter');
  await page.waitForFunction(() => document.querySelector('.count')?.textContent === '5 of 5 runs');
  const ids = await page.$$eval('tr[data-run]', (trs) => trs.map((t) => t.dataset.run).sort());
  assert.deepEqual(ids, ['run-0000', 'run-0001', 'run-0002', 'run-0003', 'run-0004']);
  await shot('runs-metric-summaries');
  await page.click('button[aria-label="Remove filter loss.min < 0.05045"]');
});

test('importance: the config that drives the metric comes first, for the runs shown', async () => {
  await page.goto(url({ project: 'fx/hp' }));
  await page.locator('tr[data-run]').first().waitFor();
  await page.click('button:has-text("Importance")');
  await page.locator('section.importance').waitFor();
  await page.selectOption('select[aria-label="Importance metric"]', 'val/acc');
  await page.selectOption('select[aria-label="Importance summary"]', 'max');
  await page.waitForFunction(() => location.search.includes('importance=val%2Facc.max'));
  await page.locator('.importance-table tr[data-param]').first().waitFor();
  const params = await page.$$eval('.importance-table tr[data-param]', (trs) => trs.map((t) => t.dataset.param));
  assert.deepEqual(params.slice(0, 2), ['lr', 'optimizer'], `${params}`);
  const r = Number(await page.getAttribute('tr[data-param="lr"] td[data-correlation]', 'data-correlation'));
  assert.ok(r > 0.9, `a larger lr, a better accuracy here: ${r}`);
  assert.match(await page.textContent('.importance-note'), /From 40 of the 40 runs shown/);
  await shot('importance');
  // The table's conditions narrow the runs it explains.
  const filter = page.locator('input[aria-label="Add a filter"]');
  await filter.fill('optimizer = adam');
  await filter.press('Enter');
  await page.waitForFunction(() => /From 20 of the 20 runs shown/.test(document.querySelector('.importance-note')?.textContent ?? ''));
  assert.equal(await page.locator('tr[data-param="optimizer"]').count(), 0, 'one optimizer left: it does not vary');
  await page.click('button[aria-label="Close importance"]');
  await page.waitForFunction(() => !location.search.includes('importance='));
});

test('scatter: a config against a metric summary, a dot per run, a click opens the run', async () => {
  await page.goto(url({ project: 'fx/hp' }));
  await page.locator('tr[data-run]').first().waitFor();
  await page.click('button:has-text("Scatter")');
  await page.locator('section.scatter').waitFor();
  await page.locator('select[aria-label="Scatter x"] option[value="c:lr"]').waitFor({ state: 'attached' });
  await page.selectOption('select[aria-label="Scatter x"]', 'c:lr');
  await page.selectOption('select[aria-label="Scatter y"]', 's:max:val/acc');
  await page.click('section.scatter label:has-text("log x") input');
  await page.waitForFunction(() => Number(document.querySelector('svg.scatter-plot')?.dataset.points) === 40);
  // lr 0.1 (runs 3, 7, …) reached a higher accuracy than lr 1e-4 (runs 0, 4, …): higher up.
  const cy = (id) => page.$eval(`svg.scatter-plot a[data-run="${id}"] circle`, (c) => Number(c.getAttribute('cy')));
  const cx = (id) => page.$eval(`svg.scatter-plot a[data-run="${id}"] circle`, (c) => Number(c.getAttribute('cx')));
  assert.ok((await cy('hp-03')) < (await cy('hp-00')), 'a better accuracy is drawn higher');
  assert.ok((await cx('hp-03')) > (await cx('hp-02')) && (await cx('hp-02')) > (await cx('hp-01')), 'lr in order on a log axis');
  const spread = (await cx('hp-02')) - (await cx('hp-01'));
  const next = (await cx('hp-03')) - (await cx('hp-02'));
  assert.ok(Math.abs(spread - next) < 1, `decades evenly apart on log x: ${spread} ${next}`);
  assert.match(page.url(), /scatter=1/);
  // Round ticks: the decades on log x.
  const xticks = await page.$$eval('svg.scatter-plot text.tick', (ts) => ts.map((t) => t.textContent));
  assert.ok(['0.0001', '0.001', '0.01', '0.1'].every((d) => xticks.includes(d)), `decades: ${xticks}`);
  await shot('scatter');
  await page.click('svg.scatter-plot a[data-run="hp-03"]');
  await page.waitForFunction(() => location.search.includes('run=hp-03'));
  // Paged through the server, the scatter asks it for the runs and their axes' values.
  await page.goto(url({ project: 'fx/hp', paged: '1', scatter: '1', sx: 'c:lr', sy: 's:max:val/acc' }));
  await page.waitForFunction(() => Number(document.querySelector('svg.scatter-plot')?.dataset.points) === 40);
});

test('parallel coordinates: a line per run; brushing an axis filters the table, a click clears it', async () => {
  await page.goto(url({ project: 'fx/hp' }));
  await page.locator('tr[data-run]').first().waitFor();
  await page.click('button:has-text("Parallel")');
  // Its axes start on the project's configs and its metric's best, written into the URL.
  await page.waitForFunction(() => new URLSearchParams(location.search).get('pcols')?.includes('s:max:val/acc'));
  await page.waitForFunction(() => Number(document.querySelector('svg.parallel-plot')?.dataset.lines) === 40);
  const axes = await page.$$eval('svg.parallel-plot g.paxis', (gs) => gs.map((g) => g.dataset.axis));
  assert.ok(axes.includes('c:lr') && axes.includes('c:optimizer') && axes.at(-1) === 's:max:val/acc', `${axes}`);
  // lr spans three decades: a log axis, 0.1 at the top.
  assert.match(await page.textContent('g.paxis[data-axis="c:lr"] .axis-label'), /lr \(log\)/);
  await shot('parallel');
  const box = await page.locator('g.paxis[data-axis="c:lr"] rect.brush-target').boundingBox();
  const x = box.x + box.width / 2;
  await page.mouse.move(x, box.y + 2);
  await page.mouse.down();
  await page.mouse.move(x, box.y + box.height * 0.1, { steps: 4 });
  await page.mouse.move(x, box.y + box.height * 0.2, { steps: 4 });
  await page.mouse.up();
  await page.waitForFunction(() => new URLSearchParams(location.search).getAll('where').includes('config.lr = 0.1'));
  await page.waitForFunction(() => document.querySelector('.count')?.textContent === '10 of 10 runs');
  await page.waitForFunction(() => Number(document.querySelector('svg.parallel-plot')?.dataset.lines) === 10);
  // A category axis: a brush over both optimizers is a text range.
  const opt = await page.locator('g.paxis[data-axis="c:optimizer"] rect.brush-target').boundingBox();
  await page.mouse.move(opt.x + opt.width / 2, opt.y + 1);
  await page.mouse.down();
  await page.mouse.move(opt.x + opt.width / 2, opt.y + opt.height - 1, { steps: 6 });
  await page.mouse.up();
  // lr = 0.1 runs are all sgd: one value, an equality.
  await page.waitForFunction(() => new URLSearchParams(location.search).getAll('where').includes('config.optimizer = "sgd"'));
  // A click without a drag clears the axis' condition.
  await page.mouse.click(x, box.y + box.height / 2);
  await page.waitForFunction(() => !new URLSearchParams(location.search).getAll('where').some((w) => w.startsWith('config.lr')));
  await page.waitForFunction(() => document.querySelector('.count')?.textContent === '20 of 20 runs');
  await page.click('button[aria-label="Close parallel coordinates"]');
  await page.waitForFunction(() => !location.search.includes('parallel='));
});

test('groups: by a config, a row per group with mean ± std, a mean curve with its band per group', async () => {
  await page.goto(url({ project: 'fx/hp', cols: 's:max:val/acc' }));
  await page.locator('tr[data-run]').first().waitFor();
  await page.click('button:has-text("Group")');
  await page.locator('section.groups').waitFor();
  await page.locator('select[aria-label="Add a group key"] option[value="optimizer"]').waitFor({ state: 'attached' });
  await page.selectOption('select[aria-label="Add a group key"]', 'optimizer');
  await page.waitForFunction(() => location.search.includes('group=optimizer'));
  // Two group rows, folded; adam's runs reached 0.52 (lr 1e-4) and 0.72 (lr 1e-2).
  await page.locator('tr.group-row').nth(1).waitFor();
  assert.equal(await page.locator('tr.group-row').count(), 2);
  assert.equal(await page.locator('tr[data-run]').count(), 0, 'groups start folded');
  const adam = page.locator('tr.group-row[data-group="optimizer = adam"]');
  assert.match(await adam.textContent(), /20 runs/);
  assert.match(await adam.locator('td.num').first().textContent(), /^0\.62 ± 0\.1$/);
  // The curves: one per group, from the server, the band drawn.
  await page.waitForFunction(() => Number(document.querySelector('.group-chart')?.dataset.lines) === 2);
  const pts = await page.getAttribute('.group-chart figure', 'data-points');
  assert.equal(pts, '20', 'ten steps for each of two groups');
  const legend = await page.$$eval('.group-chart .legend-item', (xs) => xs.map((x) => x.textContent));
  assert.deepEqual(legend, ['optimizer = adam (20)', 'optimizer = sgd (20)']);
  await shot('groups');
  // Open a group: its runs under it; select them all from the group row.
  await adam.locator('button.group-toggle').click();
  await page.waitForFunction(() => document.querySelectorAll('tr[data-run]').length === 20);
  await adam.locator('input[type=checkbox]').check();
  await page.waitForFunction(() => new URLSearchParams(location.search).get('sel')?.split(',').length === 20);
  // Median with quartiles, and a second key: four groups.
  await page.selectOption('select[aria-label="Group curve center"]', 'median');
  await page.selectOption('select[aria-label="Group curve band"]', 'iqr');
  await page.selectOption('select[aria-label="Add a group key"]', 'lr');
  await page.waitForFunction(() => document.querySelectorAll('tr.group-row').length === 4);
  await page.waitForFunction(() => Number(document.querySelector('.group-chart')?.dataset.lines) === 4);
  assert.match(page.url(), /gstat=median/);
  assert.match(page.url(), /gband=iqr/);
  await page.click('button[aria-label="Close groups"]');
  await page.waitForFunction(() => !location.search.includes('group='));
  await page.locator('tr[data-run]').first().waitFor();
  assert.equal(await page.locator('section.groups').count(), 0);
  // Several metrics' group curves, hovering in step; one taken away.
  await page.goto(url({ project: 'fx/cmp', group: 'optimizer', gm: 'train/loss,val/acc' }));
  await page.waitForFunction(() => [...document.querySelectorAll('.group-chart')].map((c) => `${c.dataset.metric}:${c.dataset.lines}`).join() === 'train/loss:2,val/acc:2');
  await page.selectOption('select[aria-label="Add a group curve"]', 'train/lr');
  await page.waitForFunction(() => document.querySelectorAll('.group-chart').length === 3);
  await page.click('button[aria-label="Stop drawing val/acc"]');
  await page.waitForFunction(() => new URLSearchParams(location.search).get('gm') === 'train/loss,train/lr');
});

test('edits: name, tags, description and note from the run page, and an edit made elsewhere shows live', async () => {
  await page.goto(url({ project: 'fx/hp', run: 'hp-05' }));
  await page.click('button:has-text("Edit…")');
  const form = page.locator('form.edit-form');
  await form.waitFor();
  await form.locator('label:has-text("Name") input').fill('');
  assert.equal(await form.locator('button:has-text("Save")').isDisabled(), true, 'no empty name');
  await form.locator('label:has-text("Name") input').fill('tuned baseline');
  await form.locator('label:has-text("Tags") input').fill('keep, best, keep');
  await form.locator('label:has-text("Description") textarea').fill('lr 1e-3 with sgd');
  await form.locator('label:has-text("Note") textarea').fill('the sweet spot of the sweep');
  await form.locator('button:has-text("Save")').click();
  await page.waitForFunction(() => document.querySelector('.run-name')?.textContent === 'tuned baseline');
  assert.equal(await page.textContent('.run-description'), 'lr 1e-3 with sgd');
  assert.match(await page.textContent('.run-note'), /the sweet spot of the sweep/);
  const tags = await page.$$eval('.facts .tag', (ts) => ts.map((t) => t.textContent));
  assert.deepEqual(tags, ['best', 'keep']);
  await shot('run-edited');
  // Someone else edits the note: it shows here without a reload.
  const status = await page.evaluate(() =>
    fetch('/api/runs/fx/hp/hp-05/edit', { method: 'POST', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify({ note: 'changed elsewhere' }) }).then((r) => r.status),
  );
  assert.equal(status, 200);
  await page.waitForFunction(() => /changed elsewhere/.test(document.querySelector('.run-note')?.textContent ?? ''), null, { timeout: 10000 });
  // The table has the new name and tags.
  await page.goto(url({ project: 'fx/hp', q: 'tuned' }));
  await page.waitForFunction(() => document.querySelector('tr[data-run="hp-05"] td.name')?.textContent === 'tuned baseline');
});

test('exports: the table as CSV, a chart as PNG, SVG and CSV', async () => {
  const saved = async (click) => {
    const [d] = await Promise.all([page.waitForEvent('download'), click()]);
    const chunks = [];
    for await (const c of await d.createReadStream()) chunks.push(c);
    return { name: d.suggestedFilename(), bytes: Buffer.concat(chunks) };
  };
  await page.goto(url({ project: 'fx/hp', cols: 'c:lr,s:max:val/acc', where: 'optimizer = adam' }));
  await page.waitForFunction(() => document.querySelector('.count')?.textContent === '20 of 20 runs');
  const table = await saved(() => page.click('button:has-text("CSV")'));
  assert.equal(table.name, 'fx_hp-runs.csv');
  const lines = table.bytes.toString('utf8').trim().split('\r\n');
  assert.equal(lines[0], 'run_id,name,state,created_at,closed_at,tags,lr,val/acc (max)');
  assert.equal(lines.length, 21, 'a header and the 20 runs shown');
  const hp04 = lines.find((l) => l.startsWith('hp-04,'));
  assert.ok(hp04 && hp04.endsWith(',0.0001,0.52'), hp04);
  await page.goto(url({ project: 'fx/hp', run: 'hp-04' }));
  const chart = page.locator('figure.chart[data-path="val/acc"]');
  await chart.locator('canvas').first().waitFor();
  await chart.hover();
  const png = await saved(() => chart.locator('button:has-text("PNG")').click());
  assert.equal(png.name, 'val_acc.png');
  assert.deepEqual([...png.bytes.subarray(0, 8)], [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a], 'a PNG');
  const svg = await saved(() => chart.locator('button:has-text("SVG")').click());
  const text = svg.bytes.toString('utf8');
  assert.match(text, /^<svg xmlns="http:\/\/www.w3.org\/2000\/svg"/);
  assert.equal((text.match(/<path d="M/g) ?? []).length, 1, 'one line, drawn as a vector');
  assert.equal((text.match(/ L/g) ?? []).length, 9, 'through its ten points');
  const data = await saved(() => chart.locator('button:has-text("CSV")').click());
  const rows = data.bytes.toString('utf8').trim().split('\r\n');
  assert.equal(rows[0], 'series,step,value,min,max,time');
  assert.equal(rows.length, 11);
  assert.ok(rows[10].startsWith('hp-04,9,0.52'), rows[10]);
});

test('run page: a 1,000,000-point metric is drawn downsampled, with its band', async () => {
  const t0 = Date.now();
  await page.goto(url({ project: 'fx/big', run: 'million' }));
  const chart = 'figure.chart[data-path="train/loss"]';
  await page.waitForFunction(
    (sel) => {
      const fig = document.querySelector(sel);
      return fig && Number(fig.dataset.points) > 0 && fig.querySelector('canvas');
    },
    chart,
  );
  figures.run_page_chart_ms = Date.now() - t0;
  figures.run_page_chart_drawn_ms = Math.round(await page.evaluate(() => window.__goodseedMarks.chart));
  assert.equal(await page.getAttribute(chart, 'data-total'), '1000000');
  const points = Number(await page.getAttribute(chart, 'data-points'));
  assert.ok(points > 500 && points <= 1002, `downsampled to about 1000 points, got ${points}`);
  assert.ok((await inkOf(chart)) > 2000, 'the chart canvas is drawn, not blank');
  // The header says what the run is.
  await page.getByText('a million points').waitFor();
  await shot('run-page');
});

test('zoom: dragging fetches the visible range again, at full resolution once it fits', async () => {
  const chart = 'figure.chart[data-path="train/loss"]';
  const requests = [];
  const onRequest = (r) => r.url().includes('/series?') && requests.push(r.url());
  page.on('request', onRequest);
  const drag = async (from, to) => {
    const box = await page.locator(`${chart} .u-over`).boundingBox();
    const before = await page.evaluate(() => window.__goodseedTimings.length);
    const y = box.y + box.height / 2;
    await page.mouse.move(box.x + box.width * from, y);
    await page.mouse.down();
    await page.mouse.move(box.x + box.width * ((from + to) / 2), y, { steps: 2 });
    await page.mouse.move(box.x + box.width * to, y, { steps: 2 });
    await page.mouse.up();
    await page.waitForFunction((n) => window.__goodseedTimings.length > n && window.__goodseedTimings.at(-1).kind === 'zoom', before);
    return Math.round(await page.evaluate(() => window.__goodseedTimings.at(-1).ms));
  };
  const view = async () => {
    const w = Number(await page.getAttribute(chart, 'data-window'));
    const points = Number(await page.getAttribute(chart, 'data-points'));
    return { w, points };
  };
  // A tenth of the series: still downsampled, but ten times finer.
  const first = await drag(0.45, 0.55);
  let z = await view();
  assert.ok(z.w > 50000 && z.w < 200000, `a window of about a tenth: ${z.w}`);
  assert.ok(z.points > 500 && z.points < z.w, `downsampled within the window: ${z.points} of ${z.w}`);
  // Two more tenths: few enough points to come at full resolution.
  const second = await drag(0.45, 0.55);
  const third = await drag(0.47, 0.53);
  z = await view();
  assert.ok(z.w < 1000 && z.points === z.w, `full resolution: ${z.points} of ${z.w}`);
  page.off('request', onRequest);
  assert.ok(requests.filter((u) => u.includes('firstPointIndex')).length >= 3, `windowed requests: ${requests}`);
  figures.zoom_refetch_ms = Math.max(first, second, third);
  assert.ok((await inkOf(chart)) > 300, 'the zoomed chart is drawn');
  await page.getByRole('button', { name: 'reset zoom' }).waitFor();
  await shot('run-page-zoomed');
  await page.getByRole('button', { name: 'reset zoom' }).click();
  await page.waitForFunction((sel) => Number(document.querySelector(sel)?.dataset.window) === 1000000, chart);
});

test('chart options: smoothing, log y, x axis live in the URL', async () => {
  await page.goto(url({ project: 'fx/big', run: 'million', smooth: '0.9', logy: '1', x: 'rel' }));
  const chart = 'figure.chart[data-path="train/diverging"]';
  await page.locator(`${chart} canvas`).waitFor();
  assert.equal(await page.inputValue('select[aria-label="x axis"]'), 'rel');
  assert.ok(await page.isChecked('text=log y >> input'), 'log y checked');
  assert.ok((await inkOf(chart)) > 500);
  await page.selectOption('select[aria-label="x axis"]', 'wall');
  await page.waitForFunction(() => location.search.includes('x=wall'));
});

test('NaN and infinite values are marked, not hidden as gaps', async () => {
  await page.goto(url({ project: 'fx/big', run: 'million' }));
  const chart = 'figure.chart[data-path="train/diverging"]';
  await page.locator(`${chart} canvas`).waitFor();
  await page.locator(`${chart} .legend-nan`).waitFor();
  // Markers are drawn in the run's colour (#2f6fde) at the top edge.
  assert.ok((await pixelsOf(chart, [0x2f, 0x6f, 0xde])) > 50);
  // Hovering the NaN step says NaN.
  const box = await page.locator(`${chart} .u-over`).boundingBox();
  await page.mouse.move(box.x + box.width * (50.2 / 199), box.y + box.height / 2);
  await page.waitForFunction((sel) => /NaN/.test(document.querySelector(`${sel} .chart-legend`)?.textContent ?? ''), chart);
  await page.locator(chart).screenshot({ path: join(SHOTS, 'nan-chart.png') });
});

test('logs: tail, paging, search, stderr readable', async () => {
  await page.goto(url({ project: 'fx/big', run: 'million', tab: 'logs' }));
  await page.locator('.log-line').first().waitFor();
  const count = await page.textContent('.logs .count');
  assert.match(count, /of 1332$/);
  assert.ok(await page.isVisible('text=step 1199: all good'), 'the tail is shown');
  await page.click('text=First');
  await page.getByText('step 0: all good', { exact: true }).waitFor();
  // All series interleaved by step, as they were logged (not one series after another).
  const steps = await page.$$eval('.log-line .log-step', (ss) => ss.map((s) => Number(s.textContent)));
  assert.ok(steps.every((s, i) => i === 0 || steps[i - 1] <= s), `steps in order: ${steps.slice(0, 20)}`);
  const first = await page.$$eval('.log-line pre', (ps) => ps.slice(0, 4).map((p) => p.textContent));
  assert.deepEqual(first, ['warning at 0: grad norm high', 'step 0: all good', 'ERROR trainer: checkpoint 0', 'step 1: all good']);
  // The search covers the whole series on the server, not the loaded page.
  await page.fill('input[aria-label="Search logs"]', 'GRAD NORM');
  await page.waitForFunction(() => /^matches .* of 12$/.test(document.querySelector('.logs .count')?.textContent ?? ''));
  await page.waitForFunction(() => [...document.querySelectorAll('.log-line')].every((l) => l.textContent.includes('grad norm')));
  const lines = await page.locator('.log-line').count();
  assert.equal(lines, 12, 'every match, the first page included');
  assert.equal(lines, await page.locator('.log-line.stderr').count(), 'stderr lines marked');
  assert.ok(await page.isVisible('text=warning at 0: grad norm high'), 'a match far from the tail');
  await shot('logs');
  // By level: error lines only (of the tracing series), then back.
  await page.fill('input[aria-label="Search logs"]', '');
  await page.selectOption('select[aria-label="Log level"]', 'error');
  await page.waitForFunction(() => /^matches .* of 4$/.test(document.querySelector('.logs .count')?.textContent ?? ''));
  const errors = await page.$$eval('.log-line pre', (ps) => ps.map((p) => p.textContent));
  assert.deepEqual(errors, ['ERROR trainer: checkpoint 0', 'ERROR trainer: checkpoint 300', 'ERROR trainer: checkpoint 600', 'ERROR trainer: checkpoint 900']);
  await page.selectOption('select[aria-label="Log level"]', '');
});

test('a run written by Python goodseed 0.4.0: charts, config and logs', async () => {
  await page.goto(url({ project: 'fx/py', run: 'py-run' }));
  await page.getByText('written by python goodseed').waitFor();
  const chart = 'figure.chart[data-path="train/loss"]';
  await page.waitForFunction((sel) => Number(document.querySelector(sel)?.dataset.total) === 3000, chart);
  assert.ok((await inkOf(chart)) > 1000, 'drawn');
  const points = Number(await page.getAttribute(chart, 'data-points'));
  assert.ok(points > 500 && points <= 1002, `downsampled like any run: ${points}`);
  await page.locator('figure.chart[data-path="val/acc"] canvas').waitFor();
  await page.getByRole('tab', { name: 'Config' }).click();
  await page.fill('input[aria-label="Search config"]', 'hp/');
  await page.getByText('adam', { exact: true }).waitFor();
  await page.getByRole('tab', { name: 'Logs' }).click();
  await page.getByText('python epoch 29: loss').waitFor();
  assert.equal(await page.locator('.log-line.stderr').count(), 3);
  await shot('python-run');
});

test('histograms: a tab for the runs that have them, the distribution over steps and one step as bars', async () => {
  await page.goto(url({ project: 'fx/cmp', run: 'cmp-0' }));
  await page.getByRole('tab', { name: 'Config' }).waitFor();
  assert.equal(await page.getByRole('tab', { name: 'Histograms' }).count(), 0, 'no tab without histograms');
  await page.goto(url({ project: 'fx/hist', run: 'hist-1' }));
  await page.getByRole('tab', { name: 'Histograms' }).click();
  const series = '.histogram-series[data-series="weights/fc1"]';
  await page.locator(`${series} .histogram-bars rect`).first().waitFor();
  await page.getByText('step 4 · 5 histograms').waitFor();
  // The heat map: a row of cells per step.
  const cells = await page.locator(`${series} .histogram-heat rect[fill="var(--live)"]`).count();
  assert.ok(cells > 5 * 10, `heat map drawn: ${cells} cells`);
  // The last step's bars sit right of the first step's.
  const centre = () =>
    page.$$eval(`${series} .histogram-bars rect[fill="var(--accent)"]`, (rects) => {
      let sum = 0;
      let weight = 0;
      for (const r of rects) {
        const h = Number(r.getAttribute('height'));
        sum += (Number(r.getAttribute('x')) + Number(r.getAttribute('width')) / 2) * h;
        weight += h;
      }
      return sum / weight;
    });
  const last = await centre();
  await page.locator(`${series} input[type="range"]`).focus();
  await page.keyboard.press('Home');
  await page.getByText('step 0 · 5 histograms').waitFor();
  const first = await centre();
  assert.ok(last > first + 50, `the distribution moves right: ${first} -> ${last}`);
  // A click on the heat map's middle row picks that step.
  const box = await page.locator(`${series} .histogram-heat`).boundingBox();
  await page.mouse.click(box.x + box.width / 2, box.y + box.height * 0.52);
  await page.getByText('step 2 · 5 histograms').waitFor();
  assert.equal(new URL(page.url()).searchParams.get('tab'), 'histograms');
  await shot('histograms');
});

test('a run left running by a killed 0.4.0 trainer shows as stale, with its last write', async () => {
  await page.goto(url({ project: 'fx/py' }));
  const badge = page.locator('tr:has-text("py-killed") .badge');
  await badge.waitFor();
  assert.equal(await badge.getAttribute('data-state'), 'stale');
  assert.equal((await badge.textContent()).trim(), 'stale');
  assert.match(await badge.getAttribute('title'), /nothing written since .*most likely killed/);
  // The closed run beside it is not touched.
  assert.equal(await page.locator('tr:has-text("py-run") .badge').getAttribute('data-state'), 'finished');
  await page.selectOption('select[aria-label="Status filter"]', 'stale');
  await page.waitForFunction(() => document.querySelectorAll('tbody tr').length === 1);
  await page.goto(url({ project: 'fx/py', run: 'py-killed' }));
  await page.locator('[data-stale]').waitFor();
  assert.equal(await page.locator('[data-running-for]').count(), 0, 'no running timer');
  assert.equal(await page.locator('.pulse').count(), 0, 'not shown live');
});

test('system: monitoring drawn apart with units, one line per GPU; a failed run shows its traceback', async () => {
  await page.goto(url({ project: 'fx/sys', run: 'monitored' }));
  await page.locator('section.system').waitFor();
  await page.waitForFunction(() => document.querySelectorAll('section.system figure.chart[data-unit]').length >= 6);
  // Monitoring is not among the run's own charts, and sits after them.
  await page.locator('section.group:not(.system) figure.chart[data-path="train/loss"]').waitFor();
  const own = await page.$$eval('section.group:not(.system) [data-path]', (fs) => fs.map((f) => f.dataset.path));
  assert.ok(own.includes('train/loss'), `${own}`);
  assert.ok(own.every((p) => !p.startsWith('monitoring/')), `${own}`);
  const order = await page.$$eval('section.group', (gs) => gs.map((g) => g.classList.contains('system')));
  assert.equal(order[order.length - 1], true, 'System comes last');
  const charts = await page.$$eval('section.system figure.chart[data-unit]', (fs) =>
    fs.map((f) => ({ title: f.dataset.path, unit: f.dataset.unit, lines: f.querySelectorAll('.legend-item').length })),
  );
  const by = Object.fromEntries(charts.map((c) => [c.title, c]));
  assert.equal(by['CPU, host'].unit, '% of all cores');
  assert.equal(by['CPU, trainer'].unit, '% of one core');
  assert.equal(by['Memory'].unit, 'GB');
  assert.equal(by['Memory'].lines, 2, 'trainer and host side by side');
  assert.equal(by['GPU utilization'].lines, 2, 'one line per GPU');
  assert.equal(by['GPU power'].unit, 'W');
  assert.ok(!by['GPU temperature'], 'no chart for a series the run does not have');
  const legend = await page.$eval('section.system figure[data-path="GPU utilization"] .chart-legend', (l) => l.textContent);
  assert.ok(legend.includes('GPU 0') && legend.includes('GPU 1'), legend);
  // The traceback, in the header of the failed run.
  const tb = page.locator('details.traceback');
  await tb.waitFor();
  assert.ok((await tb.locator('summary').textContent()).includes("thread 'main' panicked at src/train.rs:42:9"));
  await tb.locator('summary').click();
  assert.ok((await tb.locator('pre').textContent()).includes('stack backtrace'));
  await page.locator('section.system').scrollIntoViewIfNeeded();
  await shot('system');
  // stdout, stderr and the traceback are in the logs.
  await page.goto(url({ project: 'fx/sys', run: 'monitored', tab: 'logs' }));
  await page.locator('.log-line').first().waitFor();
  const logs = await page.$eval('.log-lines', (l) => l.textContent);
  assert.ok(logs.includes('epoch 1 done') && logs.includes('about to fail') && logs.includes('panicked at'), logs);
});

test('config tree is searchable', async () => {
  await page.goto(url({ project: 'fx/cmp', run: 'cmp-1', tab: 'config' }));
  await page.locator('.tree').waitFor();
  await page.fill('input[aria-label="Search config"]', 'optimizer');
  await page.getByText('adam', { exact: true }).waitFor();
  assert.equal(await page.locator('.tree .leaf').count(), 1);
});

test('compare: overlay across runs with consistent colours, config diff', async () => {
  await page.goto(url({ project: 'fx/cmp' }));
  await page.locator('tr[data-run]').first().waitFor();
  for (const id of ['cmp-0', 'cmp-1', 'cmp-2']) await page.check(`input[aria-label="Select ${id}"]`);
  await page.getByRole('button', { name: /Compare \(3\)/ }).click();
  const chart = 'figure.chart[data-path="train/loss"]';
  await page.locator(`${chart} canvas`).waitFor();
  await page.waitForFunction((sel) => Number(document.querySelector(sel)?.dataset.points) === 150, chart);
  assert.equal(await page.locator(`${chart} .legend-item`).count(), 3);
  // Each run's colour is on the canvas.
  for (const rgb of [[0x2f, 0x6f, 0xde], [0xe0, 0x54, 0x2f], [0x1f, 0x9e, 0x6e]]) {
    assert.ok((await pixelsOf(chart, rgb)) > 30, `colour ${rgb} drawn`);
  }
  // Only the keys that differ: lr and optimizer, not epochs or seed.
  const keys = await page.$$eval('table.diff tbody td:first-child', (tds) => tds.map((t) => t.textContent));
  assert.deepEqual(keys.sort(), ['lr', 'optimizer']);
  assert.match(page.url(), /view=compare/);
  assert.match(decodeURIComponent(page.url()), /sel=cmp-0,cmp-1,cmp-2/);
  await shot('compare');
});

test('compare: named runs, a zoom that works, a legend that hides lines; select all takes every shown run', async () => {
  await page.goto(url({ project: 'fx/cmp', view: 'compare', sel: 'cmp-0,cmp-1,cmp-2' }));
  const chart = 'figure.chart[data-path="train/loss"]';
  await page.locator(`${chart} canvas`).waitFor();
  await page.waitForFunction((sel) => Number(document.querySelector(sel)?.dataset.points) === 150, chart);
  const legend = await page.$$eval(`${chart} .legend-item`, (els) => els.map((e) => e.textContent.trim()));
  assert.deepEqual(legend, ['sgd lr=0.1', 'adam lr=0.01', 'adam lr=0.001'], 'runs named, not by id');
  // Zoom: the window is fetched for every run, no error.
  const box = await page.locator(`${chart} .u-over`).boundingBox();
  const y = box.y + box.height / 2;
  await page.mouse.move(box.x + box.width * 0.2, y);
  await page.mouse.down();
  await page.mouse.move(box.x + box.width * 0.4, y, { steps: 3 });
  await page.mouse.up();
  await page.locator(`${chart} button:has-text("reset zoom")`).waitFor();
  await page.waitForFunction((sel) => {
    const f = document.querySelector(sel);
    return f && Number(f.dataset.window) > 0 && Number(f.dataset.window) < 150;
  }, chart);
  assert.equal(await page.locator('figure.chart-error').count(), 0, 'no chart failed');
  // The legend hides a run's line, and shows it again.
  const sgd = page.locator(`${chart} .legend-item`, { hasText: 'sgd lr=0.1' });
  const blue = [0x2f, 0x6f, 0xde];
  assert.ok((await pixelsOf(chart, blue)) > 10, 'the first run is drawn');
  await sgd.click();
  await page.waitForFunction((sel) => document.querySelector(`${sel} .legend-off`) !== null, chart);
  assert.equal(await sgd.getAttribute('aria-pressed'), 'false');
  await page.waitForTimeout(100);
  assert.ok((await pixelsOf(chart, blue)) < 5, 'hidden');
  await sgd.click();
  assert.equal(await sgd.getAttribute('aria-pressed'), 'true');
  // Select all shown: every run shown, and Compare says why it cannot take them all.
  await page.goto(url({ project: 'fx/table' }));
  await page.locator('tr[data-run]').first().waitFor();
  // The column picker offers every run's config keys (warmup: only some older runs).
  await page.getByRole('button', { name: 'Columns' }).click();
  await page.locator('.picker-menu label', { hasText: 'warmup' }).waitFor();
  await page.getByRole('button', { name: 'Done' }).click();
  await page.check('input[aria-label="Select all shown runs"]');
  const button = page.getByRole('button', { name: /Compare at most 32 \(1000 selected\)/ });
  await button.waitFor();
  assert.ok(await button.isDisabled());
  await page.uncheck('input[aria-label="Select all shown runs"]');
});

test('workspace: the top ten by a sort, panels that move and widen, hover and zoom in step across charts', async () => {
  // The ten best runs by val/acc's max, from the table's sort.
  await page.goto(url({ project: 'fx/hp', cols: 's:max:val/acc', sort: 's:max:val/acc:desc' }));
  await page.locator('tr[data-run]').first().waitFor();
  await page.selectOption('select[aria-label="Workspace of the top runs"]', '10');
  await page.waitForFunction(() => location.search.includes('view=compare'));
  const sel = new URL(page.url()).searchParams.get('sel').split(',');
  assert.equal(sel.length, 10);
  assert.ok(sel.every((id) => Number(id.slice(3)) % 4 === 3), `lr 0.1 runs are the best: ${sel}`);
  // Three metrics of three runs: arrange them.
  await page.goto(url({ project: 'fx/cmp', view: 'compare', sel: 'cmp-0,cmp-1,cmp-2' }));
  await page.locator('.workspace .panel figure.chart canvas').nth(2).waitFor();
  const order = () => page.$$eval('.workspace .panel', (ps) => ps.map((p) => p.dataset.panel));
  assert.deepEqual(await order(), ['train/loss', 'train/lr', 'val/acc']);
  await page.click('button[aria-label="Move val/acc earlier"]');
  await page.waitForFunction(() => new URLSearchParams(location.search).get('metrics') === 'train/loss,val/acc,train/lr');
  assert.deepEqual(await order(), ['train/loss', 'val/acc', 'train/lr']);
  await page.click('button[aria-label="Resize train/loss"]');
  await page.waitForFunction(() => document.querySelector('.panel[data-panel="train/loss"]')?.dataset.span === '2');
  assert.match(page.url(), /metrics=train%2Floss%402/);
  const wide = await page.$eval('.panel[data-panel="train/loss"]', (p) => p.getBoundingClientRect().width);
  const narrow = await page.$eval('.panel[data-panel="val/acc"]', (p) => p.getBoundingClientRect().width);
  assert.ok(wide > narrow * 1.8, `two columns wide: ${wide} vs ${narrow}`);
  // Hover one chart: every chart shows the hovered step.
  const box = await page.locator('.panel[data-panel="val/acc"] .u-over').boundingBox();
  await page.mouse.move(box.x + box.width * 0.5, box.y + box.height * 0.5);
  await page.waitForFunction(() => document.querySelectorAll('.workspace .chart-legend .legend-x').length === 3);
  const hovered = await page.$$eval('.workspace .chart-legend .legend-x', (xs) => xs.map((x) => x.textContent));
  assert.ok(hovered.every((h) => h === hovered[0]), `one step everywhere: ${hovered}`);
  // Zoom one chart: all follow; reset one: all reset.
  await page.mouse.move(box.x + box.width * 0.2, box.y + box.height * 0.5);
  await page.mouse.down();
  await page.mouse.move(box.x + box.width * 0.5, box.y + box.height * 0.5, { steps: 3 });
  await page.mouse.up();
  await page.waitForFunction(() => [...document.querySelectorAll('.workspace figure.chart')].every((f) => f.textContent.includes('reset zoom')));
  await shot('workspace');
  await page.locator('.panel[data-panel="train/lr"] button:has-text("reset zoom")').click();
  await page.waitForFunction(() => [...document.querySelectorAll('.workspace figure.chart')].every((f) => !f.textContent.includes('reset zoom')));
});

test('views: a screen saved under a name in the store, opened by name', async () => {
  await page.goto(url({ project: 'fx/hp', cols: 'c:lr,s:max:val/acc', where: 'optimizer = adam', group: 'lr', sort: 's:max:val/acc:desc' }));
  await page.locator('tr.group-row').first().waitFor();
  await page.click('button:has-text("Save view…")');
  await page.fill('input[aria-label="View name"]', 'adam-by-lr');
  await page.click('form.view-name button:has-text("Save")');
  await page.locator('select[aria-label="Views"] option[value="adam-by-lr"]').waitFor({ state: 'attached' });
  await page.goto(url({ project: 'fx/hp' }));
  await page.locator('tr[data-run]').first().waitFor();
  await page.locator('select[aria-label="Views"] option[value="adam-by-lr"]').waitFor({ state: 'attached' });
  await page.selectOption('select[aria-label="Views"]', 'adam-by-lr');
  await page.waitForFunction(() => {
    const q = new URLSearchParams(location.search);
    return q.get('group') === 'lr' && q.getAll('where').includes('optimizer = adam') && q.get('cols') === 'c:lr,s:max:val/acc';
  });
  await page.waitForFunction(() => document.querySelectorAll('tr.group-row').length === 2);
  // A bad name is refused with the reason.
  await page.click('button:has-text("Save view…")');
  await page.fill('input[aria-label="View name"]', 'a view');
  await page.click('form.view-name button:has-text("Save")');
  await page.getByText(/a view's name is 1 to 100 letters/).waitFor();
});

test('numbers: small values on axes and in tables read apart; hover names a step, not a bucket mean', async () => {
  // cmp-2's learning rate goes from 0.001 down to 0.0001.
  await page.goto(url({ project: 'fx/cmp', run: 'cmp-2' }));
  const lr = 'figure.chart[data-path="train/lr"]';
  await page.locator(`${lr} canvas`).waitFor();
  await page.waitForFunction((sel) => document.querySelector(sel)?.dataset.yticks, lr);
  const ticks = (await page.getAttribute(lr, 'data-yticks')).split(' ').filter((t) => t);
  assert.equal(new Set(ticks).size, ticks.length, `distinct ticks: ${ticks}`);
  assert.ok(!ticks.includes('0'), `no small tick reads 0: ${ticks}`);
  // Log y: decades below 1e-3 read as such.
  await page.goto(url({ project: 'fx/cmp', run: 'cmp-2', logy: '1' }));
  await page.waitForFunction((sel) => document.querySelector(sel)?.dataset.yticks, lr);
  const logTicks = (await page.getAttribute(lr, 'data-yticks')).split(' ').filter((t) => t);
  assert.equal(new Set(logTicks).size, logTicks.length, `distinct log ticks: ${logTicks}`);
  assert.ok(logTicks.includes('0.0001') && !logTicks.includes('0'), `log ticks: ${logTicks}`);
  // Hovering a downsampled series names a step.
  await page.goto(url({ project: 'fx/big', run: 'million' }));
  const big = 'figure.chart[data-path="train/loss"]';
  await page.locator(`${big} canvas`).waitFor();
  const box = await page.locator(`${big} .u-over`).boundingBox();
  await page.mouse.move(box.x + box.width * 0.37, box.y + box.height / 2);
  const x = await page.locator(`${big} .legend-x`).textContent();
  assert.match(x, /^(≈ )?\d+$/, `a step: ${x}`);
});

test('trash and restore', async () => {
  await page.goto(url({ project: 'fx/cmp' }));
  const row = 'tr[data-run="cmp-2"]';
  await page.locator(row).waitFor();
  await page.click(`${row} >> text=Trash`);
  await page.locator(row).waitFor({ state: 'detached' });
  await page.check('text=trashed >> input');
  await page.locator(row).waitFor();
  await shot('trashed-view');
  await page.click(`${row} >> text=Restore`);
  await page.locator(row).waitFor({ state: 'detached' });
  await page.uncheck('text=trashed >> input');
  await page.locator(row).waitFor();
});

test('sweep: its trials, the parameters that differ, the best by a metric, live', async () => {
  await page.goto(url({ project: 'fx/cmp' }));
  await page.selectOption('select[aria-label="Open a sweep"]', 'cmp-sweep');
  await page.locator('.sweep-table').waitFor();
  assert.match(page.url(), /sweep=cmp-sweep/);
  // Only the parameters that differ between trials are columns.
  const heads = await page.$$eval('.sweep-table th.mono', (ths) => ths.map((t) => t.textContent));
  assert.deepEqual(heads, ['lr', 'optimizer']);
  assert.match(await page.textContent('[data-counts]'), /3 trial\(s\): 1 pending, 0 claimed, 2 done, 0 failed/);
  await page.selectOption('select[aria-label="Metric"]', 'train/loss');
  await page.check('text=lower is better >> input');
  await page.locator('tr.best[data-trial="cmp-0"]').waitFor();
  assert.match(await page.textContent('.sweep-table thead'), /lowest train\/loss/);
  assert.match(await page.textContent('tr[data-trial="cmp-2"] td.num'), /^0\.7/);
  assert.match(decodeURIComponent(page.url()), /metric=train\/loss/);
  await shot('sweep');
  if (!FLAGS) return;
  // An agent finishes the last trial: the counts change without a reload.
  const settle = join(FLAGS, 'settle');
  writeFileSync(settle, '');
  await page.waitForFunction(() => /0 pending, 0 claimed, 3 done/.test(document.querySelector('[data-counts]')?.textContent ?? ''), null, { timeout: 10000 });
  unlinkSync(settle);
});

test('interactive control: clone with a config change; the request follows live', async () => {
  // From the runs table: a row's Clone… opens the run page with the form open.
  await page.goto(url({ project: 'fx/cmp' }));
  await page.click('tr[data-run="cmp-0"] >> text=Clone…');
  await page.locator('.clone-form textarea').waitFor();
  assert.match(page.url(), /run=cmp-0/);
  await page.locator('.run-head .live-open').waitFor();
  // Refused in the page, saying why, before anything is asked.
  await page.fill('textarea[aria-label="Config changes"]', '[1]');
  await page.click('text=Ask to clone');
  assert.match(await page.textContent('.clone-form .form-error'), /JSON object is needed/);
  await page.fill('textarea[aria-label="Config changes"]', '{"lr": 0.5}');
  // From a saved config of the project, the changes over it.
  await page.selectOption('select[aria-label="Saved config"]', 'adam');
  await page.click('text=Ask to clone');
  const pending = '.requests tr[data-state="pending"]';
  await page.locator(pending).waitFor();
  assert.match(await page.textContent(pending), /clone.*"lr":0\.5/);
  assert.match(await page.textContent(pending), /"optimizer":"adam"/);
  assert.match(await page.textContent('.requests .hint'), /goodseed agent -p fx\/cmp/);
  assert.equal(await page.locator('.clone-form').count(), 0, 'the form closes once asked');
  await shot('request-pending');
  if (!FLAGS) return;
  // An agent elsewhere (tests/ui.rs) claims and settles it: the row changes without a reload.
  writeFileSync(join(FLAGS, 'settle'), '');
  const done = '.requests tr[data-state="done"]';
  await page.locator(done).waitFor({ timeout: 10000 });
  assert.match(await page.textContent(`${done} a`), /^cmp-0-clone-\d+$/);
  assert.equal(await page.locator('.requests .hint').count(), 0, 'nothing waits any more');
  await shot('request-done');
});

test('checkpoints: keep-best listed with the best marked; the best downloads byte for byte; mark best, delete', async () => {
  await page.goto(url({ project: 'fx/files', run: 'trained', tab: 'checkpoints' }));
  const rows = page.locator('table.checkpoints-table tbody tr');
  await rows.first().waitFor();
  assert.equal(await rows.count(), 2, 'keep best 2 of 5');
  const steps = await page.$$eval('table.checkpoints-table tbody tr td:first-child', (tds) => tds.map((t) => t.textContent));
  assert.deepEqual(steps, ['1', '3'], 'the lowest val/loss');
  const best = page.locator('table.checkpoints-table tr.best');
  assert.equal(await best.count(), 1);
  assert.match(await best.textContent(), /epoch-1\.ckpt/);
  assert.match(await best.textContent(), /0\.35/);
  await shot('checkpoints');
  const [download] = await Promise.all([page.waitForEvent('download'), best.getByRole('link', { name: 'Download' }).click()]);
  assert.equal(download.suggestedFilename(), 'epoch-1.ckpt');
  const got = readFileSync(await download.path());
  const wrote = readFileSync(join(process.env.GOODSEED_CHECKPOINTS, 'epoch-1.ckpt'));
  assert.ok(got.equals(wrote), `the download is what the trainer wrote (${got.length} vs ${wrote.length} bytes)`);
  // Mark the other one best, then delete it.
  const other = page.locator('table.checkpoints-table tbody tr:not(.best)');
  await other.getByRole('button', { name: 'Mark best' }).click();
  await page.waitForFunction(() => document.querySelector('table.checkpoints-table tr.best td')?.textContent === '3');
  page.once('dialog', (d) => d.accept());
  await page.locator('table.checkpoints-table tr.best').getByRole('button', { name: 'Delete' }).click();
  await page.waitForFunction(() => document.querySelectorAll('table.checkpoints-table tbody tr').length === 1);
});

test('artifacts: an image series with a step slider, and a downloadable artifact', async () => {
  await page.goto(url({ project: 'fx/files', run: 'trained', tab: 'files' }));
  const img = page.locator('.media-series[data-series="samples/grid"] img');
  await img.waitFor();
  await page.waitForFunction(() => {
    const i = document.querySelector('.media-series img');
    return i && i.complete && i.naturalWidth === 48 && i.naturalHeight === 32;
  });
  const last = await img.getAttribute('src');
  const slider = page.locator('.media-series input[type="range"]');
  await slider.fill('0');
  await page.waitForFunction((before) => document.querySelector('.media-series img')?.getAttribute('src') !== before, last);
  assert.match(await page.locator('.media-series h3').textContent(), /step 0/);
  assert.equal(await page.locator('table.artifacts-table tbody tr').count(), 1);
  assert.match(await page.locator('table.artifacts-table').textContent(), /predictions\.csv.*text\/csv/);
  await shot('artifacts');
});

test('compare: image series side by side, one step slider for both runs', async () => {
  await page.goto(url({ project: 'fx/files', view: 'compare', sel: 'trained,twin' }));
  const panel = page.locator('.media-compare[data-series="samples/grid"]');
  await panel.waitFor();
  await page.waitForFunction(() => [...document.querySelectorAll('.media-compare img')].filter((i) => i.complete && i.naturalWidth === 48).length === 2);
  const slider = panel.locator('input[type="range"]');
  await slider.fill('1');
  // Step 1: trained has one, twin shows its step 0 and says so.
  await page.waitForFunction(() => document.querySelector('.media-compare h3')?.textContent.includes('step 1'));
  assert.match(await panel.locator('figure[data-run="twin"] figcaption').textContent(), /step 0/);
  await shot('compare-media');
});

test('live: a new run appears, its points arrive, and its death shows as crashed', async () => {
  if (!FLAGS) {
    // Only when run by hand against a server without the trainer (see tests/ui.rs).
    console.log('     (no trainer: GOODSEED_FLAGS is not set)');
    return;
  }
  await page.goto(url({ project: 'fx/live' }));
  await page.locator('.live-open').waitFor();
  writeFileSync(join(FLAGS, 'go'), '');
  const t0 = Date.now();
  await page.locator('tr[data-run="trainee"]').waitFor({ timeout: 10000 });
  figures.new_run_visible_ms = Date.now() - t0;
  await page.locator('tr[data-run="trainee"] [data-state="running"]').waitFor();
  await shot('runs-live');
  await page.click('tr[data-run="trainee"] >> text=live trainer');
  const chart = 'figure.chart[data-path="train/loss"]';
  await page.locator(`${chart} canvas`).waitFor({ timeout: 10000 });
  const first = Number(await page.getAttribute(chart, 'data-total'));
  // New points arrive without a reload: the chart's count grows.
  const t1 = Date.now();
  await page.waitForFunction(([sel, n]) => Number(document.querySelector(sel)?.dataset.total) > n + 5, [chart, first], { timeout: 10000 });
  figures.live_points_ms = Date.now() - t1;
  await shot('run-live');
  // The header's "Running for" goes on counting.
  const runningFor = await page.textContent('[data-running-for]');
  await page.waitForFunction((before) => document.querySelector('[data-running-for]')?.textContent !== before, runningFor, { timeout: 5000 });
  // Checkpoints the trainer registers appear in the open tab, without a reload.
  await page.getByRole('tab', { name: 'Checkpoints' }).click();
  await page.locator('table.checkpoints-table tbody tr').first().waitFor({ timeout: 10000 });
  const had = await page.locator('table.checkpoints-table tbody tr').count();
  await page.waitForFunction((n) => document.querySelectorAll('table.checkpoints-table tbody tr').length > n, had, { timeout: 10000 });
  writeFileSync(join(FLAGS, 'die'), '');
  const t2 = Date.now();
  await page.locator('.run-head [data-state="crashed"]').waitFor({ timeout: 15000 });
  figures.crash_visible_ms = Date.now() - t2;
  await shot('run-crashed');
});

test('charts fit a 400 px screen and fill a wide one', async () => {
  await page.setViewportSize({ width: 400, height: 800 });
  await page.goto(url({ project: 'fx/cmp', run: 'cmp-0' }));
  await page.locator('figure.chart canvas').first().waitFor();
  const narrow = await page.$eval('figure.chart', (f) => f.getBoundingClientRect().right);
  assert.ok(narrow <= 400, `a chart ends within the screen: ${narrow}`);
  await page.setViewportSize({ width: 1900, height: 900 });
  await page.waitForTimeout(200);
  const cards = await page.$$eval('.charts figure.chart', (fs) => fs.map((f) => f.getBoundingClientRect().right));
  const page_ = await page.$eval('.charts', (c) => c.getBoundingClientRect().right);
  assert.ok(Math.max(...cards) > page_ - 30, `the cards reach the right edge: ${Math.max(...cards)} of ${page_}`);
  await page.setViewportSize({ width: 1400, height: 900 });
});

test('400 px: the runs table, a run page and a comparison fit the screen; the table scrolls in place', async () => {
  await page.setViewportSize({ width: 400, height: 800 });
  const fits = async (what) => {
    const w = await page.evaluate(() => document.documentElement.scrollWidth);
    assert.ok(w <= 400, `${what}: the page is ${w} px wide`);
  };
  await page.goto(url({ project: 'fx/hp', cols: 'c:lr,c:optimizer,s:max:val/acc' }));
  await page.locator('tr[data-run]').first().waitFor();
  await fits('runs table');
  const region = await page.$eval('.vscroll', (el) => ({ right: el.getBoundingClientRect().right, scrolls: el.scrollWidth > el.clientWidth }));
  assert.ok(region.right <= 400 && region.scrolls, `the table scrolls inside its region: ${JSON.stringify(region)}`);
  await page.click('button:has-text("Group")');
  await page.locator('section.groups').waitFor();
  await fits('runs table with groups open');
  await page.goto(url({ project: 'fx/hp', run: 'hp-01' }));
  await page.locator('figure.chart canvas').first().waitFor();
  await fits('run page');
  await page.goto(url({ project: 'fx/cmp', view: 'compare', sel: 'cmp-0,cmp-1' }));
  await page.locator('figure.chart canvas').first().waitFor();
  await fits('comparison');
  await page.setViewportSize({ width: 1400, height: 900 });
});

test('keyboard shortcuts: a cursor through the table, select, compare, next run, smoothing, help', async () => {
  await page.goto(url({ project: 'fx/cmp' }));
  await page.locator('tr[data-run]').first().waitFor();
  await page.locator('body').click({ position: { x: 5, y: 5 } });
  const cursorRun = () => page.$eval('tr.cursor', (t) => t.dataset.run).catch(() => null);
  await page.keyboard.press('j');
  const first = await cursorRun();
  assert.equal(first, await page.$eval('tr[data-run]', (t) => t.dataset.run), 'the cursor starts on the first row');
  await page.keyboard.press('j');
  const second = await cursorRun();
  assert.notEqual(second, first);
  await page.keyboard.press('x');
  await page.keyboard.press('k');
  await page.keyboard.press('x');
  await page.waitForFunction(() => new URLSearchParams(location.search).get('sel')?.split(',').length === 2);
  await page.keyboard.press('c');
  await page.waitForFunction(() => location.search.includes('view=compare'));
  await page.locator('h1:has-text("compare 2 runs")').waitFor();
  await page.keyboard.press('u');
  await page.waitForFunction(() => !location.search.includes('view=compare') && location.search.includes('project='));
  await page.locator('tr[data-run]').first().waitFor();
  await page.locator('body').click({ position: { x: 5, y: 5 } });
  await page.keyboard.press('j');
  await page.keyboard.press('o');
  await page.waitForFunction((id) => new URLSearchParams(location.search).get('run') === id, first);
  await page.locator('.run-head').waitFor();
  // On a run page, j opens the next run of the project; s and l toggle chart options.
  await page.keyboard.press('j');
  await page.waitForFunction((id) => new URLSearchParams(location.search).get('run') === id, second);
  await page.locator('input[aria-label="Filter metrics"]').waitFor();
  await page.keyboard.press('s');
  await page.waitForFunction(() => location.search.includes('smooth=0.6'));
  await page.keyboard.press('l');
  await page.waitForFunction(() => location.search.includes('logy=1'));
  await page.keyboard.press('s');
  await page.keyboard.press('l');
  // Typing in a field is the field's.
  await page.keyboard.press('/');
  assert.equal(await page.evaluate(() => document.activeElement?.getAttribute('aria-label')), 'Filter metrics');
  await page.keyboard.type('js');
  assert.equal(await page.inputValue('input[aria-label="Filter metrics"]'), 'js');
  assert.doesNotMatch(page.url(), /smooth=/);
  await page.fill('input[aria-label="Filter metrics"]', '');
  await page.locator('body').click({ position: { x: 5, y: 5 } });
  await page.keyboard.press('?');
  await page.locator('[role=dialog][aria-label="Keyboard shortcuts"]').waitFor();
  assert.ok((await page.locator('.shortcuts tr').count()) >= 10);
  await shot('shortcuts');
  await page.keyboard.press('Escape');
  await page.locator('[role=dialog]').waitFor({ state: 'detached' });
});

test('dark theme', async () => {
  await page.goto(url({ project: 'fx/cmp', view: 'compare', sel: 'cmp-0,cmp-1,cmp-2' }));
  await page.selectOption('select[aria-label="Theme"]', 'dark');
  await page.locator('figure.chart canvas').first().waitFor();
  const bg = await page.evaluate(() => getComputedStyle(document.body).backgroundColor);
  assert.equal(bg, 'rgb(15, 18, 23)');
  await page.waitForTimeout(300);
  await shot('compare-dark');
  await page.selectOption('select[aria-label="Theme"]', 'auto');
});

test('errors and empty states are shown, not blank pages', async () => {
  await page.goto(url({ project: 'fx/cmp', run: 'no-such-run' }));
  await page.locator('.state-error').waitFor();
  await page.goto(url({ project: 'fx/nothing-here' }));
  await page.locator('.state-empty, .state-error').first().waitFor();
  await page.goto(url({ project: 'fx/cmp', view: 'compare' }));
  await page.getByText('Select runs in the runs table').waitFor();
});

test('keyboard: the runs table is reachable and a run opens with Enter', async () => {
  await page.goto(url({ project: 'fx/cmp' }));
  await page.locator('tr[data-run]').first().waitFor();
  await page.focus('input[aria-label="Search runs"]');
  // Tab through the toolbar to the first run link, then open it.
  for (let i = 0; i < 30; i++) {
    await page.keyboard.press('Tab');
    const onRunLink = await page.evaluate(() => document.activeElement?.closest('td.name') !== null);
    if (onRunLink) break;
  }
  await page.keyboard.press('Enter');
  await page.waitForFunction(() => location.search.includes('run='));
});

let failed = 0;
for (const t of tests) {
  const t0 = Date.now();
  try {
    await t.fn();
    console.log(`ok   ${t.name} (${Date.now() - t0} ms)`);
  } catch (e) {
    failed++;
    console.log(`FAIL ${t.name}\n     ${String(e.stack ?? e).split('\n').slice(0, 6).join('\n     ')}`);
    await page.screenshot({ path: join(SHOTS, `failed-${tests.indexOf(t)}.png`) }).catch(() => {});
  }
}
if (pageErrors.length) {
  failed++;
  console.log(`FAIL uncaught errors in the page:\n     ${pageErrors.join('\n     ')}`);
}
console.log(`figures ${JSON.stringify(figures)}`);
writeFileSync(join(SHOTS, 'figures.json'), JSON.stringify(figures, null, 2));
await browser.close();
process.exit(failed ? 1 : 0);
